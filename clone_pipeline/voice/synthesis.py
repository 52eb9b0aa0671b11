"""Speech out, matched to a voice profile: prosody matching, not voice cloning.

`VoiceSynthesizer` is the interface; `EspeakSynthesizer` is the offline backend. It speaks
with eSpeak NG and closes the loop on the two figures people hear most: it synthesises,
measures median pitch (Praat) and speaking rate (syllables per second of speech), corrects
the engine's rate, then moves the pitch to the target with Praat's PSOLA, and repeats until
both are within tolerance (5% pitch, 10% rate). The timbre stays eSpeak's.

A real cloning backend (e.g. a neural TTS with a speaker encoder) implements the same
`synthesize(text, target)` and returns the same `Speech`, so the CLI and the re-measurement
do not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from clone_pipeline.voice import espeak
from clone_pipeline.voice.alignment import syllable_count
from clone_pipeline.voice.audio_io import frame_rms
from clone_pipeline.voice.profile import SpeakerProfile

PITCH_TOLERANCE = 0.05
RATE_TOLERANCE = 0.10

# Emotional tone -> (pitch factor, rate factor, pitch-range factor) relative to the person's
# neutral reading. Small moves: the aim is their voice in a mood, not a different voice.
EMOTIONS: dict[str, tuple[float, float, float]] = {
    "neutral": (1.00, 1.00, 1.0),
    "warm": (0.97, 0.94, 1.15),
    "cheerful": (1.08, 1.08, 1.35),
    "calm": (0.96, 0.88, 0.75),
    "serious": (0.95, 0.95, 0.8),
    "sad": (0.93, 0.85, 0.7),
    "excited": (1.12, 1.15, 1.5),
}


@dataclass(frozen=True)
class ProsodyTarget:
    f0_median_hz: float
    speaking_rate_syll_s: float
    emotion: str = "neutral"

    @classmethod
    def from_profile(cls, profile: SpeakerProfile | None,
                     emotion: str = "neutral") -> ProsodyTarget:
        if profile is None or profile.timing.speaking_rate_syll_s is None:
            raise ValueError("the voice profile has no median pitch or speaking rate")
        return cls(float(profile.pitch.median_hz), float(profile.timing.speaking_rate_syll_s),
                   emotion)

    def for_emotion(self) -> tuple[float, float, float]:
        """Pitch (Hz), rate (syll/s) and range factor the emotion asks for."""
        if self.emotion not in EMOTIONS:
            raise ValueError(f"unknown emotion {self.emotion!r}; "
                             f"choose from {', '.join(sorted(EMOTIONS))}")
        p, r, rng = EMOTIONS[self.emotion]
        return self.f0_median_hz * p, self.speaking_rate_syll_s * r, rng


@dataclass
class Speech:
    audio: np.ndarray
    sample_rate: int
    backend: str
    target_f0_hz: float
    target_rate_syll_s: float
    f0_hz: float
    rate_syll_s: float
    iterations: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def pitch_error(self) -> float:
        return abs(self.f0_hz - self.target_f0_hz) / self.target_f0_hz

    @property
    def rate_error(self) -> float:
        return abs(self.rate_syll_s - self.target_rate_syll_s) / self.target_rate_syll_s

    @property
    def within_tolerance(self) -> bool:
        return self.pitch_error <= PITCH_TOLERANCE and self.rate_error <= RATE_TOLERANCE

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate

    def report(self) -> dict[str, Any]:
        return {"backend": self.backend, "duration_s": round(self.duration_s, 2),
                "target_f0_hz": round(self.target_f0_hz, 1), "f0_hz": round(self.f0_hz, 1),
                "pitch_error_pct": round(100 * self.pitch_error, 2),
                "target_rate_syll_s": round(self.target_rate_syll_s, 2),
                "rate_syll_s": round(self.rate_syll_s, 2),
                "rate_error_pct": round(100 * self.rate_error, 2),
                "within_tolerance": self.within_tolerance, "iterations": self.iterations,
                "settings": self.settings}


class VoiceSynthesizer(Protocol):
    name: str

    def synthesize(self, text: str, target: ProsodyTarget) -> Speech: ...


# ------------------------------------------------------------------ measurement


def median_pitch(audio: np.ndarray, sample_rate: int, floor: float = 50,
                 ceiling: float = 700) -> float:
    import parselmouth

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sample_rate)
    f0 = sound.to_pitch_ac(time_step=0.01, pitch_floor=floor, pitch_ceiling=ceiling)
    f0 = f0.selected_array["frequency"]
    return float(np.median(f0[f0 > 0])) if np.any(f0 > 0) else float("nan")


def speech_span(audio: np.ndarray, sample_rate: int, top_db: float = 40) -> float:
    """Seconds from the first to the last 10 ms frame within *top_db* of the loudest one
    (plain numpy: librosa's equivalent costs seconds of JIT compilation on first use)."""
    hop = max(1, sample_rate // 100)
    rms = frame_rms(audio, hop)
    if len(rms) == 0:
        return 0.0
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-top_db / 20))
    return float(loud[-1] - loud[0] + 1) * hop / sample_rate if len(loud) else 0.0


