"""Bundled demo personas, each a user export with its recordings (see docs/user-export.md),
and the script that rendered those recordings (generate_audio)."""

from pathlib import Path

PERSONAS_DIR = Path(__file__).parent / "personas"


def persona_dirs() -> list[Path]:
    return sorted(p for p in PERSONAS_DIR.iterdir() if (p / "export.json").is_file())
