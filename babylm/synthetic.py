"""The embedded default corpus: synthetic child-directed English from a small feature grammar.

Everything here is written by the kit, not taken from any corpus. A handful of sentence
templates (declaratives, prepositional-phrase and relative-clause attractors, reflexives,
yes/no and wh- questions) over a lexicon of a few hundred words with number, gender and
animacy features. The same templates serve three purposes:

* :func:`generate_corpus` samples utterances (seeded, byte-for-byte deterministic) for the
  train/dev/test text files;
* :func:`make_pairs` builds BLiMP-style minimal pairs (``sentence_good`` from the grammar,
  ``sentence_bad`` by one agreement or word-order violation), one jsonl file per phenomenon;
* :func:`is_grammatical` recognises exactly the sentences the templates can produce, which
  lets the tests check that every good sentence is grammatical and every bad one is not.

Pair sentences are drawn first and excluded from the text, so none appears verbatim in it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
from pathlib import Path
from typing import Any, Iterator

from babylm.config import option
from babylm.errors import UsageError
from babylm.files import atomic_dir, write_json, write_text

GENERATOR_VERSION = 1  # bump when the output changes, so cached copies are regenerated

# --------------------------------------------------------------------------- lexicon
# Each entry: (word, features). A feature a word lacks is unconstrained (``the`` fits both numbers).

_ANIMATE = [  # singular, plural, gender
    ("boy", "boys", "m"), ("man", "men", "m"), ("brother", "brothers", "m"), ("king", "kings", "m"),
    ("grandpa", "grandpas", "m"), ("prince", "princes", "m"),
    ("girl", "girls", "f"), ("woman", "women", "f"), ("sister", "sisters", "f"), ("queen", "queens", "f"),
    ("grandma", "grandmas", "f"), ("princess", "princesses", "f"),
    ("dog", "dogs", "n"), ("cat", "cats", "n"), ("bird", "birds", "n"), ("duck", "ducks", "n"),
    ("horse", "horses", "n"), ("bunny", "bunnies", "n"), ("frog", "frogs", "n"), ("bear", "bears", "n"),
    ("cow", "cows", "n"), ("pig", "pigs", "n"), ("puppy", "puppies", "n"), ("kitty", "kitties", "n"),
    ("monkey", "monkeys", "n"), ("lion", "lions", "n"),
]
_THINGS = [
    ("ball", "balls"), ("cup", "cups"), ("book", "books"), ("car", "cars"), ("truck", "trucks"),
    ("box", "boxes"), ("hat", "hats"), ("shoe", "shoes"), ("spoon", "spoons"), ("cookie", "cookies"),
    ("banana", "bananas"), ("block", "blocks"), ("doll", "dolls"), ("train", "trains"), ("boat", "boats"),
    ("chair", "chairs"), ("table", "tables"), ("bed", "beds"), ("tree", "trees"), ("flower", "flowers"),
    ("sock", "socks"), ("bottle", "bottles"), ("blanket", "blankets"),
]
_VERBS_T = [  # base/plural, 3rd singular, can take a reflexive
    ("see", "sees", True), ("like", "likes", True), ("want", "wants", False), ("have", "has", False),
    ("hold", "holds", False), ("find", "finds", True), ("push", "pushes", True), ("kick", "kicks", False),
    ("hug", "hugs", True), ("wash", "washes", True), ("touch", "touches", True), ("love", "loves", True),
    ("throw", "throws", False), ("carry", "carries", False), ("need", "needs", False),
    ("watch", "watches", True), ("help", "helps", True), ("tickle", "tickles", True), ("feed", "feeds", True),
    ("bring", "brings", False),
]
_VERBS_I = [
    ("run", "runs"), ("jump", "jumps"), ("sleep", "sleeps"), ("sing", "sings"), ("play", "plays"),
    ("swim", "swims"), ("sit", "sits"), ("cry", "cries"), ("laugh", "laughs"), ("dance", "dances"),
    ("walk", "walks"), ("fall", "falls"), ("smile", "smiles"), ("hide", "hides"),
]
_ADJ = ["happy", "sad", "big", "little", "hungry", "sleepy", "red", "blue", "soft", "funny", "good", "tired",
        "wet", "hot", "cold", "nice", "yummy", "pretty", "silly", "dirty", "clean", "round", "fast", "slow",
        "heavy", "green", "small", "warm"]
_NAMES = [("Tom", "m"), ("Max", "m"), ("Ben", "m"), ("Sam", "m"), ("Leo", "m"), ("Jack", "m"), ("Noah", "m"),
          ("Anna", "f"), ("Mia", "f"), ("Lucy", "f"), ("Emma", "f"), ("Lily", "f"), ("Zoe", "f"), ("Ruby", "f")]


def _build_lexicon() -> dict[str, list[tuple[str, dict[str, str]]]]:
    lex: dict[str, list[tuple[str, dict[str, str]]]] = {}
    noun = lex.setdefault("Noun", [])
    for sg, pl, g in _ANIMATE:
        noun += [(sg, {"n": "sg", "g": g, "a": "y", "lemma": sg}), (pl, {"n": "pl", "g": g, "a": "y", "lemma": sg})]
    for sg, pl in _THINGS:
        noun += [(sg, {"n": "sg", "g": "n", "a": "n", "lemma": sg}), (pl, {"n": "pl", "g": "n", "a": "n", "lemma": sg})]
    lex["Name"] = [(w, {"n": "sg", "g": g, "a": "y"}) for w, g in _NAMES]
    # "a" only before consonant-initial nouns: every noun above starts with a consonant.
    lex["Det"] = [("the", {}), ("a", {"n": "sg"}), ("my", {}), ("your", {}),
                  ("this", {"n": "sg", "lemma": "this"}), ("that", {"n": "sg", "lemma": "that"}),
                  ("these", {"n": "pl", "lemma": "this"}), ("those", {"n": "pl", "lemma": "that"})]
    lex["VT"] = [x for base, s3, _ in _VERBS_T for x in ((s3, {"n": "sg", "lemma": base}), (base, {"n": "pl", "lemma": base}))]
    lex["VR"] = [x for base, s3, refl in _VERBS_T if refl
                 for x in ((s3, {"n": "sg", "lemma": base}), (base, {"n": "pl", "lemma": base}))]
    lex["VTB"] = [(base, {"lemma": base}) for base, _, _ in _VERBS_T]  # base form after does/do
    lex["VI"] = [x for base, s3 in _VERBS_I for x in ((s3, {"n": "sg", "lemma": base}), (base, {"n": "pl", "lemma": base}))]
    lex["VIB"] = [(base, {"lemma": base}) for base, _ in _VERBS_I]
    lex["Cop"] = [("is", {"n": "sg", "lemma": "be"}), ("are", {"n": "pl", "lemma": "be"})]
    lex["Aux"] = [("does", {"n": "sg", "lemma": "do"}), ("do", {"n": "pl", "lemma": "do"})]
    lex["Refl"] = [("himself", {"n": "sg", "g": "m"}), ("herself", {"n": "sg", "g": "f"}),
                   ("itself", {"n": "sg", "g": "n"}), ("themselves", {"n": "pl"})]
    lex["Adj"] = [(w, {}) for w in _ADJ]
    lex["Prep"] = [(w, {}) for w in ("near", "behind", "under", "beside", "with", "on")]
    lex["Intj"] = [(w, {}) for w in ("look", "oh", "wow", "yes", "hey")]
    return lex


LEXICON = _build_lexicon()

# --------------------------------------------------------------------------- templates
# Slot syntax: Category[feature=VALUE,...]; an upper-case value is a variable shared across slots
# (agreement), a lower-case one a literal. Bare lower-case tokens and punctuation are literals.
# Markers: @sva = the verb whose number agrees with the subject (subject-verb agreement target),
# @qf = the auxiliary that a wh-question fronts, @subj = last word of the subject (where an
# un-inverted auxiliary would stand).

TEMPLATES: list[tuple[str, float, str]] = [  # (name, weight, template)
    ("cop", 3, "Det[n=A] Noun[n=A] Cop[n=A]@sva Adj ."),
    ("cop_pp", 3, "Det[n=A] Noun[n=A] Prep Det[n=B] Noun[n=B] Cop[n=A]@sva Adj ."),
    ("trans", 4, "Det[n=A] Noun[n=A,a=y] VT[n=A]@sva Det[n=B] Noun[n=B] ."),
    ("trans_pp", 2, "Det[n=A] Noun[n=A,a=y] Prep Det[n=B] Noun[n=B] VT[n=A]@sva Det[n=C] Noun[n=C] ."),
    ("rel", 2, "Det[n=A] Noun[n=A,a=y] that VT[n=A] Det[n=B] Noun[n=B] Cop[n=A]@sva Adj ."),
    ("intr", 2, "Det[n=A] Noun[n=A,a=y] VI[n=A]@sva ."),
    ("intr_pp", 2, "Det[n=A] Noun[n=A,a=y] Prep Det[n=B] Noun[n=B] VI[n=A]@sva ."),
    ("name_trans", 3, "Name VT[n=sg] Det[n=B] Noun[n=B] ."),
    ("names_trans", 1, "Name and Name VT[n=pl] Det[n=B] Noun[n=B] ."),
    ("name_intr", 1, "Name VI[n=sg] ."),
    ("name_cop", 1, "Name Cop[n=sg] Adj ."),
    ("refl_name", 2, "Name[g=G] VR[n=sg] Refl[n=sg,g=G] ."),
    ("refl_np", 2, "Det[n=A] Noun[n=A,g=G,a=y] VR[n=A] Refl[n=A,g=G] ."),
    ("refl_name_pp", 1, "Name[g=G] VR[n=sg] Refl[n=sg,g=G] Prep Det[n=B] Noun[n=B] ."),
    ("refl_np_pp", 1, "Det[n=A] Noun[n=A,g=G,a=y] Prep Det[n=B] Noun[n=B] VR[n=A] Refl[n=A,g=G] ."),
    ("yn_cop", 2, "Cop[n=A] Det[n=A] Noun[n=A] Adj ?"),
    ("yn_do", 2, "Aux[n=A] Det[n=A] Noun[n=A,a=y] VTB Det[n=B] Noun[n=B] ?"),
    ("yn_do_intr", 1, "Aux[n=A] Det[n=A] Noun[n=A,a=y] VIB ?"),
    ("yn_do_name", 1, "Aux[n=sg] Name VTB Det[n=B] Noun[n=B] ?"),
    ("wh_what", 2, "what Aux[n=A]@qf Det[n=A] Noun[n=A,a=y]@subj VTB ?"),
    ("wh_what_pp", 1, "what Aux[n=A]@qf Det[n=A] Noun[n=A,a=y]@subj VTB Prep Det[n=B] Noun[n=B] ?"),
    ("wh_what_name", 1, "what Aux[n=sg]@qf Name@subj VTB ?"),
    ("wh_where", 2, "where Cop[n=A]@qf Det[n=A] Noun[n=A]@subj ?"),
    ("wh_where_name", 1, "where Cop[n=sg]@qf Name@subj ?"),
    ("wh_who", 1, "who VT[n=sg] Det[n=B] Noun[n=B] ?"),
]

_SLOT = re.compile(r"^([A-Z][A-Za-z]*)(?:\[([^\]]*)\])?(?:@(\w+))?$")


@dataclasses.dataclass(frozen=True)
class _Slot:
    cat: str | None  # None: a literal token
    literal: str | None
    constraints: tuple[tuple[str, str], ...]
    mark: str | None


def _parse(template: str) -> list[_Slot]:
    slots = []
    for tok in template.split():
        m = _SLOT.match(tok)
        if m and m.group(1) in LEXICON:
            cons = tuple(tuple(kv.split("=")) for kv in (m.group(2) or "").split(",") if kv)  # type: ignore[misc]
            slots.append(_Slot(m.group(1), None, cons, m.group(3)))
        else:
            slots.append(_Slot(None, tok, (), None))
    return slots


PARSED = [(name, weight, _parse(t)) for name, weight, t in TEMPLATES]
_VALUES = {"n": ("sg", "pl"), "g": ("m", "f", "n"), "a": ("y", "n")}


def _fits(feats: dict[str, str], slot: _Slot, bind: dict[str, str]) -> dict[str, str] | None:
    """The bindings extended by ``feats`` if the word fits ``slot`` under ``bind``, else None."""
    new = bind
    for key, val in slot.constraints:
        have = feats.get(key)
        if have is None:
            continue  # the word does not mark this feature
        if val.isupper():
            if val in new:
                if new[val] != have:
                    return None
            else:
                new = {**new, val: have}
        elif have != val:
            return None
    return new


def _sample(rng: random.Random, slots: list[_Slot]) -> list[str]:
    # Number variables are drawn up front so singular and plural are equally frequent.
    bind = {v: rng.choice(_VALUES["n"]) for s in slots for k, v in s.constraints if k == "n" and v.isupper()}
    words = []
    for slot in slots:
        if slot.cat is None:
            words.append(slot.literal)
            continue
        options = _options(slot, tuple(bind.get(v) for _, v in slot.constraints))
        word, feats = options[rng.randrange(len(options))]
        bind = _fits(feats, slot, bind)
        words.append(word)
    return words


_OPTIONS_CACHE: dict[tuple, list[tuple[str, dict[str, str]]]] = {}


def _options(slot: _Slot, bound: tuple) -> list[tuple[str, dict[str, str]]]:
    """Words of ``slot``'s category that fit, given the current values of its variables (memoised)."""
    key = (slot, bound)
    if key not in _OPTIONS_CACHE:
        bind = {v: b for (_, v), b in zip(slot.constraints, bound) if b is not None}
        _OPTIONS_CACHE[key] = [(w, f) for w, f in LEXICON[slot.cat] if _fits(f, slot, bind) is not None]
    return _OPTIONS_CACHE[key]


