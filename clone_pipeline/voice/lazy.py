"""One instance per process, built on first use: for engines that load models or keep
global state (eSpeak NG, the pocketsphinx decoder)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def process_singleton(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter that calls *factory* once, under a lock, and returns that object after."""
    lock = threading.Lock()
    made: list[T] = []

    def get() -> T:
        with lock:
            if not made:
                made.append(factory())
            return made[0]

    get.__doc__ = f"The process's {factory.__name__}, built on first use."
    return get
