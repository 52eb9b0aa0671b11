"""A person's own recordings, played back to their family: the stored file as it was
imported, or the seconds of it that tell one passage (as WAV). Only the recording's owner
may hear it; for anyone else it does not exist."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

from clone_pipeline.db import sources
from clone_pipeline.db.session import session_scope
from clone_pipeline.files import data_file
from clone_pipeline.settings import Settings

# Stored files are named by their container (services.ingest): its media type.
MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".mp3": "audio/mpeg", ".webm": "audio/webm"}


@dataclass(frozen=True)
class StoredRecording:
    recording_id: str  # the export id
    path: Path
    media_type: str
    sample_rate: int
    duration_s: float


def owned_recording(settings: Settings, user_id: uuid.UUID | None, recording_id: str
                    ) -> StoredRecording | None:
    """The recording *recording_id* of the user *user_id*, if it exists and its file is
    there; None otherwise (another user's recording included: the caller says 404)."""
    if user_id is None:
        return None
    with session_scope(settings.database_url) as session:
        row = sources.recording(session, user_id, recording_id)
        if row is None:
            return None
        path = data_file(settings, row.file_path)
        found = StoredRecording(row.item_id, path,
                                MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                                row.sample_rate, row.duration_s)
    return found if found.path.is_file() else None


def recording_span(recording: StoredRecording, start_s: float, end_s: float | None) -> bytes:
    """Seconds *start_s* to *end_s* (None: the end) of *recording* as 16-bit PCM WAV at its
    own sample rate and channels; empty audio when the span lies past its end."""
    import soundfile as sf

    rate = recording.sample_rate
    first = int(round(start_s * rate))
    last = None if end_s is None else max(first, int(round(end_s * rate)))
    try:
        audio, rate = sf.read(str(recording.path), start=first, stop=last, dtype="float32",
                              always_2d=True)
    except (RuntimeError, sf.LibsndfileError):  # a container libsndfile cannot seek (WebM)
        from clone_pipeline.voice.audio_io import load_audio

        audio = load_audio(recording.path, rate)[first:last].reshape(-1, 1)
    out = io.BytesIO()
    sf.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
