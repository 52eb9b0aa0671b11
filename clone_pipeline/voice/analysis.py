"""A speaker's voice profile from their read passages (Praat through parselmouth).

Per recording: decode, measure quality, align the transcript, then measure pitch in two
passes (60-600 Hz, then the speaker's own floor 0.75 x q25 and ceiling 1.5 x q75 over all
their recordings), timing from the word timings, loudness and stress, jitter/shimmer/HNR,
formants, MFCCs and a speaker embedding. Medians and percentiles throughout: means are
pulled around by octave slips and pauses.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from clone_pipeline.voice.alignment import (
    Alignment,
    AlignmentError,
    WordTiming,
    cross_check,
    dtw_word_starts,
    forced_align,
)
from clone_pipeline.voice.audio_io import ANALYSIS_RATE, AudioError, load_audio, resample
from clone_pipeline.voice.lazy import process_singleton
from clone_pipeline.voice.profile import (
    EnergyFigures,
    FormantFigures,
    PitchFigures,
    SpeakerProfile,
    TimingFigures,
    VoiceQualityFigures,
)
from clone_pipeline.voice.quality import QUALITY_BAR, Quality, measure

EXPECTED_PASSAGES = 4  # the standard reading set: four passages
PAUSE_S = 0.15  # a gap between words at least this long is a pause
EMBED_MAX_S = 20  # seconds of audio the speaker embedding averages over
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?:\s|$)")


@dataclass(frozen=True)
class Recording:
    recording_id: str
    passage_id: str | None
    text: str
    path: Path


@dataclass
class PassageAnalysis:
    recording: Recording
    quality: Quality
    audio: np.ndarray | None = None
    alignment: Alignment | None = None
    cross_check: dict[str, Any] | None = None
    features: dict[str, Any] = field(default_factory=dict)
    sentences: list[dict[str, Any]] = field(default_factory=list)
    contour: tuple[np.ndarray, np.ndarray] | None = None  # pitch track (times, Hz) for plots

    @property
    def usable(self) -> bool:
        return self.alignment is not None and self.quality.usable

    def summary(self) -> dict[str, Any]:
        words = [w.to_dict() for w in self.alignment.words] if self.alignment else []
        return {"recording_id": self.recording.recording_id,
                "passage_id": self.recording.passage_id, "usable": self.usable,
                "quality": self.quality.to_dict(), "cross_check": self.cross_check,
                "features": self.features, "sentences": self.sentences, "words": words}


@dataclass
class VoiceAnalysis:
    passages: list[PassageAnalysis]
    profile: SpeakerProfile | None  # None when no recording was usable
    warnings: list[str]
    timings: dict[str, float] = field(default_factory=dict)  # alignment_s, profile_s

    @property
    def usable(self) -> list[PassageAnalysis]:
        return [p for p in self.passages if p.usable]

    def reasons(self) -> dict[str, list[str]]:
        return {p.recording.recording_id: p.quality.reasons or
                [f"quality {p.quality.score} below {QUALITY_BAR}"]
                for p in self.passages if not p.usable}

    def to_json(self) -> dict[str, Any]:
        """Everything but the audio: what the integration stages and the API need."""
        return {"profile": self.profile.to_dict() if self.profile else {},
                "warnings": self.warnings, "timings": self.timings,
                "passages": [{**p.summary(), "text": p.recording.text,
                              "path": str(p.recording.path)} for p in self.passages]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VoiceAnalysis:
        passages = []
        for d in data["passages"]:
            q = dict(d["quality"])
            quality = Quality(**{k: q[k] for k in Quality.__dataclass_fields__})
            words = [WordTiming(**w) for w in d["words"]]
            rec = Recording(d["recording_id"], d["passage_id"], d["text"], Path(d["path"]))
            passages.append(PassageAnalysis(
                rec, quality, alignment=Alignment(words) if words else None,
                cross_check=d["cross_check"], features=d["features"],
                sentences=d["sentences"]))
        profile = SpeakerProfile.from_dict(data["profile"]) if data["profile"] else None
        return cls(passages, profile, data["warnings"], data.get("timings", {}))


# ------------------------------------------------------------------ per recording


def inspect_recording(rec: Recording) -> PassageAnalysis:
    """Decode, measure quality and align; reasons instead of exceptions for bad input."""
    try:
        audio = load_audio(rec.path)
    except (AudioError, OSError) as exc:
        q = Quality(0.0, 0.0, -200.0, -200.0, 0.0, 0.0, 1.0, reasons=[f"corrupt: {exc}"])
        return PassageAnalysis(rec, q)
    passage = PassageAnalysis(rec, measure(audio, ANALYSIS_RATE), audio=audio)
    if passage.quality.reasons:
        return passage
    try:
        passage.alignment = forced_align(audio, rec.text)
        passage.cross_check = cross_check(passage.alignment, dtw_word_starts(audio, rec.text))
        passage.quality.coverage = 1.0
    except AlignmentError as exc:
        passage.quality.coverage = 0.0
        passage.quality.reasons.append(str(exc))
    return passage


def _sound(audio: np.ndarray, rate: int = ANALYSIS_RATE):
    import parselmouth

    return parselmouth.Sound(audio.astype(np.float64), sampling_frequency=rate)


def praat_pitch(sound, floor: float, ceiling: float, step: float = 0.01):
    """Praat's autocorrelation pitch. Keyword arguments on purpose: the third positional
    argument of to_pitch_ac is the number of candidates, not the ceiling."""
    return sound.to_pitch_ac(time_step=step, pitch_floor=floor, pitch_ceiling=ceiling)


def pitch_track(audio: np.ndarray, floor: float, ceiling: float,
                step: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(times, f0 Hz with 0 for unvoiced) every *step* seconds."""
    pitch = praat_pitch(_sound(audio), floor, ceiling, step)
    return pitch.xs(), pitch.selected_array["frequency"]


