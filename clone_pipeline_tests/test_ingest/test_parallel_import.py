"""Two imports of the same new user at once: both end well, and no audio goes missing."""

import multiprocessing

import pytest
from sqlalchemy import select

from clone_pipeline.db.models import User, VoiceRecording
from clone_pipeline.db.session import session_scope

TRIALS = 8


def _import(path: str, settings) -> str:
    """Run in a worker process: import, and report the outcome as one line."""
    from clone_pipeline.services.ingest import import_export

    try:
        summary = import_export(path, settings)
    except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
        return f"error: {type(exc).__name__}: {exc}"
    return "created" if summary.user_created else "updated"


def test_parallel_imports_of_one_new_user_both_succeed_and_keep_audio(settings, persona,
                                                                       write_export):
    exports = []
    for trial in range(TRIALS):
        doc = persona("margaret-ellis")
        doc["user"]["external_id"] = f"race-{trial}"
        exports.append(str(write_export(doc, audio_from="margaret-ellis")))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        outcomes = [pool.starmap(_import, [(path, settings), (path, settings)])
                    for path in exports]
    for trial, pair in enumerate(outcomes):
        assert sorted(pair) == ["created", "updated"], (trial, pair)
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(User).where(User.external_id == "race-0")) is not None
        recordings = session.scalars(select(VoiceRecording)).all()
    assert len(recordings) == 6 * TRIALS
    missing = [r.file_path for r in recordings if not (settings.home / r.file_path).is_file()]
    assert missing == []


def test_a_failed_import_keeps_audio_that_committed_rows_use(sqlite_settings, persona,
                                                             write_export, monkeypatch):
    """The clean-up of a failed import removes only files no committed row points at."""
    from clone_pipeline.services import ingest

    first = write_export(persona(), audio_from="margaret-ellis")
    ingest.import_export(first, sqlite_settings)
    stored = sorted((sqlite_settings.home / "audio" / "margaret-ellis").iterdir())
    for file in stored:
        file.unlink()  # as if this import had been first to copy them

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest.sources, "upsert_material", explode)
    with pytest.raises(RuntimeError):
        ingest.import_export(write_export(persona(), audio_from="margaret-ellis"),
                             sqlite_settings)
    assert sorted((sqlite_settings.home / "audio" / "margaret-ellis").iterdir()) == stored