def speaking_rate(audio: np.ndarray, sample_rate: int, syllables: int) -> float:
    """Syllables per second over the speech span (pauses included, as in the profile)."""
    return syllables / max(speech_span(audio, sample_rate), 1e-3)


def shift_pitch(audio: np.ndarray, sample_rate: int, factor: float, floor: float,
                ceiling: float) -> np.ndarray:
    """Multiply every pitch point by *factor* with Praat's PSOLA (overlap-add)."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(audio.astype(np.float64), sampling_frequency=sample_rate)
    manipulation = call(sound, "To Manipulation", 0.01, floor, ceiling)
    tier = call(manipulation, "Extract pitch tier")
    call(tier, "Multiply frequencies", sound.xmin, sound.xmax, factor)
    call([tier, manipulation], "Replace pitch tier")
    out = call(manipulation, "Get resynthesis (overlap-add)")
    return out.values[0].astype(np.float32)


# ------------------------------------------------------------------ eSpeak NG backend


_CAL_TEXT = ("The rainbow is a division of white light into many beautiful colors, "
             "and it takes the shape of a long round arch.")


@dataclass
class EspeakSynthesizer:
    """eSpeak NG with a measured calibration and a closed loop onto the target."""

    voice: str = "en-us"
    max_iterations: int = 4
    name: str = "espeak-ng"
    _pitch_table: list[tuple[int, float]] | None = None
    _rate_table: list[tuple[int, float]] | None = None

    def _calibrate(self) -> None:
        """eSpeak's -p and -s are not linear in Hz or syllables/s: measure them once."""
        if self._pitch_table is not None:
            return
        syllables = syllable_count(_CAL_TEXT)
        pitch, rate = [], []
        for p in (0, 20, 40, 60, 80, 99):
            r = espeak.render(_CAL_TEXT, voice=self.voice, pitch=p)
            pitch.append((p, median_pitch(r.audio, r.sample_rate)))
        for s in (80, 120, 160, 200, 260, 340):
            r = espeak.render(_CAL_TEXT, voice=self.voice, rate=s)
            rate.append((s, speaking_rate(r.audio, r.sample_rate, syllables)))
        self._pitch_table, self._rate_table = pitch, rate

    @staticmethod
    def _invert(table: list[tuple[int, float]], value: float, lo: int, hi: int) -> int:
        settings, measured = zip(*table, strict=True)
        return int(np.clip(round(np.interp(value, measured, settings)), lo, hi))

    def synthesize(self, text: str, target: ProsodyTarget) -> Speech:
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        self._calibrate()
        f0_goal, rate_goal, range_factor = target.for_emotion()
        syllables = syllable_count(text)
        pitch_setting = self._invert(self._pitch_table, f0_goal, 0, 99)
        rate_setting = self._invert(self._rate_table, rate_goal, 80, 450)
        range_setting = int(np.clip(round(50 * range_factor), 0, 99))
        floor, ceiling = f0_goal / 2.5, f0_goal * 2.5
        audio = np.zeros(0, np.float32)
        sr, f0, rate, i = 22050, float("nan"), float("nan"), 0
        for i in range(1, self.max_iterations + 1):
            r = espeak.render(text, voice=self.voice, rate=rate_setting, pitch=pitch_setting,
                              pitch_range=range_setting)
            audio, sr = r.audio, r.sample_rate
            rate = speaking_rate(audio, sr, syllables)
            if abs(rate - rate_goal) / rate_goal <= RATE_TOLERANCE / 2 or i == self.max_iterations:
                break
            # eSpeak's words-per-minute is close to proportional to syllables/s locally
            rate_setting = int(np.clip(round(rate_setting * rate_goal / rate), 80, 450))
        for _ in range(self.max_iterations):
            f0 = median_pitch(audio, sr, floor, ceiling)
            if not np.isfinite(f0) or abs(f0 - f0_goal) / f0_goal <= PITCH_TOLERANCE / 2:
                break
            audio = shift_pitch(audio, sr, f0_goal / f0, floor, ceiling)
            i += 1
        rate = speaking_rate(audio, sr, syllables)
        settings = {"voice": self.voice, "pitch": pitch_setting, "rate_wpm": rate_setting,
                    "range": range_setting, "emotion": target.emotion}
        return Speech(audio, sr, self.name, f0_goal, rate_goal, f0, rate, i, settings)


def synthesizer(backend: str = "espeak-ng", **options) -> VoiceSynthesizer:
    """The synthesiser named *backend* (the plug-in point for other engines)."""
    if backend == "espeak-ng":
        return EspeakSynthesizer(**options)
    raise ValueError(f"unknown speech backend {backend!r} (available: espeak-ng)")


__all__ = ["EMOTIONS", "EspeakSynthesizer", "ProsodyTarget", "Speech", "VoiceSynthesizer",
           "median_pitch", "speaking_rate", "synthesizer"]
