"""BabyLM corpora: find the text files of any official layout (or a plain folder), select, count.

Layouts understood (the folder names are the organisers'):

* 2023 release (``babylm_data.zip``): ``babylm_10M/``, ``babylm_100M/``, ``babylm_dev/``,
  ``babylm_test/``, each holding ten ``<sub-corpus>.train|.dev|.test`` files.
* 2024 / 2025 releases (OSF projects ad7qg / ryjfm): ``train_10M/``, ``train_100M/``, ``dev/``,
  ``test/``, six sub-corpora.
* 2026 (Hugging Face ``BabyLM-community/BabyLM-2026-Strict-Small`` / ``-Strict``, files
  ``<sub-corpus>.train.txt``): ``--corpus hf:<id>`` loads it with ``datasets.load_dataset`` (a
  ``text`` column, one row per line); the same files in a local folder are a plain folder.
* Any folder of plain-text files (searched recursively), and ``embedded``: the synthetic corpus
  of :mod:`babylm.synthetic`.

Words are counted as the challenge counts them: ``len(text.split())`` over a file's text.
Files are decoded incrementally in fixed-size byte chunks, so a file without newlines (the
``2024_samples`` files of the shared data) never becomes one giant string: its text is cut into
text units of ``unit_words`` whitespace words instead of lines.
"""

from __future__ import annotations

import codecs
import dataclasses
import fnmatch
import hashlib
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

from babylm.challenge import TRACKS, WORD_BUDGET
from babylm.config import option
from babylm.errors import InputError, UsageError
from babylm.synthetic import embedded_corpus_dir

SPLITS = ("train", "dev", "test")

# Official folder name -> (release, split, track of a training folder). Sources: the 2023 README
# (babylm_data.zip) and the 2024/2025 OSF text_data zips (osf.io/ad7qg).
LAYOUT_DIRS: dict[str, tuple[str, str, str | None]] = {
    "babylm_10M": ("2023", "train", "strict-small"),
    "babylm_100M": ("2023", "train", "strict"),
    "babylm_dev": ("2023", "dev", None),
    "babylm_test": ("2023", "test", None),
    "train_10M": ("2024", "train", "strict-small"),
    "train_100M": ("2024", "train", "strict"),
    "dev": ("2024", "dev", None),
    "test": ("2024", "test", None),
}

# Sub-corpora of each release (the organisers' READMEs, 2023: 10 sources, 2024/2025/2026: 6).
SUBCORPORA = {
    "2023": ("aochildes", "bnc_spoken", "cbt", "children_stories", "gutenberg", "open_subtitles", "qed",
             "simple_wikipedia", "switchboard", "wikipedia"),
    "2024": ("bnc_spoken", "childes", "gutenberg", "open_subtitles", "simple_wiki", "switchboard"),
}

# Named groups of sub-corpora, so a curriculum is one flag (``--files easy,hard``: easy files
# first, then hard ones). "easy" is child-directed or spoken language
# (transcribed speech, subtitles), "hard" is written text (books, encyclopedia, lecture captions).
GROUPS: dict[str, tuple[str, ...]] = {
    "easy": ("aochildes", "childes", "bnc_spoken", "switchboard", "open_subtitles"),
    "hard": ("cbt", "children_stories", "gutenberg", "simple_wiki", "simple_wikipedia", "wikipedia", "qed"),
}

# Plain-folder files that are text; everything else (README.md, *.json, *.jsonl, *.zip ...) is skipped.
TEXT_SUFFIXES = {"", ".txt", ".text", ".train", ".dev", ".test"}
_SKIP_NAMES = re.compile(r"^(readme|license|licence|copying|sources)\b", re.IGNORECASE)
_GLOB_CHARS = set("*?[")

READ_CHUNK_BYTES = 1 << 20  # decode 1 MiB at a time: bounded memory whatever the line length
DEFAULT_UNIT_WORDS = 256  # words per text unit when a file (or a very long line) is streamed
# A line longer than this is treated as a stream and cut into units of ``unit_words`` words.
MAX_LINE_CHARS = 1 << 16


@dataclasses.dataclass
class CorpusConfig:
    """Corpus selection options, shared by every command that reads a corpus."""

    corpus: str = option("embedded", "a folder (any official BabyLM layout or plain-text files), 'embedded' "
                                     "(the synthetic corpus shipped with the kit) or hf:<dataset id>")
    files: list[str] = option(["train"], "files to use, in order: names, sub-corpus names, globs or groups "
                                         "(easy, hard, train, dev, test); e.g. easy,hard for a curriculum")
    track: str = option("strict-small", "track whose word budget applies", choices=TRACKS)
    allow_over_budget: bool = option(False, "accept a training selection over the track's word budget")

    def load_corpus(self) -> "Corpus":
        return load_corpus(self.corpus, files=self.files, track=self.track, allow_over_budget=self.allow_over_budget)


