"""Build the suite's base models (local-tiny's pretraining, SmolLM2's conversion) in a
background process started when the session begins, so the build overlaps the first tests
instead of stalling the first test that needs a base. Run by conftest.py as
``python -m clone_pipeline_tests.base_builds MODELS_DIR NAME...``; each build is the
product's own, cached by recipe, so the fixtures' own call afterwards finds it done (or, had
this process failed, builds it and fails there with the real error)."""

import sys
from pathlib import Path

BUILDS = ("local_tiny", "smollm2")  # the order the suite first needs them


def main(models_dir: Path, names: list[str]) -> None:
    for name in names:
        if name == "local_tiny":
            from clone_pipeline.training.local_tiny import ensure_base_model
        else:
            from clone_pipeline.training.smollm2 import ensure_base_model
        ensure_base_model(models_dir)
        print(f"built {name}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
