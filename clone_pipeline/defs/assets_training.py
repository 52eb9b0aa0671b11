"""trained_adapter: fine-tune in a child process through Dagster Pipes (pool "gpu");
model_evaluation: judge the version that training produced."""

import json
import time
import uuid
import warnings
from pathlib import Path

import dagster as dg

from clone_pipeline.db.statuses import TrainingRunStatus
from clone_pipeline.defs.assets_data import formatted_datasets
from clone_pipeline.defs.assets_memory import memory_index
from clone_pipeline.defs.assets_voice import voice_alignment
from clone_pipeline.defs.executors import GPU_TAGS
from clone_pipeline.defs.metadata import inline_svg, table
from clone_pipeline.defs.partitions import per_user_check, users
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.defs.training_config import EvaluationConfig, TrainingRunConfig
from clone_pipeline.launch.names import GPU_POOL
from clone_pipeline.launch.queues import gpu_count, processes_per_run
from clone_pipeline.services import evaluation, model_versions
from clone_pipeline.services import training as runs
from clone_pipeline.services.voice import voice_training_file
from clone_pipeline.training import supervision
from clone_pipeline.training.job import METRICS_MESSAGE, TrainingJob
from clone_pipeline.training.parallel import training_command
from clone_pipeline.training.plots import loss_curve_png, loss_curve_svg
from clone_pipeline.training.summary import TrainingSummary

# Dagster flags an internal of its own Pipes session as "preview"; nothing to act on here.
warnings.filterwarnings("ignore", message=r".*expected_writer_count.*")


@dg.asset(
    partitions_def=users,
    group_name="training",
    kinds={"pytorch"},
    deps=[formatted_datasets, voice_alignment],  # voice: only with include_voice_integration
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
    description="A LoRA adapter fine-tuned on the user's formatted dataset, trained in its "
                "own process (Dagster Pipes); resumes from its last checkpoint.",
)
def trained_adapter(context: dg.AssetExecutionContext, config: TrainingRunConfig,
                    clone: CloneSettings) -> dg.MaterializeResult:
    settings = clone.settings()
    train_config = config.train_config()
    inputs = runs.preflight(settings, context.partition_key, train_config,
                            config.min_free_disk_gb)
    context.log.info(f"memory pre-flight: the run {inputs.memory.describe()}")
    voice_path, voice_repeats = _voice_examples(context, settings, train_config)
    run_id = runs.start_run(settings, inputs, train_config, context.run.run_id)
    job = TrainingJob(config=train_config, train_path=inputs.train_path,
                      eval_path=inputs.eval_path, output_dir=inputs.output_dir,
                      models_dir=settings.models_dir, strategy=settings.train_strategy,
                      voice_path=voice_path, voice_repeats=voice_repeats)
    try:
        summary, history = _train_in_child(context, settings, run_id, job)
    except dg.DagsterExecutionInterruptedError:
        runs.finish_run(settings, run_id, TrainingRunStatus.CANCELLED)
        raise
    except Exception as exc:
        runs.finish_run(settings, run_id, TrainingRunStatus.FAILED, error=str(exc)[:2000])
        raise
    if summary.status == TrainingRunStatus.CANCELLED:
        runs.finish_run(settings, run_id, TrainingRunStatus.CANCELLED, summary)
        raise dg.Failure("training was stopped before it finished; materialise again to "
                         "resume from the checkpoint")
    runs.finish_run(settings, run_id, TrainingRunStatus(summary.status), summary)
    version = runs.record_model_version(settings, run_id, summary, context.run.run_id)
    plot = loss_curve_png(history, inputs.output_dir / "loss_curve.png",
                          f"{context.partition_key}: fine-tuning loss")
    return dg.MaterializeResult(metadata={
        "training_run_id": str(run_id),
        "model_version_id": str(version.id),
        "model_version": version.version,
        "adapter_path": dg.MetadataValue.path(summary.adapter_dir),
        "adapter_sha256": version.adapter_sha256,
        "status": summary.status,
        "steps": summary.step,
        "best_eval_loss": summary.best_eval_loss,
        "final_train_loss": summary.final_train_loss,
        "answer_tokens_trained": summary.tokens_trained,
        "train_seconds": summary.train_seconds,
        "precision": summary.precision,
        "hardware_profile": summary.hardware_profile,
        "training_processes": summary.hardware.get("processes", 1),
        "loss_curve": inline_svg(loss_curve_svg(history), _loss_caption(history)),
        "loss_curve_path": dg.MetadataValue.path(str(plot)),
    })


