"""Bundled demo personas, each a user export (see docs/user-export.md)."""

from pathlib import Path

PERSONAS_DIR = Path(__file__).parent / "personas"


def persona_dirs() -> list[Path]:
    return sorted(p for p in PERSONAS_DIR.iterdir() if (p / "export.json").is_file())
