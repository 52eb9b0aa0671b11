"""clone-pipeline speak: a reply in a voice matched to a user's profile."""

from __future__ import annotations

from pathlib import Path

import click

from clone_pipeline.cli.common import console, ready


@click.command()
@click.argument("external_id")
@click.argument("text")
@click.option("--emotion", default="neutral", show_default=True,
              help="Emotional tone: neutral, warm, cheerful, calm, serious, sad, excited.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("reply.wav"), show_default=True, help="WAV file to write.")
@click.option("--backend", default="espeak-ng", show_default=True,
              help="Speech backend (espeak-ng ships with the project).")
def speak(external_id: str, text: str, emotion: str, out: Path, backend: str) -> None:
    """Say TEXT in a voice matched to EXTERNAL_ID's profile (pitch and speaking rate; this
    is prosody matching, not voice cloning) and report how close it came."""
    import numpy as np
    import soundfile as sf

    from clone_pipeline.services.voice import NoVoiceProfileError, speak_as
    from clone_pipeline.voice.analysis import speaker_embedding
    from clone_pipeline.voice.audio_io import ANALYSIS_RATE, resample

    settings = ready()
    try:
        with console.status("synthesising and matching the profile"):
            speech, found = speak_as(settings, external_id, text, emotion, backend)
    except (NoVoiceProfileError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    profile = found.figures
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), speech.audio, speech.sample_rate, subtype="PCM_16")
    report = speech.report()
    if profile.speaker_embedding:
        reply = speaker_embedding([resample(speech.audio, speech.sample_rate, ANALYSIS_RATE)])
        report["speaker_similarity"] = round(float(np.dot(reply, profile.speaker_embedding)), 3)
    console.print(f"wrote {out} ({report['duration_s']} s)")
    # The emotion moves the target away from the profile: label each figure for what it is.
    console.print(f"pitch {report['f0_hz']} Hz (target for {emotion} {report['target_f0_hz']} "
                  f"Hz, profile median {profile.pitch.median_hz:.1f} Hz; error "
                  f"{report['pitch_error_pct']}%)")
    console.print(f"rate {report['rate_syll_s']} syll/s (target for {emotion} "
                  f"{report['target_rate_syll_s']}, profile "
                  f"{profile.timing.speaking_rate_syll_s:.2f}; error {report['rate_error_pct']}%)")
    console.print(f"within tolerance of the target: {'yes' if speech.within_tolerance else 'no'}")
    if "speaker_similarity" in report:
        console.print(f"speaker similarity to the recordings (Resemblyzer cosine): "
                      f"{report['speaker_similarity']} - timbre is eSpeak's, not theirs")


COMMANDS = (speak,)
