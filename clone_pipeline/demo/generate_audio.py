"""Render the demo personas' recordings with espeak-ng: their read passages and the answers
and stories they tell aloud (run once per new recording; the audio is committed).

Each persona speaks with its own espeak-ng voice, pitch and speed, so their voice profiles
differ measurably. Only recordings whose file is missing are rendered (`--all` renders every
one again), so adding a recording to an export leaves the committed audio as it is. Needs the
Debian packages espeak-ng and sox:

    apt-get install espeak-ng sox
    python -m clone_pipeline.demo.generate_audio
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from clone_pipeline.demo import persona_dirs

# persona -> (espeak-ng voice, pitch 0-99, speed words/min)
VOICES = {
    "margaret-ellis": ("en-gb+f3", 55, 135),
    "walter-okafor": ("en-us+m3", 30, 165),
    "rosa-delgado": ("en-us+f4", 70, 185),
}
SAMPLE_RATE = 16_000


def render(text: str, voice: str, pitch: int, speed: int, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed),
                        "-w", str(raw), text], check=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Mono, 16 kHz; the container (wav/flac/ogg) follows the target's suffix.
        subprocess.run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", str(target)],
                       check=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true",
                        help="render every recording again, not only the missing ones")
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install espeak-ng sox")
    for folder in persona_dirs():
        doc = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        voice, pitch, speed = VOICES[doc["user"]["external_id"]]
        for rec in doc.get("voice_recordings", []):
            if (folder / rec["file"]).exists() and not args.all:
                continue
            render(rec["text"], voice, pitch, speed, folder / rec["file"])
            print(f"{folder.name}: {rec['file']}")


if __name__ == "__main__":
    main()
