"""The ``python -m babylm`` commands: an explicit name -> function map (see babylm.cli).

Each function here is thin: it receives its validated config, calls one library function and
prints what the user needs. The config dataclasses live beside the code they configure.
"""

from __future__ import annotations

import dataclasses
import json

from babylm.cli import Command
from babylm.config import option
from babylm.report import ReportConfig  # light: matplotlib is imported only when plotting


@dataclasses.dataclass
class EnvConfig:
    json: bool = option(False, "print the summary as one JSON object instead of aligned lines")


def env(cfg: EnvConfig) -> None:
    from babylm.runtime import environment_summary

    summary = environment_summary()
    if cfg.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>15}: {value}")


def report(cfg: ReportConfig) -> None:
    from babylm.report import write_report

    print(f"wrote {write_report(cfg)}")


COMMANDS: dict[str, Command] = {
    "env": Command("env", EnvConfig, env, "Print the environment summary (kit commit, lock hash, torch, GPUs)."),
    "report": Command("report", ReportConfig, report,
                      "Write a run's Markdown report with PNG plots (loss, BLiMP, fine-tuning, baselines)."),
}
