"""trained_adapter: fine-tune in a child process through Dagster Pipes (pool "gpu")."""

import os
import signal
import subprocess
import sys
import time
import warnings

import dagster as dg

from clone_pipeline.defs.assets_data import formatted_datasets
from clone_pipeline.defs.assets_voice import voice_alignment
from clone_pipeline.defs.metadata import inline_png
from clone_pipeline.defs.partitions import users
from clone_pipeline.defs.resources import CloneStore
from clone_pipeline.defs.training_config import TrainingRunConfig
from clone_pipeline.training import runs
from clone_pipeline.voice.stages import voice_training_file

# Dagster flags an internal of its own Pipes session as "preview"; nothing to act on here.
warnings.filterwarnings("ignore", message=r".*expected_writer_count.*")
STOP_GRACE_SECONDS = 30  # a terminated run's child must checkpoint and exit within this
GPU_TAGS = {
    # Read by the executors that place work: Kubernetes (one GPU per step pod) and Celery.
    "dagster-k8s/config": {"container_config": {"resources": {
        "limits": {"nvidia.com/gpu": "1"}}}},
    "dagster-celery/queue": "gpu",
}


@dg.asset(
    partitions_def=users,
    group_name="training",
    kinds={"pytorch"},
    deps=[formatted_datasets, voice_alignment],  # voice: only with include_voice_integration
    pool="gpu",
    op_tags=GPU_TAGS,
    description="A LoRA adapter fine-tuned on the user's formatted dataset, trained in its "
                "own process (Dagster Pipes); resumes from its last checkpoint.",
)
def trained_adapter(context: dg.AssetExecutionContext, config: TrainingRunConfig,
                    store: CloneStore) -> dg.MaterializeResult:
    settings = store.settings()
    train_config = config.train_config()
    inputs = runs.preflight(settings, context.partition_key, train_config,
                            config.min_free_disk_gb)
    context.log.info(f"memory pre-flight: the run {inputs.memory.describe()}")
    voice = _voice_examples(context, settings, train_config)
    run_id = runs.start_run(settings, inputs, train_config, context.run.run_id)
    extras = {**voice, "config": train_config.as_dict(), "training_run_id": str(run_id),
              "database_url": settings.database_url, "dagster_run_id": context.run.run_id,
              "train_path": str(inputs.train_path), "eval_path": str(inputs.eval_path),
              "output_dir": str(inputs.output_dir), "models_dir": str(settings.models_dir)}
    try:
        summary, history = _train_in_child(context, settings, run_id, extras)
    except dg.DagsterExecutionInterruptedError:
        runs.finish_run(settings, run_id, "cancelled")
        raise
    except Exception as exc:
        runs.finish_run(settings, run_id, "failed", error=str(exc)[:2000])
        raise
    if summary["status"] == "cancelled":
        runs.finish_run(settings, run_id, "cancelled", summary)
        raise dg.Failure("training was stopped before it finished; materialise again to "
                         "resume from the checkpoint")
    runs.finish_run(settings, run_id, summary["status"], summary)
    version = runs.record_model_version(settings, run_id, summary, context.run.run_id)
    plot = runs.loss_curve_png(history, inputs.output_dir / "loss_curve.png",
                               f"{context.partition_key}: fine-tuning loss")
    return dg.MaterializeResult(metadata={
        "training_run_id": str(run_id),
        "model_version": version.version,
        "adapter_path": dg.MetadataValue.path(summary["adapter_dir"]),
        "adapter_sha256": version.adapter_sha256,
        "status": summary["status"],
        "steps": summary["step"],
        "best_eval_loss": summary["best_eval_loss"],
        "final_train_loss": summary["final_train_loss"],
        "answer_tokens_trained": summary["tokens_trained"],
        "train_seconds": summary["train_seconds"],
        "precision": summary["precision"],
        "hardware_profile": summary["hardware"]["profile"]["name"],
        "loss_curve": inline_png(plot, "loss curve"),
        "loss_curve_path": dg.MetadataValue.path(str(plot)),
    })


