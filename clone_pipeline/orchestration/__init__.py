"""Dagster-facing use cases that are not assets: setting up the instance, launching a user's
runs, and removing a user's partition along with their data."""
