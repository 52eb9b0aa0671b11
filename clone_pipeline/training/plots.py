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
