"""Passages a retriever can use, cut from a person's collected (cleaned and redacted)
material: one per answer with its question, and long stories and messages split at
sentence ends. Each keeps where it came from, so a reply can name its sources."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from clone_pipeline.data.examples import Example

# Long enough to hold one episode of a story, short enough that three or four fit in a
# system prompt beside the persona (about 160 tokens each).
MAX_WORDS = 120
_SENTENCE = re.compile(r"(?<=[.!?…])[\"”’)]?\s+(?=[\"“‘(]?[A-Z0-9À-Þ])")
_STORY_TITLE = re.compile(r'^Tell me the story of "(.*)"\.$')


@dataclass(frozen=True)
class Passage:
    id: str  # "<source>:<item id>#<part>", stable while the item's text is unchanged
    source: str  # responses | life_stories | milestone_messages
    item_id: str
    title: str  # the question answered, the story's title, or the message's occasion
    text: str  # redacted, in the person's words
    part: int = 0
    parts: int = 1

    @property
    def digest(self) -> str:
        """What the passage's embedding depends on: re-embedded only when this changes."""
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()[:16]

    def searchable(self) -> str:
        """The text both retrievers see: the question or title, then the words."""
        return f"{self.title}\n{self.text}" if self.title else self.text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Passage:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def split_text(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """*text* in pieces of at most about *max_words* words, cut between sentences (a single
    longer sentence stays whole)."""
    pieces, current, count = [], [], 0
    for sentence in _SENTENCE.split(text.strip()):
        words = len(sentence.split())
        if current and count + words > max_words:
            pieces.append(" ".join(current))
            current, count = [], 0
        current.append(sentence)
        count += words
    if current:
        pieces.append(" ".join(current))
    return pieces


def title_of(example: Example) -> str:
    """How a source is named to the family: the question, or the story's own title."""
    if example.source == "life_stories":
        found = _STORY_TITLE.match(example.prompt)
        return found.group(1) if found else (example.category or "a story")
    if example.source == "milestone_messages":
        return example.prompt.removeprefix("Write ").rstrip(".")
    return example.prompt


def passages_from_examples(examples: Iterable[Example],
                           max_words: int = MAX_WORDS) -> list[Passage]:
    """The passages of a collected dataset (its examples are already redacted)."""
    out = []
    for example in examples:
        source, _, item_id = example.id.partition(":")
        pieces = split_text(example.answer, max_words)
        out += [Passage(id=f"{example.id}#{n}", source=source, item_id=item_id,
                        title=title_of(example), text=piece, part=n, parts=len(pieces))
                for n, piece in enumerate(pieces)]
    return out
