"""Training entry point for a child process launched through Dagster Pipes.

``python -m clone_pipeline.training.pipes_main`` is what PipesSubprocessClient runs locally,
and what ``accelerate launch`` or a Kubernetes pod (PipesK8sClient) would run elsewhere. It
reads its TrainingJob (training/job.py) from the Pipes extras, then the job's files, trains,
and reports back only through Pipes messages: a custom message per logging step (the
figures), a log line per step, and the final summary as the materialisation (also written to
the job's result file). It holds no database connection; the launching asset records
everything. SIGINT or SIGTERM (a terminated Dagster run) stops it at the next step boundary
with a checkpoint.

Under ``accelerate launch`` (several GPUs) this runs once per process: the main process opens
the Pipes session and reports; the others read the same job from the Pipes context and only
train.
"""

from __future__ import annotations

import os
import threading

from dagster_pipes import (
    PipesDefaultContextLoader,
    PipesEnvVarParamsLoader,
    open_dagster_pipes,
)

from clone_pipeline.data.store import read_jsonl
from clone_pipeline.files import write_json
from clone_pipeline.training.job import METRICS_MESSAGE, TrainingJob
from clone_pipeline.training.parallel import launched_processes
from clone_pipeline.training.summary import TrainingSummary
from clone_pipeline.training.supervision import stop_on_signals
from clone_pipeline.training.trainer import Trainer


def main() -> None:
    stop = stop_on_signals()
    if launched_processes() > 1 and int(os.environ.get("RANK", "0")) != 0:
        with PipesDefaultContextLoader().load_context(
                PipesEnvVarParamsLoader().load_context_params()) as context:
            job = TrainingJob.from_dict(context["extras"])
        trainer_for(job, stop, on_metrics=None, log=lambda message: None).run()
        return
    with open_dagster_pipes() as pipes:
        job = TrainingJob.from_dict(pipes.extras)

        def on_metrics(metrics: dict) -> None:
            pipes.report_custom_message({"kind": METRICS_MESSAGE, "metrics": metrics})
            eval_part = (f" eval_loss={metrics['eval_loss']:.4f}"
                         if metrics["eval_loss"] is not None else "")
            pipes.log.info(f"step {metrics['step']} ({metrics['percent_complete']:.0f}%) "
                           f"loss={metrics['loss']:.4f}{eval_part} "
                           f"{metrics['tokens_per_second'] or 0:.0f} tok/s")

        trainer = trainer_for(job, stop, on_metrics, pipes.log.info)
        result = trainer.run()
        summary = TrainingSummary(
            status=result.status, step=result.step, total_steps=result.total_steps,
            adapter_dir=str(result.adapter_dir) if result.adapter_dir else None,
            checkpoint_dir=str(result.checkpoint_dir), best_eval_loss=result.best_eval_loss,
            final_train_loss=result.final_train_loss, tokens_trained=result.tokens_trained,
            train_seconds=round(result.seconds, 2), micro_batch_size=result.micro_batch_size,
            precision=trainer.precision,
            hardware={**trainer.hardware.as_dict(), "processes": trainer.parallel.world})
        # the parent's second source when the Pipes message does not reach it
        write_json(job.result_file, summary.to_dict())
        pipes.report_asset_materialization(metadata={"result": {"raw_value": summary.to_dict(),
                                                                "type": "json"}})


def trainer_for(job: TrainingJob, stop: threading.Event, on_metrics, log) -> Trainer:
    """The Trainer of *job*: its config, files and output folder."""
    train = list(read_jsonl(job.train_path))
    if job.voice_path is not None:  # voice-conditioned examples, weighted by repetition
        voice = list(read_jsonl(job.voice_path))
        train += voice * job.voice_repeats
        log(f"{len(voice)} voice-conditioned examples added")
    return Trainer(job.config, train, list(read_jsonl(job.eval_path)),
                   output_dir=job.output_dir, models_dir=job.models_dir,
                   on_metrics=on_metrics, stop=stop, log=log, strategy=job.strategy)


if __name__ == "__main__":
    main()
