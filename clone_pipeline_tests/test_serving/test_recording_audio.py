"""GET /v1/recordings/{id}/audio: a person's own recording, for their family's tokens only.
The file as it was imported, or the asked seconds as WAV; for anyone else's token the
recording does not exist (404, the same answer as for an id nobody has). The endpoint never
reaches the engine, so these tests start none."""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile as sf

from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.engine.client import EngineClient
from clone_pipeline.services.engine import EngineHandle
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.tokens import create_token

OWNER = "margaret-ellis"
TOLD = PERSONAS_DIR / OWNER / "audio" / "v-005.flac"  # her answer about Brenda, aloud


@pytest.fixture
def gateway(sqlite_settings, gateway_factory, write_export):
    """Margaret's family, another family (no recordings), and an admin, on a gateway whose
    engine is never asked anything."""
    settings = sqlite_settings
    import_export(PERSONAS_DIR / OWNER, settings)
    import_export(write_export({"format": "clone-pipeline/user-export", "version": 1,
                                "user": {"external_id": "other-family",
                                         "display_name": "Other Family"}}), settings)
    unreachable = EngineHandle(EngineClient("http://127.0.0.1:9", None), "local-tiny", "cpu",
                               {"max_model_len": 1024})
    url = gateway_factory(settings, engine=unreachable)
    tokens = {who: create_token(settings, who)[0] for who in (OWNER, "other-family")}
    tokens["admin"] = create_token(settings, None, admin=True)[0]
    return url, tokens


def _get(url: str, token: str | None, path: str, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}{path}", headers=headers, params=params, timeout=30)


def test_the_owner_hears_her_recording_as_it_was_imported(gateway):
    url, tokens = gateway
    reply = _get(url, tokens[OWNER], "/v1/recordings/v-005/audio")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "audio/flac"
    assert reply.headers["cache-control"] == "private, no-store"
    assert reply.content == TOLD.read_bytes()
    # a source's span that is the whole recording (start 0, its duration) is the file too
    whole = _get(url, tokens[OWNER], "/v1/recordings/v-005/audio", start=0, end=10.586)
    assert whole.headers["content-type"] == "audio/flac" and whole.content == reply.content


def test_the_seconds_of_a_passage_are_cut_as_wav(gateway):
    url, tokens = gateway
    cut = _get(url, tokens[OWNER], "/v1/recordings/v-005/audio", start=1.0, end=2.5)
    assert cut.status_code == 200 and cut.headers["content-type"] == "audio/wav"
    audio, rate = sf.read(io.BytesIO(cut.content))
    original, _ = sf.read(str(TOLD), start=16_000, stop=40_000)
    assert rate == 16_000 and len(audio) == 24_000
    assert abs(audio - original).max() < 1e-3  # the same samples, as 16-bit PCM
    tail = _get(url, tokens[OWNER], "/v1/recordings/v-005/audio", start=9.5)
    assert 0 < sf.info(io.BytesIO(tail.content)).duration < 1.2

    past = _get(url, tokens[OWNER], "/v1/recordings/v-005/audio", start=600)
    assert past.status_code == 422 and "s long" in past.json()["error"]["message"]
    backwards = _get(url, tokens[OWNER], "/v1/recordings/v-005/audio", start=2, end=1)
    assert backwards.status_code == 422 and backwards.json()["error"]["param"] == "end"


def test_another_familys_token_finds_no_such_recording(gateway):
    url, tokens = gateway
    nobodys = _get(url, tokens[OWNER], "/v1/recordings/v-999/audio")
    assert nobodys.status_code == 404
    for caller in ("other-family", "admin"):  # her voice is for her own family only
        for params in ({}, {"start": 1.0}):
            reply = _get(url, tokens[caller], "/v1/recordings/v-005/audio", **params)
            assert reply.status_code == 404, caller
            assert reply.json()["error"]["message"] == "recording 'v-005' not found"
            assert not reply.headers["content-type"].startswith("audio/")
    assert _get(url, None, "/v1/recordings/v-005/audio").status_code == 401
