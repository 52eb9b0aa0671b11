"""Dagster layer: the assets (data, memory, voice, training, serving, maintenance) with their
checks and run config, the users partitions, executors, resources, jobs, sensors and
schedules, over the services and the core."""