def render(words: list[str]) -> str:
    """Tokens -> sentence: no space before punctuation, first letter upper-case."""
    text = " ".join(words)
    text = re.sub(r" ([.?,!])", r"\1", text)
    return text[:1].upper() + text[1:]


def _tokens(sentence: str) -> list[str]:
    toks = re.sub(r"([.?,!])", r" \1", sentence).split()
    if toks and not any(toks[0] == w for w, _ in LEXICON["Name"]):
        toks[0] = toks[0][:1].lower() + toks[0][1:]
    return toks


def _match(slots: list[_Slot], toks: list[str], i: int = 0, bind: dict | None = None) -> bool:
    bind = bind or {}
    if i == len(slots):
        return True
    slot = slots[i]
    if slot.cat is None:
        return slot.literal == toks[i] and _match(slots, toks, i + 1, bind)
    for word, feats in LEXICON[slot.cat]:
        if word == toks[i]:
            b = _fits(feats, slot, bind)
            if b is not None and _match(slots, toks, i + 1, b):
                return True
    return False


def is_grammatical(sentence: str) -> bool:
    """True iff the grammar can generate ``sentence`` (optionally after an interjection like 'Look,')."""
    toks = _tokens(sentence)
    if len(toks) > 2 and toks[1] == "," and toks[0] in {w for w, _ in LEXICON["Intj"]}:
        toks = toks[2:]
    return any(len(slots) == len(toks) and _match(slots, toks) for _, _, slots in PARSED)


