"""Runs the project's training entry point's Trainer on a JSON job, under ``accelerate
launch`` in the two-process tests, without a Dagster Pipes session.

The job holds what the Pipes extras would (config, train and eval files, output and models
folders, strategy). SIGINT or SIGTERM stops the run at a step boundary, as in pipes_main (the
launcher passes the signal on to every process). The main process prints ``step N`` as each
step ends and writes the result to ``result.json`` in the output folder.
"""

import json
import sys
from pathlib import Path

from torch.distributed.tensor import DTensor

from clone_pipeline.training.pipes_main import stop_on_signals, trainer_for


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    trainer = trainer_for(job, stop_on_signals(),
                          on_metrics=lambda m: print(f"step {m['step']}", flush=True),
                          log=lambda message: None)
    result = trainer.run()
    if trainer.parallel.is_main:
        (Path(job["output_dir"]) / "result.json").write_text(json.dumps({
            "status": result.status, "step": result.step, "history": result.history,
            "processes": trainer.parallel.world,
            # FSDP replaces each parameter by this process's shard of it (a DTensor)
            "sharded_parameters": sum(isinstance(p, DTensor)
                                      for p in trainer.model.parameters())}))


if __name__ == "__main__":
    main(sys.argv[1])
