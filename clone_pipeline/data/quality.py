"""Quality metrics (overall score, coverage, diversity, depth) and the readiness gate for a
collected dataset."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from clone_pipeline.data.examples import Example


@dataclass(frozen=True)
class ReadinessPolicy:
    """Ready to train: at least 50 responses of 20+ words in 5+ categories."""

    min_responses: int = 50
    min_words_per_response: int = 20
    min_categories: int = 5


@dataclass
class QualityMetrics:
    overall_score: int  # 0-100, see quality_metrics() for the formula
    category_coverage: int  # distinct response categories
    emotional_diversity: int  # distinct emotional tones
    total_examples: int
    total_words: int
    qualifying_responses: int  # responses with at least min_words_per_response words
    sources: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Readiness:
    ready: bool
    score: int  # 0-100: how far the data is towards the gate (100 = every threshold met)
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def quality_metrics(examples: Sequence[Example], policy: ReadinessPolicy) -> QualityMetrics:
    """Measure the dataset. overall_score weights what makes a persona learnable:

    40 points volume (qualifying responses / 2 x the minimum), 30 coverage (categories /
    2 x the minimum), 15 emotional range (tones / 6), 15 depth (share of examples of at least
    50 words). Each part is capped at its weight.
    """
    responses = [e for e in examples if e.source == "responses"]
    qualifying = sum(1 for e in responses if e.word_count >= policy.min_words_per_response)
    categories = Counter(e.category for e in responses if e.category)
    tones = {e.emotional_tone for e in examples if e.emotional_tone}
    deep = sum(1 for e in examples if e.word_count >= 50)
    parts = (
        40 * min(1.0, qualifying / (2 * policy.min_responses)),
        30 * min(1.0, len(categories) / (2 * policy.min_categories)),
        15 * min(1.0, len(tones) / 6),
        15 * (deep / len(examples) if examples else 0.0),
    )
    return QualityMetrics(
        overall_score=round(sum(parts)),
        category_coverage=len(categories),
        emotional_diversity=len(tones),
        total_examples=len(examples),
        total_words=sum(e.word_count for e in examples),
        qualifying_responses=qualifying,
        sources=dict(Counter(e.source for e in examples)),
        categories=dict(sorted(categories.items())),
    )


def assess_readiness(metrics: QualityMetrics, policy: ReadinessPolicy) -> Readiness:
    """Ready when every threshold is met; otherwise the reasons say what is missing."""
    reasons = []
    if metrics.qualifying_responses < policy.min_responses:
        reasons.append(
            f"{metrics.qualifying_responses} responses of {policy.min_words_per_response}+ "
            f"words; at least {policy.min_responses} needed")
    if metrics.category_coverage < policy.min_categories:
        reasons.append(f"{metrics.category_coverage} question categories covered; at least "
                       f"{policy.min_categories} needed")
    progress = (min(1.0, metrics.qualifying_responses / policy.min_responses)
                + min(1.0, metrics.category_coverage / policy.min_categories)) / 2
    return Readiness(ready=not reasons, score=round(100 * progress), reasons=reasons)
