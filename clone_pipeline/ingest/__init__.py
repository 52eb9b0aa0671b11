"""The user-export contract (../shared/docs/user-export.md): its JSON Schema with pointers,
and the error that lists every problem. The import itself is `services.ingest`."""

from clone_pipeline.ingest.errors import ExportError, Problem

__all__ = ["ExportError", "Problem"]
