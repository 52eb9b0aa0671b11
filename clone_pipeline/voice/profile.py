"""A speaker's voice profile as typed figures: what voice_profile measures, what alignment,
speech and the tables read, and what is stored (as a plain dict) in voice_profiles.profile.
Every figure is measured; None means it could not be."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class PitchFigures:
    floor_hz: float  # the speaker's own analysis range
    ceiling_hz: float
    median_hz: float
    percentiles_hz: dict[str, float]  # p5, p10, p25, p50, p75, p90, p95
    range_st: float  # p5 to p95, in semitones
    final_rise_share: float  # share of sentences ending in a rise
    final_fall_share: float


@dataclass(frozen=True)
class TimingFigures:
    speaking_rate_syll_s: float | None  # syllables per second, pauses included
    articulation_rate_syll_s: float | None  # ... pauses excluded
    words_per_minute: float | None
    pauses_per_minute: float | None  # gaps of 150 ms or more
    pause_median_s: float | None
    pause_p90_s: float | None


@dataclass(frozen=True)
class EnergyFigures:
    intensity_median_db: float | None
    intensity_p10_db: float | None
    intensity_p90_db: float | None
    stress_prominence: float | None  # summed z-scores of stressed words' peaks


@dataclass(frozen=True)
class VoiceQualityFigures:
    jitter_local: float | None
    shimmer_local: float | None
    hnr_db: float | None


@dataclass(frozen=True)
class FormantFigures:
    f1_hz: float | None
    f2_hz: float | None
    f3_hz: float | None


@dataclass(frozen=True)
class SpeakerProfile:
    passages: int  # usable passages it was measured from
    pitch: PitchFigures
    timing: TimingFigures
    energy: EnergyFigures
    voice_quality: VoiceQualityFigures
    formants: FormantFigures
    mfcc: dict[str, list[float]] | None = None  # 13 coefficients: mean and std
    speaker_embedding: list[float] | None = None  # 256 dimensions, unit length
    completeness: float = 0.0  # share of figures measured, scaled by passages / 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeakerProfile:
        """From to_dict's shape; other keys stored beside it (warnings, artefact) are ignored."""
        values = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            nested = _NESTED.get(f.name)
            values[f.name] = (nested(**{g.name: data[f.name][g.name] for g in fields(nested)})
                              if nested else data[f.name])
        return cls(**values)

    def summary(self) -> str:
        """The profile in four readable lines (the asset's metadata and the README show it)."""
        p, t, e, q, f = self.pitch, self.timing, self.energy, self.voice_quality, self.formants
        return "\n".join((
            f"pitch:  median {p.median_hz:.1f} Hz, p5-p95 {p.percentiles_hz['p5']:.1f}-"
            f"{p.percentiles_hz['p95']:.1f} Hz, range {p.range_st:.1f} st, sentence endings "
            f"{p.final_fall_share:.0%} falling",
            f"timing: {_fmt(t.speaking_rate_syll_s, '.2f')} syllables/s speaking, "
            f"{_fmt(t.articulation_rate_syll_s, '.2f')} articulating, "
            f"{_fmt(t.words_per_minute, '.0f')} words/min, "
            f"{_fmt(t.pauses_per_minute, '.2f')} pauses/min "
            f"(median {_fmt(t.pause_median_s, '.2f')} s)",
            f"energy: median {_fmt(e.intensity_median_db, '.1f')} dB "
            f"(p10 {_fmt(e.intensity_p10_db, '.1f')}, p90 {_fmt(e.intensity_p90_db, '.1f')}), "
            f"stress prominence {_fmt(e.stress_prominence, '.2f')}",
            f"quality: jitter {_fmt(q.jitter_local, '.3f')}, "
            f"shimmer {_fmt(q.shimmer_local, '.2f')}, "
            f"HNR {_fmt(q.hnr_db, '.1f')} dB; F1/F2/F3 {_fmt(f.f1_hz, '.0f')}/"
            f"{_fmt(f.f2_hz, '.0f')}/{_fmt(f.f3_hz, '.0f')} Hz; completeness {self.completeness}",
        ))

    def scalar_figures(self) -> list[Any]:
        """Every single-number figure of the five groups (for completeness)."""
        return [getattr(group, f.name) for group in (self.pitch, self.timing, self.energy,
                                                      self.voice_quality, self.formants)
                for f in fields(group) if not isinstance(getattr(group, f.name), dict)]


def _fmt(value: float | None, spec: str) -> str:
    return "unmeasured" if value is None else format(value, spec)


_NESTED = {"pitch": PitchFigures, "timing": TimingFigures, "energy": EnergyFigures,
           "voice_quality": VoiceQualityFigures, "formants": FormantFigures}
