"""Evaluation exporter: score checkpoints and write the official BabyLM submission files."""

__version__ = "0.1.0"
