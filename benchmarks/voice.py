"""Benchmark the voice side as multiples of real time (audio seconds per wall second).

On the bundled demo recordings (three speakers, four passages each):
- alignment: decode + quality + pocketsphinx forced alignment + eSpeak/DTW cross-check,
  beside a baseline of the eSpeak/DTW aligner alone;
- profile: the Praat-based profile (two-pass pitch, timing, intensity and stress,
  jitter/shimmer/HNR, formants, MFCCs, speaker embedding) given the alignment, beside a
  baseline in the seed's style (librosa pYIN pitch, RMS, MFCC);
- synthesis: closed-loop profile-matched speech, beside a single unmatched eSpeak render.

Models load and JIT compile once before timing (reported separately as cold start).

    python benchmarks/voice.py [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from harness import emit

TARGETS = {"profile": 50.0, "alignment": 10.0, "synthesis": 5.0}  # x real time, 2 cores
REPLIES = [
    "When I was a girl we kept the kettle on all day, and anyone who knocked was given a "
    "cup of tea and a chair by the window.",
    "Your grandfather never once let a birthday pass without a song, even when he could "
    "not carry a tune to save his life.",
    "Be kind to each other. Call your mother on Sundays. And always, always check the oil "
    "before a long drive.",
]


def _recordings():
    from clone_pipeline.demo import PERSONAS_DIR
    from clone_pipeline.voice.analysis import Recording

    out = {}
    for folder in sorted(PERSONAS_DIR.iterdir()):
        doc = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        out[folder.name] = [Recording(v["id"], v["passage_id"], v["text"], folder / v["file"])
                            for v in doc["voice_recordings"]]
    return out


def _baseline_profile(audio):
    """What the seed describes ("advanced voice analysis using librosa")."""
    import librosa
    import numpy as np

    f0, _, _ = librosa.pyin(audio, fmin=60, fmax=600, sr=16000, frame_length=1024)
    librosa.feature.rms(y=audio)
    librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=13)
    return float(np.nanmedian(f0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()

    from clone_pipeline.voice import analysis as an
    from clone_pipeline.voice import espeak
    from clone_pipeline.voice.alignment import dtw_word_starts
    from clone_pipeline.voice.audio_io import load_audio
    from clone_pipeline.voice.synthesis import EspeakSynthesizer, ProsodyTarget

    speakers = _recordings()
    first = next(iter(speakers.values()))[0]
    started = time.perf_counter()  # cold start: model loads, numba JIT, calibration
    warm = an.analyse_recordings([first])
    _baseline_profile(warm.passages[0].audio)
    synth = EspeakSynthesizer()
    synth.synthesize(REPLIES[0], ProsodyTarget(100, 4))
    cold = time.perf_counter() - started

    audio_s = align_s = profile_s = dtw_s = base_s = 0.0
    per_speaker = {}
    for name, recordings in speakers.items():
        t = time.perf_counter()
        passages = [an.inspect_recording(r) for r in recordings]
        a = time.perf_counter() - t
        usable = [p for p in passages if p.usable]
        t = time.perf_counter()
        floor, ceiling = an.speaker_pitch_range([p.audio for p in usable])
        for p in usable:
            an.measure_passage(p, floor, ceiling)
        an.mfcc_summary([p.audio for p in usable])
        an.speaker_embedding([p.audio for p in usable])
        prof = time.perf_counter() - t
        seconds = sum(len(p.audio) / 16000 for p in passages)
        t = time.perf_counter()
        for r in recordings:
            dtw_word_starts(load_audio(r.path), r.text)
        dtw = time.perf_counter() - t
        t = time.perf_counter()
        for p in usable:
            _baseline_profile(p.audio)
        base = time.perf_counter() - t
        per_speaker[name] = {"audio_s": round(seconds, 1), "usable": len(usable),
                             "alignment_x_rt": round(seconds / a, 1),
                             "profile_x_rt": round(seconds / prof, 1)}
        audio_s += seconds
        align_s += a
        profile_s += prof
        dtw_s += dtw
        base_s += base

    synth_audio = synth_wall = plain_audio = plain_wall = 0.0
    errors = []
    for target in (ProsodyTarget(86.4, 4.59), ProsodyTarget(105.4, 3.75),
                   ProsodyTarget(221.0, 5.0, "cheerful")):
        for text in REPLIES:
            t = time.perf_counter()
            speech = synth.synthesize(text, target)
            synth_wall += time.perf_counter() - t
            synth_audio += speech.duration_s
            errors.append((speech.pitch_error, speech.rate_error))
            t = time.perf_counter()
            plain = espeak.render(text)
            plain_wall += time.perf_counter() - t
            plain_audio += plain.duration_s

    results = {
        "alignment": {"ours_x_rt": round(audio_s / align_s, 1),
                      "baseline_dtw_only_x_rt": round(audio_s / dtw_s, 1)},
        "profile": {"ours_x_rt": round(audio_s / profile_s, 1),
                    "baseline_librosa_pyin_x_rt": round(audio_s / base_s, 1)},
        "synthesis": {"ours_closed_loop_x_rt": round(synth_audio / synth_wall, 1),
                      "baseline_unmatched_espeak_x_rt": round(plain_audio / plain_wall, 1),
                      "replies": len(errors),
                      "max_pitch_error_pct": round(100 * max(e[0] for e in errors), 2),
                      "max_rate_error_pct": round(100 * max(e[1] for e in errors), 2)},
    }
    report = {
        "benchmark": "voice", "cpu_count": os.cpu_count(), "audio_seconds": round(audio_s, 1),
        "cold_start_s": round(cold, 1), "results": results, "per_speaker": per_speaker,
        "targets_x_rt": TARGETS,
        "met": {"profile": results["profile"]["ours_x_rt"] >= TARGETS["profile"],
                "alignment": results["alignment"]["ours_x_rt"] >= TARGETS["alignment"],
                "synthesis": results["synthesis"]["ours_closed_loop_x_rt"]
                >= TARGETS["synthesis"]},
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