@dataclasses.dataclass
class CorpusFile:
    """One selected text file (or one split of a Hugging Face dataset)."""

    name: str  # path relative to the corpus root, or the split name for hf:
    path: Path | None  # None for hf: corpora
    subcorpus: str  # e.g. "aochildes" (file name without split suffix)
    split: str  # train, dev or test
    words: int = 0  # len(text.split()) over the whole file
    bytes: int = 0
    lines: int = 0  # newline characters; 0 means the file is read as a stream of word chunks
    fingerprint: str = ""  # size and modification time (local files) or the dataset's own fingerprint (hf:)
    sha256: str = ""  # of the file's bytes (local files): what a resumed run checks its data against

    @property
    def streamed(self) -> bool:
        return self.path is not None and self.lines == 0 and self.words > 0

    def to_dict(self) -> dict[str, Any]:
        # ``path`` is relative to the corpus root (it equals ``name``): the manifest travels with every
        # checkpoint, to the hub too, and an absolute path would publish the user's folders
        return {"name": self.name, "path": self.name if self.path else None, "subcorpus": self.subcorpus,
                "split": self.split, "words": self.words, "bytes": self.bytes, "lines": self.lines,
                "streamed": self.streamed, "fingerprint": self.fingerprint, "sha256": self.sha256}


