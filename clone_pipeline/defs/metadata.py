"""Small helpers for asset metadata shown in the Dagster UI."""

import base64
from pathlib import Path
from urllib.parse import quote

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


# The Dagster UI (1.13) shows Markdown metadata under this many characters inline, in the
# materialisation's metadata table; longer Markdown hides behind a "[Show Markdown]" link.
UI_INLINE_MARKDOWN = 1000


def inline_svg(svg: str, caption: str) -> dg.MetadataValue:
    """An SVG chart with a caption, in Markdown short enough to show inline in the UI."""
    image = f"![chart](data:image/svg+xml,{quote(svg, safe=chr(39) + '/:=,')})\n\n"
    fits = svg and len(image) + len(caption) < UI_INLINE_MARKDOWN
    return dg.MetadataValue.md(image + caption if fits else caption)
