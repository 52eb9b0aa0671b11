"""The Dagster-aware use cases people operate the pipeline with: queued launches through the
webserver (so the daemon's run queue, pools and priorities apply), admin queues applied to the
instance, workflows and their live stage progress. Imports dagster; never the definitions."""
