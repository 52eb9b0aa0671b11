"""The loss curve is Markdown short enough for the Dagster UI to show in place (under 1,000
characters: longer Markdown hides behind an unexplained "[Show Markdown]" link)."""

import math
from urllib.parse import unquote

from clone_pipeline.defs.metadata import UI_INLINE_MARKDOWN, inline_svg
from clone_pipeline.training.plots import loss_curve_svg

CAPTION = ("Loss per optimizer step, nats per answer token (lower is better): train (blue) "
           "8.412 to 4.321, held-out (orange) best 5.300. Full-size plot: loss_curve_path.")


def _history(steps: int, eval_every: int) -> list[dict]:
    return [{"step": i, "loss": 8 - math.log(i),
             "eval_loss": 7 - math.log(i) if i % eval_every == 0 else None}
            for i in range(1, steps + 1)]


def test_a_long_run_still_draws_inline_with_both_lines():
    for steps, eval_every in ((6, 3), (240, 8), (5000, 1)):
        markdown = inline_svg(loss_curve_svg(_history(steps, eval_every)), CAPTION).value
        assert len(markdown) < UI_INLINE_MARKDOWN, (steps, len(markdown))
        assert markdown.startswith("![chart](data:image/svg+xml,%3Csvg")
        svg = unquote(markdown.split("(", 1)[1].split(")", 1)[0].removeprefix(
            "data:image/svg+xml,"))
        assert svg.count("<polyline") == 2 and svg.endswith("</svg>")
        assert " " not in markdown.split(")", 1)[0]  # a valid Markdown link destination


def test_no_steps_gives_the_caption_alone():
    assert inline_svg(loss_curve_svg([]), "no steps reported").value == "no steps reported"