def _loss_caption(history: list[dict]) -> str:
    train = [m["loss"] for m in history if m.get("loss") is not None]
    held_out = [m["eval_loss"] for m in history if m.get("eval_loss") is not None]
    parts = [f"train (blue) {train[0]:.3f} to {train[-1]:.3f}"] if train else []
    if held_out:
        parts.append(f"held-out (orange) best {min(held_out):.3f}")
    return (f"Loss per optimizer step, nats per answer token (lower is better): "
            f"{', '.join(parts) or 'no steps reported'}. Full-size plot: loss_curve_path.")


def _voice_examples(context, settings, train_config) -> tuple[Path | None, int]:
    """The voice-conditioned training file and its repeats when the config asks for it."""
    if not train_config.include_voice_integration:
        return None, 1
    found = voice_training_file(settings, context.partition_key, train_config.train_format)
    if found is None:
        raise dg.Failure(f"{context.partition_key}: include_voice_integration is on but there "
                         f"is no passed voice_alignment; run the voice_integration job first")
    path, repeats = found
    context.log.info(f"{context.partition_key}: adding voice-conditioned examples x{repeats}")
    return path, repeats


def _train_in_child(context, settings, run_id, job: TrainingJob
                    ) -> tuple[TrainingSummary, list[dict]]:
    """Run the trainer in a child process; record the figures it reports as rows and live
    observations.

    A terminated Dagster run raises DagsterExecutionInterruptedError here: the child gets
    SIGINT, checkpoints at its next step boundary, and is killed if it has not exited within
    supervision.STOP_GRACE_SECONDS, so the GPU is always freed (training/supervision.py).
    """
    history: list[dict] = []
    interrupted = None
    started = time.time()
    with dg.open_pipes_session(context=context, extras=job.as_dict(),
                               context_injector=dg.PipesTempFileContextInjector(),
                               message_reader=dg.PipesTempFileMessageReader()) as session:
        gpus = gpu_count()  # one NVML read for the split and the lease
        processes = processes_per_run(settings, gpus)
        if processes > 1:
            context.log.info(f"training on {processes} processes ({settings.train_strategy}, "
                             f"accelerate launch)")
        try:
            returncode = supervision.run_child(
                training_command(processes), session.get_bootstrap_env_vars(), processes, gpus,
                on_tick=lambda: history.extend(_record(context, settings, run_id, session,
                                                       len(history))),
                log=context.log.info)
        except dg.DagsterExecutionInterruptedError as exc:
            interrupted = exc  # the child is stopped: record what it reported, then go on
    # The session has read every message once it closes: the steps a stopped child reported
    # up to its checkpoint are recorded before the interruption goes on.
    history += _record(context, settings, run_id, session, len(history))
    if interrupted is not None:
        raise interrupted
    if returncode != 0:
        raise dg.Failure(f"training process exited with code {returncode}; see the "
                         f"run's logs")
    return reported_summary(session.get_results(implicit_materializations=False),
                            job.result_file, started), history


def reported_summary(results, path: Path, started: float) -> TrainingSummary:
    """The summary the child reported, else the one it wrote to its output folder during
    this attempt (a resumed run's message has been seen to go missing after a lost worker);
    without either, a Failure that says what to do."""
    for result in reversed(results):
        if isinstance(result, dg.MaterializeResult) and "result" in (result.metadata or {}):
            return TrainingSummary.from_dict(result.metadata["result"].value)
    if path.exists() and path.stat().st_mtime >= started:
        return TrainingSummary.from_dict(json.loads(path.read_text(encoding="utf-8")))
    raise dg.Failure(f"the training process exited without reporting its summary (and wrote "
                     f"no {path.name} in {path.parent}); see the run's logs, then "
                     f"materialise trained_adapter again: it resumes from the last checkpoint")


def _record(context, settings, run_id, session, seen: int) -> list[dict]:
    """The metrics the child reported since the first *seen*: written as training_metrics
    rows and shown as observations."""
    reported = [m["metrics"] for m in session.get_custom_messages()
                if isinstance(m, dict) and m.get("kind") == METRICS_MESSAGE]
    new = reported[seen:]
    runs.record_metrics(settings, run_id, context.run.run_id, new)
    for metrics in new:
        context.log_event(dg.AssetObservation(
            asset_key=context.asset_key, partition=context.partition_key,
            metadata={k: v for k, v in metrics.items() if v is not None}))
    return new


