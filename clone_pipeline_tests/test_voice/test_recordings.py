"""Decoding every supported container, and clear reasons for recordings we cannot use."""

import av
import numpy as np
import pytest
import soundfile as sf

from clone_pipeline.voice import espeak
from clone_pipeline.voice.analysis import Recording, analyse_recordings, inspect_recording
from clone_pipeline.voice.audio_io import ANALYSIS_RATE, load_audio, resample
from clone_pipeline.voice.synthesis import median_pitch

TEXT = "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."


@pytest.fixture(scope="module")
def speech():
    r = espeak.render(TEXT, pitch=40)
    return r.audio, r.sample_rate


def _write_webm(path, audio, rate):
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "stereo"
        data = resample(audio, rate, 48000)
        interleaved = np.stack([data, data], axis=1).reshape(1, -1).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout="stereo")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3", ".webm"])
def test_every_container_decodes_to_the_same_mono_16k_speech(tmp_path, speech, suffix):
    audio, rate = speech
    at44 = resample(audio, rate, 44100)
    stereo44 = np.stack([at44, 0.5 * at44], axis=1)
    path = tmp_path / f"clip{suffix}"
    if suffix == ".webm":
        _write_webm(path, audio, rate)
    else:
        fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[suffix]
        sf.write(str(path), stereo44, 44100, format=fmt)
    decoded = load_audio(path)
    assert decoded.ndim == 1 and decoded.dtype == np.float32
    assert abs(len(decoded) / ANALYSIS_RATE - len(audio) / rate) < 0.1  # codec padding only
    reference = median_pitch(audio, rate)
    assert abs(median_pitch(decoded, ANALYSIS_RATE) - reference) / reference < 0.02
    passage = inspect_recording(Recording("r", "p", TEXT, path))
    assert passage.usable, passage.quality.to_dict()


def _wav(tmp_path, name, audio, rate=ANALYSIS_RATE):
    path = tmp_path / name
    sf.write(str(path), audio, rate)
    return path


def test_bad_recordings_get_clear_reasons_and_the_good_ones_are_still_used(tmp_path, speech):
    audio, rate = speech
    good = resample(audio, rate, ANALYSIS_RATE)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(200))
    german = espeak.render("Der Nordwind und die Sonne stritten sich, wer von ihnen der "
                           "Stärkere wäre, als ein Wanderer kam.", voice="de")
    recordings = [
        Recording("good", "p1", TEXT, _wav(tmp_path, "good.wav", good)),
        Recording("silent", "p2", TEXT, _wav(tmp_path, "silent.wav", np.zeros(5 * 16000))),
        Recording("clipped", "p3", TEXT, _wav(tmp_path, "clip.wav", np.clip(good * 8, -1, 1))),
        Recording("short", "p4", TEXT, _wav(tmp_path, "short.wav", good[:8000])),
        Recording("corrupt", "p5", TEXT, corrupt),
        Recording("german", "p6", TEXT, _wav(tmp_path, "de.wav", german.audio,
                                             german.sample_rate)),
        Recording("wrong-text", "p7", "Completely different words were written for this "
                  "recording than were spoken aloud here.", _wav(tmp_path, "w.wav", good)),
    ]
    analysis = analyse_recordings(recordings, embed=False)
    reasons = {k: " ".join(v) for k, v in analysis.reasons().items()}
    assert [p.recording.recording_id for p in analysis.usable] == ["good"]
    assert "silent" in reasons["silent"]
    assert "clipped" in reasons["clipped"]
    assert "too short" in reasons["short"]
    assert "corrupt" in reasons["corrupt"]
    assert "does not match the transcript" in reasons["german"]
    assert "does not match the transcript" in reasons["wrong-text"]
    assert analysis.profile.pitch.median_hz > 0  # built from the one good recording
    assert any("1 usable passage" in w for w in analysis.warnings)


def test_no_usable_recording_gives_reasons_not_a_crash(tmp_path):
    analysis = analyse_recordings(
        [Recording("s", "p", TEXT, _wav(tmp_path, "s.wav", np.zeros(3 * 16000)))])
    assert analysis.profile is None and not analysis.usable
    assert "silent" in analysis.reasons()["s"][0]
