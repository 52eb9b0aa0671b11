"""The data half of the pipeline: collect, clean, redact, deduplicate, assess, format."""
