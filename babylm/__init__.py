"""BabyLM kit: corpus, tokenizer, training and checkpoints for the BabyLM Challenge."""

__version__ = "0.1.0"
