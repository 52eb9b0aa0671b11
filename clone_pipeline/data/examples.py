"""The unit of training material: one prompt and the person's own answer to it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Example:
    id: str  # "<source>:<item id>", stable across re-collection
    source: str  # responses | life_stories | milestone_messages
    prompt: str  # the question (for stories and messages, a prompt built from their fields)
    answer: str  # cleaned and redacted text in the person's words
    category: str | None = None
    emotional_tone: str | None = None
    word_count: int = 0
    redactions: dict[str, int] = field(default_factory=dict)
    # The held-out split groups examples by this key (the normalised question), so the same
    # question never sits in both train and eval.
    group: str = ""
    # Memories retrieved for the prompt (never its own answer), read after the system prompt
    # as the gateway gives them at inference; None when formatted without memories.
    context: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Example:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
