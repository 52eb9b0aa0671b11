"""Audio inspection without a system ffmpeg: libsndfile first, PyAV for WebM and the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SUPPORTED_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".oga", ".mp3", ".webm"}


class AudioError(ValueError):
    """The file is not audio we can read; the message says why."""


@dataclass(frozen=True)
class AudioInfo:
    format: str  # lower-case container name: wav, flac, ogg, mp3, webm
    sample_rate: int  # Hz
    channels: int
    duration_s: float  # seconds


def probe_audio(path: Path) -> AudioInfo:
    """Container, sample rate, channel count and duration of *path*."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise AudioError(f"unsupported audio type {suffix or '(none)'}; "
                         f"use WAV, FLAC, OGG/Opus, MP3 or WebM")
    if suffix != ".webm":
        try:
            info = sf.info(str(path))
            return AudioInfo(info.format.lower(), int(info.samplerate), int(info.channels),
                             float(info.frames) / float(info.samplerate))
        except (RuntimeError, sf.LibsndfileError):
            pass  # e.g. Opus in an Ogg container on an old libsndfile: try PyAV
    return _probe_with_av(path, suffix.lstrip("."))


def _probe_with_av(path: Path, fmt: str) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            streams = container.streams.audio
            if not streams:
                raise AudioError("no audio stream")
            stream = streams[0]
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            channels = int(stream.codec_context.channels or 0)
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            else:  # MediaRecorder WebM often has no duration header: count samples
                duration = sum(f.samples for f in container.decode(stream)) / max(rate, 1)
    except AudioError:
        raise
    except Exception as exc:  # PyAV raises many error types for corrupt input
        raise AudioError(f"cannot decode audio ({type(exc).__name__})") from exc
    if rate <= 0:
        raise AudioError("cannot read the sample rate")
    return AudioInfo(fmt, rate, channels or 1, duration)


# Every analysis works at one rate: pocketsphinx's acoustic model expects 16 kHz, and Praat
# and librosa are accurate there for speech. Decode, downmix and resample once, here.
ANALYSIS_RATE = 16_000


def load_audio(path: Path, sample_rate: int = ANALYSIS_RATE) -> np.ndarray:
    """Mono float32 samples of *path* at *sample_rate* (any container we can probe)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        probe_audio(path)  # raises the unsupported-type error
    audio, rate = None, 0
    if suffix != ".webm":
        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            audio = data.mean(axis=1)
        except (RuntimeError, sf.LibsndfileError):
            audio = None
    if audio is None:
        audio, rate = _decode_with_av(path)
    return resample(audio, rate, sample_rate)


def frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS of consecutive non-overlapping frames of *frame* samples (a partial tail dropped)."""
    n = len(audio) // frame
    return np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if rate == target:
        return audio
    import librosa

    return librosa.resample(audio, orig_sr=rate, target_sr=target, res_type="soxr_hq")


def _decode_with_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono")
            chunks = []
            rate = 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    rate = out.sample_rate
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):  # flush
                chunks.append(out.to_ndarray().reshape(-1))
    except Exception as exc:  # PyAV raises many error types for corrupt input
        raise AudioError(f"cannot decode audio ({type(exc).__name__})") from exc
    if not chunks or rate <= 0:
        raise AudioError("no decodable audio samples")
    return np.concatenate(chunks).astype(np.float32), rate
