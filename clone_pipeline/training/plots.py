"""Plots of a training run, for people to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clone_pipeline.files import pyplot


def loss_curve_png(metrics: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Training and held-out loss against step, as a PNG."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
    ax.plot([m["step"] for m in metrics], [m["loss"] for m in metrics], label="train loss")
    evals = [m for m in metrics if m.get("eval_loss") is not None]
    if evals:
        ax.plot([m["step"] for m in evals], [m["eval_loss"] for m in evals], "o-",
                label="held-out loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per answer token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def loss_curve_svg(metrics: list[dict[str, Any]], width: int = 240, height: int = 60,
                   max_points: int = 30) -> str:
    """Training (blue) and held-out (orange) loss against step as a small SVG line chart,
    at most *max_points* points per line, coordinates in whole pixels: a few hundred
    characters, small enough to show inline where a PNG would not fit."""
    def thin(series):  # every k-th point, the last kept
        step = max(1, -(-len(series) // max_points))
        return series[::step] + ([series[-1]] if (len(series) - 1) % step else [])

    evals = thin([(m["step"], m["eval_loss"]) for m in metrics
                  if m.get("eval_loss") is not None])
    train = thin([(m["step"], m["loss"]) for m in metrics if m.get("loss") is not None])
    points = train + evals
    if not points:
        return ""
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)

    def line(series, colour):
        xy = ",".join(f"{round((x - x0) / ((x1 - x0) or 1) * (width - 4)) + 2},"
                      f"{round((y1 - y) / ((y1 - y0) or 1) * (height - 4)) + 2}"
                      for x, y in series)
        return f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{xy}'/>"

    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
            f"<rect width='{width}' height='{height}' fill='white' stroke='#ccc'/>"
            f"{line(train, '#1f77b4')}{line(evals, '#ff7f0e') if evals else ''}</svg>")
