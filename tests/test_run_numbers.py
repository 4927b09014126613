"""The numbers a run reports: validation loss in both engines, progress bar and ETA, run length."""

from __future__ import annotations

import io
import json
import logging
import math
import sys

import pytest

from babylm.distributed import Dist
from babylm.errors import InputError
from babylm.events import LoopState, RunEvents
from babylm.run import Run, TrainConfig, build
from babylm.tracking import Tracker
from tests.train_fixtures import make_blocks, make_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, so that tqdm draws its bar there."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def _run(tok, tmp_path, stages, val=None, **kw) -> Run:
    base = dict(block_size=32, batch_size=4, hidden=32, heads=2, layers=2, save_dir=str(tmp_path), log_every=1,
                save_every=0, milestones=False, warmup_steps=2, progress=False, tensorboard=False, dropout=0.0)
    cfg = TrainConfig(**{**base, **kw})
    cfg.validate()
    return Run(cfg, tmp_path / cfg.name, tok, stages, val, cfg.objective, "cpu", Dist(), {"stages": []})


def _records(run: Run, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if key in r]


def test_trainer_engine_evaluates_the_last_partial_batch(tok, tmp_path):
    """Fewer validation blocks (3) than --batch_size (8): the Trainer's evaluation once read no batch
    at all and reported NaN; now its loss is the kit's own evaluation of the same final model."""
    from babylm import hf_engine
    from babylm.objective import Targets
    from babylm.perplexity import evaluate

    val = make_blocks(tok, 32, 40, seed=5).select(range(3))
    run = _run(tok, tmp_path, [make_blocks(tok, 32, 200)], val=val, batch_size=8, engine="hf", epochs=1, lr=3e-3)
    model, opt = build(run)
    hf_engine.fit(run, model, opt)
    logged = _records(run, "val/loss")[-1]
    targets = Targets(tok, "clm", 0.15, 0.8, 0.1)
    kit = evaluate(model, val, targets, 8, "cpu")["val/loss"]
    assert math.isfinite(logged)
    # One batch of three rows, float32 either way; only the order of the sums differs.
    assert logged == pytest.approx(kit, rel=1e-4), f"Trainer {logged} vs kit {kit}: {abs(logged - kit):.2e} apart"


def test_a_non_finite_validation_loss_stops_the_run(tok, tmp_path):
    """Both engines hand every evaluation to RunEvents.evaluated: a NaN there is an error, not a record."""
    run = _run(tok, tmp_path, [])
    events = RunEvents(run, None, LoopState(step=7), Tracker())  # closed logs: nothing is written
    with pytest.raises(InputError, match=r"validation loss is not finite at step 7 \(nan\)"):
        events.evaluated({"val/loss": float("nan"), "val/ppl": float("nan")})
    assert not run.run_dir.exists()


def test_bar_and_console_line_show_one_eta_and_the_bar_ends_at_100(tmp_path):
    screen = Terminal()
    tracker = Tracker.open(tmp_path, total_words=1000, tensorboard=False, bar_file=screen)
    tracker.clock = lambda: tracker.start + 10.0  # 10 s after the logs were opened
    tracker.advance(400)  # 40 words/s: 600 words left = 15 s
    line = tracker._line(3, 400, {"train/loss": 1.0})
    assert tracker.eta(400) == pytest.approx(15.0)
    assert line.endswith("eta 0:00:15"), line
    assert str(tracker._bar).endswith("eta 0:00:15]"), str(tracker._bar)
    tracker.advance(1030)  # the last step passes the budget by part of a batch
    assert tracker._bar.n == 1000 and str(tracker._bar).startswith("100%|"), str(tracker._bar)
    assert str(tracker._bar).endswith("eta 0:00:00]")
    tracker.close()


def test_run_says_its_epochs_warns_on_warmup_and_its_bar_reaches_100(tok, tmp_path, monkeypatch, caplog):
    from babylm.train import fit

    blocks = make_blocks(tok, 32, 200)
    words = sum(blocks["n_words"])
    run = _run(tok, tmp_path, [blocks], words=int(words * 1.5), warmup_steps=100, progress=True)
    model, opt = build(run)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with caplog.at_level(logging.INFO, logger="babylm"):
        state = fit(run, model, opt)
    assert state.step < 100
    said = caplog.text
    assert f"{int(words * 1.5):,} words = 1.50 epochs of the {words:,} training words" in said, said
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "--warmup_steps 100 is at least the run's" in warned[0].getMessage()
    last = screen.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("100%|"), last
