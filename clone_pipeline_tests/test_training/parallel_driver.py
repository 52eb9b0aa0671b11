"""Runs the Trainer on a JSON job, under ``accelerate launch`` in the two-process tests.

The job names the config, the train and eval JSONL files, the output folder and the base
models folder, and optionally ``stop_at``: the step after which the run is asked to stop (the
main process asks, as a Dagster cancel would; every process stops at the same step). The main
process writes the result to ``result.json`` in the output folder.
"""

import json
import sys
import threading
from pathlib import Path

from clone_pipeline.data.store import read_jsonl
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.trainer import Trainer


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    stop = threading.Event()
    trainer = Trainer(TrainConfig.from_dict(job["config"]),
                      list(read_jsonl(Path(job["train_path"]))),
                      list(read_jsonl(Path(job["eval_path"]))),
                      output_dir=Path(job["output_dir"]), models_dir=Path(job["models_dir"]),
                      stop=stop)
    trainer.on_metrics = lambda m: stop.set() if m["step"] == job.get("stop_at") else None
    result = trainer.run()
    if trainer.parallel.is_main:
        (Path(job["output_dir"]) / "result.json").write_text(json.dumps({
            "status": result.status, "step": result.step, "history": result.history,
            "processes": trainer.parallel.world}))


if __name__ == "__main__":
    main(sys.argv[1])
