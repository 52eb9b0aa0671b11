"""Importing user exports: the contract in docs/user-export.md."""

import shutil
import zipfile

import pytest
from sqlalchemy import func, select

from clone_pipeline.db.models import Response, User, VoiceRecording
from clone_pipeline.db.session import session_scope
from clone_pipeline.ingest import ExportError
from clone_pipeline.services.ingest import import_export
from clone_pipeline_tests.test_ingest.state import snapshot


def _count(settings, model) -> int:
    with session_scope(settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(model))


def test_import_persona_with_audio(settings, persona, write_export):
    path = write_export(persona(), audio_from="margaret-ellis")
    summary = import_export(path, settings)
    assert summary.user_created
    assert summary.lists["responses"].inserted == 70
    assert summary.lists["voice_recordings"].inserted == 6  # 4 read passages, 2 told answers
    assert summary.audio_files_copied == 6
    with session_scope(settings.database_url) as s:
        rec = s.scalars(select(VoiceRecording).order_by(VoiceRecording.item_id)).first()
        stored = settings.home / rec.file_path
        assert stored.is_file() and stored.name.startswith(rec.sha256)
        assert rec.audio_format == "flac/flac" and rec.sample_rate == 16000
        assert 5 < rec.duration_s < 60


def test_reimport_is_idempotent_and_updates_changed_text(settings, persona, write_export):
    doc = persona()
    import_export(write_export(doc, audio_from="margaret-ellis"), settings)
    before = snapshot(settings)
    again = import_export(write_export(doc, audio_from="margaret-ellis"), settings)
    assert not again.changed and again.lists["responses"].unchanged == 70
    assert snapshot(settings) == before

    doc["responses"][0]["answer"] += " And the radio was always on."
    del doc["responses"][1]
    changed = import_export(write_export(doc, audio_from="margaret-ellis"), settings)
    assert changed.lists["responses"].updated == 1
    assert _count(settings, Response) == 70  # nothing deleted without --prune
    pruned = import_export(write_export(doc, audio_from="margaret-ellis"), settings,
                           prune=True)
    assert pruned.lists["responses"].pruned == 1
    assert _count(settings, Response) == 69


def test_folder_and_zip_exports(sqlite_settings, persona, write_export, tmp_path):
    path = write_export(persona("walter-okafor"), audio_from="walter-okafor")
    assert import_export(path.parent, sqlite_settings).user_created
    archive = tmp_path / "walter.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in path.parent.rglob("*"):
            zf.write(file, f"walter/{file.relative_to(path.parent)}")
    summary = import_export(archive, sqlite_settings)
    assert not summary.changed


def test_text_is_stored_as_given_after_nfc(sqlite_settings, persona, write_export):
    doc = persona()
    doc["voice_recordings"] = []
    decomposed = "Cafe\u0301 <b>bold</b> '; DROP TABLE users; --"
    doc["responses"][0]["answer"] = decomposed
    import_export(write_export(doc), sqlite_settings)
    with session_scope(sqlite_settings.database_url) as s:
        answer = s.scalar(select(Response.answer).where(Response.item_id == "r-001"))
    assert answer == "Caf\u00e9 <b>bold</b> '; DROP TABLE users; --"
    assert _count(sqlite_settings, User) == 1


def test_recordings_keep_the_answer_or_story_they_tell(settings, persona, write_export):
    import_export(write_export(persona(), audio_from="margaret-ellis"), settings)
    with session_scope(settings.database_url) as s:
        links = {r.item_id: (r.response_id, r.story_id, r.extra)
                 for r in s.scalars(select(VoiceRecording))}
    assert links["v-005"] == ("r-004", None, {})  # a column, not an unknown field
    assert links["v-006"] == (None, "s-002", {})
    assert links["v-001"] == (None, None, {})  # a read passage tells neither


