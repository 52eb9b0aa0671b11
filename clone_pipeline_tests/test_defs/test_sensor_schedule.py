"""The change sensor (partitions follow users; runs follow changed data) and the schedule."""

import json
import shutil
from datetime import UTC, datetime

import dagster as dg

from clone_pipeline.db.session import migrate, session_scope
from clone_pipeline.db.users import delete_user
from clone_pipeline.defs.assets_data import collected_training_data
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.defs.schedules import nightly_data_refresh
from clone_pipeline.defs.sensors import user_data_changed, voice_recordings_changed
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.ingest import import_export
from clone_pipeline.settings import load_settings


def _tick(instance, settings, cursor, sensor=user_data_changed):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"clone": CloneSettings(home=str(settings.home),
                                       database_url=settings.database_url)})
    result = sensor(context)
    for request in result.dynamic_partitions_requests:  # what the daemon would apply
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result



def _change_an_answer(tmp_path, settings, user: str, added: str) -> None:
    """Re-import the persona with one answer longer (recordings left out)."""
    doc = json.loads((PERSONAS_DIR / user / "export.json").read_text())
    doc["voice_recordings"] = []
    doc["responses"][0]["answer"] += added
    changed_export = tmp_path / f"{user}.json"
    changed_export.write_text(json.dumps(doc))
    import_export(changed_export, settings)

def test_sensor_registers_users_and_requests_runs_for_changes(settings, instance, tmp_path):
    import_export(PERSONAS_DIR / "margaret-ellis", settings)
    import_export(PERSONAS_DIR / "walter-okafor", settings)

    first = _tick(instance, settings, None)
    assert sorted(r.partition_key for r in first.run_requests) == ["margaret-ellis",
                                                                   "walter-okafor"]
    assert set(instance.get_dynamic_partitions("users")) == {"margaret-ellis",
                                                             "walter-okafor"}

    quiet = _tick(instance, settings, first.cursor)
    assert quiet.run_requests == [] and quiet.cursor == first.cursor

    _change_an_answer(tmp_path, settings, "walter-okafor", " Measure twice, cut once.")
    changed = _tick(instance, settings, quiet.cursor)
    assert [r.partition_key for r in changed.run_requests] == ["walter-okafor"]
    assert changed.run_requests[0].run_key != first.run_requests[1].run_key

    instance.delete_dynamic_partition("users", "walter-okafor")  # lost, say
    rebuilt = _tick(instance, settings, changed.cursor)
    assert rebuilt.run_requests == []  # nothing changed, but the partition comes back
    assert set(instance.get_dynamic_partitions("users")) == {"margaret-ellis",
                                                             "walter-okafor"}


def test_sensor_never_removes_partitions_of_users_it_cannot_see(settings, instance,
                                                                tmp_path):
    """A sensor pointed at an empty data root (CLONE_HOME unset, say) changes nothing; a
    removed user's partition goes only through the explicit removal."""
    import_export(PERSONAS_DIR / "margaret-ellis", settings)
    import_export(PERSONAS_DIR / "walter-okafor", settings)
    first = _tick(instance, settings, None)
    empty = load_settings({"CLONE_HOME": str(tmp_path / "elsewhere")})
    empty.ensure_dirs()
    migrate(empty.database_url)
    blind = _tick(instance, empty, None)
    assert blind.run_requests == [] and blind.dynamic_partitions_requests == []
    with session_scope(settings.database_url) as session:
        delete_user(session, "margaret-ellis")
    after_delete = _tick(instance, settings, first.cursor)
    assert after_delete.dynamic_partitions_requests == []
    assert set(instance.get_dynamic_partitions("users")) == {"margaret-ellis",
                                                             "walter-okafor"}


def test_first_tick_redoes_no_work_already_materialised(sqlite_settings, instance, tmp_path):
    """An empty cursor (the first `dagster dev` after `make demo`) requests runs only for
    users whose material changed since their data was last materialised."""
    import_export(PERSONAS_DIR / "margaret-ellis", sqlite_settings)
    import_export(PERSONAS_DIR / "walter-okafor", sqlite_settings)
    instance.add_dynamic_partitions("users", ["margaret-ellis"])
    clone = CloneSettings(home=str(sqlite_settings.home),
                          database_url=sqlite_settings.database_url)
    assert dg.materialize([collected_training_data], partition_key="margaret-ellis",
                          resources={"clone": clone}, instance=instance).success

    first = _tick(instance, sqlite_settings, None)
    assert [r.partition_key for r in first.run_requests] == ["walter-okafor"]  # never run

    _change_an_answer(tmp_path, sqlite_settings, "margaret-ellis", " And that was that.")
    again = _tick(instance, sqlite_settings, None)  # a reset cursor, after a real change
    assert sorted(r.partition_key for r in again.run_requests) == ["margaret-ellis",
                                                                   "walter-okafor"]


def test_nightly_schedule_requests_every_user(instance):
    instance.add_dynamic_partitions("users", ["b-user", "a-user"])
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime(2026, 11, 26, 3, tzinfo=UTC))
    requests = nightly_data_refresh(context)
    assert [r.partition_key for r in requests] == ["a-user", "b-user"]
    assert requests[0].run_key == "nightly:2026-11-26:a-user"


def test_voice_sensor_follows_recordings_only(sqlite_settings, instance, tmp_path):
    import_export(PERSONAS_DIR / "margaret-ellis", sqlite_settings)
    first = _tick(instance, sqlite_settings, None, voice_recordings_changed)
    assert [r.partition_key for r in first.run_requests] == ["margaret-ellis"]
    assert instance.get_dynamic_partitions("users") == ["margaret-ellis"]

    folder = tmp_path / "export"
    shutil.copytree(PERSONAS_DIR / "margaret-ellis", folder)
    doc = json.loads((folder / "export.json").read_text())
    doc["responses"][0]["answer"] += " And that was that."
    (folder / "export.json").write_text(json.dumps(doc))
    import_export(folder, sqlite_settings)
    text_only = _tick(instance, sqlite_settings, first.cursor, voice_recordings_changed)
    assert text_only.run_requests == []  # written material changed, not the voice

    doc["voice_recordings"][0]["text"] = doc["voice_recordings"][0]["text"].replace(
        "rainbow.", "rainbow!")
    (folder / "export.json").write_text(json.dumps(doc))
    import_export(folder, sqlite_settings)
    voice = _tick(instance, sqlite_settings, text_only.cursor, voice_recordings_changed)
    assert [r.partition_key for r in voice.run_requests] == ["margaret-ellis"]
