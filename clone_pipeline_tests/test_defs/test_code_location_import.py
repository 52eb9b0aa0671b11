"""Every Dagster run worker and step process imports the code location first: it must not
load torch, transformers or pandas (3 s of every start), only the steps that use them do."""

import subprocess
import sys


def test_importing_the_code_location_loads_no_torch_transformers_or_pandas():
    heavy = ("torch", "transformers", "pandas")
    done = subprocess.run(
        [sys.executable, "-c", "import sys, clone_pipeline.definitions; "
         f"print(sorted(m for m in {heavy!r} if m in sys.modules))"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