def vocabulary() -> set[str]:
    return {w for entries in LEXICON.values() for w, _ in entries} | {"that", "and", "what", "where", "who"}


# --------------------------------------------------------------------------- minimal pairs
# Field and linguistics_term values follow BLiMP's conventions (Warstadt et al. 2020, github.com/alexwarstadt/blimp).
PHENOMENA = {
    "subject_verb_agreement": ("morphology", "subject_verb_agreement"),
    "determiner_noun_agreement": ("morphology", "determiner_noun_agreement"),
    "anaphor_agreement": ("morphology", "anaphor_agreement"),
    "question_formation": ("syntax", "question_formation"),
}
UID_PREFIX = "synthetic_"
_FLIP_DEM = {"this": "these", "these": "this", "that": "those", "those": "that"}
_WRONG_REFL = {"himself": "herself", "herself": "himself", "itself": "themselves", "themselves": "itself"}


def _other_number(cat: str, word: str) -> str:
    entry = next(f for w, f in LEXICON[cat] if w == word)
    return next(w for w, f in LEXICON[cat] if f.get("lemma") == entry["lemma"] and f["n"] != entry["n"])


def _corrupt(phenomenon: str, slots: list[_Slot], words: list[str]) -> tuple[list[str], bool] | None:
    """The ungrammatical twin of ``words`` for ``phenomenon`` (and whether it is lexically identical)."""
    bad = list(words)
    if phenomenon == "subject_verb_agreement":
        i = next((k for k, s in enumerate(slots) if s.mark == "sva"), None)
        if i is None:
            return None
        bad[i] = _other_number(slots[i].cat, words[i])
        return bad, False
    if phenomenon == "determiner_noun_agreement":
        dems = [k for k, s in enumerate(slots) if s.cat == "Det" and words[k] in _FLIP_DEM]
        if not dems:
            return None
        bad[dems[0]] = _FLIP_DEM[words[dems[0]]]
        return bad, False
    if phenomenon == "anaphor_agreement":
        i = next((k for k, s in enumerate(slots) if s.cat == "Refl"), None)
        if i is None:
            return None
        bad[i] = _WRONG_REFL[words[i]]
        return bad, False
    if phenomenon == "question_formation":
        q = next((k for k, s in enumerate(slots) if s.mark == "qf"), None)
        e = next((k for k, s in enumerate(slots) if s.mark == "subj"), None)
        if q is None or e is None:
            return None
        aux = bad.pop(q)
        bad.insert(e, aux)  # after the subject: "what the dog does see?"
        return bad, True
    raise ValueError(phenomenon)


