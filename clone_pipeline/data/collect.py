"""Turn a person's source material into clean, redacted, deduplicated training examples."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from clone_pipeline.data.dedup import deduplicate
from clone_pipeline.data.examples import Example
from clone_pipeline.data.pii import PiiPolicy, Redactor
from clone_pipeline.data.quality import (
    QualityMetrics,
    Readiness,
    ReadinessPolicy,
    assess_readiness,
    quality_metrics,
)
from clone_pipeline.data.text_clean import normalise_text, word_count


@dataclass(frozen=True)
class CollectOptions:
    """The seed's collect-data options plus privacy and readiness settings."""

    include_life_stories: bool = True
    include_milestones: bool = True
    min_word_count: int = 20
    keep_own_name: bool = True
    redact_names: tuple[str, ...] = ()
    near_duplicate_threshold: float = 0.7
    readiness: ReadinessPolicy = field(default_factory=ReadinessPolicy)


@dataclass
class SourceMaterial:
    """A user's stored material as plain dicts (see db.repository.load_source_material)."""

    external_id: str
    display_name: str
    persona: dict[str, Any] = field(default_factory=dict)
    birth_year: int | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)
    life_stories: list[dict[str, Any]] = field(default_factory=list)
    milestone_messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Collection:
    examples: list[Example]
    skipped: Counter  # reason -> count
    redactions: Counter  # placeholder type -> count
    metrics: QualityMetrics
    readiness: Readiness


def _group_key(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def story_prompt(item: dict[str, Any]) -> str:
    if item.get("title"):
        return f"Tell me the story of \"{normalise_text(item['title'])}\"."
    if item.get("category"):
        return f"Tell me a story from your life about {item['category']}."
    return "Tell me a story from your life."


def message_prompt(item: dict[str, Any]) -> str:
    recipient = normalise_text(item.get("recipient") or "") or "someone you love"
    occasion = normalise_text(item.get("occasion") or "")
    return f"Write a message to {recipient} for {occasion}." if occasion \
        else f"Write a message to {recipient}."


def _raw_examples(material: SourceMaterial, options: CollectOptions) -> Iterable[Example]:
    for r in material.responses:
        yield Example(id=f"responses:{r['item_id']}", source="responses",
                      prompt=normalise_text(r["question"]), answer=r["answer"],
                      category=r.get("category"), emotional_tone=r.get("emotional_tone"),
                      group=_group_key(r["question"]))
    if options.include_life_stories:
        for s in material.life_stories:
            prompt = story_prompt(s)
            yield Example(id=f"life_stories:{s['item_id']}", source="life_stories",
                          prompt=prompt, answer=s["content"], category=s.get("category"),
                          group=f"life_stories:{s['item_id']}")
    if options.include_milestones:
        for m in material.milestone_messages:
            yield Example(id=f"milestone_messages:{m['item_id']}", source="milestone_messages",
                          prompt=message_prompt(m), answer=m["content"],
                          category=m.get("occasion"),
                          group=f"milestone_messages:{m['item_id']}")


def collect(material: SourceMaterial, options: CollectOptions | None = None,
            progress: Callable[[str], None] | None = None) -> Collection:
    """Normalise, redact, filter and deduplicate a user's material, then assess it.

    Empty, emoji-only or too-short answers are skipped with a count, never an error.
    """
    options = options or CollectOptions()
    names = list(options.redact_names)
    if not options.keep_own_name:
        names += [p for p in material.display_name.split() if len(p) > 1]
    redactor = Redactor(PiiPolicy(redact_names=tuple(names)))
    skipped: Counter = Counter()
    redactions: Counter = Counter()
    kept: list[Example] = []
    for example in _raw_examples(material, options):
        text = normalise_text(example.answer)
        words = word_count(text)
        if words == 0:
            skipped["empty_or_no_words"] += 1
            continue
        if words < options.min_word_count:
            skipped["below_min_word_count"] += 1
            continue
        text, counts = redactor.redact(text)
        prompt, prompt_counts = redactor.redact(example.prompt)
        counts.update(prompt_counts)
        redactions.update(counts)
        example.answer, example.prompt = text, prompt
        example.word_count, example.redactions = words, dict(counts)
        kept.append(example)
    if progress:
        progress(f"cleaned {len(kept)} examples, deduplicating")
    dedup = deduplicate([e.answer for e in kept], threshold=options.near_duplicate_threshold)
    skipped["exact_duplicate"] += dedup.exact_duplicates
    skipped["near_duplicate"] += dedup.near_duplicates
    examples = [e for e, keep in zip(kept, dedup.keep, strict=True) if keep]
    metrics = quality_metrics(examples, options.readiness)
    readiness = assess_readiness(metrics, options.readiness)
    if not examples:
        readiness.reasons.insert(0, "no usable material: every item was empty, too short "
                                    "or a duplicate" if sum(skipped.values())
                                 else "no material imported for this user")
    return Collection(examples, +skipped, redactions, metrics, readiness)
