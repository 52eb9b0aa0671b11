"""inference_logs rows, written in batches off the request path (never any text)."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

from clone_pipeline.services.deployments import record_inference
from clone_pipeline.settings import Settings

log = logging.getLogger(__name__)


class LogWriter:
    """Collects one dict per request and writes them every *interval* seconds."""

    def __init__(self, settings: Settings, interval: float = 0.25):
        self.settings, self.interval = settings, interval
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-logs", daemon=True)
        self._thread.start()

    def add(self, row: dict[str, Any]) -> None:
        self._queue.put(row)

    def _drain(self) -> None:
        rows = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if rows:
            try:
                record_inference(self.settings, rows)
            except Exception:  # noqa: BLE001 - a logging failure must not stop serving
                log.exception("could not write %d inference_logs rows", len(rows))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._drain()
        self._drain()

    def flush(self) -> None:
        self._drain()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
