"""The data half of the pipeline: collect, clean, redact, deduplicate, assess readiness,
split by question, format, validate and store the training files."""
