"""Dagster layer: assets, checks, resources, sensors, schedules and jobs over the core."""
