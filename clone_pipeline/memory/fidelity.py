"""Fidelity on questions the clone never saw: does it recall the facts of her life, and does
it say so honestly when she never told?

A fact sheet (``facts.json``, beside an export, never part of it, so nothing trains on it)
lists questions about facts that are in the person's material, each with the words a right
answer contains (any one of them), and questions about things she never mentioned. The same
questions go to four configurations of one model version: the base alone, the base with her
memories (retrieval as the gateway does it), the adapter alone, and the adapter with her
memories. Fact recall is the share of told questions whose answer contains an expected word;
honest abstention the share of never-told questions answered with the gateway's abstention
or a plain "I never ..." rather than an invention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clone_pipeline.memory.grounding import ABSTAIN_REPLY, ground
from clone_pipeline.memory.index import MemoryIndex

FORMAT = "clone-pipeline-fact-sheet"
CONFIGURATIONS = ("base", "base+memories", "adapter", "adapter+memories")
# An answer that declines rather than invents: the gateway's own abstention, or the model
# saying it never did, never told, or cannot remember. Heuristic, and read in the samples.
_HONEST = re.compile(
    r"never (?:told|mentioned|talked|spoke|said|did|had|was|went|been|have|learned|learnt|"
    r"owned|ran|played|studied|worked|lived|rode|flew|taught)"
    r"|(?:don't|do not|can't|cannot|couldn't) (?:recall|remember|say|think I)"
    r"|not (?:something|anything) I (?:ever|did|remember)|no memory of|wasn't me",
    re.IGNORECASE)


class FactSheetError(ValueError):
    """A fact sheet that cannot be used, with what is wrong and where."""


@dataclass(frozen=True)
class Fact:
    question: str
    expect: tuple[str, ...]  # a right answer contains at least one of these (any case)

    def recalled_in(self, answer: str) -> bool:
        return any(re.search(rf"\b{re.escape(word)}\b", answer, re.IGNORECASE)
                   for word in self.expect)


@dataclass(frozen=True)
class FactSheet:
    told: tuple[Fact, ...]
    never_told: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: dict, where: str = "fact sheet") -> FactSheet:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise FactSheetError(f"{where}: not a fact sheet (its \"format\" must be "
                                 f"\"{FORMAT}\"; see README, 'Fidelity')")
        told, never = data.get("told"), data.get("never_told")
        if not isinstance(told, list) or not isinstance(never, list) or not (told or never):
            raise FactSheetError(f"{where}: needs a \"told\" list of {{question, expect}} and "
                                 f"a \"never_told\" list of questions")
        facts = []
        for n, item in enumerate(told):
            expect = item.get("expect") if isinstance(item, dict) else None
            question = item.get("question") if isinstance(item, dict) else None
            if not isinstance(question, str) or not question.strip() or not expect or \
                    not all(isinstance(w, str) and w.strip() for w in expect):
                raise FactSheetError(f"{where}: /told/{n} needs a \"question\" and a "
                                     f"non-empty \"expect\" list of words")
            facts.append(Fact(question.strip(), tuple(w.strip() for w in expect)))
        for n, question in enumerate(never):
            if not isinstance(question, str) or not question.strip():
                raise FactSheetError(f"{where}: /never_told/{n} must be a question")
        return cls(tuple(facts), tuple(q.strip() for q in never))

    @classmethod
    def load(cls, path: Path) -> FactSheet:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FactSheetError(f"{path}: cannot read it as JSON ({exc})") from None
        return cls.from_dict(data, str(path))


def is_honest(answer: str) -> bool:
    return answer.strip() == ABSTAIN_REPLY or bool(_HONEST.search(answer))


@dataclass
class Score:
    fact_recall: float | None  # None: the sheet has no told questions
    honest_abstention: float | None  # None: it has no never-told questions
    abstained: int  # never-told questions the gateway's abstention answered (no generation)


@dataclass
class FidelityReport:
    scores: dict[str, Score]
    told: int
    never_told: int
    samples: list[dict] = field(default_factory=list)  # every question, every configuration

    def as_dict(self) -> dict:
        return {"scores": {k: asdict(v) for k, v in self.scores.items()},
                "told": self.told, "never_told": self.never_told}


# (conversations) -> answers; one call per configuration, so a batch decodes them together.
Answer = Callable[[list[list[dict]]], list[str]]


def answers_with_memories(answer: Answer, questions: list[str], system_prompt: str,
                          index: MemoryIndex | None) -> tuple[list[str], int]:
    """Each question answered as the gateway would: grounded in the memories retrieved for
    it, or the abstention when none is relevant enough; without an index, plainly."""
    groundings = [ground(index, [{"role": "user", "content": q}]) if index else None
                  for q in questions]
    asked = [(n, [{"role": "system", "content": g.system_prompt(system_prompt)
                   if g else system_prompt}, {"role": "user", "content": q}])
             for n, (q, g) in enumerate(zip(questions, groundings, strict=True))
             if not (g and g.abstain)]
    replies = dict(zip((n for n, _ in asked), answer([c for _, c in asked]) if asked else [],
                       strict=True))
    return [replies.get(n, ABSTAIN_REPLY) for n in range(len(questions))], \
        len(questions) - len(asked)


def measure(sheet: FactSheet, system_prompt: str, index: MemoryIndex | None,
            answerers: dict[str, Answer]) -> FidelityReport:
    """Score *answerers* (``"base"`` and ``"adapter"``) alone and with *index*'s memories."""
    questions = [f.question for f in sheet.told] + list(sheet.never_told)
    scores, answers = {}, {}
    for name in CONFIGURATIONS:
        model, _, with_memories = name.partition("+")
        if model not in answerers or (with_memories and index is None):
            continue
        replies, abstained = answers_with_memories(
            answerers[model], questions, system_prompt, index if with_memories else None)
        told, never = replies[:len(sheet.told)], replies[len(sheet.told):]
        scores[name] = Score(
            fact_recall=(round(sum(f.recalled_in(a) for f, a in
                                   zip(sheet.told, told, strict=True)) / len(told), 3)
                         if told else None),
            honest_abstention=(round(sum(map(is_honest, never)) / len(never), 3)
                               if never else None),
            abstained=abstained if with_memories else 0)
        answers[name] = replies
    samples = [{"question": q, "kind": "told" if n < len(sheet.told) else "never_told",
                **({"expect": list(sheet.told[n].expect)} if n < len(sheet.told) else {}),
                **{name: replies[n] for name, replies in answers.items()}}
               for n, q in enumerate(questions)]
    return FidelityReport(scores, len(sheet.told), len(sheet.never_told), samples)
