"""The training objective: the masked-rows-only projection gives the full-logits loss and gradients."""

from __future__ import annotations

import pytest
import torch

from babylm import models
from babylm.objective import MaskedRowsLoss, loss_module, mask_tokens
from tests.train_fixtures import make_tokenizer


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"))


def _reference_loss(model, inputs, labels, objective):
    """Brute force: full logits, float64 log-softmax, explicit shift, sum over labelled positions."""
    logits = model(input_ids=inputs).logits.double()  # (B, T, V)
    if objective == "clm":
        logits, labels = logits[:, :-1], labels[:, 1:]
    logp = torch.log_softmax(logits, dim=-1)
    keep = labels != -100
    return -logp[keep].gather(-1, labels[keep].unsqueeze(-1)).sum()


def _batch(tok, objective, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(tok), (3, 16), generator=gen)  # (B, T)
    if objective == "clm":
        return ids, ids
    specials = sorted(set(tok.all_special_ids) - {tok.unk_token_id})
    return mask_tokens(ids, gen, len(tok), tok.mask_token_id, specials, 0.3, 0.8, 0.1)


@pytest.mark.parametrize("arch,custom,kind", [
    ("bert", False, MaskedRowsLoss), ("roberta", False, MaskedRowsLoss), ("deberta-v2", False, MaskedRowsLoss),
    ("roberta", True, MaskedRowsLoss), ("gpt2", False, None), ("llama", True, None)])
def test_loss_and_gradients_match_full_logits_reference(tok, arch, custom, kind):
    objective = "mlm" if models.ARCHS[arch] == "masked" else "clm"
    model = models.build_model(arch, models.resolve_shape("tiny", hidden=32, positions=64), tok, custom_head=custom)
    model.eval()  # no dropout: the two paths must see the same activations
    module = loss_module(model, objective)
    # The split is what makes the loss cheap; every stock model of that family must get it.
    assert (type(module) is kind) if kind else type(module).__name__ == "FullLogitsLoss", type(module)
    assert {id(p) for p in module.parameters()} == {id(p) for p in model.parameters()}
    inputs, labels = _batch(tok, objective)
    assert (labels != -100).sum() > 3

    loss = module(inputs, labels)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    ref = _reference_loss(model, inputs, labels, objective)
    ref_grads = torch.autograd.grad(ref, list(model.parameters()), allow_unused=True)

    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    for (name, _), g, r in zip(model.named_parameters(), grads, ref_grads):
        if r is None:
            assert g is None or not g.any(), name
            continue
        assert g is not None, name
        torch.testing.assert_close(g.double(), r.double(), rtol=1e-4, atol=1e-6, msg=name)


def test_model_without_a_matching_split_keeps_full_logits(tok):
    model = models.build_model("bert", models.resolve_shape("tiny", hidden=32, positions=64), tok)
    model.base_model_prefix = "not-a-child"  # the split cannot be found: the plain forward is used
    module = loss_module(model.eval(), "mlm")
    assert not isinstance(module, MaskedRowsLoss)
    inputs, labels = _batch(tok, "mlm", seed=1)
    assert module(inputs, labels).item() == pytest.approx(_reference_loss(model, inputs, labels, "mlm").item(), rel=1e-5)



def test_hybrid_targets_follow_the_step_plan(tok):
    """Causal steps keep the ids; MNTP steps mask at the plan's rate; the count skips position 0; the train
    option's default share is the objective's published one."""
    from babylm.objective import CAUSAL_SHARE, HybridPlan, Targets, count_predicted
    from babylm.run import TrainConfig

    assert TrainConfig().causal_share == CAUSAL_SHARE == 1 / 16  # written out in run.py (no torch import there)
    targets = Targets(tok, "hybrid")
    ids = torch.randint(5, len(tok), (64, 32), generator=torch.Generator().manual_seed(3))  # (G, T)
    plan = HybridPlan(seed=1, total_steps=100, causal_share=0.25)
    modes = [plan.at(s)[0] for s in range(8)]
    assert modes.count("causal") == 2
    step = modes.index("causal")
    inputs, labels, n = targets.make(ids, 7, *plan.at(step))
    assert inputs is ids and labels is ids and n == 64 * 31
    for step, rate in ((0, 0.30), (100, 0.15)):  # the mask rate falls over the planned steps
        assert plan.at(step)[1] == pytest.approx(rate)
        inputs, labels, n = targets.make(ids, 7, "mntp", rate)
        assert n == count_predicted(labels) == int((labels[:, 1:] != -100).sum())
        assert abs((labels != -100).float().mean().item() - rate) < 0.03  # no special ids among these tokens
        assert torch.equal(targets.make(ids, 7, "mntp", rate)[1], labels)  # a pure function of the seed
    with pytest.raises(ValueError, match="mode"):
        targets.make(ids, 7, None)
