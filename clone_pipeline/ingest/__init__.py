"""User-export importer (the contract is ../shared/docs/user-export.md)."""

from clone_pipeline.ingest.errors import ExportError, Problem
from clone_pipeline.ingest.importer import ImportSummary, import_export

__all__ = ["ExportError", "ImportSummary", "Problem", "import_export"]
