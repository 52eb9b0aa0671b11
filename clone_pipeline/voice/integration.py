"""Voice-LLM integration: five stages from a voice analysis to validated,
voice-conditioned training examples.

1. voice_analysis: the profile (computed by `analysis.analyse_recordings`).
2. text_analysis: the person's writing style and the emotion of each passage's text.
3. voice_text_alignment: word timings (pocketsphinx) cross-checked by eSpeak NG + DTW.
4. integrated_data: per-sentence prosody tags relative to the speaker, turned into training
   examples; emotional consistency of text and voice per passage.
5. validation: figures against thresholds (a 75% recording-quality bar, and bars for
   alignment accuracy, emotional consistency and completeness, see THRESHOLDS).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from clone_pipeline.data.examples import Example
from clone_pipeline.voice.analysis import PassageAnalysis, VoiceAnalysis
from clone_pipeline.voice.profile import SpeakerProfile
from clone_pipeline.voice.quality import QUALITY_BAR
from clone_pipeline.voice.text_style import text_emotion, writing_style

THRESHOLDS = {
    "alignment_accuracy": 0.80,  # share of words where both aligners agree within 150 ms
    "emotional_consistency": 0.60,  # 1 - mean |text arousal - voice arousal| / 2
    "profile_completeness": 0.75,  # share of profile figures measured x passages / 4
    "quality_score": QUALITY_BAR,  # mean quality of the usable recordings
}
READ_ALOUD_PROMPT = "Say this the way you would say it out loud: {text}"


@dataclass(frozen=True)
class IntegrationSettings:
    """How voice-text alignment turns recordings into weighted training examples."""

    voice_weight: float = 0.7  # relative weight of a voice example to a text example
    text_weight: float = 0.8
    emotional_alignment: bool = True  # measure (and require) text/voice emotional consistency
    prosody_mapping: bool = True  # prefix examples with rate/pitch/range/contour tags
    speech_pattern_learning: bool = True  # mark pauses (" / ") and emphasised *words* inline
    personality_consistency: bool = True  # keep the person's system prompt on voice examples

    def repeats(self) -> int:
        """How many times each voice example enters training (text examples enter once)."""
        if self.voice_weight <= 0:
            return 0
        return max(1, round(self.voice_weight / max(self.text_weight, 1e-6)))


@dataclass
class IntegrationResult:
    settings: IntegrationSettings
    stages: dict[str, dict[str, Any]]
    examples: list[Example]
    figures: dict[str, float | None]
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"settings": asdict(self.settings), "stages": self.stages,
                "figures": self.figures, "passed": self.passed, "reasons": self.reasons,
                "examples": len(self.examples)}


def _stage(stages: dict, name: str, started: float, status: str, **figures) -> None:
    stages[name] = {"status": status, "seconds": round(time.perf_counter() - started, 3),
                    **figures}


def relative_tags(sentence: dict[str, Any], profile: SpeakerProfile,
                  typical_range_st: float) -> dict[str, str]:
    """Rate, pitch and range of a sentence relative to the speaker's own habits."""
    rate = profile.timing.speaking_rate_syll_s or 1.0
    median = profile.pitch.median_hz
    r = sentence["rate_syll_s"] / rate
    tags = {"rate": "slow" if r < 0.9 else "fast" if r > 1.1 else "normal"}
    if sentence["f0_median_hz"]:
        st = 12 * np.log2(sentence["f0_median_hz"] / median)
        tags["pitch"] = "low" if st < -1.5 else "high" if st > 1.5 else "mid"
    if sentence["f0_range_st"] is not None and typical_range_st > 0:
        q = sentence["f0_range_st"] / typical_range_st
        tags["range"] = "narrow" if q < 0.75 else "wide" if q > 1.33 else "normal"
    tags["final"] = sentence["final_contour"]
    return tags


def _mark_speech(sentence: dict[str, Any], passage: PassageAnalysis) -> str:
    """The sentence with pauses as ' / ' and emphasised words as *word*."""
    words = [w for w in passage.alignment.words
             if sentence["start_s"] <= w.start and w.end <= sentence["end_s"] + 1e-6]
    emphasised = set(sentence["emphasised"])
    text = passage.recording.text
    out, cursor = [], words[0].char_start if words else 0
    for prev, w in zip([None, *words], words, strict=False):
        out.append(text[cursor:w.char_start])
        if prev is not None and w.start - prev.end >= 0.15:
            out[-1] = out[-1].rstrip() + " / "
        token = text[w.char_start:w.char_end]
        out.append(f"*{token}*" if w.word in emphasised else token)
        cursor = w.char_end
    tail = sentence["text"]
    return ("".join(out) + tail[len(tail.rstrip(".!?\"')")):]).strip()