def trained_version_id(context: dg.AssetExecutionContext) -> uuid.UUID:
    """The model version the upstream trained_adapter materialisation produced: this run's
    own if it trained, else the partition's latest. Never "the user's newest version", so
    two overlapping runs cannot evaluate each other's adapters."""
    materialization = upstream_materialization(context, trained_adapter.key)
    if materialization is None or "model_version_id" not in materialization.metadata:
        raise dg.Failure(f"{context.partition_key}: no trained_adapter materialisation with a "
                         f"model version to evaluate; materialise trained_adapter first")
    return uuid.UUID(materialization.metadata["model_version_id"].value)


def upstream_materialization(context: dg.AssetExecutionContext, key: dg.AssetKey
                             ) -> dg.AssetMaterialization | None:
    """The partition's materialisation of *key* made by this run, else its latest."""
    events = context.instance.all_logs(context.run.run_id,
                                       of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    mine = [e.asset_materialization for e in events
            if e.asset_materialization and e.asset_materialization.asset_key == key
            and e.asset_materialization.partition == context.partition_key]
    if mine:
        return mine[-1]
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[context.partition_key]),
        limit=1)
    return records.records[0].asset_materialization if records.records else None


def fidelity_metadata(fidelity) -> dict:
    """The fidelity table (fact recall and honest abstention per configuration), or why
    there is none."""
    if fidelity is None:
        return {"fidelity": "no fact sheet for this person (clone-pipeline facts USER FILE)"}
    rows = [[name, s.fact_recall, s.honest_abstention] for name, s in fidelity.scores.items()]
    return {"fidelity": table(["configuration", "fact recall", "honest abstention"], rows),
            "fact_sheet_questions": f"{fidelity.told} told, {fidelity.never_told} never told"}


DIRECTION = ("perplexity and style distance: lower is better; persona similarity and "
             "coherence: higher is better; the control_ figures are the same against the "
             "neutral control, which the adapter should be further from than from the person")


@dg.asset(
    partitions_def=users,
    group_name="training",
    kinds={"pytorch"},
    deps=[trained_adapter, memory_index],  # fidelity is measured with her memories too
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
    check_specs=[per_user_check(
        "beats_base", asset="model_evaluation", blocking=True,
        description="The adapter's perplexity on held-out answers is below its base model's; "
                    "deployment waits for this.")],
    description="The adapter that trained_adapter produced, judged on held-out questions: "
                "perplexity against its base (lower is better), persona similarity and "
                "style against a neutral control, coherence, samples, and fidelity on the "
                "person's fact sheet (fact recall, honest abstention); promoted to the "
                "user's current version only when it beats the current one on the same "
                "held-out questions.",
)
def model_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig,
                     clone: CloneSettings) -> dg.MaterializeResult:
    settings = clone.settings()
    evaluated = evaluation.evaluate_version(settings, trained_version_id(context),
                                            config.control)
    report = evaluated.report
    verdict = model_versions.decide_promotion(settings, evaluated.id)
    context.log.info(f"{context.partition_key} v{evaluated.version}: perplexity "
                     f"{report.base_perplexity} -> {report.adapter_perplexity}; "
                     f"{verdict.note}")
    return dg.MaterializeResult(
        metadata={
            "verdict": verdict.note,
            "promoted": verdict.promote,
            "direction": DIRECTION,
            "model_version_id": str(evaluated.id),
            "model_version": evaluated.version,
            "base_perplexity": report.base_perplexity,
            "adapter_perplexity": report.adapter_perplexity,
            "persona_similarity": report.persona_similarity,
            "control_similarity": report.control_similarity,
            "control": f"{evaluated.control} ({evaluated.control_texts} answers)",
            "style_distance": report.style_distance,
            "control_style_distance": report.control_style_distance,
            "base_coherence": report.base_coherence,
            "adapter_coherence": report.adapter_coherence,
            "questions": report.questions,
            # Samples quote the person: kept in the data root, not in Dagster's event log.
            "samples": dg.MetadataValue.path(str(evaluated.samples_path)),
            **fidelity_metadata(evaluated.fidelity),
        },
        check_results=[dg.AssetCheckResult(
            check_name="beats_base", passed=report.beats_base,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(f"held-out perplexity {report.adapter_perplexity} vs base "
                         f"{report.base_perplexity} (lower is better; user "
                         f"{context.partition_key})"),
            metadata={"user": context.partition_key,
                      "base_perplexity": report.base_perplexity,
                      "adapter_perplexity": report.adapter_perplexity})],
    )
