"""Training: base models and tokenizers (the trainer itself arrives with the training issue)."""