def speaker_pitch_range(audios: list[np.ndarray]) -> tuple[float, float]:
    """Floor and ceiling for the second pass, from a wide first pass over every recording."""
    # quartiles only: a 20 ms step is plenty
    voiced = np.concatenate([f[f > 0] for _, f in (pitch_track(a, 60, 600, 0.02)
                                                   for a in audios)])
    if len(voiced) < 10:
        return 60.0, 600.0
    q25, q75 = np.percentile(voiced, [25, 75])
    return max(40.0, 0.75 * q25), min(900.0, 1.5 * q75)


def _semitones(f: np.ndarray, ref: float) -> np.ndarray:
    return 12 * np.log2(np.maximum(f, 1e-6) / ref)


def _at(times: np.ndarray, values: np.ndarray, start: float, end: float) -> np.ndarray:
    return values[(times >= start) & (times < end)]


def measure_passage(p: PassageAnalysis, floor: float, ceiling: float) -> None:
    """Fill in the acoustic features and per-sentence prosody of one usable passage."""
    from parselmouth.praat import call

    audio, words = p.audio, p.alignment.words
    sound = _sound(audio)
    pitch = praat_pitch(sound, floor, ceiling)
    times, f0 = pitch.xs(), pitch.selected_array["frequency"]
    p.contour = (times, f0)
    voiced = f0[f0 > 0]
    intensity = sound.to_intensity(minimum_pitch=floor, time_step=0.01)
    i_times, i_db = intensity.xs(), intensity.values[0]
    span_start, span_end = words[0].start, words[-1].end
    speech_db = _at(i_times, i_db, span_start, span_end)

    gaps = [b.start - a.end for a, b in zip(words, words[1:], strict=False)]
    pauses = [g for g in gaps if g >= PAUSE_S]
    syllables = sum(w.syllables for w in words)
    span = max(span_end - span_start, 1e-3)

    point_process = call([sound, pitch], "To PointProcess (cc)")  # reuses the pitch track
    jitter = call(point_process, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
    shimmer = call([sound, point_process], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
    # HNR and formants are passage averages: a coarse step gives the same medians for a
    # fraction of the cost
    harmonicity = sound.to_harmonicity_cc(time_step=0.1, minimum_pitch=floor)
    hnr = call(harmonicity, "Get mean", 0, 0)
    median_f0 = float(np.median(voiced)) if len(voiced) else float("nan")
    # Burg's method works at twice the highest formant; resampling here with soxr is much
    # cheaper than letting Praat do it
    max_formant = 5500 if median_f0 > 165 else 5000
    formant = _sound(resample(audio, ANALYSIS_RATE, 2 * max_formant), 2 * max_formant
                     ).to_formant_burg(time_step=0.05, max_number_of_formants=5,
                                       maximum_formant=float(max_formant))
    voiced_times = times[f0 > 0]
    formants = {}
    for n in (1, 2, 3):
        vals = np.array([formant.get_value_at_time(n, t) for t in voiced_times[::5]])
        vals = vals[np.isfinite(vals)]
        formants[f"f{n}_hz"] = round(float(np.median(vals)), 1) if len(vals) else None

    prominence = _word_prominence(words, times, f0, i_times, i_db)
    p.features = {
        "voiced_frames": int(len(voiced)),
        "f0_median_hz": _r(median_f0),
        "speaking_rate_syll_s": _r(syllables / span),
        "articulation_rate_syll_s": _r(syllables / max(span - sum(pauses), 1e-3)),
        "words_per_minute": _r(60 * len(words) / span),
        "pauses_per_minute": _r(60 * len(pauses) / span),
        "pause_lengths_s": [round(x, 3) for x in pauses],
        "intensity_db": {"median": _r(np.median(speech_db)),
                         "p10": _r(np.percentile(speech_db, 10)),
                         "p90": _r(np.percentile(speech_db, 90))},
        "jitter_local": _r(jitter, 5), "shimmer_local": _r(shimmer, 5), "hnr_db": _r(hnr),
        "formants": formants,
        "stress_prominence_db": _r(_stress_prominence(prominence)),
    }
    p.sentences = _sentences(p.recording.text, words, times, f0, prominence)


def _word_prominence(words, times, f0, i_times, i_db) -> list[float]:
    """Prominence of each word: z-scores of its peak loudness, peak pitch and its length per
    syllable within the passage, summed (stressed words stand out on all three)."""
    peak_db, peak_st, dur = [], [], []
    ref = np.median(f0[f0 > 0]) if np.any(f0 > 0) else 100.0
    for w in words:
        seg_db = _at(i_times, i_db, w.start, w.end)
        seg_f0 = _at(times, f0, w.start, w.end)
        seg_f0 = seg_f0[seg_f0 > 0]
        peak_db.append(seg_db.max() if len(seg_db) else np.nan)
        peak_st.append(_semitones(seg_f0, ref).max() if len(seg_f0) else np.nan)
        dur.append((w.end - w.start) / w.syllables)

    def z(x):
        x = np.array(x, dtype=float)
        sd = np.nanstd(x)
        return np.nan_to_num((x - np.nanmean(x)) / sd if sd > 0 else x * 0)

    return list(z(peak_db) + z(peak_st) + z(dur))


def _stress_prominence(prominence: list[float]) -> float:
    """How much the most prominent fifth of words stands out from the median word."""
    if len(prominence) < 5:
        return float("nan")
    return float(np.percentile(prominence, 90) - np.median(prominence))


def _final_contour(times, f0, start: float, end: float) -> tuple[str, float]:
    """Rise or fall over the last word: second half vs first half of its voiced pitch."""
    seg = _at(times, f0, start, end)
    seg = seg[seg > 0]
    if len(seg) < 4:
        return "level", 0.0
    half = len(seg) // 2
    change = float(12 * np.log2(np.median(seg[half:]) / np.median(seg[:half])))
    return ("rise" if change > 1.0 else "fall" if change < -1.0 else "level"), change


def _sentences(text: str, words, times, f0, prominence) -> list[dict[str, Any]]:
    """Per-sentence prosody in absolute terms; conditioning makes it relative later."""
    bounds, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        bounds.append((start, m.end()))
        start = m.end()
    if start < len(text.strip()):
        bounds.append((start, len(text)))
    out = []
    for lo, hi in bounds:
        idx = [i for i, w in enumerate(words) if lo <= w.char_start < hi]
        if not idx:
            continue
        sw = [words[i] for i in idx]
        seg = _at(times, f0, sw[0].start, sw[-1].end)
        seg = seg[seg > 0]
        span = max(sw[-1].end - sw[0].start, 1e-3)
        gaps = [b.start - a.end for a, b in zip(sw, sw[1:], strict=False)]
        contour, change = _final_contour(times, f0, sw[-1].start, sw[-1].end)
        prom = [prominence[i] for i in idx]
        # at most two emphasised words a sentence, each well above the passage's typical word
        top = sorted(prom, reverse=True)[:2]
        cut = max(1.5, top[-1]) if len(prom) >= 3 else float("inf")
        out.append({
            "text": text[lo:hi].strip(),
            "start_s": round(sw[0].start, 3), "end_s": round(sw[-1].end, 3),
            "rate_syll_s": _r(sum(w.syllables for w in sw) / span),
            "f0_median_hz": _r(np.median(seg)) if len(seg) else None,
            "f0_range_st": _r(_semitones(np.percentile(seg, 90), np.percentile(seg, 10)))
            if len(seg) >= 4 else None,
            "pauses": sum(g >= PAUSE_S for g in gaps),
            "final_contour": contour, "final_change_st": _r(change),
            "emphasised": [w.word for w, pr in zip(sw, prom, strict=True) if pr >= cut],
        })
    return out


def _r(x, nd: int = 2):
    x = float(x)
    return None if not np.isfinite(x) else round(x, nd)


# ------------------------------------------------------------------ the speaker


def _make_encoder():
    with warnings.catch_warnings():  # its imports use deprecated scipy/setuptools APIs
        warnings.simplefilter("ignore")
        from resemblyzer import VoiceEncoder
    return VoiceEncoder("cpu", verbose=False)


_encoder = process_singleton(_make_encoder)


def speaker_embedding(audios: list[np.ndarray]) -> list[float]:
    """Resemblyzer's d-vector over the audio (its encoder ships in the wheel), unit length."""
    import torch

    encoder = _encoder()
    from resemblyzer import preprocess_wav

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small LSTM: more threads only contend on a busy machine
    try:
        # the d-vector is an average over windows: 20 s of speech is plenty, bounds the cost
        wav = preprocess_wav(np.concatenate(audios)[:EMBED_MAX_S * ANALYSIS_RATE],
                             source_sr=ANALYSIS_RATE)
        # 0.7 windows a second instead of 1.3: cosine 0.998 to the default, half the time
        return [round(float(x), 5) for x in encoder.embed_utterance(wav, rate=0.7)]
    finally:
        torch.set_num_threads(threads)


def mfcc_summary(audios: list[np.ndarray]) -> dict[str, list[float]]:
    import librosa

    m = np.concatenate([librosa.feature.mfcc(y=a, sr=ANALYSIS_RATE, n_mfcc=13, n_fft=400,
                                             hop_length=160) for a in audios], axis=1)
    return {"mean": [round(float(x), 2) for x in m.mean(axis=1)],
            "std": [round(float(x), 2) for x in m.std(axis=1)]}


def analyse_recordings(recordings: list[Recording], embed: bool = True) -> VoiceAnalysis:
    """The voice profile of one speaker from their recordings (unusable ones are reported)."""
    started = time.perf_counter()
    passages = [inspect_recording(r) for r in recordings]
    timings = {"alignment_s": time.perf_counter() - started}
    started = time.perf_counter()
    usable = [p for p in passages if p.usable]
    warnings = []
    if usable and len(usable) < EXPECTED_PASSAGES:
        warnings.append(f"{len(usable)} usable passage(s); the profile is more reliable with "
                        f"{EXPECTED_PASSAGES}")
    if not usable:
        return VoiceAnalysis(passages, None, warnings, timings)
    floor, ceiling = speaker_pitch_range([p.audio for p in usable])
    for p in usable:
        measure_passage(p, floor, ceiling)
    profile = replace(
        _profile(usable, floor, ceiling), mfcc=mfcc_summary([p.audio for p in usable]),
        speaker_embedding=speaker_embedding([p.audio for p in usable]) if embed else None)
    profile = replace(profile, completeness=completeness(profile, len(usable)))
    timings["profile_s"] = time.perf_counter() - started
    return VoiceAnalysis(passages, profile, warnings, timings)


def _profile(usable: list[PassageAnalysis], floor: float, ceiling: float) -> SpeakerProfile:
    f0 = np.concatenate([c[1][c[1] > 0] for c in (p.contour for p in usable)])
    pcts = np.percentile(f0, [5, 10, 25, 50, 75, 90, 95])
    finals = [s["final_contour"] for p in usable for s in p.sentences]
    feats = [p.features for p in usable]

    def med(key, sub=None, nd=2):
        vals = [(f[key][sub] if sub else f[key]) for f in feats]
        vals = [v for v in vals if v is not None]
        return _r(np.median(vals), nd) if vals else None

    pauses = [x for f in feats for x in f["pause_lengths_s"]]
    return SpeakerProfile(
        passages=len(usable),
        pitch=PitchFigures(
            floor_hz=_r(floor), ceiling_hz=_r(ceiling), median_hz=_r(pcts[3]),
            percentiles_hz=dict(zip(("p5", "p10", "p25", "p50", "p75", "p90", "p95"),
                                    (_r(x) for x in pcts), strict=True)),
            range_st=_r(_semitones(pcts[6], pcts[0])),
            final_rise_share=_r(finals.count("rise") / max(len(finals), 1)),
            final_fall_share=_r(finals.count("fall") / max(len(finals), 1))),
        timing=TimingFigures(
            speaking_rate_syll_s=med("speaking_rate_syll_s"),
            articulation_rate_syll_s=med("articulation_rate_syll_s"),
            words_per_minute=med("words_per_minute"),
            pauses_per_minute=med("pauses_per_minute"),
            pause_median_s=_r(np.median(pauses), 3) if pauses else None,
            pause_p90_s=_r(np.percentile(pauses, 90), 3) if pauses else None),
        energy=EnergyFigures(
            intensity_median_db=med("intensity_db", "median"),
            intensity_p10_db=med("intensity_db", "p10"),
            intensity_p90_db=med("intensity_db", "p90"),
            stress_prominence=med("stress_prominence_db")),
        voice_quality=VoiceQualityFigures(
            jitter_local=med("jitter_local", nd=5), shimmer_local=med("shimmer_local", nd=5),
            hnr_db=med("hnr_db")),
        formants=FormantFigures(**{
            k: _r(np.median([f["formants"][k] for f in feats
                             if f["formants"][k] is not None] or [np.nan]), 1)
            for k in ("f1_hz", "f2_hz", "f3_hz")}),
    )


def completeness(profile: SpeakerProfile, usable_passages: int) -> float:
    """Share of profile figures measured, scaled by the share of the four passages read."""
    values = [*profile.scalar_figures(), profile.mfcc, profile.speaker_embedding]
    measured = sum(v is not None for v in values) / len(values)
    return round(measured * min(1.0, usable_passages / EXPECTED_PASSAGES), 3)

