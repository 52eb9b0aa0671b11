"""Admin training queues on the shared GPUs, and the run tags a launch into one carries.

Dagster's run queue enforces them; nothing here polls. dagster.yaml holds a fixed "limit
ladder": for each N from 1 to MAX_CONCURRENT_JOBS, at most N in-progress runs per value of
the tag ``clone/queue-limit-N``. A run launched into queue Q with limit N carries
``clone/queue-limit-N: Q``, so Q never has more than N runs going at once, and a queue made
or changed later needs no edit of dagster.yaml and no daemon restart. ``clone/paused: true``
(limit 0) holds a paused queue's runs. ``dagster/priority`` (higher starts first) is the
weight of the run's priority name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clone_pipeline.db import queues
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.users import as_utc
from clone_pipeline.settings import Settings

PRIORITIES = ("high", "medium", "low")
DEFAULT_PRIORITY = "medium"  # a run launched without one
DEFAULT_WEIGHTS = {"high": 3, "medium": 2, "low": 1}
MAX_CONCURRENT_JOBS = 16  # the ladder's top rung in dagster.yaml
MAX_WEIGHT = 1000
QUEUE_TAG = "clone/queue"
PRIORITY_TAG = "clone/priority"
PAUSED_TAG = "clone/paused"
RUN_PRIORITY_TAG = "dagster/priority"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def limit_tag(limit: int) -> str:
    """The ladder tag key that holds a queue to *limit* concurrent runs."""
    return f"clone/queue-limit-{limit}"


class QueueError(ValueError):
    """A queue request that cannot be done; the message says why and what to do."""


class UnknownQueueError(QueueError):
    def __init__(self, name: str):
        super().__init__(f"no training queue named {name!r} (clone-pipeline queue list shows "
                         f"them; clone-pipeline queue create makes one)")


@dataclass(frozen=True)
class Queue:
    name: str
    owner: str
    max_concurrent_jobs: int
    priority_weights: dict[str, int]
    paused: bool
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"queueName": self.name, "owner": self.owner,
                "maxConcurrentJobs": self.max_concurrent_jobs,
                "priorityWeights": dict(self.priority_weights), "paused": self.paused,
                "createdAt": self.created_at.isoformat()}


def run_tags(queue: Queue | None, priority: str) -> dict[str, str]:
    """The tags a run launched into *queue* (or none) with *priority* carries."""
    check_priority(priority)
    weights = queue.priority_weights if queue else DEFAULT_WEIGHTS
    tags = {RUN_PRIORITY_TAG: str(weights[priority]), PRIORITY_TAG: priority}
    if queue is not None:
        tags.update({QUEUE_TAG: queue.name, limit_tag(queue.max_concurrent_jobs): queue.name,
                     PAUSED_TAG: "true" if queue.paused else "false"})
    return tags


def check_priority(priority: str) -> None:
    if priority not in PRIORITIES:
        raise QueueError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")


def check_settings(name: str, max_concurrent_jobs: int,
                   priority_weights: dict[str, Any]) -> dict[str, int]:
    """Validate a queue's settings; returns the weights with every priority present."""
    if not _NAME.match(name or ""):
        raise QueueError(f"queue name {name!r}: use 1-64 lower-case letters, digits, '-' or "
                         f"'_', starting with a letter or digit")
    if (not isinstance(max_concurrent_jobs, int) or isinstance(max_concurrent_jobs, bool)
            or not 1 <= max_concurrent_jobs <= MAX_CONCURRENT_JOBS):
        raise QueueError(f"maxConcurrentJobs must be a whole number from 1 to "
                         f"{MAX_CONCURRENT_JOBS}, not {max_concurrent_jobs!r} (GPU runs are "
                         f"also held to the GPU slots)")
    unknown = set(priority_weights) - set(PRIORITIES)
    if unknown:
        raise QueueError(f"priorityWeights has {', '.join(sorted(unknown))}: the priorities "
                         f"are {', '.join(PRIORITIES)}")
    weights = {**DEFAULT_WEIGHTS, **priority_weights}
    for key, weight in weights.items():
        if (not isinstance(weight, int) or isinstance(weight, bool)
                or not 0 <= weight <= MAX_WEIGHT):
            raise QueueError(f"priorityWeights.{key} must be a whole number from 0 to "
                             f"{MAX_WEIGHT}, not {weight!r}")
    return weights


def create_queue(settings: Settings, name: str, owner: str, max_concurrent_jobs: int,
                 priority_weights: dict[str, Any] | None = None) -> Queue:
    weights = check_settings(name, max_concurrent_jobs, priority_weights or {})
    if not (owner or "").strip():
        raise QueueError("a queue needs an owner (the admin who runs it)")
    with session_scope(settings.database_url) as session:
        if queues.by_name(session, name) is not None:
            raise QueueError(f"a training queue named {name!r} exists already (clone-pipeline "
                             f"queue update {name} changes it)")
        return _queue(queues.add(session, name=name, owner=owner.strip()[:128],
                                 max_concurrent_jobs=max_concurrent_jobs,
                                 priority_weights=weights, paused=False))


def update_queue(settings: Settings, name: str, max_concurrent_jobs: int | None = None,
                 priority_weights: dict[str, Any] | None = None,
                 paused: bool | None = None) -> tuple[Queue, Queue]:
    """Change a queue; returns (before, after) so the caller can retag its runs."""
    with session_scope(settings.database_url) as session:
        row = queues.by_name(session, name)
        if row is None:
            raise UnknownQueueError(name)
        before = _queue(row)
        limit = before.max_concurrent_jobs if max_concurrent_jobs is None else max_concurrent_jobs
        weights = check_settings(name, limit, {**row.priority_weights,
                                               **(priority_weights or {})})
        row.max_concurrent_jobs, row.priority_weights = limit, weights
        if paused is not None:
            row.paused = paused
        session.flush()
        return before, _queue(row)


def get_queue(settings: Settings, name: str) -> Queue:
    with session_scope(settings.database_url) as session:
        row = queues.by_name(session, name)
        if row is None:
            raise UnknownQueueError(name)
        return _queue(row)


def list_queues(settings: Settings) -> list[Queue]:
    with session_scope(settings.database_url) as session:
        return [_queue(row) for row in queues.listing(session)]


def delete_queue(settings: Settings, name: str) -> None:
    with session_scope(settings.database_url) as session:
        row = queues.by_name(session, name)
        if row is None:
            raise UnknownQueueError(name)
        queues.remove(session, row)


def _queue(row) -> Queue:
    return Queue(row.name, row.owner, row.max_concurrent_jobs, dict(row.priority_weights),
                 row.paused, as_utc(row.created_at))
