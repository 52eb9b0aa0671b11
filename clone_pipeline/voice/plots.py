"""Plots of a voice analysis, for people to look at."""

from __future__ import annotations

from pathlib import Path

from clone_pipeline.files import pyplot
from clone_pipeline.voice.analysis import VoiceAnalysis


def pitch_contour_png(analysis: VoiceAnalysis, path: Path) -> Path | None:
    """Pitch contour of the first usable passage with its words, for people to look at."""
    passage = next((p for p in analysis.usable if p.contour is not None), None)
    if passage is None:
        return None
    plt = pyplot()
    import numpy as np

    times, f0 = passage.contour
    f0 = np.where(f0 > 0, f0, np.nan)
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    ax.plot(times, f0, ".", markersize=2.5, color="#1f77b4")
    median = analysis.profile.pitch.median_hz
    ax.axhline(median, color="#888", linewidth=0.8, linestyle="--")
    top = np.nanmax(f0) if np.any(np.isfinite(f0)) else median * 1.5
    for w in passage.alignment.words:
        ax.axvline(w.start, color="#ddd", linewidth=0.5, zorder=0)
        ax.text(w.start, top * 1.02, w.word, fontsize=6, rotation=60, va="bottom")
    ax.set_xlabel("seconds")
    ax.set_ylabel("pitch (Hz)")
    ax.set_title(f"Pitch contour, passage {passage.recording.passage_id or ''} "
                 f"(median {median:.0f} Hz)", fontsize=9)
    ax.set_ylim(analysis.profile.pitch.floor_hz, top * 1.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
