"""Passages a retriever can use, cut from a person's collected (cleaned and redacted)
material: one per answer with its question, and long stories and messages split at
sentence ends. Each keeps where it came from, so a reply can name its sources, and, when she
recorded herself telling that answer or story, which recording and which seconds of it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, asdict, dataclass, replace
from difflib import SequenceMatcher
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
    # The recording of her telling this passage (its export id) and the seconds of it that
    # speak the passage's words; None where she never recorded it. Not part of the digest:
    # a new recording of an answer does not change what the passage says.
    recording_id: str | None = None
    start_s: float | None = None
    end_s: float | None = None

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
        """A saved passage; fields with defaults may be missing (indexes saved before they
        existed load with none)."""
        return cls(**{k: data[k] for k, f in cls.__dataclass_fields__.items()
                      if k in data or f.default is MISSING})


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


# ------------------------------------------------------------------ recordings that tell them

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
# Words said in the same order, this many or more in a row: the same telling, not the
# common words ("and", "the", "I was") any two passages share.
MIN_RUN = 3
SPAN_PAD_S = 0.15  # kept either side of the aligned words, so no word starts clipped


@dataclass(frozen=True)
class WordTime:
    char_start: int  # in the recording's transcript
    char_end: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Telling:
    """A recording in which the person tells one of their answers or stories aloud."""

    recording_id: str
    source: str  # responses | life_stories
    item_id: str
    transcript: str  # what she says in it (often a shorter telling than the written item)
    duration_s: float
    words: Sequence[WordTime] = ()  # voice_alignment's word timings, when it has run


def link_recordings(passages: Iterable[Passage], tellings: Iterable[Telling]
                    ) -> list[Passage]:
    """*passages* with the recording that tells each one, where there is one. A passage
    gets a telling of its item whose words it shares (the seconds that speak them when the
    words are aligned, else the whole recording); an item whose telling shares words with
    none of its passages (told in other words) gives the whole recording to all of them."""
    passages = list(passages)
    by_item: dict[tuple[str, str], list[Telling]] = {}
    for telling in sorted(tellings, key=lambda t: t.recording_id):
        by_item.setdefault((telling.source, telling.item_id), []).append(telling)
    out = []
    for passage in passages:
        told = by_item.get((passage.source, passage.item_id))
        if not told:
            out.append(passage)
            continue
        siblings = [p for p in passages
                    if (p.source, p.item_id) == (passage.source, passage.item_id)]
        out.append(_with_recording(passage, siblings, told))
    return out


def _with_recording(passage: Passage, siblings: list[Passage], told: list[Telling]
                    ) -> Passage:
    shared = [(_shared_words(t, passage.text), t) for t in told]
    words, best = max(shared, key=lambda pair: len(pair[0]))  # max keeps the first of equals
    if words:
        start, end = _span(best, words)
        return replace(passage, recording_id=best.recording_id, start_s=start, end_s=end)
    if any(_shared_words(t, p.text) for t in told for p in siblings):
        return passage  # another part of the item is the one she recorded
    return replace(passage, recording_id=told[0].recording_id, start_s=0.0,
                   end_s=round(told[0].duration_s, 3))


def _shared_words(telling: Telling, text: str) -> list[int]:
    """Indices of the transcript's words that *text* also says, in runs of MIN_RUN or more
    in the same order (empty: it does not tell *text*)."""
    spoken = [m.group().lower() for m in _WORD.finditer(telling.transcript)]
    written = [m.group().lower() for m in _WORD.finditer(text)]
    matcher = SequenceMatcher(None, spoken, written, autojunk=False)
    return [block.a + i for block in matcher.get_matching_blocks() if block.size >= MIN_RUN
            for i in range(block.size)]


def _span(telling: Telling, shared: list[int]) -> tuple[float, float]:
    """The seconds of *telling* that say its *shared* words: from the first to the last of
    them when the word timings fit the transcript, else the whole recording."""
    whole = (0.0, round(telling.duration_s, 3))
    spans = [(m.start(), m.end()) for m in _WORD.finditer(telling.transcript)]
    words = list(telling.words)
    if len(shared) == len(spans) or [(w.char_start, w.char_end) for w in words] != spans:
        return whole  # all of it, or timings of another version of the transcript
    start = max(0.0, words[shared[0]].start_s - SPAN_PAD_S)
    end = min(telling.duration_s, words[shared[-1]].end_s + SPAN_PAD_S)
    return round(start, 3), round(end, 3)
