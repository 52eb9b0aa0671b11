"""Voice assets: voice_profile and voice_alignment (voice-LLM integration)."""

import dagster as dg

from clone_pipeline.defs.config import VoiceIntegrationConfig
from clone_pipeline.defs.metadata import inline_png, table
from clone_pipeline.defs.partitions import per_user_check, users
from clone_pipeline.defs.resources import CloneSettings
from clone_pipeline.services.voice import build_voice_alignment, build_voice_profile
from clone_pipeline.voice.integration import THRESHOLDS
from clone_pipeline.voice.quality import QUALITY_BAR


@dg.asset(
    partitions_def=users,
    group_name="voice",
    kinds={"python", "sql"},
    check_specs=[per_user_check(
        "audio_quality", asset="voice_profile", blocking=True,
        description=f"At least one recording decodes, is not silent, clipped or too short, "
                    f"matches its transcript and scores {QUALITY_BAR:.0f}% or more.")],
    description="The speaker's voice profile from their read passages: pitch, timing, "
                "energy and stress, voice quality, timbre and a speaker embedding.",
)
def voice_profile(context: dg.AssetExecutionContext, clone: CloneSettings) -> dg.MaterializeResult:
    settings = clone.settings()
    outcome = build_voice_profile(settings, context.partition_key, context.run.run_id)
    analysis, profile = outcome.analysis, outcome.analysis.profile
    for warning in analysis.warnings:
        context.log.warning(f"{context.partition_key}: {warning}")
    reasons = analysis.reasons()
    for rec_id, why in reasons.items():
        context.log.warning(f"{context.partition_key}: recording {rec_id} not used: "
                            f"{'; '.join(why)}")
    rows = [[p.recording.recording_id, p.recording.passage_id, p.quality.score,
             "yes" if p.usable else "no", "; ".join(p.quality.reasons) or "-"]
            for p in analysis.passages]
    metadata = {
        "profile_id": str(outcome.profile_id),
        "artefact": dg.MetadataValue.path(str(outcome.artefact)),
        "usable_passages": len(analysis.usable),
        "recordings": table(["recording", "passage", "quality", "usable", "reasons"], rows),
    }
    if profile is not None:
        pitch, timing, vq = profile.pitch, profile.timing, profile.voice_quality
        figures = profile.to_dict()
        metadata.update({
            "pitch_median_hz": pitch.median_hz, "pitch_range_st": pitch.range_st,
            "speaking_rate_syll_s": timing.speaking_rate_syll_s,
            "articulation_rate_syll_s": timing.articulation_rate_syll_s,
            "pauses_per_minute": timing.pauses_per_minute,
            "jitter_local": vq.jitter_local, "shimmer_local": vq.shimmer_local,
            "hnr_db": vq.hnr_db, "formants": dg.MetadataValue.json(figures["formants"]),
            "completeness": profile.completeness,
            "summary": dg.MetadataValue.text(profile.summary()),
            "profile": dg.MetadataValue.json({k: v for k, v in figures.items()
                                              if k not in ("mfcc", "speaker_embedding")}),
        })
    if outcome.plot is not None:
        metadata["pitch_contour"] = inline_png(outcome.plot, "pitch contour")
        metadata["pitch_contour_path"] = dg.MetadataValue.path(str(outcome.plot))
    passed = bool(analysis.usable)
    if passed:
        description = f"{len(analysis.usable)} of {len(analysis.passages)} recordings usable"
    elif not analysis.passages:
        description = "no voice recordings imported for this user"
    else:
        description = "no usable recording: " + " | ".join(
            f"{k}: {'; '.join(v)}" for k, v in reasons.items())
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[dg.AssetCheckResult(
            check_name="audio_quality", passed=passed, severity=dg.AssetCheckSeverity.ERROR,
            description=f"{description[:900]} (user {context.partition_key})",
            metadata={"user": context.partition_key, "usable": len(analysis.usable),
                      "recordings": len(analysis.passages),
                      "warnings": "; ".join(analysis.warnings) or "none"})],
    )


@dg.asset(
    partitions_def=users,
    group_name="voice",
    kinds={"python", "sql"},
    deps=[voice_profile],
    check_specs=[per_user_check(
        "integration_valid", asset="voice_alignment", blocking=True,
        description="Alignment accuracy, emotional consistency, profile completeness and "
                    "recording quality meet their thresholds: " +
                    ", ".join(f"{k} >= {v}" for k, v in THRESHOLDS.items()))],
    description="Voice-text alignment in five stages: word timings, prosody tags "
                "relative to the speaker, voice-conditioned training examples, validation.",
)
def voice_alignment(context: dg.AssetExecutionContext, config: VoiceIntegrationConfig,
                    clone: CloneSettings) -> dg.MaterializeResult:
    settings = clone.settings()
    outcome = build_voice_alignment(settings, context.partition_key, config.settings(),
                                    context.run.run_id)
    result = outcome.result
    for name, stage in result.stages.items():
        context.log.info(f"{context.partition_key}: stage {name}: {stage['status']} "
                         f"in {stage['seconds']} s")
    rows = [[name, s["status"], s["seconds"]] for name, s in result.stages.items()]
    return dg.MaterializeResult(
        metadata={
            "integration_id": str(outcome.integration_id),
            "folder": dg.MetadataValue.path(str(outcome.folder)),
            "stages": table(["stage", "status", "seconds"], rows),
            **{k: v for k, v in result.figures.items() if v is not None},
            "voice_examples": len(result.examples),
            "flagged_passages": ", ".join(
                result.stages["voice_text_alignment"]["flagged_passages"]) or "none",
            # The examples quote the person, so they stay in the data root, not in Dagster.
            "voice_examples_file": dg.MetadataValue.path(
                str(outcome.folder / "conversational.jsonl")),
        },
        check_results=[dg.AssetCheckResult(
            check_name="integration_valid", passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=("all thresholds met" if result.passed else "; ".join(result.reasons))
            + f" (user {context.partition_key})",
            metadata={"user": context.partition_key,
                      **{k: v for k, v in result.figures.items() if v is not None}})],
    )
