"""The challenge vocabulary: milestone names and order, track budgets, backends, model kinds."""

from __future__ import annotations

import pytest
import transformers as tf

from babylm import challenge


def test_milestones_follow_the_official_collator_order():
    small = challenge.milestones("strict-small")
    assert len(small) == 19 and small[:3] == ["chck_1M", "chck_2M", "chck_3M"]
    assert small[9:12] == ["chck_10M", "chck_20M", "chck_30M"] and small[-1] == "chck_100M"
    strict = challenge.milestones("strict")
    assert len(strict) == 28 and strict[18:20] == ["chck_100M", "chck_200M"] and strict[-1] == "chck_1000M"
    assert strict[:19] == small  # the strict list extends the strict-small one
    words = dict(challenge.milestone_words("strict", unit=1000))
    assert words["chck_20M"] == 20_000 and words["chck_1000M"] == 1_000_000
    assert dict(challenge.milestone_words("strict-small"))["chck_5M"] == 5_000_000
    assert challenge.words_of_milestone("chck_70M") == 70_000_000
    assert challenge.milestone_number("chck_7M") == 7 and challenge.milestone_number("final") is None
    with pytest.raises(ValueError):
        challenge.milestones("loose")


def test_tracks_and_backends_are_the_cli_spellings():
    assert challenge.TRACKS == ("strict-small", "strict")
    assert challenge.WORD_BUDGET["strict-small"] == 10_000_000 and challenge.WORD_BUDGET["strict"] == 100_000_000
    assert challenge.BACKENDS == ("causal", "mlm", "mntp")
    assert "mntp" in challenge.MASKED_BACKENDS and "causal" not in challenge.MASKED_BACKENDS


@pytest.mark.parametrize("config, kind", [
    (tf.GPT2Config(architectures=["GPT2LMHeadModel"]), "causal"),
    (tf.LlamaConfig(architectures=["LlamaForCausalLM"]), "causal"),
    (tf.BertConfig(architectures=["BertForMaskedLM"]), "masked"),
    (tf.RobertaConfig(), "masked"),  # no architectures: the model_type decides
    (tf.GPT2Config(), "causal"),
    (tf.GPT2Config(architectures=["GPT2ForSequenceClassification"]), "causal"),
    (tf.PretrainedConfig(), None),
])
def test_model_kind_from_configs(config, kind):
    assert challenge.model_kind(config) == kind
    backend = challenge.default_backend(config)
    assert backend == {"causal": "causal", "masked": "mlm", None: None}[kind]


def test_model_kind_of_a_model_reads_its_config():
    model = tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8))
    assert challenge.model_kind(model) == "causal"
