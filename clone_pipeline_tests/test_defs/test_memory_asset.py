"""memory_index through a real Dagster run: built from the collected (redacted) dataset, per
user, with lineage from collected_training_data; a re-import re-embeds only what changed,
and removing the user removes the index."""

import json

import dagster as dg

from clone_pipeline.definitions import defs
from clone_pipeline.defs.assets_data import collected_training_data
from clone_pipeline.defs.assets_memory import memory_index
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.memory import load_memory, memory_folder
from clone_pipeline.services.users import remove_user

USER = "margaret-ellis"


def _materialize(instance, assets):
    return dg.materialize(assets, partition_key=USER, instance=instance,
                          resources={"clone": CloneSettings()})


def test_memory_index_is_built_per_user_after_the_collected_data(
        sqlite_env_settings, instance, tmp_path):
    settings = sqlite_env_settings
    graph = defs.resolve_asset_graph()
    assert graph.get(memory_index.key).parent_keys == {collected_training_data.key}
    assert graph.get(memory_index.key).partitions_def.name == "users"

    doc = json.loads((PERSONAS_DIR / USER / "export.json").read_text())
    doc["responses"][0]["answer"] += " My phone number was 0161 496 0732 back then."
    export = tmp_path / "export"
    export.mkdir()
    (export / "export.json").write_text(json.dumps(doc))
    for recording in doc.get("voice_recordings") or []:
        target = export / recording["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((PERSONAS_DIR / USER / recording["file"]).read_bytes())
    import_export(export, settings)
    instance.add_dynamic_partitions("users", [USER])

    first = _materialize(instance, [collected_training_data, memory_index])
    assert first.success
    meta = first.asset_materializations_for_node("memory_index")[0].metadata
    passages = meta["passages"].value
    assert passages > 50 and meta["re_embedded"].value == passages
    index = load_memory(settings, USER)
    assert len(index) == passages
    stored = (memory_folder(settings, USER) / "passages.jsonl").read_text()
    assert "0161 496 0732" not in stored and "[PHONE]" in stored  # only redacted text
    hit = index.search("What was your first job?", k=1)[0]
    assert hit.passage.source in {"responses", "life_stories"}

    doc["life_stories"][0]["content"] += " We never spoke of it again."
    (export / "export.json").write_text(json.dumps(doc))
    import_export(export, settings)
    second = _materialize(instance, [collected_training_data, memory_index])
    meta = second.asset_materializations_for_node("memory_index")[0].metadata
    assert 1 <= meta["re_embedded"].value <= 3  # the changed story's last passage(s)

    remove_user(settings, USER)
    assert not memory_folder(settings, USER).exists()
