"""Does training with retrieved memories pay? Demo personas trained on the default base with
the CPU demo preset, through the real Dagster jobs, each variant in its own data root:
formatted without memories (the baseline); with them, each example's own answer left out
(own_answer_share 0); and with them exactly as the gateway serves them, own answer included
when retrieved (own_answer_share 1, a reading lesson; held-out examples still never see their
own). All are evaluated the same way: held-out perplexity (each on its own held-out records,
which differ by the memories they carry) and fidelity on the persona's fact sheet, alone and
with memories. Printed side by side as JSON.

    python benchmarks/memory_training.py [--personas margaret-ellis,walter-okafor]
                                         [--out result.json]

About 5 minutes a variant and persona on two CPU cores with native bf16.
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


VARIANTS = {"without_memories": None, "with_memories_own_left_out": 0.0,
            "with_memories_as_served": 1.0}


def measure(persona: str, own_answer_share: float | None) -> dict:
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
                      "formatted_datasets": {"config": {
                          "with_memories": own_answer_share is not None,
                          "own_answer_share": own_answer_share or 0.0}}}}
    started = time.perf_counter()
    outcome = run_job_for_user(dg.DagsterInstance.get(), "complete_workflow", persona, config,
                               assets=STAGES)
    if "model_evaluation" not in outcome.materialized:
        raise SystemExit(f"complete_workflow failed: {outcome.error}")
    found = latest_evaluation(settings, persona)
    # a failed check (an adapter that does not beat its base, say) is a result, not a crash
    return {"own_answer_share": own_answer_share, "failed_checks": outcome.failed_checks,
            "seconds": round(time.perf_counter() - started),
            "base_perplexity": found["base_perplexity"],
            "adapter_perplexity": found["adapter_perplexity"],
            "fidelity": found["fidelity"]["scores"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--personas", default="margaret-ellis,walter-okafor")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"Comma-separated, of: {', '.join(VARIANTS)}.")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)  # persona, variant
    args = parser.parse_args()
    if args.child:  # one variant, in the data root the parent made for it
        import json

        persona, variant = args.child
        print(json.dumps(measure(persona, VARIANTS[variant])))
        return
    from clone_pipeline.settings import load_settings

    # The prepared base model is shared: only the data roots are fresh.
    os.environ["CLONE_MODELS_DIR"] = str(load_settings().models_dir)
    results: dict[str, dict] = {}
    for persona in args.personas.split(","):
        for variant in args.variants.split(","):
            with tempfile.TemporaryDirectory() as home:
                os.environ.update(CLONE_HOME=home, DAGSTER_HOME=str(Path(home) / "dagster"))
                os.environ.pop("CLONE_DATABASE_URL", None)
                results.setdefault(persona, {})[variant] = run_child(
                    __file__, "--child", persona, variant)
    emit({"benchmark": "memory_training", **results}, args.out)


if __name__ == "__main__":
    main()
