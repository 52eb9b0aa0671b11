"""Audio inspection without a system ffmpeg. Imports verify by decoding with PyAV (its bundled
FFmpeg); analysis reads with libsndfile first, PyAV for WebM and what libsndfile cannot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SUPPORTED_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".oga", ".mp3", ".webm"}
# libsndfile's frame count when a header leaves the length unknown (streaming encoders)
_UNKNOWN_FRAMES = 2**63 - 1


class AudioError(ValueError):
    """The file is not audio we can read; the message says why."""


class AudioTooLong(AudioError):
    """Decoding passed the duration limit and stopped there."""


@dataclass(frozen=True)
class AudioInfo:
    format: str  # container judged from the content: wav, flac, ogg, mp3, webm
    codec: str  # FFmpeg's name for the audio codec: pcm_s16le, flac, vorbis, opus, mp3
    sample_rate: int  # Hz
    channels: int
    duration_s: float  # seconds actually decoded, not what the header claims

    @property
    def suffix(self) -> str:
        return f".{self.format}"


ALLOWED = "WAV, FLAC, OGG/Opus, MP3 or WebM"
# Container -> FFmpeg's demuxer for it. Naming the demuxer stops FFmpeg probing formats (such
# as playlists) that would open further files.
_DEMUXER = {"wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3", "webm": "matroska"}
# A decoded length this far short of the header's is a cut or damaged file (MP3 and Opus
# headers are not sample-exact, so allow a little).
_SHORTFALL_S = 0.5
_SHORTFALL_RATIO = 0.02


def sniff_container(path: Path) -> str:
    """wav, flac, ogg, mp3 or webm, judged from the file's first bytes, never its name."""
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, of which WebM is a profile
        if b"webm" not in head:
            raise AudioError(f"Matroska audio but not WebM; use {ALLOWED}")
        return "webm"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] >= 0xE0):
        return "mp3"  # an ID3 tag or an MPEG audio frame sync
    raise AudioError(f"not {ALLOWED} audio (judged from the content, not the file name)")


def probe_audio(path: Path, max_seconds: float) -> AudioInfo:
    """Container, codec, rate, channels and duration of *path*, found by decoding it.

    Decoding stops once more than *max_seconds* have decoded (AudioTooLong), so the work is
    bounded whatever the header says. A file that fails to decode, or decodes to clearly less
    than its header announces, is damaged (AudioError).
    """
    import av

    container = sniff_container(path)
    try:
        with av.open(str(path), format=_DEMUXER[container]) as media:
            if not media.streams.audio:
                raise AudioError("no audio stream")
            stream = media.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or 0)
            if rate <= 0:
                raise AudioError("cannot read the sample rate")
            announced = float(stream.duration * stream.time_base) \
                if stream.duration and stream.time_base else None
            limit, decoded = max_seconds * rate, 0
            for frame in media.decode(stream):
                decoded += frame.samples
                if decoded > limit:
                    raise AudioTooLong(f"recording lasts more than {max_seconds / 60:g} min; "
                                       f"the limit is {max_seconds / 60:g} min")
            codec = stream.codec_context.codec.canonical_name
            channels = int(stream.codec_context.channels or 1)
    except AudioError:
        raise
    except Exception as exc:  # PyAV raises many error types for corrupt input
        raise AudioError(f"audio file is damaged: decoding failed "
                         f"({type(exc).__name__})") from exc
    duration = decoded / rate
    if announced and announced - duration > max(_SHORTFALL_S, _SHORTFALL_RATIO * announced):
        raise AudioError(f"audio file is damaged: its header announces {announced:.1f} s "
                         f"but only {duration:.1f} s decode")
    return AudioInfo(container, codec, rate, channels, duration)


# Every analysis works at one rate: pocketsphinx's acoustic model expects 16 kHz, and Praat
# and librosa are accurate there for speech. Decode, downmix and resample once, here.
ANALYSIS_RATE = 16_000


def load_audio(path: Path, sample_rate: int = ANALYSIS_RATE) -> np.ndarray:
    """Mono float32 samples of *path* at *sample_rate* (any container we can probe)."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise AudioError(f"unsupported audio type {suffix or '(none)'}; use {ALLOWED}")
    audio, rate = None, 0
    if suffix != ".webm":
        try:
            with sf.SoundFile(str(path)) as fh:
                # libsndfile cannot read a file whose header leaves the length unknown
                if fh.frames != _UNKNOWN_FRAMES:
                    audio = fh.read(dtype="float32", always_2d=True).mean(axis=1)
                    rate = fh.samplerate
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
