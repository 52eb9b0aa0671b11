"""clone_pipeline: personal language models from a person's own words."""
