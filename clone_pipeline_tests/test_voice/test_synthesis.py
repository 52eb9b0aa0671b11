"""Speech out: replies re-measured independently land within tolerance of the profile."""

import pytest

from clone_pipeline.voice.alignment import forced_align, syllable_count
from clone_pipeline.voice.audio_io import ANALYSIS_RATE, resample
from clone_pipeline.voice.synthesis import (
    PITCH_TOLERANCE,
    RATE_TOLERANCE,
    EspeakSynthesizer,
    ProsodyTarget,
    median_pitch,
    synthesizer,
)

REPLY = ("When I was a girl we kept the kettle on all day, and anyone who knocked was given "
         "a cup of tea and a chair by the window.")


@pytest.fixture(scope="module")
def synth():
    return EspeakSynthesizer()


@pytest.mark.parametrize(("f0", "rate"), [(86.0, 4.6), (120.0, 4.0), (210.0, 3.6),
                                          (165.0, 5.2)])
def test_reply_matches_profile_pitch_and_rate(synth, f0, rate):
    speech = synth.synthesize(REPLY, ProsodyTarget(f0, rate))
    assert speech.within_tolerance, speech.report()
    # Re-measure independently: pitch by Praat on the output, rate from forced-alignment
    # word timings (which also shows the reply is intelligible to a recogniser).
    assert abs(median_pitch(speech.audio, speech.sample_rate) - f0) / f0 <= PITCH_TOLERANCE
    words = forced_align(resample(speech.audio, speech.sample_rate, ANALYSIS_RATE),
                         REPLY).words
    measured = syllable_count(REPLY) / (words[-1].end - words[0].start)
    assert abs(measured - rate) / rate <= RATE_TOLERANCE


def test_emotions_move_prosody_in_the_expected_direction(synth):
    base = ProsodyTarget(120.0, 4.2)
    neutral = synth.synthesize(REPLY, base)
    cheerful = synth.synthesize(REPLY, ProsodyTarget(120.0, 4.2, "cheerful"))
    calm = synth.synthesize(REPLY, ProsodyTarget(120.0, 4.2, "calm"))
    assert cheerful.f0_hz > neutral.f0_hz > calm.f0_hz
    assert cheerful.rate_syll_s > neutral.rate_syll_s > calm.rate_syll_s
    assert cheerful.within_tolerance and calm.within_tolerance


def test_bad_requests_fail_clearly(synth):
    with pytest.raises(ValueError, match="empty"):
        synth.synthesize("  ", ProsodyTarget(100, 4))
    with pytest.raises(ValueError, match="unknown emotion"):
        synth.synthesize(REPLY, ProsodyTarget(100, 4, "furious-ish"))
    with pytest.raises(ValueError, match="unknown speech backend"):
        synthesizer("cloned-voice-9000")
    with pytest.raises(ValueError, match="median pitch"):
        ProsodyTarget.from_profile(None)
