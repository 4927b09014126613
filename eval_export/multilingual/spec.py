"""What the multilingual track expects: languages, tasks per language, server-scored tasks, revisions.

Source: babylm-eval 3d57ddc, ``multilingual/scripts/collate_results.py`` (EXPECTED_ZEROSHOT,
EXPECTED_FINETUNE, SERVER_SCORED_TASKS, REVISIONS), ``multilingual/tasks/zeroshot_babybabellm/*.yaml``
(the groups) and ``multilingual/scripts/finetune_model.sh`` (the fine-tuning defaults and task loop).
"""

from __future__ import annotations

LANGUAGES = ("eng", "nld", "zho")
ISO2 = {"eng": "en", "nld": "nl", "zho": "zh"}

# The lm-eval groups zeroshot_<lang> (tasks/zeroshot_babybabellm/zeroshot_<lang>.yaml) and the Global
# PIQA groups run beside them (scripts/global_piqa_model.sh).
ZEROSHOT_GROUPS = {
    "eng": ("blimp_babylm_filtered", "multiblimp_eng", "winogrande_en_mubench", "xstorycloze_en_mubench",
            "hellaswag_en_mubench"),
    "nld": ("multiblimp_nld", "winogrande_nl_mubench", "hellaswag_nl_mubench", "xcomps_nl", "blimp_nl",
            "xstorycloze_nl_mubench"),
    "zho": ("winogrande_zh_mubench", "xstorycloze_zh_mubench", "hellaswag_zh_mubench", "xcomps_zh", "zhoblimp",
            "hanzi_structure", "hanzi_pinyin"),
}
GLOBAL_PIQA = {lang: (f"global_piqa_parallel_{ISO2[lang]}", f"global_piqa_nonparallel_{ISO2[lang]}")
               for lang in LANGUAGES}

# collate_results.py EXPECTED_ZEROSHOT: note "blimp" for English while the lm-eval group (and so the key
# the same collator writes) is blimp_babylm_filtered; the warning lists what the official one lists.
EXPECTED_ZEROSHOT = {
    "eng": {"blimp", "hellaswag_en_mubench", "multiblimp_eng", "winogrande_en_mubench", "xstorycloze_en_mubench",
            "global_piqa_parallel_en", "global_piqa_nonparallel_en"},
    "nld": {"blimp_nl", "hellaswag_nl_mubench", "multiblimp_nld", "winogrande_nl_mubench", "xcomps_nl",
            "xstorycloze_nl_mubench", "global_piqa_parallel_nl", "global_piqa_nonparallel_nl"},
    "zho": {"hellaswag_zh_mubench", "winogrande_zh_mubench", "xcomps_zh", "xstorycloze_zh_mubench", "zhoblimp",
            "hanzi_structure", "hanzi_pinyin", "global_piqa_parallel_zh", "global_piqa_nonparallel_zh"},
}
EXPECTED_FINETUNE = {
    "en": {"arc", "belebele", "bmlama", "mnli", "pos", "sib200", "truthfulqa", "xnli"},
    "nl": {"arc", "belebele", "bmlama", "include", "mnli", "pos", "sib200", "truthfulqa"},
    "zh": {"arc", "belebele", "bmlama", "include", "mnli", "pos", "sib200", "truthfulqa", "xnli"},
}
# Scored by the leaderboard from the raw predictions; never in the scores file.
SERVER_SCORED_TASKS = frozenset({"hanzi_structure", "hanzi_pinyin", "meco_l1", "meco_l2"})

# scripts/finetune_model.sh: the loop over tasks (those without files for a language simply fail there).
FINETUNE_TASKS = ("arc", "belebele", "bmlama", "include", "mnli", "sib200", "truthfulqa", "xnli")
# finetune_classification.py task_to_keys: the text fields of each task's rows.
FINETUNE_FIELDS = {
    "arc": ("sentence", None), "belebele": ("sentence", None), "bmlama": ("sentence", None),
    "include": ("sentence", None), "sib200": ("sentence", None), "truthfulqa": ("sentence", None),
    "mnli": ("premise", "hypothesis"), "xnli": ("premise", "hypothesis"),
}
# scripts/finetune_model.sh defaults (with --max_seq_length 128 in the call).
FINETUNE_DEFAULTS = {"lr": 5e-5, "batch_size": 64, "epochs": 10, "patience": 3, "max_length": 128, "seed": 12}
# finetune_classification.py: EarlyStoppingCallback(early_stopping_threshold=0.001)
EARLY_STOPPING_THRESHOLD = 0.001

# collate_results.py REVISIONS: chck_1M..chck_9M, chck_10M..chck_90M, chck_100M..chck_1000M.
REVISIONS = ([f"chck_{i}M" for i in range(1, 10)] + [f"chck_{i * 10}M" for i in range(1, 10)]
             + [f"chck_{i * 100}M" for i in range(1, 11)])


def metric_of(task: str) -> str:
    """collate_results.py parse_zeroshot: acc_norm for Global PIQA, acc for every other task."""
    return "acc_norm,none" if task.startswith("global_piqa") else "acc,none"


def language_of(task: str) -> str | None:
    for lang in LANGUAGES:
        if task in ZEROSHOT_GROUPS[lang] or task in GLOBAL_PIQA[lang]:
            return lang
    return None
