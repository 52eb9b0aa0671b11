"""Admin queues (what a queue may be, the run tags it gives) and workflow estimates (only
from measured history of the same hardware and a similar data size), on SQLite and
PostgreSQL. The daemon's side is proven end to end in test_defs/test_gpu_queue.py."""

import pytest

from clone_pipeline.db import workflows
from clone_pipeline.db.models import User
from clone_pipeline.db.session import session_scope
from clone_pipeline.db.statuses import WorkflowStatus
from clone_pipeline.services import queues
from clone_pipeline.services import workflows as flows


def test_a_queue_is_checked_stored_and_changed_with_its_before_and_after(settings):
    made = queues.create_queue(settings, "families", "admin-1", 2, {"high": 5})
    assert made.priority_weights == {"high": 5, "medium": 2, "low": 1}
    assert made.created_at.tzinfo is not None
    with pytest.raises(queues.QueueError, match="exists already"):
        queues.create_queue(settings, "families", "admin-2", 1)
    before, after = queues.update_queue(settings, "families", max_concurrent_jobs=3,
                                        paused=True)
    assert (before.max_concurrent_jobs, after.max_concurrent_jobs) == (2, 3)
    assert after.paused and after.priority_weights["high"] == 5
    assert [q.name for q in queues.list_queues(settings)] == ["families"]
    queues.delete_queue(settings, "families")
    with pytest.raises(queues.UnknownQueueError, match="queue list"):
        queues.get_queue(settings, "families")


@pytest.mark.parametrize(("name", "limit", "weights", "says"), [
    ("Families!", 1, {}, "queue name"),
    ("ok", 0, {}, "maxConcurrentJobs"),
    ("ok", queues.MAX_CONCURRENT_JOBS + 1, {}, "maxConcurrentJobs"),
    ("ok", 1, {"urgent": 9}, "priorityWeights has urgent"),
    ("ok", 1, {"high": True}, "priorityWeights.high"),
    ("ok", 1, {"low": -1}, "priorityWeights.low"),
])
def test_a_bad_queue_is_refused_saying_which_field(sqlite_settings, name, limit, weights,
                                                    says):
    with pytest.raises(queues.QueueError, match=says):
        queues.create_queue(sqlite_settings, name, "admin-1", limit, weights)
    assert queues.list_queues(sqlite_settings) == []


def test_run_tags_carry_the_weight_the_limit_rung_and_the_pause():
    queue = queues.Queue("research", "admin-2", 3, {"high": 5, "medium": 2, "low": 1}, True,
                         None)
    assert queues.run_tags(queue, "high") == {
        "dagster/priority": "5", "clone/priority": "high", "clone/queue": "research",
        "clone/queue-limit-3": "research", "clone/paused": "true"}
    assert queues.run_tags(None, "low") == {"dagster/priority": "1", "clone/priority": "low"}
    with pytest.raises(queues.QueueError, match="priority must be one of"):
        queues.run_tags(queue, "urgent")


def _user(settings, external_id="ada") -> str:
    with session_scope(settings.database_url) as session:
        session.add(User(external_id=external_id, display_name=external_id))
    return external_id


def _completed(settings, user, profile, examples, seconds: dict[str, float]):
    workflow_id = flows.create_workflow(settings, user, False, False, None, "medium", profile)
    stages = {name: {"status": "completed", "startedAt": None, "finishedAt": None,
                     "durationSeconds": seconds.get(name)} for name in flows.stages_for(
                         False, False)}
    flows.record_progress(settings, workflow_id, WorkflowStatus.COMPLETED, stages, None, None,
                          None)
    with session_scope(settings.database_url) as session:  # the data size it had
        workflows.get(session, workflow_id)[0].data_examples = examples


def test_estimates_are_medians_of_measured_history_on_the_same_hardware_and_size(settings):
    user = _user(settings)
    assert flows.stages_for(False, False) == ["collected_training_data", "memory_index",
                                              "formatted_datasets", "trained_adapter",
                                              "model_evaluation"]
    stages = flows.stages_for(False, False)
    nothing = flows.estimate(settings, stages, 100, "cpu")
    assert nothing.total is None and nothing.basis.startswith("no estimate")
    for train in (100.0, 300.0, 200.0):
        _completed(settings, user, "cpu", 100, {s: 10.0 for s in stages}
                   | {"trained_adapter": train})
    _completed(settings, user, "rtx5090", 100, {s: 1.0 for s in stages})  # other hardware
    _completed(settings, user, "cpu", 1000, {s: 999.0 for s in stages})  # 10x the data
    found = flows.estimate(settings, stages, 120, "cpu")
    assert found.seconds["trained_adapter"] == 200.0
    assert found.seconds["collected_training_data"] == 10.0
    assert found.total == 240.0  # four 10 s stages and the median training
    assert "3-3 completed workflows" in found.basis and "'cpu'" in found.basis
    assert flows.estimate(settings, stages, 120, "h100").total is None