def make_pairs(phenomenon: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` distinct BLiMP-format minimal pairs for one phenomenon."""
    field, term = PHENOMENA[phenomenon]
    needs = {"subject_verb_agreement": lambda s: s.mark == "sva", "determiner_noun_agreement": lambda s: s.cat == "Det",
             "anaphor_agreement": lambda s: s.cat == "Refl", "question_formation": lambda s: s.mark == "qf"}[phenomenon]
    usable = [(slots, w) for _, w, slots in PARSED if any(needs(s) for s in slots)]
    weights = [w for _, w in usable]
    pairs: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempts = 0
    while len(pairs) < n:
        attempts += 1
        if attempts > 200 * n:
            raise RuntimeError(f"cannot draw {n} distinct {phenomenon} pairs from the grammar")
        slots = rng.choices([s for s, _ in usable], weights)[0]
        words = _sample(rng, slots)
        out = _corrupt(phenomenon, slots, words)
        if out is None:
            continue
        bad_words, identical = out
        good, bad = render(words), render(bad_words)
        if good in seen:
            continue
        seen.add(good)
        uid = UID_PREFIX + phenomenon
        pairs.append({"sentence_good": good, "sentence_bad": bad, "field": field, "linguistics_term": term,
                      "UID": uid, "simple_LM_method": True, "one_prefix_method": False,
                      "two_prefix_method": False, "lexically_identical": identical, "pair_id": len(pairs),
                      "source": "synthetic (babylm kit grammar)"})
    return pairs


# --------------------------------------------------------------------------- corpus


@dataclasses.dataclass
class GenerateConfig:
    out_dir: str = option("outputs/embedded", "folder to write (train/dev/test text, blimp/ pairs, README.md)")
    seed: int = option(0, "random seed; the same seed gives byte-identical files", ge=0)
    train_words: int = option(200_000, "words of training text", ge=1)
    dev_words: int = option(20_000, "words of development text", ge=1)
    test_words: int = option(20_000, "words of test text", ge=1)
    pairs_per_phenomenon: int = option(300, "minimal pairs per phenomenon file", ge=1)
    interjection_rate: float = option(0.1, "share of utterances that start with an interjection ('Look, ...')",
                                      ge=0, le=1)
    overwrite: bool = option(False, "replace an existing out_dir")


def iter_utterances(rng: random.Random, exclude: set[str], interjection_rate: float = 0.1) -> Iterator[str]:
    """Endless stream of grammatical utterances, skipping those in ``exclude``."""
    slot_lists = [slots for _, _, slots in PARSED]
    weights = [w for _, w, _ in PARSED]
    intj = [w for w, _ in LEXICON["Intj"]]
    while True:
        slots = rng.choices(slot_lists, weights)[0]
        sentence = render(_sample(rng, slots))
        if sentence in exclude:
            continue
        if rng.random() < interjection_rate:
            first = sentence.split(" ", 1)
            head = first[0] if any(first[0].rstrip("?.") == w for w, _ in LEXICON["Name"]) else first[0].lower()
            sentence = f"{rng.choice(intj).capitalize()}, {head} {first[1]}" if len(first) > 1 else sentence
        yield sentence


def _text(stream: Iterator[str], words: int) -> str:
    lines, count = [], 0
    while count < words:
        line = next(stream)
        lines.append(line)
        count += len(line.split())
    return "\n".join(lines) + "\n"


def generate_corpus(cfg: GenerateConfig | None = None, out_dir: str | Path | None = None) -> Path:
    """Write the synthetic corpus folder (atomically) and return its path.

    Layout: ``synthetic.train``, ``synthetic.dev``, ``synthetic.test`` (one utterance per line),
    ``blimp/synthetic_<phenomenon>.jsonl`` and ``README.md`` + ``synthetic_info.json``.
    """
    cfg = cfg or GenerateConfig()
    out = Path(out_dir or cfg.out_dir)
    rng = random.Random(cfg.seed)
    pairs = {p: make_pairs(p, cfg.pairs_per_phenomenon, rng) for p in PHENOMENA}
    exclude = {pair["sentence_good"] for ps in pairs.values() for pair in ps}
    stream = iter_utterances(rng, exclude, cfg.interjection_rate)
    texts = {split: _text(stream, getattr(cfg, f"{split}_words")) for split in ("train", "dev", "test")}
    info = {
        "synthetic": True,
        "generator": "babylm.synthetic",
        "generator_version": GENERATOR_VERSION,
        "config": dataclasses.asdict(cfg) | {"out_dir": None, "overwrite": None},
        "words": {split: len(t.split()) for split, t in texts.items()},
        "lines": {split: t.count("\n") for split, t in texts.items()},
        "pairs": {UID_PREFIX + p: len(v) for p, v in pairs.items()},
        "vocabulary_size": len(vocabulary()),
    }
    try:
        with atomic_dir(out, overwrite=cfg.overwrite) as tmp:
            for split, text in texts.items():
                write_text(tmp / f"synthetic.{split}", text)
            for p, items in pairs.items():
                write_text(tmp / "blimp" / f"{UID_PREFIX}{p}.jsonl",
                           "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items))
            write_json(tmp / "synthetic_info.json", info)
            write_text(tmp / "README.md", _readme(info))
    except FileExistsError:
        raise UsageError(f"--out_dir: {out} exists; pass --overwrite true or choose another folder") from None
    return out


def _readme(info: dict[str, Any]) -> str:
    words = ", ".join(f"{k} {v:,}" for k, v in info["words"].items())
    pairs = "\n".join(f"- `blimp/{uid}.jsonl`: {n} pairs" for uid, n in info["pairs"].items())
    return f"""# SYNTHETIC corpus (not real child-directed speech)

Generated by `babylm.synthetic` (version {info['generator_version']}, seed {info['config']['seed']}) from a
small hand-written feature grammar of child-directed English: {len(TEMPLATES)} sentence templates
(declaratives, prepositional-phrase and relative-clause agreement attractors, reflexives, yes/no and
wh- questions) over a vocabulary of {info['vocabulary_size']} words. Written by the BabyLM kit, taken from no corpus.

Text (one utterance per line): {words} words (`len(text.split())`).

Minimal pairs in the BLiMP jsonl format (fields `sentence_good`, `sentence_bad`, `field`,
`linguistics_term`, `UID`, `pair_id`, ...), UIDs prefixed `{UID_PREFIX}`. Good sentences come from the
grammar and never occur verbatim in the text files; bad ones break exactly one agreement (one word
replaced) or, for question formation, leave the auxiliary after the subject (one word moved).

{pairs}

Use it to check that a pipeline learns, not to report BabyLM results.
"""


def kit_cache_dir() -> Path:
    """Where the kit caches generated data: $BABYLM_CACHE, else $XDG_CACHE_HOME/babylm, else ~/.cache/babylm."""
    if os.environ.get("BABYLM_CACHE"):
        return Path(os.environ["BABYLM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "babylm"


def embedded_corpus_dir(cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """The default embedded corpus folder, generated on first use."""
    path = Path(cache_dir or kit_cache_dir()) / f"embedded-v{GENERATOR_VERSION}-seed{seed}"
    if not (path / "synthetic_info.json").is_file():
        try:
            generate_corpus(GenerateConfig(seed=seed), out_dir=path)
        except UsageError:
            pass  # another process generated it at the same time; its copy is identical
    return path
