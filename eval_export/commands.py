"""The ``python -m eval_export`` commands: an explicit name -> function map (see babylm.cli).

Each function is thin: it receives its validated config and calls one library function.
"""

from __future__ import annotations

import sys

from babylm.cli import Command
from eval_export.finetune import FinetuneConfig


def finetune(cfg: FinetuneConfig) -> None:
    from eval_export.finetune import load_data, resolve_model_path, run_finetune

    resolve_model_path(cfg.model, cfg.revision)  # a missing local model or revision fails here,
    data = load_data(cfg)  # and every data file is checked, before torch and the model are loaded

    def log(message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)

    summary = run_finetune(cfg, data, log=log)
    print(f"{'task':<8} {'accuracy':>8} {'f1':>8} {'mcc':>8}  best epoch")
    for task, res in summary.items():
        m = res.get("metrics", {})
        print(f"{task:<8} {m.get('accuracy', float('nan')):>8.4f} {m.get('f1', float('nan')):>8.4f} "
              f"{m.get('mcc', float('nan')):>8.4f}  {res.get('best_epoch', '?')}")


COMMANDS: dict[str, Command] = {
    "finetune": Command("finetune", FinetuneConfig, finetune,
                        "Fine-tune a checkpoint on the BabyLM GLUE tasks and write official predictions.json files."),
}
