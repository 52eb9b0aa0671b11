"""What every benchmark here shares: measure in a fresh process, print (and keep) JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run_child(script: str, *args: str) -> dict:
    """Run *script* with *args* in a new interpreter; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{Path(script).name} {' '.join(args)} failed ({out.returncode}):\n"
                         + out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def emit(report: dict, out: Path | None) -> None:
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")
