"""Analysis and alignment accuracy against signals whose truth is known."""

import importlib.util
from pathlib import Path

import numpy as np
import parselmouth
import pytest
from parselmouth.praat import call

from clone_pipeline.voice import espeak
from clone_pipeline.voice.alignment import (
    AlignmentError,
    _get_aligner,
    forced_align,
    syllable_count,
    tokenize,
)
from clone_pipeline.voice.analysis import Recording, analyse_recordings, pitch_track
from clone_pipeline.voice.audio_io import ANALYSIS_RATE, resample
from clone_pipeline.voice.synthesis import median_pitch, speaking_rate

from .signals import RATE, vowel, with_noise

TEXT = ("The North Wind and the Sun were disputing which was the stronger, when a traveler "
        "came along wrapped in a warm cloak.")


@pytest.mark.parametrize("f0", [85.0, 120.0, 220.0, 300.0])
def test_pitch_of_synthetic_vowels_within_one_percent(f0):
    audio, _ = vowel(f0)
    _, track = pitch_track(audio, 60, 600)
    assert abs(np.median(track[track > 0]) - f0) / f0 < 0.01


@pytest.mark.parametrize(("jitter", "shimmer"), [(0.0, 0.0), (0.01, 0.0), (0.02, 0.05)])
def test_jitter_and_shimmer_near_their_true_values(jitter, shimmer):
    audio, truth = vowel(120, 3.0, jitter, shimmer)
    sound = parselmouth.Sound(audio.astype(float), RATE)
    pp = call(sound, "To PointProcess (periodic, cc)", 60, 300)
    measured_j = call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
    measured_s = call([sound, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
    if jitter == 0:
        assert measured_j < 0.001 and measured_s < 0.002  # a perfect voice reads as one
    else:
        assert measured_j == pytest.approx(truth["jitter"], rel=0.25)
        if shimmer:
            assert measured_s == pytest.approx(truth["shimmer"], rel=0.35)


@pytest.mark.parametrize("hnr", [5.0, 10.0, 20.0])
def test_hnr_within_one_db(hnr):
    audio = with_noise(vowel(150, 3.0)[0], hnr)
    sound = parselmouth.Sound(audio.astype(float), RATE)
    for step in (0.01, 0.1):  # the profile uses the coarse step for speed
        measured = call(sound.to_harmonicity_cc(time_step=step, minimum_pitch=75),
                        "Get mean", 0, 0)
        assert abs(measured - hnr) < 1.0


def _render16(text=TEXT, **kw):
    r = espeak.render(text, **kw)
    return r, resample(r.audio, r.sample_rate, ANALYSIS_RATE)


def test_espeak_pitch_and_rate_settings_are_recovered_monotonically():
    pitches, rates = [], []
    for p in (10, 40, 70, 95):
        r = espeak.render(TEXT, pitch=p)
        pitches.append(median_pitch(r.audio, r.sample_rate))
    assert all(b > a * 1.05 for a, b in zip(pitches, pitches[1:], strict=False)), pitches
    syllables = syllable_count(TEXT)
    for wpm in (120, 160, 200, 240):
        r = espeak.render(TEXT, rate=wpm)
        rates.append(speaking_rate(r.audio, r.sample_rate, syllables))
    assert all(b > a * 1.1 for a, b in zip(rates, rates[1:], strict=False)), rates


@pytest.mark.parametrize(("pitch", "rate"), [(20, 130), (50, 175), (80, 220)])
def test_alignment_matches_espeak_word_positions(pitch, rate):
    rendering, audio = _render16(pitch=pitch, rate=rate)
    alignment = forced_align(audio, TEXT)
    known = {char: sample / rendering.sample_rate for char, _, sample in rendering.words}
    errors = [abs(w.start - known[w.char_start]) for w in alignment.words
              if w.char_start in known]
    assert len(errors) >= len(alignment.words) - 2  # eSpeak fuses a few unstressed words
    assert np.median(errors) < 0.040


def _arctic() -> Path:
    return (Path(importlib.util.find_spec("pysptk").origin).parent
            / "example_audio_data" / "arctic_a0007.wav")


def test_real_human_recording_is_analysed_and_aligned_sensibly():
    text = "and you always want to see it in the superlative degree"
    analysis = analyse_recordings([Recording("arctic", "a0007", text, _arctic())],
                                  embed=False)
    (passage,) = analysis.passages
    assert passage.usable, passage.quality.to_dict()
    assert 70 < analysis.profile.pitch.median_hz < 300
    words = passage.alignment.words
    assert [w.word for w in words] == [t.text for t in tokenize(text)]
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end > w.start for w in words)
    assert words[-1].end <= passage.quality.duration_s + 0.01
    assert 2.5 < analysis.profile.timing.speaking_rate_syll_s < 7.0
    assert analysis.warnings  # one passage of the seed's four


def test_out_of_vocabulary_words_get_espeak_pronunciations():
    text = "Grandma Okafor baked zorbleberry pies for the Delgado twins."
    rendering, audio = _render16(text)
    alignment = forced_align(audio, text)  # raises if any word could not be placed
    assert "zorbleberry" in [w.word for w in alignment.words]
    # the decoder learnt it from eSpeak NG (this call, or an earlier one in the process)
    assert _get_aligner().decoder.lookup_word("zorbleberry")
    known = {char: sample / rendering.sample_rate for char, _, sample in rendering.words}
    errors = [abs(w.start - known[w.char_start]) for w in alignment.words
              if w.char_start in known]
    assert np.median(errors) < 0.040


def test_an_out_of_vocabulary_transcript_for_other_speech_fails_loudly():
    _, audio = _render16()
    with pytest.raises(AlignmentError, match="does not match the transcript"):
        forced_align(audio, "Xqzt brrk vlorp zindle quaffix.")
    with pytest.raises(AlignmentError, match="no words"):
        forced_align(audio, "... --- !!!")


def test_speaker_embedding_tells_speakers_apart():
    import json

    from clone_pipeline.demo import PERSONAS_DIR
    from clone_pipeline.voice.analysis import speaker_embedding
    from clone_pipeline.voice.audio_io import load_audio

    def passages(name):
        doc = json.loads((PERSONAS_DIR / name / "export.json").read_text())
        return [load_audio(PERSONAS_DIR / name / v["file"]) for v in doc["voice_recordings"]]

    walter, rosa = passages("walter-okafor"), passages("rosa-delgado")
    w1, w2 = (np.array(speaker_embedding([a])) for a in (walter[0], walter[1]))
    r1 = np.array(speaker_embedding([rosa[0]]))
    assert abs(np.linalg.norm(w1) - 1) < 1e-3  # unit vectors: dot product is cosine
    assert float(w1 @ w2) > float(w1 @ r1) + 0.05