def test_an_export_written_before_spoken_answers_still_imports(sqlite_settings, persona,
                                                               write_export):
    doc = persona()
    doc["voice_recordings"] = [r for r in doc["voice_recordings"]
                               if "response_id" not in r and "story_id" not in r]
    summary = import_export(write_export(doc, audio_from="margaret-ellis"), sqlite_settings)
    assert summary.lists["voice_recordings"].inserted == 4
    with session_scope(sqlite_settings.database_url) as s:
        assert s.scalars(select(VoiceRecording.response_id)).all() == [None] * 4


# ----------------------------------------------------------------- bad input


def _rejected(settings, path) -> ExportError:
    with pytest.raises(ExportError) as info:
        import_export(path, settings)
    return info.value


def test_every_schema_problem_is_reported_at_once(settings, persona, write_export):
    doc = persona()
    doc["voice_recordings"] = []
    del doc["responses"][3]["answer"]
    doc["responses"][5]["category"] = 7
    doc["responses"][8]["id"] = doc["responses"][7]["id"]
    doc["life_stories"][0]["content"] = "x" * 100_001
    doc["user"]["external_id"] = "has spaces!"
    err = _rejected(settings, write_export(doc))
    places = {p.where for p in err.problems}
    assert {"/responses/3/answer", "/responses/5/category", "/responses/8/id",
            "/life_stories/0/content", "/user/external_id"} <= places
    long = next(p for p in err.problems if p.where == "/life_stories/0/content")
    assert "100,000" in long.message and "100,001" in long.message
    assert _count(settings, User) == 0


def test_invalid_json_gives_line_and_column(sqlite_settings, write_export):
    err = _rejected(sqlite_settings, write_export({}, raw=b'{\n  "format": "x",\n  oops\n}'))
    assert err.problems[0].where == "line 3, column 3"


def test_non_utf8_file(sqlite_settings, write_export):
    raw = b'{"format": "clone-pipeline/user-export", "note": "caf' + b"\xe9\"}"
    err = _rejected(sqlite_settings, write_export({}, raw=raw))
    assert "UTF-8" in err.problems[0].message and err.problems[0].where.startswith("line 1")


def test_wrong_version(sqlite_settings, persona, write_export):
    doc = persona()
    doc["version"] = 2
    err = _rejected(sqlite_settings, write_export(doc))
    assert any(p.where == "/version" for p in err.problems)


def test_missing_and_escaping_audio(sqlite_settings, persona, write_export):
    doc = persona()
    doc["voice_recordings"][1]["file"] = "audio/nope.wav"
    doc["voice_recordings"][2]["file"] = "../../etc/passwd.wav"
    err = _rejected(sqlite_settings, write_export(doc, audio_from="margaret-ellis"))
    messages = {p.where.split(" ")[0]: p.message for p in err.problems}
    assert messages["/voice_recordings/1/file"] == "audio file not found"
    assert "inside" in messages["/voice_recordings/2/file"]
    assert "audio/nope.wav" in str(err)


def test_corrupt_audio(sqlite_settings, persona, write_export):
    path = write_export(persona(), audio_from="margaret-ellis")
    (path.parent / "audio" / "v-001.flac").write_bytes(b"not audio at all" * 100)
    err = _rejected(sqlite_settings, path)
    assert "not WAV, FLAC, OGG/Opus, MP3 or WebM audio" in err.problems[0].message


def test_failed_reimport_changes_nothing(settings, persona, write_export):
    doc = persona()
    import_export(write_export(doc, audio_from="margaret-ellis"), settings)
    before = snapshot(settings)
    doc["responses"][0]["answer"] = "A changed answer that must not be stored."
    doc["responses"].append({"id": "r-999", "category": "x", "question": "q?"})  # no answer
    _rejected(settings, write_export(doc, audio_from="margaret-ellis"))
    assert snapshot(settings) == before


