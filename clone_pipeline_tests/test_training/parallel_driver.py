"""Runs the Trainer on a JSON job, under ``accelerate launch`` in the two-process tests.

The job names the config, the train and eval JSONL files, the output folder, the base
models folder and the strategy (ddp or fsdp). SIGINT or SIGTERM stops the run at a step
boundary, as in pipes_main (the launcher passes the signal on to every process). The main
process prints ``step N`` as each step ends and writes the result to ``result.json`` in the
output folder.
"""

import json
import signal
import sys
import threading
from pathlib import Path

from torch.distributed.tensor import DTensor

from clone_pipeline.data.store import read_jsonl
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.trainer import Trainer


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    trainer = Trainer(TrainConfig.from_dict(job["config"]),
                      list(read_jsonl(Path(job["train_path"]))),
                      list(read_jsonl(Path(job["eval_path"]))),
                      output_dir=Path(job["output_dir"]), models_dir=Path(job["models_dir"]),
                      on_metrics=lambda m: print(f"step {m['step']}", flush=True), stop=stop,
                      log=lambda message: None, strategy=job["strategy"])
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