def voice_examples(analysis: VoiceAnalysis, settings: IntegrationSettings) -> list[Example]:
    """One read-aloud example per recorded sentence, in the formats' Example shape."""
    ranges = [s["f0_range_st"] for p in analysis.usable for s in p.sentences
              if s["f0_range_st"] is not None]
    typical = float(np.median(ranges)) if ranges else 0.0
    out = []
    for p in analysis.usable:
        for i, s in enumerate(p.sentences):
            body = _mark_speech(s, p) if settings.speech_pattern_learning else s["text"]
            if settings.prosody_mapping:
                tags = relative_tags(s, analysis.profile, typical)
                body = "[voice " + " ".join(f"{k}={v}" for k, v in tags.items()) + "] " + body
            out.append(Example(id=f"voice_recordings:{p.recording.recording_id}:{i}",
                               source="voice_recordings",
                               prompt=READ_ALOUD_PROMPT.format(text=s["text"]), answer=body,
                               category="read_aloud", word_count=len(s["text"].split()),
                               group=f"voice:{p.recording.passage_id or p.recording.recording_id}"))
    return out


def acoustic_arousal(passages: list[PassageAnalysis], profile: SpeakerProfile) -> list[float]:
    """Per passage, how activated the voice is relative to the speaker's own readings:
    pitch (2 semitones = 1), loudness (3 dB = 1) and rate (20% = 1), averaged, tanh-squashed."""
    median = profile.pitch.median_hz
    loud = profile.energy.intensity_median_db
    rate = profile.timing.speaking_rate_syll_s
    out = []
    for p in passages:
        f = p.features
        parts = [12 * np.log2(f["f0_median_hz"] / median) / 2 if f["f0_median_hz"] else 0.0,
                 (f["intensity_db"]["median"] - loud) / 3 if f["intensity_db"]["median"] else 0,
                 (f["speaking_rate_syll_s"] / rate - 1) / 0.2 if rate else 0.0]
        out.append(float(np.tanh(np.mean(parts))))
    return out


def integrate(analysis: VoiceAnalysis, written: list[str],
              settings: IntegrationSettings | None = None) -> IntegrationResult:
    """Run stages 1-5 on a finished voice analysis and the person's written material."""
    settings = settings or IntegrationSettings()
    timings = analysis.timings
    stages: dict[str, dict[str, Any]] = {}
    usable = analysis.usable
    profile = analysis.profile
    completeness = profile.completeness if profile else 0.0
    stages["voice_analysis"] = {
        "status": "completed" if usable else "failed",
        "seconds": round(timings.get("profile_s", 0.0), 3),
        "usable_passages": len(usable), "passages": len(analysis.passages),
        "profile_completeness": completeness, "warnings": analysis.warnings}

    t = time.perf_counter()
    style = writing_style(written)
    emotions = {p.recording.recording_id: text_emotion(p.recording.text)
                for p in analysis.passages}
    _stage(stages, "text_analysis", t, "completed", writing_style=style,
           passage_emotion=emotions)

    aligned = [p for p in analysis.passages if p.alignment is not None]
    checked = [p for p in analysis.passages if p.quality.coverage is not None]  # attempted
    word_agreement = [p.cross_check["agreement"] for p in aligned]
    accuracy = (sum(word_agreement) / len(checked)) if checked else 0.0
    flagged = [p.recording.recording_id for p in aligned if p.cross_check["flagged"]]
    stages["voice_text_alignment"] = {
        "status": "completed" if aligned else "failed",
        "seconds": round(timings.get("alignment_s", 0.0), 3),
        "aligned_passages": len(aligned), "flagged_passages": flagged,
        "alignment_accuracy": round(accuracy, 3),
        "median_disagreement_ms": [p.cross_check["median_ms"] for p in aligned]}

    t = time.perf_counter()
    examples = voice_examples(analysis, settings) if usable else []
    consistency = None
    if usable and settings.emotional_alignment:
        text_ar = np.array([emotions[p.recording.recording_id]["arousal"] for p in usable])
        text_ar = text_ar - text_ar.mean()  # relative, like the acoustic side
        voice_ar = np.array(acoustic_arousal(usable, profile))
        consistency = float(1 - np.mean(np.abs(np.clip(text_ar, -1, 1) - voice_ar)) / 2)
    _stage(stages, "integrated_data", t, "completed" if examples else "failed",
           examples=len(examples), repeats_in_training=settings.repeats(),
           emotional_consistency=None if consistency is None else round(consistency, 3))

    t = time.perf_counter()
    scores = [p.quality.score for p in usable]
    figures = {"alignment_accuracy": round(accuracy, 3),
               "emotional_consistency": None if consistency is None else round(consistency, 3),
               "profile_completeness": completeness,
               "quality_score": round(float(np.mean(scores)), 1) if scores else 0.0}
    reasons = [f"{name} {figures[name]} is below {limit}" for name, limit in THRESHOLDS.items()
               if figures[name] is not None and figures[name] < limit]
    if not usable:
        reasons.insert(0, "no usable recording")
    _stage(stages, "validation", t, "passed" if not reasons else "failed", **figures,
           thresholds=THRESHOLDS)
    return IntegrationResult(settings, stages, examples, figures, not reasons, reasons)
