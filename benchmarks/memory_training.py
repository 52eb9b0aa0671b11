"""Does training with retrieved memories pay? One demo persona trained twice on the default
base with the CPU demo preset, through the real Dagster jobs, each in its own data root:
once formatted without memories (the baseline) and once with them (each example sees the
memories the gateway would retrieve for its question, its own answer left out). Both are
evaluated the same way: held-out perplexity (each on its own held-out records, which differ
by the memories they carry) and fidelity on the persona's fact sheet, alone and with
memories. Printed side by side as JSON.

    python benchmarks/memory_training.py [--persona margaret-ellis] [--out result.json]

About 10 minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import emit, run_child  # noqa: E402

STAGES = ["collected_training_data", "memory_index", "formatted_datasets", "trained_adapter",
          "model_evaluation"]


def measure(persona: str, with_memories: bool) -> dict:
    """Train and evaluate *persona* in a fresh data root (this process's environment)."""
    import dagster as dg

    from clone_pipeline.demo import PERSONAS_DIR
    from clone_pipeline.launch.instance import default_template, initialise
    from clone_pipeline.launch.launch import run_job_for_user
    from clone_pipeline.services.evaluation import latest_evaluation
    from clone_pipeline.services.fidelity import store_fact_sheet
    from clone_pipeline.services.ingest import import_export
    from clone_pipeline.settings import load_settings
    from clone_pipeline.training.config import PRESETS

    settings = load_settings()
    initialise(settings, default_template())
    folder = PERSONAS_DIR / persona
    import_export(folder, settings)
    store_fact_sheet(settings, persona, folder / "facts.json")
    config = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
              "ops": {"trained_adapter": {"config": PRESETS["cpu_demo"]},
                      "formatted_datasets": {"config": {"with_memories": with_memories}}}}
    started = time.perf_counter()
    outcome = run_job_for_user(dg.DagsterInstance.get(), "complete_workflow", persona, config,
                               assets=STAGES)
    if not outcome.success:
        raise SystemExit(f"complete_workflow failed: {outcome.error}")
    found = latest_evaluation(settings, persona)
    return {"with_memories": with_memories, "seconds": round(time.perf_counter() - started),
            "base_perplexity": found["base_perplexity"],
            "adapter_perplexity": found["adapter_perplexity"],
            "fidelity": found["fidelity"]["scores"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persona", default="margaret-ellis")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["with", "without"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one variant, in the data root the parent made for it
        import json

        print(json.dumps(measure(args.persona, args.child == "with")))
        return
    from clone_pipeline.settings import load_settings

    # The prepared base model is shared: only the data roots are fresh.
    os.environ["CLONE_MODELS_DIR"] = str(load_settings().models_dir)
    results = {}
    for variant in ("without", "with"):
        with tempfile.TemporaryDirectory() as home:
            os.environ.update(CLONE_HOME=home, DAGSTER_HOME=str(Path(home) / "dagster"))
            os.environ.pop("CLONE_DATABASE_URL", None)
            results[f"{variant}_memories"] = run_child(__file__, "--persona", args.persona,
                                                       "--child", variant)
    emit({"benchmark": "memory_training", "persona": args.persona, **results}, args.out)


if __name__ == "__main__":
    main()
