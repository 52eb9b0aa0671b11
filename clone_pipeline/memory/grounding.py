"""Grounding one chat turn in the person's memories: which passages to give the model, the
system prompt that carries them, the sources a reply names, and when to say honestly that
she never told them.

The question is the last user message. Passages whose relevance (MiniLM cosine) reaches
RELEVANCE_THRESHOLD go into the system prompt, best first, within MEMORY_WORDS words, so a
reply always has room. When none does and the question asks about her life, the clone
abstains: it answers ABSTAIN_REPLY instead of letting the model invent.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from clone_pipeline.data.examples import Example
from clone_pipeline.memory.index import Hit, MemoryIndex

# Measured on Margaret's tuning questions (benchmarks/abstention.py: 15 asked in other words
# than she was, 15 about things she never mentioned), as the best relevance among the passages
# grounding would give: 0.46 keeps 14 of 15 and refuses 14 of 15, the best balanced accuracy
# (0.933). It was 0.35 while BM25 voted at full weight, so the passages given were often
# not the most similar. The demo fact sheets, written apart from these, measure it (README).
RELEVANCE_THRESHOLD = 0.46
TOP_K = 4
MEMORY_WORDS = 320  # about 450 tokens: room for the persona and a reply in 1,024
ABSTAIN_REPLY = "I don't think I ever told you about that."
MEMORY_HEADER = ("Things you have told your family, in your own words. Answer from them when "
                 "they fit; do not make up other facts about your life:")
# A question about her own life: it asks something of "you" (small talk such as "how are
# you?" or a greeting is not a question about her past).
_ABOUT_HER = re.compile(r"\b(?:you|your|yours|yourself)\b", re.IGNORECASE)
_SMALL_TALK = re.compile(r"^\s*(?:hi|hello|hey|good (?:morning|evening|afternoon)|thanks?"
                         r"|thank you|how are you(?: doing| today)?|are you there)\b[\s!?.,]*"
                         r"(?:\w+[\s!?.,]*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Grounding:
    memories: list[Hit] = field(default_factory=list)
    abstain: bool = False
    searched: bool = False  # the person has a memory index and it was asked

    def system_prompt(self, base: str) -> str:
        """*base* (the person's system prompt) with the memories after it."""
        return "\n\n".join(part for part in (base, self.memory_block()) if part)

    def memory_block(self) -> str:
        """The memories as the model reads them (training adds the same block), or ""."""
        if not self.memories:
            return ""
        lines = [f"- ({_label(h)}) {h.passage.text}" for h in self.memories]
        return MEMORY_HEADER + "\n" + "\n".join(lines)

    def sources(self) -> list[dict]:
        """What a reply names as its sources (the chat completion's ``sources`` field); a
        passage she recorded herself telling adds ``recording``: its id and the seconds
        (``start_s``, ``end_s``) that say the passage."""
        return [_source(h) for h in self.memories]

    def passage_ids(self) -> list[str]:
        return [h.passage.id for h in self.memories]


def _source(hit: Hit) -> dict:
    p = hit.passage
    found = {"kind": p.source, "id": p.item_id, "passage": p.id, "title": p.title,
             "score": round(hit.relevance, 3)}
    if p.recording_id is not None:
        found["recording"] = {"id": p.recording_id, "start_s": p.start_s, "end_s": p.end_s}
    return found


def _label(hit: Hit) -> str:
    if hit.passage.source == "responses":
        return f'your answer to "{hit.passage.title}"'
    if hit.passage.source == "life_stories":
        return f'your story "{hit.passage.title}"'
    return f"your message: {hit.passage.title}"


def persona_prompt(system: str) -> str:
    """*system* without the memories a training record carries after it: the person's own
    system prompt, which deployment and evaluation start from (they add their own)."""
    return system.split("\n\n" + MEMORY_HEADER, 1)[0]


def asks_about_her(question: str) -> bool:
    return bool(_ABOUT_HER.search(question)) and not _SMALL_TALK.match(question)


def ground(index: MemoryIndex, messages: list[dict], threshold: float = RELEVANCE_THRESHOLD,
           k: int = TOP_K, budget_words: int = MEMORY_WORDS,
           leave_out: str | None = None) -> Grounding:
    """The memories for the conversation's last user message, or an abstention. Training
    leaves out the example's own item (*leave_out*, ``<source>:<item id>``), so the model
    learns to use memories rather than to copy the answer it is being taught."""
    question = next((m.get("content") or "" for m in reversed(messages)
                     if m.get("role") == "user"), "")
    if not isinstance(question, str) or not question.strip():
        return Grounding(searched=True)
    found = index.search(question, k=k + (k if leave_out else 0))
    hits = [h for h in found if h.relevance >= threshold
            and f"{h.passage.source}:{h.passage.item_id}" != leave_out][:k]
    kept, words = [], 0
    for hit in sorted(hits, key=lambda h: -h.relevance):
        size = len(hit.passage.text.split())
        if words + size > budget_words:
            continue
        kept.append(hit)
        words += size
    return Grounding(kept, abstain=not kept and asks_about_her(question), searched=True)


def add_memories(index: MemoryIndex, examples: list[Example], own_answer_share: float = 0.0,
                 held_out: frozenset[str] = frozenset(), seed: int = 0) -> int:
    """Give each training example the memories the gateway would retrieve for its question;
    how many examples got any. A share *own_answer_share* of the training examples (chosen by
    a keyed hash, so a re-run picks the same) see them exactly as served, their own item
    among them when retrieval finds it: a reading lesson, RAFT's "oracle" share. The others,
    and every held-out example (ids in *held_out*), have their own item left out, so held-out
    perplexity never measures copying."""
    if not 0 <= own_answer_share <= 1:
        raise ValueError(f"own_answer_share must be in [0, 1], got {own_answer_share}")
    given = 0
    for example in examples:
        shown = (example.id not in held_out
                 and _unit_hash(f"{seed}:{example.id}") < own_answer_share)
        block = ground(index, [{"role": "user", "content": example.prompt}],
                       leave_out=None if shown else example.id).memory_block()
        example.context = block or None
        given += bool(block)
    return given


def _unit_hash(key: str) -> float:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest()) / 2**64
