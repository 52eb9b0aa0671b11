"""An engine's whole life in one place: started and waited for, optionally watched and
restarted when it crashes, and stopped with its whole process group however the block ends.

The engine runs under a guard (engine/guard.py) that leads its process group: a SIGKILLed API
server leaves its EngineCore and workers running, and the guard ends them and exits; a restart
also ends the group first. The guard gets the parent-death signal from the thread that started
it: the initial engine from the caller's thread, a restarted one from the watcher's, which
lives as long as the block; when either dies the guard ends the whole group.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from clone_pipeline.engine.client import EngineError
from clone_pipeline.engine.process import EngineProcess, EngineSpec, start_engine, write_state

log = logging.getLogger(__name__)

# Back-off between restarts: doubles after each crash or failed start, from the first to the
# most; an engine that stays up STABLE_S earns the first back-off again.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
STABLE_S = 120.0
WATCH_INTERVAL_S = 0.5


@contextmanager
def running_engine(spec: EngineSpec, log_path: Path, state_path: Path | None = None,
                   on_restart: Callable[[EngineProcess], None] | None = None,
                   say: Callable[[str], None] = log.warning) -> Iterator[EngineProcess]:
    """The engine for *spec*, started and answering, for the block; its whole process group
    is ended afterwards. *state_path* records it (URL, key, pid) while it runs, for the other
    processes of a data root. With *on_restart*, a crashed engine is restarted (same URL and
    key) after its leftover processes are ended, with back-off and a line to *say*, and
    ``on_restart(engine)`` runs after each restart (e.g. to load the adapters again)."""
    engine = start_engine(spec, log_path)
    watcher = None
    try:
        if state_path is not None:
            write_state(state_path, engine)
        if on_restart is not None:
            watcher = _Watcher(engine, state_path, on_restart, say)
        yield engine
    finally:
        if watcher is not None:
            watcher.close()
        if state_path is not None:
            state_path.unlink(missing_ok=True)
        engine.stop()


class _Watcher:
    """A thread that restarts *engine* whenever it exits (the guard does once its API server
    has exited and the rest of the group is ended)."""

    def __init__(self, engine: EngineProcess, state_path: Path | None,
                 on_restart: Callable[[EngineProcess], None], say: Callable[[str], None]):
        self.engine, self.state_path = engine, state_path
        self.on_restart, self.say = on_restart, say
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="engine-watcher",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching; a restart under way is cancelled (and its engine ended)."""
        self._closing.set()
        self._thread.join(timeout=60)

    def _watch(self) -> None:
        backoff, up_since = FIRST_BACKOFF_S, time.monotonic()
        while not self._closing.wait(WATCH_INTERVAL_S):
            if self.engine.alive():
                if time.monotonic() - up_since > STABLE_S:
                    backoff = FIRST_BACKOFF_S
                continue
            self.say(f"the engine (pid {self.engine.process.pid}) exited with code "
                     f"{self.engine.process.returncode}: ending its leftover processes and "
                     f"restarting it in {backoff:.0f} s (log: {self.engine.log_path})")
            self.engine.stop()
            if self._closing.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            try:
                self.engine.restart(cancelled=self._closing.is_set)
            except EngineError as exc:
                if not self._closing.is_set():
                    self.say(f"the engine did not start again: {exc}")
                continue  # its process has exited: the next round backs off and tries again
            up_since = time.monotonic()
            if self.state_path is not None:
                write_state(self.state_path, self.engine)
            self.say(f"the engine is back (pid {self.engine.process.pid})")
            try:
                self.on_restart(self.engine)
            except Exception as exc:  # a restore that fails must not end the watching
                self.say(f"after the engine's restart: {exc}")
