"""What travels to the GPU machine for the device run, and the call that runs it there.

The GPU machine receives the working tree (tracked and untracked-not-ignored files) plus at most
8 carried ignored paths, 64 MiB in all, and nothing beside the checkout. ``bench/device/prepare.sh``
downloads the wheels the machine lacks into ``.device/wheels/``; this module adds the data the run
reads, from the reference folder (``tests/reference.py`` finds it), as one gzip tarball
``.device/data.tar.gz`` (``data/corpus``: every training text of the slices, ``data/eval``: the
evaluation sets stage 3 and 4 score), checks the wheels against what the machine has, checks the
total against the limit, and prints the ``run`` call: command, carried paths and time limit.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from babylm.errors import InputError, UsageError  # noqa: E402  (after the path line: runs from a checkout)

PACK = ".device"  # the one carried path (default); ignored by git (.gitignore)
LIMIT_BYTES = 64 * 2**20  # what may travel: working tree + carried paths
COMMAND_CHARS, CARRIED_PATHS = 2000, 8  # the call's own limits
SLACK_S = 40  # asked beyond run.sh's caps: interpreter starts, the last table
# (folder under the reference folder's data/, name inside the tarball): every training text of the
# slices (2023 strict-small files, 2024 samples; the samples' *_dev files validate) and the
# evaluation sets stage 3 and 4 read. The 2024 switchboard.train is the 2023 file with speaker
# labels, so it is left out.
CORPUS = (("babylm/2023/babylm_10M", "data/corpus/2023/babylm_10M"),
          ("babylm/2024_samples/train_600k", "data/corpus/2024_samples/train_600k"))
EVAL = ("blimp_filtered", "blimp_fast", "supplement_filtered", "supplement_fast", "entity_tracking", "ewok")
SMOKE_BYTES = 10_000  # per corpus file under SMOKE=1: about 1,800 words each
# Python packages of the GPU machine's image that the kit and the carried wheels need (its Python
# 3.12 has torch 2.11, transformers 5.17 and the rest; fire, datasets and pydantic are missing).
# typing-extensions is one of torch's own requirements, so it is there wherever torch is.
ON_MACHINE = {"typing-extensions", "torch", "transformers", "tokenizers", "safetensors", "accelerate", "huggingface-hub", "numpy",
              "pyarrow", "pandas", "tqdm", "xxhash", "fsspec", "filelock", "packaging", "pyyaml", "requests",
              "httpx", "aiohttp", "tensorboard", "matplotlib"}
# Kit dependencies the GPU run never imports, so not carried: scipy fits the AoA curves (eval_export
# aoa, imported only when a score is computed), which no stage of run.sh scores; its wheel alone
# would be about half the 64 MiB the machine receives.
NOT_NEEDED_THERE = {"scipy"}


def norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def requirement_name(spec: str) -> str:
    spec = spec.strip()
    for stop in "<>=!~;[( ":
        spec = spec.split(stop)[0]
    return norm(spec)


def check_wheels(wheels: list[Path], pyproject: Path) -> list[str]:
    """Every requirement of the carried wheels and every kit dependency is carried or on the machine,
    and each package is carried once. Returns the carried names."""
    names = [norm(w.name.split("-")[0]) for w in wheels]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"the wheels folder holds two versions of {', '.join(twice)}: keep one of each (pip refuses two)")
    have = set(names) | ON_MACHINE
    needed: dict[str, str] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            for line in z.read(meta).decode().splitlines():
                if line.startswith("Requires-Dist:") and "extra ==" not in line:
                    needed.setdefault(requirement_name(line.split(":", 1)[1]), wheel.name)
    import tomllib

    for dep in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        if requirement_name(dep) not in NOT_NEEDED_THERE:
            needed.setdefault(requirement_name(dep), "pyproject.toml")
    missing = sorted(f"{n} (needed by {by})" for n, by in needed.items() if n not in have)
    if missing:
        raise InputError(f"not on the GPU machine and not carried: {', '.join(missing)}; add its wheel to "
                         f"bench/device/prepare.sh's list")
    return names


def add_file(tar: tarfile.TarFile, src: Path, name: str, smoke: bool) -> int:
    """Add ``src`` as ``name`` (under SMOKE, a corpus file's first bytes, cut at whitespace); its size."""
    data = src.read_bytes()
    if smoke and name.startswith("data/corpus/"):
        cut = data[:SMOKE_BYTES]
        end = max(cut.rfind(b"\n"), cut.rfind(b" "))
        data = cut[:end] if end > 0 else cut
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, int(src.stat().st_mtime)
    tar.addfile(info, io.BytesIO(data))
    return len(data)


def pack_data(shared: Path, out: Path, smoke: bool) -> dict[str, int]:
    """Write ``out`` (atomically); returns {tarball member folder: bytes before compression}."""
    data = shared / "data"
    sources = [(data / src, dst) for src, dst in CORPUS] + [(data / "eval" / e, f"data/eval/{e}") for e in EVAL]
    for src, _ in sources:
        if not src.is_dir():
            raise InputError(f"{src}: missing from the reference folder; it holds data/babylm and data/eval")
    sizes: dict[str, int] = {}
    tmp = out.with_name(f".tmp-{out.name}")
    with tarfile.open(tmp, "w:gz", compresslevel=1 if smoke else 6) as tar:
        for src, dst in sources:
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                if f.name.upper().startswith(("SOURCES", "README")):
                    continue
                size = add_file(tar, f, f"{dst}/{f.relative_to(src).as_posix()}", smoke)
                sizes[dst] = sizes.get(dst, 0) + size
    os.replace(tmp, out)
    return sizes


def carry_password(pack: Path, eval_dir: Path) -> str:
    """EWoK fast is an encrypted zip; its password (the official README gives it) travels in the pack
    only when ``BABYLM_EWOK_PASSWORD`` holds it and it opens the zip. Never printed."""
    from eval_export.tasks import EWOK_PASSWORD_ENV, open_ewok_zip

    target = pack / "ewok_password"
    password = os.environ.get(EWOK_PASSWORD_ENV, "")
    target.unlink(missing_ok=True)
    if not password:
        return f"EWoK fast: left out ({EWOK_PASSWORD_ENV} is not set; the official README gives the password)"
    open_ewok_zip(eval_dir / "ewok" / "ewok_fast.zip", password)  # a wrong one fails here, in one line
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return f"EWoK fast: its password travels in {target} (from {EWOK_PASSWORD_ENV}, mode 600)"


def travelling_bytes(pack: Path) -> tuple[int, int]:
    """(working tree that travels, carried pack) in bytes: tracked and untracked-not-ignored files."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.split(b"\0")
    tree = sum((REPO / os.fsdecode(p)).stat().st_size for p in listed if p and (REPO / os.fsdecode(p)).is_file())
    carried = sum(f.stat().st_size for f in pack.rglob("*") if f.is_file())
    return tree, carried


def caps_total(run_sh: Path) -> int:
    out = subprocess.run(["bash", str(run_sh), "--plan"], capture_output=True, text=True, check=True).stdout
    return int(next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("total_s=")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", required=True, help="the reference folder (holding data/babylm and data/eval)")
    p.add_argument("--smoke", action="store_true", help=f"corpus files cut to {SMOKE_BYTES:,} bytes (the CPU smoke run)")
    p.add_argument("--pack", default=PACK, help="the carried folder, relative to the checkout (default: .device)")
    p.add_argument("--limit_mib", type=float, default=LIMIT_BYTES / 2**20, help="what may travel, in MiB")
    args = p.parse_args(argv)
    pack = REPO / args.pack  # an absolute --pack stays as it is
    pack.mkdir(parents=True, exist_ok=True)
    try:
        wheels = sorted((pack / "wheels").glob("*.whl"))
        carried = check_wheels(wheels, REPO / "pyproject.toml") if wheels else []
        sizes = pack_data(Path(args.shared), pack / "data.tar.gz", args.smoke)
        ewok = carry_password(pack, Path(args.shared) / "data" / "eval")
        tree, packed = travelling_bytes(pack)
        total, limit = tree + packed, int(args.limit_mib * 2**20)
        if total > limit:
            raise UsageError(f"{total / 2**20:.1f} MiB would travel (working tree {tree / 2**20:.1f} MiB, {args.pack} "
                             f"{packed / 2**20:.1f} MiB), over the {args.limit_mib:g} MiB limit; carry less")
    except (InputError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    caps = caps_total(REPO / "bench" / "device" / "run.sh")
    command = "bash bench/device/run.sh" if args.pack == PACK else f"PACK={args.pack} bash bench/device/run.sh"
    carry, timeout_s = [args.pack], min(600, caps + SLACK_S)
    assert len(command) < COMMAND_CHARS and len(carry) <= CARRIED_PATHS
    print(f"packed {sum(sizes.values()) / 2**20:.1f} MiB of data into {args.pack}/data.tar.gz"
          + (" (SMOKE: corpus files cut)" if args.smoke else ""))
    print(f"wheels carried: {', '.join(carried) if carried else 'none'}")
    print(ewok)
    print(f"travels: {total / 2**20:.1f} MiB of {args.limit_mib:g} MiB (working tree {tree / 2**20:.1f} MiB, "
          f"{args.pack}/ {packed / 2**20:.1f} MiB)")
    print(f"stage caps of run.sh: {caps} s; asked: {timeout_s} s (the rest of the machine's 15 minutes, after "
          f"its start, leaves room to rerun a stage: STAGES=3 bash bench/device/run.sh)")
    print("run call:")
    print(json.dumps({"command": command, "carry": carry, "timeout_s": timeout_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
