"""Exports that used to crash the importer or slip past it: each is now a one-line problem
naming its field or file, and the database and data root are left exactly as they were."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from clone_pipeline.db.models import User, VoiceRecording
from clone_pipeline.db.session import session_scope
from clone_pipeline.ingest import ExportError
from clone_pipeline.services.ingest import import_export
from clone_pipeline.settings import load_settings
from clone_pipeline_tests.test_ingest.state import snapshot


def _rejected(settings, path) -> ExportError:
    """The import's ExportError, after checking that it left no trace."""
    before = snapshot(settings)
    with pytest.raises(ExportError) as info:
        import_export(path, settings)
    assert snapshot(settings) == before
    return info.value


def _problem(err: ExportError, where: str) -> str:
    """The one printed line for *where* (one line: no newline, no raw control characters)."""
    lines = [str(p) for p in err.problems if p.where.split(" ")[0] == where]
    assert lines, f"no problem at {where}: {err}"
    assert all(ch.isprintable() for ch in lines[0])
    return lines[0]


def _raw(doc: dict, **replace: str) -> bytes:
    """*doc* as JSON with placeholder strings swapped for raw JSON text (what json.dumps
    cannot write: 5,000-digit integers, NaN, lone surrogate escapes)."""
    text = json.dumps(doc)  # ASCII: a lone surrogate is written as its \ud800 escape
    for placeholder, raw in replace.items():
        text = text.replace(json.dumps(placeholder), raw)
    return text.encode("utf-8")


def _set(doc: dict, where: str, value) -> None:
    """Set the value at JSON pointer *where* (plain keys and indices only)."""
    *parents, last = where.strip("/").split("/")
    for part in parents:
        doc = doc[int(part) if part.isdigit() else part]
    doc[int(last) if last.isdigit() else last] = value


