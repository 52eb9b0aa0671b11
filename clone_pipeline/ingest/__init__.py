"""The user-export contract (docs/user-export.md): reading its JSON safely
(`document`), its JSON Schema and limits with pointers (`schema`), and the error that lists
every problem (`errors`). The import itself is `services.ingest`."""

from clone_pipeline.ingest.errors import ExportError, Problem

__all__ = ["ExportError", "Problem"]
