"""Use cases that combine the domain database, the data root and the core.

The CLI, the Dagster assets and the HTTP API (gateway and operating API) call these; each
opens short transactions (read, close, compute, write) and never holds one across heavy work.
"""