def _tone(seconds: float, rate: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _one_recording(write_export, file: str = "audio/v-1.flac"):
    doc = {"format": "clone-pipeline/user-export", "version": 1,
           "user": {"external_id": "rec-person", "display_name": "Rec Person"},
           "voice_recordings": [{"id": "v-1", "text": "hello there", "file": file}]}
    path = write_export(doc)
    (path.parent / "audio").mkdir()
    return path, path.parent / file


# ------------------------------------------------------------- values Python parses


@pytest.mark.parametrize(("where", "raw", "message"), [
    ("/version", "9" * 5000, "an integer of 5,000 digits; the limit is 100"),
    ("/user/birth_year", "NaN", "NaN is not a JSON number"),
    ("/user/persona/weight", "1e999", "a number too large to store"),
])
def test_unstorable_numbers_are_named(settings, persona, write_export, where, raw, message):
    doc = persona()
    doc["voice_recordings"] = []
    _set(doc, where, "@placeholder")
    err = _rejected(settings, write_export({}, raw=_raw(doc, **{"@placeholder": raw})))
    assert _problem(err, where) == f"{where}: {message}"
    assert err.count == 1  # the schema's own complaint about the same field is not repeated


@pytest.mark.parametrize("depth", [900, 100_000])
def test_deep_nesting_is_named_not_a_recursion_error(sqlite_settings, persona, write_export,
                                                     depth):
    doc = persona()
    doc["voice_recordings"] = []
    doc["user"]["persona"]["family"] = "@deep"
    raw = _raw(doc, **{"@deep": "[" * depth + "]" * depth})
    err = _rejected(sqlite_settings, write_export({}, raw=raw))
    assert str(err).splitlines()[1:] == [
        "  /user/persona: nested deeper than 64 levels of objects and arrays"]


def test_nesting_up_to_the_limit_imports(sqlite_settings, persona, write_export):
    doc = persona()
    doc["voice_recordings"] = []
    doc["user"]["persona"]["family"] = "@deep"  # root, user, persona: 3 levels already
    import_export(write_export({}, raw=_raw(doc, **{"@deep": "[" * 61 + "]" * 61})),
                  sqlite_settings)


@pytest.mark.parametrize("where", ["/responses/3/answer", "/user/display_name",
                                   "/life_stories/0/title", "/user/persona/tone"])
def test_lone_surrogate_is_named_before_anything_is_written(settings, persona, write_export,
                                                            where):
    doc = persona()
    _set(doc, where, "before \ud800 after")
    path = write_export({}, audio_from="margaret-ellis", raw=_raw(doc))
    err = _rejected(settings, path)
    assert _problem(err, where) == (
        f"{where}: contains a lone UTF-16 surrogate (a broken \\ud800-\\udfff escape); "
        f"not text")
    assert not (settings.home / "audio" / "margaret-ellis").exists()


def test_nul_in_an_audio_path_is_named(sqlite_settings, write_export):
    path, _ = _one_recording(write_export, file="audio/v-1\x00.flac")
    err = _rejected(sqlite_settings, path)
    assert _problem(err, "/voice_recordings/0/file") == (
        "/voice_recordings/0/file (audio/v-1\\x00.flac): audio path contains a NUL character")


def test_symlink_loop_in_the_audio_folder_is_named(sqlite_settings, write_export):
    path, audio = _one_recording(write_export, file="audio/loop-a.flac")
    os.symlink("loop-b.flac", audio)
    os.symlink("loop-a.flac", audio.parent / "loop-b.flac")
    err = _rejected(sqlite_settings, path)
    assert _problem(err, "/voice_recordings/0/file") == (
        "/voice_recordings/0/file (audio/loop-a.flac): audio path is a symlink loop")


# ------------------------------------------------------------------------- limits


def test_persona_and_unknown_fields_are_capped_at_64_kib(settings, persona, write_export):
    doc = persona()
    doc["voice_recordings"] = []
    doc["user"]["persona"]["notes"] = "x" * 70_000
    doc["user"]["exported_from"] = "y" * 70_000
    doc["responses"][2]["app_blob"] = "z" * 40_000
    doc["responses"][2]["app_more"] = ["z" * 40_000]
    err = _rejected(settings, write_export(doc))

    def size(*values) -> str:  # compact JSON, UTF-8 bytes
        return f"{sum(len(json.dumps(v, separators=(',', ':')).encode()) for v in values):,}"

    assert _problem(err, "/user/persona") == (
        f"/user/persona: the persona is {size(doc['user']['persona'])} bytes as JSON; the "
        f"limit is 64 KiB")
    assert _problem(err, "/user/exported_from") == (
        f"/user/exported_from: unknown fields here (kept, not used) total "
        f"{size('y' * 70_000)} bytes as JSON; the limit is 64 KiB")
    assert _problem(err, "/responses/2/app_more").endswith(  # the larger of the two named
        f"total {size('z' * 40_000, ['z' * 40_000])} bytes as JSON; the limit is 64 KiB")
    assert err.count == 3


def test_persona_and_unknown_fields_under_the_cap_are_kept(sqlite_settings, persona,
                                                          write_export):
    doc = persona()
    doc["voice_recordings"] = []
    doc["user"]["persona"]["notes"] = "x" * 60_000
    doc["responses"][2]["app_blob"] = "z" * 60_000
    import_export(write_export(doc), sqlite_settings)
    with session_scope(sqlite_settings.database_url) as s:
        assert len(s.scalar(select(User.persona))["notes"]) == 60_000


# -------------------------------------------------------------------------- audio


def test_flac_cut_short_is_damaged(sqlite_settings, write_export):
    path, audio = _one_recording(write_export)
    sf.write(audio, _tone(10), 16_000)
    whole = audio.read_bytes()
    for cut in (200, len(whole) // 2):
        audio.write_bytes(whole[:cut])
        err = _rejected(sqlite_settings, path)
        assert _problem(err, "/voice_recordings/0/file").startswith(
            "/voice_recordings/0/file (audio/v-1.flac): audio file is damaged")


def test_flac_of_unknown_length_is_measured_by_decoding(sqlite_settings, write_export):
    """Streaming encoders write FLAC before they know its length: STREAMINFO's 36-bit total
    sample count is 0, which means "unknown"."""
    path, audio = _one_recording(write_export)
    sf.write(audio, _tone(10), 16_000)
    flac = bytearray(audio.read_bytes())
    assert flac[:4] == b"fLaC" and flac[4] & 0x7F == 0  # STREAMINFO comes first
    total_samples = 8 + 13  # 'fLaC', block header, then 13 bytes into STREAMINFO
    flac[total_samples] &= 0xF0
    flac[total_samples + 1:total_samples + 5] = bytes(4)
    audio.write_bytes(bytes(flac))
    assert sf.info(str(audio)).frames > 2**62  # what libsndfile makes of "unknown"
    import_export(path, sqlite_settings)
    with session_scope(sqlite_settings.database_url) as s:
        rec = s.scalars(select(VoiceRecording)).one()
    assert rec.duration_s == 10.0 and rec.audio_format == "flac/flac"


@pytest.mark.parametrize(("name", "write", "stored_as"), [
    ("audio/v-1.webm", {"format": "OGG", "subtype": "VORBIS"}, ("ogg/vorbis", ".ogg")),
    ("audio/v-1.flac", {"format": "WAV", "subtype": "PCM_16"}, ("wav/pcm_s16le", ".wav")),
    ("audio/v-1.wav", {"format": "MP3"}, ("mp3/mp3", ".mp3")),
])
def test_format_is_recorded_from_the_content_not_the_name(sqlite_settings, write_export,
                                                         name, write, stored_as):
    path, audio = _one_recording(write_export, file=name)
    with audio.open("wb") as fh:
        sf.write(fh, _tone(3), 16_000, **write)
    import_export(path, sqlite_settings)
    with session_scope(sqlite_settings.database_url) as s:
        rec = s.scalars(select(VoiceRecording)).one()
    assert (rec.audio_format, os.path.splitext(rec.file_path)[1]) == stored_as
    assert abs(rec.duration_s - 3.0) < 0.1 and rec.original_name == name


def test_webm_opus_is_decoded_and_recorded(sqlite_settings, write_export):
    """What a browser's MediaRecorder sends: Opus in WebM, with no duration in the header."""
    import av

    path, audio = _one_recording(write_export, file="audio/v-1.webm")
    with av.open(str(audio), "w", format="webm") as media:
        stream = media.add_stream("libopus", rate=48_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(_tone(3, 48_000)[None, :], format="flt",
                                           layout="mono")
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            media.mux(packet)
    import_export(path, sqlite_settings)
    with session_scope(sqlite_settings.database_url) as s:
        rec = s.scalars(select(VoiceRecording)).one()
    assert (rec.audio_format, rec.sample_rate, rec.file_path[-5:]) == ("webm/opus", 48_000,
                                                                       ".webm")
    assert abs(rec.duration_s - 3.0) < 0.05


def test_audio_past_30_minutes_stops_decoding_at_the_limit(sqlite_settings, write_export):
    path, audio = _one_recording(write_export)
    sf.write(audio, np.zeros(31 * 60 * 1000, dtype=np.int16), 1000)
    err = _rejected(sqlite_settings, path)
    assert _problem(err, "/voice_recordings/0/file").endswith(
        "recording lasts more than 30 min; the limit is 30 min")


# --------------------------------------------------------------------- display name


def test_display_name_loses_bidi_and_zero_width_characters(sqlite_settings, persona,
                                                           write_export):
    doc = persona()
    doc["voice_recordings"] = []
    doc["user"]["display_name"] = "\u202eMargaret\u200b Ellis\u2066\ufeff\u200f"
    persian = "\u0646\u06cc\u200c\u0644\u0648\u0641\u0631"  # a zero-width non-joiner inside
    family = "\U0001F469\u200d\U0001F467"  # an emoji sequence joined by U+200D
    doc["user"]["persona"] = {"tone": "\u2067warm\u2069",
                              "address_terms": ["\u200dGran\u200bny", persian, family]}
    import_export(write_export(doc), sqlite_settings)
    with session_scope(sqlite_settings.database_url) as s:
        user = s.scalars(select(User)).one()
        assert user.display_name == "Margaret Ellis"
        assert user.persona == {"tone": "warm", "address_terms": ["Granny", persian, family]}


def test_display_name_of_only_invisible_characters_is_refused(settings, persona,
                                                              write_export):
    doc = persona()
    doc["voice_recordings"] = []
    doc["user"]["display_name"] = "\u202e\u200b \u2066"
    err = _rejected(settings, write_export(doc))
    assert _problem(err, "/user/display_name") == (
        "/user/display_name: has no visible characters once bidi controls and zero-width "
        "characters are removed")


# ---------------------------------------------------------------------------- CLI


def test_cli_names_each_hostile_export_on_one_line_and_changes_nothing(cli_env, tmp_path,
                                                                       persona, write_export):
    assert cli_env("init").returncode == 0
    settings = load_settings({"CLONE_HOME": str(tmp_path / "home")})
    before = snapshot(settings)
    doc = persona()
    doc["voice_recordings"] = []
    huge = dict(doc, version="@n")
    deep = json.loads(json.dumps(doc))
    deep["user"]["persona"]["family"] = "@deep"
    surrogate = json.loads(json.dumps(doc))
    surrogate["responses"][3]["answer"] = "\ud800"
    nul, _ = _one_recording(write_export, file="audio/a\x00.flac")
    loop, audio = _one_recording(write_export, file="audio/loop.flac")
    os.symlink("loop.flac", audio)
    exports = [write_export({}, raw=_raw(huge, **{"@n": "9" * 5000})),
               write_export({}, raw=_raw(deep, **{"@deep": "[" * 100_000 + "]" * 100_000})),
               write_export({}, raw=_raw(surrogate)), nul, loop]
    result = cli_env("import", *map(str, exports))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 * len(exports)  # per export: the summary, then its one problem
    assert [line.strip() for line in lines[1::2]] == [
        "/version: an integer of 5,000 digits; the limit is 100",
        "/user/persona: nested deeper than 64 levels of objects and arrays",
        "/responses/3/answer: contains a lone UTF-16 surrogate (a broken \\ud800-\\udfff "
        "escape); not text",
        "/voice_recordings/0/file (audio/a\\x00.flac): audio path contains a NUL character",
        "/voice_recordings/0/file (audio/loop.flac): audio path is a symlink loop"]
    assert snapshot(settings) == before
