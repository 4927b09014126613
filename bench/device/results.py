"""The device run's results: each stage's part, and the two files that gather them after every stage.

A stage (``matmul.py``, ``throughput.py``, ``real_run.py``, ``scoring_speed.py``) keeps its part in a
:class:`StagePart`, saved as ``<work>/stages/<n>.json`` after every row it adds, so a stage stopped at
its time cap keeps the rows it finished. ``run.sh`` calls ``python bench/device/results.py record``
after every stage, whatever its exit code: that notes the stage's status (done, failed, timed out),
its seconds and cap, and rewrites ``$OUT/results.json`` and ``$OUT/results.md`` from every part
written so far. Standard library only (plus babylm.files): it must work when a stage broke the
environment.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from babylm.files import read_json, write_json, write_text  # noqa: E402  (after the path line: runs from a checkout)

STAGES = {0: "setup", 1: "matmul", 2: "throughput", 3: "real_run", 4: "scoring_speed"}
# The packages whose versions decide whether the run means the same on another machine.
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "accelerate", "huggingface-hub", "datasets", "fire",
            "pyarrow", "numpy", "dill", "multiprocess", "fsspec", "triton")
# Set to a stage number to make that stage fail once its part is written (proves the later stages
# still run and the earlier parts stay).
FAIL_ENV = "FAIL_STAGE"
# Where run.sh wants the results files and its stage caps (comma list from stage 0).
OUT_ENV, CAPS_ENV = "DEVICE_RUN_OUT", "DEVICE_RUN_CAPS"


class StagePart:
    """One stage's rows, notes and Markdown; :meth:`save` writes them (atomically) to the stage file."""

    def __init__(self, work: str | Path, number: int, title: str, smoke: bool):
        self.path = Path(work) / "stages" / f"{number}.json"
        self.number, self.title, self.smoke = number, title, smoke
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.facts: dict[str, Any] = {}  # stage-wide values (the card, the matmul rate ...)
        self.markdown = ""
        self.complete = False

    def add(self, row: dict[str, Any], markdown: str) -> None:
        self.rows.append(row)
        self.markdown = markdown
        self.save()

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.notes.append(text)
        self.save()

    def save(self) -> None:
        """Write the part; under run.sh also the results files, so a run stopped from outside
        mid-stage still returns this stage's rows."""
        write_json(self.path, {"stage": self.number, "name": STAGES[self.number], "title": self.title,
                               "smoke": self.smoke, "complete": self.complete, "facts": self.facts,
                               "rows": self.rows, "notes": self.notes, "markdown": self.markdown})
        if os.environ.get(OUT_ENV) and os.environ.get(CAPS_ENV):
            publish(self.path.parent.parent, Path(os.environ[OUT_ENV]), parse_caps(os.environ[CAPS_ENV]))

    def finish(self, markdown: str | None = None) -> None:
        """Mark the part complete; under FAIL_STAGE=<this stage>, fail right after (the part stays)."""
        if markdown is not None:
            self.markdown = markdown
        self.complete = True
        self.save()
        if os.environ.get(FAIL_ENV) == str(self.number):
            raise SystemExit(f"stage {self.number}: failing on purpose ({FAIL_ENV}={self.number}); its part is written")


def parse_caps(text: str) -> dict[int, int]:
    return {n: int(c) for n, c in enumerate(text.split(","))}


def read_part(work: Path, number: int) -> dict[str, Any] | None:
    path = work / "stages" / f"{number}.json"
    return read_json(path) if path.is_file() else None


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def millions(n: int) -> str:
    return f"{n / 1e6:.0f}M" if n >= 1e7 else f"{n / 1e6:.2f}M"


def tflops(flops: float) -> str:
    return f"{flops / 1e12:.1f}" if flops >= 1e12 else f"{flops / 1e12:.3g}"


def versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (from their metadata: nothing is imported)."""
    from importlib import metadata

    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def record(work: Path, out: Path, stage: int, rc: int, seconds: float, caps: dict[int, int]) -> dict:
    """Note stage ``stage``'s state (rc -1: running; else how it ended) and rewrite the results in ``out``."""
    status_file = work / "stages" / "status.json"
    status = read_json(status_file) if status_file.is_file() else {}
    state = ("running" if rc == -1 else "done" if rc == 0 else "timed out" if rc in (124, 137)
             else f"failed (exit {rc})")
    status[str(stage)] = {"name": STAGES[stage], "state": state, "rc": rc, "seconds": round(seconds, 1),
                          "cap_s": caps[stage]}
    if stage == 0:
        status["0"]["versions"] = versions()
        status["0"]["python"] = sys.version.split()[0]
    write_json(status_file, status)
    merged = publish(work, out, caps)
    if rc != -1:
        print(f"stage {stage} ({STAGES[stage]}): {state} after {seconds:.0f} s of its {caps[stage]} s cap; "
              f"tables in {out / 'results.md'}", flush=True)
    return merged


def publish(work: Path, out: Path, caps: dict[int, int]) -> dict:
    """Rewrite ``out``/results.json and results.md from the status and every part written so far."""
    status_file = work / "stages" / "status.json"
    merged = gather(work, read_json(status_file) if status_file.is_file() else {}, caps)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", merged)
    write_text(out / "results.md", markdown(merged))
    return merged


def gather(work: Path, status: dict, caps: dict[int, int]) -> dict[str, Any]:
    parts = {n: read_part(work, n) for n in STAGES if n}
    smoke = any(p and p.get("smoke") for p in parts.values())
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "smoke": smoke,
            "caps_s": {STAGES[n]: c for n, c in caps.items()}, "cap_total_s": sum(caps.values()),
            "status": status, "stages": {STAGES[n]: p for n, p in parts.items() if p is not None}}


def markdown(merged: dict[str, Any]) -> str:
    status = merged["status"]
    setup = status.get("0", {})
    lines = [f"# Device run, {merged['date']}" + (" (SMOKE: tiny shapes on the CPU, not a measurement)" if merged["smoke"] else ""),
             ""]
    card = (merged["stages"].get("matmul") or {}).get("facts", {}).get("device")
    if card:
        lines += [f"Device: {card}.", ""]
    if setup.get("versions"):
        lines += ["Python " + setup.get("python", "?") + "; " +
                  ", ".join(f"{k} {v}" for k, v in setup["versions"].items() if v) + ".", ""]
    rows = []
    for n, name in STAGES.items():
        s = status.get(str(n))
        part = merged["stages"].get(name)
        kept = "-" if not n else "yes" if part and part.get("complete") else "partial" if part and part.get("rows") else "no"
        rows.append([n, name, s["state"] if s else "not run", s["seconds"] if s else None, merged["caps_s"].get(name), kept])
    lines += [md_table(["stage", "name", "status", "seconds", "cap (s)", "part complete"], rows),
              "", f"Caps add up to {merged['cap_total_s']} s.", ""]
    for n, name in STAGES.items():
        part = merged["stages"].get(name)
        if not n or part is None:
            continue
        lines += [f"## {n}. {part['title']}", ""]
        if part.get("markdown"):
            lines += [part["markdown"], ""]
        lines += [f"- {note}" for note in part.get("notes", [])]
        if part.get("notes"):
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="note a stage's state; rewrite results.json and results.md")
    rec.add_argument("--work", required=True)
    rec.add_argument("--out", required=True)
    rec.add_argument("--stage", type=int, required=True, choices=sorted(STAGES))
    rec.add_argument("--rc", type=int, required=True, help="the stage's exit code; -1: it is starting")
    rec.add_argument("--seconds", type=float, default=0.0)
    rec.add_argument("--caps", required=True, help="stage caps in seconds, in stage order from 0: e.g. 20,25,120,240,75")
    args = p.parse_args(argv)
    record(Path(args.work), Path(args.out), args.stage, args.rc, args.seconds, parse_caps(args.caps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
