"""Small helpers for asset metadata shown in the Dagster UI."""

import base64
from pathlib import Path

import dagster as dg


def table(headers: list[str], rows: list[list]) -> dg.MetadataValue:
    """A Markdown table (the UI renders it on the asset's page)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def inline_png(path: Path, alt: str) -> dg.MetadataValue:
    """A PNG embedded in Markdown, so the plot shows on the materialisation itself."""
    png = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{png})")
