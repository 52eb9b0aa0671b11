"""Turn a person's source material into clean, redacted, deduplicated training examples."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from clone_pipeline.data.dedup import deduplicate
from clone_pipeline.data.examples import Example
from clone_pipeline.data.pii import PHONE_REGIONS, PiiPolicy, Redactor, redact_example
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
    """What to collect, how to clean and redact it, and when the result is ready."""

    include_life_stories: bool = True
    include_milestones: bool = True
    min_word_count: int = 20
    keep_own_name: bool = True
    redact_names: tuple[str, ...] = ()
    # Countries whose national phone formats are recognised (+CC numbers always are).
    phone_regions: tuple[str, ...] = PHONE_REGIONS
    near_duplicate_threshold: float = 0.7
    readiness: ReadinessPolicy = field(default_factory=ReadinessPolicy)
    # Processes for cleaning and redaction (0 = one per CPU). Above 1 it spawns workers,
    # so a calling script needs the usual `if __name__ == "__main__":` guard.
    workers: int = 1

    def pii_policy(self, display_name: str) -> PiiPolicy:
        """The redaction policy for a person called *display_name*."""
        names = list(self.redact_names)
        if not self.keep_own_name:
            names += [p for p in display_name.split() if len(p) > 1]
        return PiiPolicy(redact_names=tuple(names), phone_regions=tuple(self.phone_regions))


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

    @classmethod
    def from_export(cls, doc: dict[str, Any]) -> SourceMaterial:
        """Material straight from a (validated) user-export document, without a database."""
        def items(key: str) -> list[dict[str, Any]]:
            return [{**item, "item_id": item["id"]} for item in doc.get(key) or []]

        user = doc["user"]
        return cls(external_id=user["external_id"], display_name=user["display_name"],
                   persona=user.get("persona") or {}, birth_year=user.get("birth_year"),
                   responses=items("responses"), life_stories=items("life_stories"),
                   milestone_messages=items("milestone_messages"))


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
    questions: dict[str, str] = {}
    for r in material.responses:
        if r["question"] not in questions:
            questions[r["question"]] = normalise_text(r["question"])
        yield Example(id=f"responses:{r['item_id']}", source="responses",
                      prompt=questions[r["question"]], answer=r["answer"],
                      category=r.get("category"), emotional_tone=r.get("emotional_tone"))
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


_CHUNK = 20_000  # examples per worker task; below this, cleaning stays in-process


def _clean_chunk(args: tuple[list[Example], PiiPolicy, int]
                 ) -> tuple[list[Example], Counter, Counter]:
    """Normalise, filter and redact one chunk of examples (runs in a worker process)."""
    examples, policy, min_word_count = args
    redactor = Redactor(policy)
    kept: list[Example] = []
    skipped: Counter = Counter()
    redactions: Counter = Counter()
    for example in examples:
        text = normalise_text(example.answer)
        words = word_count(text)
        if words == 0:
            skipped["empty_or_no_words"] += 1
            continue
        if words < min_word_count:
            skipped["below_min_word_count"] += 1
            continue
        example.answer = text
        counts = redact_example(example, redactor)
        # A response is grouped by its question, as redacted (the key is in the file too).
        example.group = example.group or _group_key(example.prompt)
        redactions.update(counts)
        example.word_count, example.redactions = words, dict(counts)
        kept.append(example)
    return kept, skipped, redactions


def collect(material: SourceMaterial, options: CollectOptions | None = None,
            progress: Callable[[str], None] | None = None) -> Collection:
    """Normalise, redact, filter and deduplicate a user's material, then assess it.

    Empty, emoji-only or too-short answers are skipped with a count, never an error.
    """
    options = options or CollectOptions()
    policy = options.pii_policy(material.display_name)
    raw = list(_raw_examples(material, options))
    chunks = [raw[i:i + _CHUNK] for i in range(0, len(raw), _CHUNK)]
    args = [(chunk, policy, options.min_word_count) for chunk in chunks]
    workers = min(len(chunks), options.workers or os.cpu_count() or 1)
    if workers > 1:
        # Cleaning and redaction are independent per text. spawn, not fork: the parent may
        # hold threads (tokenizers, torch) that fork would copy mid-lock.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_clean_chunk, args))
    else:
        results = [_clean_chunk(a) for a in args]
    kept: list[Example] = []
    skipped: Counter = Counter()
    redactions: Counter = Counter()
    for chunk_kept, chunk_skipped, chunk_redactions in results:
        kept += chunk_kept
        skipped.update(chunk_skipped)
        redactions.update(chunk_redactions)
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
