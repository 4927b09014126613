"""The 2026 multilingual track (English, Dutch, Chinese): zero-shot through lm-evaluation-harness with the
kit's own task configurations, fine-tuning on the official files, MECO surprisals, and the two files the
track submits (scores and predictions), collated and checked.

The facts (task names, data fields, metrics, the expected tasks per language, the file layout) follow
babylm-org/babylm-eval at 3d57ddc, folder ``multilingual/`` (read from the fork serdardoesml/babylm-eval);
each module names the file it takes them from. ``python -m eval_export.multilingual --help`` lists the
commands; docs/multilingual.md walks through them.
"""