def _voice_examples(context, settings, train_config) -> dict:
    """The voice-conditioned training file (and its repeats) when the config asks for it."""
    if not train_config.include_voice_integration:
        return {}
    found = voice_training_file(settings, context.partition_key, train_config.train_format)
    if found is None:
        raise dg.Failure(f"{context.partition_key}: include_voice_integration is on but there "
                         f"is no passed voice_alignment; run the voice_integration job first")
    path, repeats = found
    context.log.info(f"{context.partition_key}: adding voice-conditioned examples x{repeats}")
    return {"voice_path": str(path), "voice_repeats": repeats}


def _train_in_child(context, settings, run_id, extras) -> tuple[dict, list[dict]]:
    """Run the trainer in a child process, turning its metrics rows into live observations.

    A terminated Dagster run raises DagsterExecutionInterruptedError here: the child gets
    SIGINT, checkpoints at its next step boundary, and is killed if it has not exited within
    STOP_GRACE_SECONDS, so the GPU is always freed.
    """
    history: list[dict] = []
    with dg.open_pipes_session(context=context, extras=extras,
                               context_injector=dg.PipesTempFileContextInjector(),
                               message_reader=dg.PipesTempFileMessageReader()) as session:
        child = subprocess.Popen(
            [sys.executable, "-m", "clone_pipeline.training.pipes_main"],
            env={**os.environ, **session.get_bootstrap_env_vars()})
        try:
            while child.poll() is None:
                time.sleep(1.0)
                history += _observe(context, settings, run_id, history)
        except dg.DagsterExecutionInterruptedError:
            _stop(child)
            raise
        finally:
            if child.poll() is None:
                _stop(child)
        history += _observe(context, settings, run_id, history)
        if child.returncode != 0:
            raise dg.Failure(f"training process exited with code {child.returncode}; see the "
                             f"run's logs")
    materialized = [r for r in session.get_results() if isinstance(r, dg.MaterializeResult)]
    if not materialized:
        raise dg.Failure("training process ended without reporting a result")
    return materialized[-1].metadata["result"].value, history


def _observe(context, settings, run_id, seen: list[dict]) -> list[dict]:
    new = runs.metrics_after(settings, run_id, seen[-1]["step"] if seen else -1)
    for metrics in new:
        context.log_event(dg.AssetObservation(
            asset_key=context.asset_key, partition=context.partition_key,
            metadata={k: v for k, v in metrics.items() if v is not None}))
    return new


def _stop(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@dg.asset(
    partitions_def=users,
    group_name="training",
    kinds={"pytorch"},
    deps=[trained_adapter],
    pool="gpu",
    op_tags=GPU_TAGS,
    check_specs=[dg.AssetCheckSpec(
        "beats_base", asset="model_evaluation", blocking=True,
        description="The adapter's perplexity on held-out answers is below its base model's; "
                    "deployment waits for this.")],
    description="The newest adapter judged on held-out questions: perplexity against its base, "
                "persona similarity and style against other people, coherence, samples.",
)
def model_evaluation(context: dg.AssetExecutionContext,
                     store: CloneStore) -> dg.MaterializeResult:
    settings = store.settings()
    version, report = runs.evaluate_latest_version(settings, context.partition_key)
    samples = "\n\n".join(f"**Q:** {s['question']}\n\n*adapter:* {s['adapter']}\n\n"
                          f"*base:* {s['base']}" for s in report.samples)
    context.log.info(f"{context.partition_key} v{version.version}: perplexity "
                     f"{report.base_perplexity} -> {report.adapter_perplexity}")
    return dg.MaterializeResult(
        metadata={
            "model_version": version.version,
            "base_perplexity": report.base_perplexity,
            "adapter_perplexity": report.adapter_perplexity,
            "persona_similarity": report.persona_similarity,
            "control_similarity": report.control_similarity,
            "style_distance": report.style_distance,
            "control_style_distance": report.control_style_distance,
            "base_coherence": report.base_coherence,
            "adapter_coherence": report.adapter_coherence,
            "questions": report.questions,
            "samples": dg.MetadataValue.md(samples),
        },
        check_results=[dg.AssetCheckResult(
            check_name="beats_base", passed=report.beats_base,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(f"held-out perplexity {report.adapter_perplexity} vs base "
                         f"{report.base_perplexity}"),
            metadata={"base_perplexity": report.base_perplexity,
                      "adapter_perplexity": report.adapter_perplexity})],
    )