@dataclasses.dataclass
class Corpus:
    """A selection of files with exact word counts; iterate over its text units with :meth:`iter_texts`."""

    source: str
    layout: str  # "2023", "2024", "plain", "hf", "embedded"
    root: Path | None
    files: list[CorpusFile]
    selection: list[str]
    track: str
    unit_words: int = DEFAULT_UNIT_WORDS
    hf_dataset: Any = dataclasses.field(default=None, repr=False)  # datasets.DatasetDict for hf:

    @property
    def total_words(self) -> int:
        return sum(f.words for f in self.files)

    @property
    def train_words(self) -> int:
        return sum(f.words for f in self.files if f.split == "train")

    def iter_texts(self, files: Iterable[CorpusFile] | None = None) -> Iterator[str]:
        """Yield the text units of the selected files in order: lines, or word chunks of streams."""
        for f in self.files if files is None else files:
            yield from self.iter_file_texts(f)

    def iter_file_texts(self, f: CorpusFile) -> Iterator[str]:
        if f.path is None:
            for row in self.hf_dataset[f.name]:
                text = row["text"]
                if text and not text.isspace():
                    yield text
            return
        yield from iter_text_units(f.path, self.unit_words)

    def fingerprint(self) -> str:
        """Hash of the selection (names, sizes, modification times, word counts) for cache keys."""
        h = hashlib.sha256()
        h.update(f"{self.layout}|{self.unit_words}".encode())
        for f in self.files:
            h.update(f"|{f.name}|{f.split}|{f.words}|{f.bytes}|{f.fingerprint}".encode())
        return h.hexdigest()[:20]

    def manifest(self) -> dict[str, Any]:
        """What the selection is, with no local path in it: the manifest goes beside every checkpoint
        (and so to the hub with every revision), so a local corpus is named by its folder's name only
        and its files by their paths under that folder; ``embedded`` and ``hf:<id>`` stay as given."""
        budget = WORD_BUDGET[self.track]
        local = self.root is not None and self.layout != "embedded"
        return {
            "source": self.root.name if local else self.source,
            "layout": self.layout,
            "root": self.root.name if local else None,
            "selection": self.selection,
            "track": self.track,
            "budget_words": budget,
            "train_words": self.train_words,
            "total_words": self.total_words,
            "unit_words": self.unit_words,
            "word_count_rule": "len(text.split()) per file (whitespace words, as the challenge counts)",
            "fingerprint": self.fingerprint(),
            "files": [f.to_dict() for f in self.files],
        }

    def table(self) -> str:
        """Per-file word counts as aligned text lines (what the ``corpus`` command prints)."""
        width = max([len(f.name) for f in self.files] + [5])
        lines = [f"{'file'.ljust(width)}  {'split':<5}  {'words':>12}  {'bytes':>13}  kind"]
        for f in self.files:
            kind = "stream" if f.streamed else "lines"
            lines.append(f"{f.name.ljust(width)}  {f.split:<5}  {f.words:>12,}  {f.bytes:>13,}  {kind}")
        lines.append(f"{'total'.ljust(width)}  {'':<5}  {self.total_words:>12,}")
        lines.append(f"track {self.track}: budget {WORD_BUDGET[self.track]:,} words, "
                     f"training words selected {self.train_words:,}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- reading files


def _decoded_chunks(path: Path, digest: Any = None) -> Iterator[str]:
    """Decode ``path`` as UTF-8 in bounded chunks; undecodable bytes -> InputError with the offset.

    ``digest`` (a hashlib object) is fed the raw bytes on the way, so hashing costs no second read.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    consumed = 0  # bytes handed to the decoder so far
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with fh:
        while True:
            raw = fh.read(READ_CHUNK_BYTES)
            if digest is not None:
                digest.update(raw)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as exc:
                offset = consumed - pending + exc.start
                raise InputError(f"{path}: undecodable UTF-8 byte 0x{exc.object[exc.start]:02x} at byte offset "
                                 f"{offset}; re-encode the file as UTF-8") from None
            consumed += len(raw)
            if text:
                yield text
            if not raw:
                return


def _split_words_units(text: str, unit_words: int) -> tuple[list[str], str]:
    """Cut whitespace-separated ``text`` into units of ``unit_words`` words; return (units, rest).

    ``rest`` holds the trailing words that do not fill a unit (and a word that may continue in
    the next chunk), so cutting never splits a word.
    """
    words = text.split()
    keep = 0
    if words and not text[-1].isspace():
        keep = 1  # the last word may continue in the next chunk
    full = (len(words) - keep) // unit_words * unit_words
    units = [" ".join(words[i:i + unit_words]) for i in range(0, full, unit_words)]
    return units, " ".join(words[full:]) + (" " if keep == 0 and len(words) > full else "")


def iter_text_units(path: str | Path, unit_words: int = DEFAULT_UNIT_WORDS) -> Iterator[str]:
    """Yield a file's text units: each non-blank line, or chunks of ``unit_words`` words.

    A line longer than ``MAX_LINE_CHARS`` characters (a file without newlines is one such line) is
    cut into units of ``unit_words`` whitespace words joined by single spaces. The word count of
    the units always equals ``len(file_text.split())``.
    """
    buf = ""  # the unfinished last line
    streaming = False  # ``buf`` is the tail of an over-long line already partly emitted
    for chunk in _decoded_chunks(Path(path)):
        lines = (buf + chunk).split("\n")
        buf = lines.pop()
        for line in lines:
            if streaming or len(line) > MAX_LINE_CHARS:
                yield from _word_units(line, unit_words)
                streaming = False
            elif line and not line.isspace():
                yield line.rstrip("\r")
        if len(buf) > MAX_LINE_CHARS:
            streaming = True
            units, buf = _split_words_units(buf, unit_words)
            yield from units
    if streaming or len(buf) > MAX_LINE_CHARS:
        yield from _word_units(buf, unit_words)
    elif buf and not buf.isspace():
        yield buf.rstrip("\r")


def _word_units(text: str, unit_words: int) -> Iterator[str]:
    """All words of a complete ``text`` in units of ``unit_words`` (the last one may be shorter)."""
    units, rest = _split_words_units(text + " ", unit_words)
    yield from units
    if rest.strip():
        yield rest.strip()


def count_file(path: str | Path) -> tuple[int, int, int, str]:
    """Exact (words, bytes, newlines, sha256 of the bytes) of a text file, read once in bounded memory."""
    words = newlines = 0
    prev_ends_in_word = False
    digest = hashlib.sha256()
    for chunk in _decoded_chunks(Path(path), digest):
        n = len(chunk.split())
        if n and prev_ends_in_word and not chunk[0].isspace():
            n -= 1  # the first word continues the last word of the previous chunk
        words += n
        newlines += chunk.count("\n")
        prev_ends_in_word = not chunk[-1].isspace()
    return words, Path(path).stat().st_size, newlines, digest.hexdigest()


# --------------------------------------------------------------------------- discovery


def _split_of(name: str) -> str:
    """Split of a file from its name: ``x.dev`` / ``x_dev.train`` / ``dev.txt`` -> dev; else train."""
    parts = name.split(".")
    for part in reversed(parts[1:]):
        if part in SPLITS:
            # "childes_dev.train" (2024_samples) is a dev sample although it ends in .train
            stem_split = re.search(r"_(dev|test)$", parts[0])
            return stem_split.group(1) if stem_split else part
    stem = parts[0]
    m = re.search(r"(?:^|_)(train|dev|test)$", stem)
    return m.group(1) if m else "train"


def _subcorpus_of(name: str) -> str:
    stem = Path(name).name.split(".")[0]
    return re.sub(r"_(train|dev|test)$", "", stem) or stem


def _is_text_file(path: Path) -> bool:
    if path.name.startswith(".") or _SKIP_NAMES.match(path.name):
        return False
    return path.suffix.lower() in TEXT_SUFFIXES


def _text_files(folder: Path) -> list[Path]:
    found = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and _is_text_file(p):
            found.append(p)
    return found


def _detect_layout(root: Path) -> str | None:
    names = {p.name for p in root.iterdir() if p.is_dir()}
    if names & {"babylm_10M", "babylm_100M"}:
        return "2023"
    if names & {"train_10M", "train_100M"}:
        return "2024"
    return None


def _candidates(root: Path, layout: str | None, track: str) -> list[CorpusFile]:
    """All files a selection may pick from (train folder of the track + dev + test for official layouts)."""
    out: list[CorpusFile] = []
    if layout is None:
        for p in _text_files(root):
            rel = p.relative_to(root).as_posix()
            out.append(CorpusFile(name=rel, path=p, subcorpus=_subcorpus_of(rel), split=_split_of(p.name)))
        return out
    for dirname, (release, split, dir_track) in LAYOUT_DIRS.items():
        if release != layout or (dir_track is not None and dir_track != track):
            continue
        folder = root / dirname
        if not folder.is_dir():
            if split == "train":
                others = [d for d, (r, s, _) in LAYOUT_DIRS.items() if r == layout and s == "train"
                          and (root / d).is_dir()]
                raise InputError(f"{root}: no {dirname}/ folder for track {track} (found {', '.join(others)}); "
                                 f"pass --track to match the data or download the {track} archive")
            continue
        for p in sorted(folder.iterdir()):
            if p.is_file() and _is_text_file(p):
                rel = p.relative_to(root).as_posix()
                out.append(CorpusFile(name=rel, path=p, subcorpus=_subcorpus_of(p.name), split=split))
    return out


# --------------------------------------------------------------------------- selection


def _known_names(files: list[CorpusFile]) -> list[str]:
    return sorted({f.subcorpus for f in files})


def select_files(candidates: list[CorpusFile], selectors: list[str]) -> list[CorpusFile]:
    """Pick files by name, sub-corpus name, glob or group, in the order of ``selectors``.

    Split names (train/dev/test) restrict the pool (default: train); sub-corpus names and groups
    choose within it, each in turn (so ``easy,hard`` lists the easy files first); file names and
    globs may name files of any split unless a split is given. Only split names: all their files.
    A selector that matches nothing is an InputError listing the known names.
    """
    selectors = [s.strip() for s in selectors if s.strip()] or ["train"]
    splits = [s for s in selectors if s in SPLITS]
    others = [s for s in selectors if s not in SPLITS]
    pool = [f for f in candidates if f.split in (splits or ["train"])]
    if not others:  # split names only: their files, split by split in the order given
        return [f for split in dict.fromkeys(splits) for f in pool if f.split == split]
    chosen: list[CorpusFile] = []
    for sel in others:
        if sel in GROUPS:
            hits = [f for f in pool if f.subcorpus in GROUPS[sel]]
        elif _GLOB_CHARS & set(sel):
            # file names and globs name files of any split unless a split is given
            hits = [f for f in (pool if splits else candidates)
                    if fnmatch.fnmatchcase(f.name, sel) or fnmatch.fnmatchcase(Path(f.name).name, sel)]
        else:
            hits = [f for f in (pool if splits else candidates) if sel in (f.name, Path(f.name).name)]
            hits = hits or [f for f in pool if sel == f.subcorpus]
        if not hits:
            what = "group" if sel in GROUPS else "glob" if _GLOB_CHARS & set(sel) else "sub-corpus or file"
            pool_desc = "/".join(splits or ["train"])
            raise InputError(f"--files: {what} {sel!r} matches no {pool_desc} file; known sub-corpora: "
                             f"{', '.join(_known_names(pool)) or 'none'}; groups: {', '.join(GROUPS)}")
        chosen += [f for f in hits if f not in chosen]
    return chosen


# --------------------------------------------------------------------------- loading


def load_corpus(source: str | Path | Any = "embedded", files: list[str] | str | None = None,
                track: str = "strict-small", allow_over_budget: bool = False,
                unit_words: int = DEFAULT_UNIT_WORDS, cache_dir: str | Path | None = None) -> Corpus:
    """Find, select and count the files of a corpus.

    Args:
        source: a folder (official 2023/2024/2025 layout or plain text files), ``"embedded"``,
            ``"hf:<dataset id>"``, or a ``datasets.Dataset``/``DatasetDict`` with a ``text`` column.
        files: selectors (see :func:`select_files`); default: the training files.
        track: ``strict-small`` (10M-word budget) or ``strict`` (100M).
        allow_over_budget: accept training files over the budget instead of raising InputError.
        unit_words: words per text unit when a file without newlines is streamed.
        cache_dir: where ``embedded`` is generated (default: the kit cache, see babylm.synthetic).

    Returns:
        A :class:`Corpus` with exact per-file word counts.
    """
    if track not in WORD_BUDGET:
        raise UsageError(f"--track: {track!r} is not one of {', '.join(TRACKS)}")
    if unit_words < 1:
        raise UsageError(f"unit_words must be >= 1, got {unit_words}")
    selectors = [files] if isinstance(files, str) else list(files or ["train"])
    selectors = [s for part in selectors for s in str(part).split(",")]
    if not isinstance(source, (str, Path)):
        corpus = _load_hf(source, "dataset object", selectors, track)
    elif str(source).startswith("hf:"):
        corpus = _load_hf(None, str(source), selectors, track)
    else:
        layout_name = "plain"
        if str(source) == "embedded":
            root = embedded_corpus_dir(cache_dir)
            layout_name = "embedded"
        else:
            root = Path(source).expanduser()
            if not root.is_dir():
                what = "is a file, not a folder" if root.exists() else "does not exist"
                raise InputError(f"--corpus: {root} {what}; give a folder of text files, 'embedded' or hf:<id>")
        layout = _detect_layout(root)
        candidates = _candidates(root, layout, track)
        if not candidates:
            raise InputError(f"--corpus: {root} holds no text files (looked for {', '.join(sorted(TEXT_SUFFIXES - {''}))} "
                             f"and files without suffix)")
        chosen = select_files(candidates, selectors)
        for f in chosen:
            f.words, f.bytes, f.lines, f.sha256 = count_file(f.path)
            st = f.path.stat()
            f.fingerprint = f"{st.st_size}-{st.st_mtime_ns}"
        corpus = Corpus(source=str(source), layout=layout or layout_name, root=root.resolve(), files=chosen,
                        selection=selectors, track=track, unit_words=unit_words)
    if corpus.total_words == 0:
        names = ", ".join(f.name for f in corpus.files)
        raise InputError(f"--corpus: the selected files contain no words ({names}); select other files with --files")
    check_budget(corpus, allow_over_budget)
    return corpus


def check_budget(corpus: Corpus, allow_over_budget: bool = False) -> None:
    """Raise InputError when the training files exceed the track's word budget (unless allowed)."""
    budget = WORD_BUDGET[corpus.track]
    if corpus.train_words > budget and not allow_over_budget:
        raise InputError(f"--files: the selected training files hold {corpus.train_words:,} words, over the "
                         f"{corpus.track} budget of {budget:,}; select fewer files or pass --allow_over_budget true")


def _load_hf(dataset: Any, source: str, selectors: list[str], track: str) -> Corpus:
    """A Hugging Face dataset (``text`` column): each split is one 'file'."""
    import datasets

    if dataset is None:
        name = source[3:]
        if not name:
            raise UsageError("--corpus: hf: needs a dataset id, e.g. hf:BabyLM-community/BabyLM-2026-Strict-Small")
        try:
            dataset = datasets.load_dataset(name)
        except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"--corpus: cannot load Hugging Face dataset {name!r} ({first}); "
                             f"check the id, the network or HF_HUB_OFFLINE") from None
    if isinstance(dataset, datasets.Dataset):
        dataset = datasets.DatasetDict({"train": dataset})
    split_alias = {"validation": "dev"}
    candidates = []
    for split_name, ds in dataset.items():
        if "text" not in ds.column_names:
            raise InputError(f"--corpus: split {split_name!r} of {source} has no 'text' column "
                             f"(columns: {', '.join(ds.column_names)})")
        split = split_alias.get(split_name, split_name if split_name in SPLITS else "train")
        candidates.append(CorpusFile(name=split_name, path=None, subcorpus=split_name, split=split,
                                     fingerprint=getattr(ds, "_fingerprint", "") or ""))
    chosen = select_files(candidates, selectors)
    for f in chosen:
        ds = dataset[f.name]
        words = lines = nbytes = 0
        for batch in ds.select_columns(["text"]).iter(batch_size=10_000):
            for text in batch["text"]:
                words += len(text.split())
                nbytes += len(text.encode("utf-8")) + 1
                lines += 1
        f.words, f.bytes, f.lines = words, nbytes, lines
    return Corpus(source=source, layout="hf", root=None, files=chosen, selection=selectors, track=track,
                  hf_dataset=dataset)
