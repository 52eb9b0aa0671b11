"""Runs the project's training entry point's Trainer on a TrainingJob written as JSON (what
the Pipes extras hold), under ``accelerate launch`` in the two-process tests, without a
Dagster Pipes session.

SIGINT or SIGTERM stops the run at a step boundary, as in pipes_main (the launcher passes the
signal on to every process). The main process prints ``step N`` as each step ends and writes
the result to the job's result file in the output folder.
"""

import json
import sys
from pathlib import Path

from torch.distributed.tensor import DTensor

from clone_pipeline.training.job import TrainingJob
from clone_pipeline.training.pipes_main import trainer_for
from clone_pipeline.training.supervision import stop_on_signals


def main(job_file: str) -> None:
    job = TrainingJob.from_dict(json.loads(Path(job_file).read_text()))
    trainer = trainer_for(job, stop_on_signals(),
                          on_metrics=lambda m: print(f"step {m['step']}", flush=True),
                          log=lambda message: None)
    result = trainer.run()
    if trainer.parallel.is_main:
        job.result_file.write_text(json.dumps({
            "status": result.status, "step": result.step, "history": result.history,
            "processes": trainer.parallel.world,
            # FSDP replaces each parameter by this process's shard of it (a DTensor)
            "sharded_parameters": sum(isinstance(p, DTensor)
                                      for p in trainer.model.parameters())}))


if __name__ == "__main__":
    main(sys.argv[1])