def test_failure_during_write_rolls_back_and_removes_copied_audio(sqlite_settings, persona,
                                                                  write_export, monkeypatch):
    from clone_pipeline.db import sources

    real_upsert = sources.upsert_material

    def explode(session, *args, **kwargs):
        real_upsert(session, *args, **kwargs)  # every row written, then the commit fails
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sources, "upsert_material", explode)
    with pytest.raises(RuntimeError):
        import_export(write_export(persona(), audio_from="margaret-ellis"), sqlite_settings)
    assert _count(sqlite_settings, User) == 0
    assert not any((sqlite_settings.home / "audio").rglob("*.flac"))
    assert not (sqlite_settings.home / "audio" / "margaret-ellis").exists()  # no empty folder


def test_errors_do_not_quote_personal_text(sqlite_settings, persona, write_export):
    doc = persona()
    secret = "my PIN is 4921 and I never told anyone " * 2600  # > 100,000 characters
    doc["responses"][0]["answer"] = secret
    doc["responses"][1]["emotional_tone"] = "x" * 80 + " my secret tone"
    err = _rejected(sqlite_settings, write_export(doc, audio_from="margaret-ellis"))
    assert "PIN" not in str(err) and "secret" not in str(err)


def test_user_with_no_material_imports_cleanly(sqlite_settings, write_export):
    doc = {"format": "clone-pipeline/user-export", "version": 1,
           "user": {"external_id": "empty-person", "display_name": "Empty Person"}}
    summary = import_export(write_export(doc), sqlite_settings)
    assert summary.user_created and not any(
        c.inserted for c in summary.lists.values())


def test_audio_over_30_minutes_is_refused(sqlite_settings, write_export, tmp_path):
    import numpy as np
    import soundfile as sf

    doc = {"format": "clone-pipeline/user-export", "version": 1,
           "user": {"external_id": "long-talker", "display_name": "Long Talker"},
           "voice_recordings": [{"id": "v-1", "text": "hello", "file": "long.flac"}]}
    path = write_export(doc)
    # 31 minutes of silence at 1 kHz (small on disk, long in time)
    sf.write(path.parent / "long.flac", np.zeros(31 * 60 * 1000, dtype=np.int16), 1000)
    err = _rejected(sqlite_settings, path)
    assert "30 min" in err.problems[0].message


def test_missing_path(sqlite_settings, tmp_path):
    err = _rejected(sqlite_settings, tmp_path / "nowhere")
    assert "no such file" in err.problems[0].message
    shutil.rmtree(tmp_path / "nowhere", ignore_errors=True)


def test_size_limits_are_clear_errors(sqlite_settings, persona, write_export, monkeypatch):
    from clone_pipeline.services import ingest as importer

    path = write_export(persona(), audio_from="margaret-ellis")
    monkeypatch.setattr(importer, "MAX_AUDIO_BYTES", 1000)  # stands in for 200 MB
    err = _rejected(sqlite_settings, path)
    assert len(err.problems) == 6 and "the limit is 200 MB" in err.problems[0].message
    monkeypatch.setattr(importer, "MAX_JSON_BYTES", 1000)  # stands in for 500 MB
    err = _rejected(sqlite_settings, path)
    assert "the limit is 500 MB" in err.problems[0].message
    assert _count(sqlite_settings, User) == 0


def test_a_recording_of_an_answer_not_in_the_export_is_refused_with_its_pointer(
        settings, persona, write_export):
    doc = persona()
    doc["voice_recordings"][4]["response_id"] = "r-999"
    doc["voice_recordings"][5]["response_id"] = "r-001"  # beside its story_id
    doc["voice_recordings"][0]["story_id"] = "has spaces!"
    err = _rejected(settings, write_export(doc, audio_from="margaret-ellis"))
    messages = {p.where: p.message for p in err.problems}
    dangling = messages["/voice_recordings/4/response_id"]
    assert dangling.startswith("no item of /responses in this export has this id")
    assert "add that item to the export, or leave response_id out" in dangling
    assert "r-999" not in str(err)
    assert "not both" in messages["/voice_recordings/5/story_id"]
    assert messages["/voice_recordings/0/story_id"].startswith("must be 1 to 128 characters")
    assert len(err.problems) == 3  # the badly formed id is named once, by the schema
    assert _count(settings, User) == 0
