"""Abstention: where the memory index's relevance separates questions Margaret answered (in
other words than she was asked) from questions about things she never mentioned.

Fifteen questions of each kind about the demo persona Margaret Ellis, written for this
measurement; the best relevance (MiniLM cosine) among the passages grounding would be
given. For each threshold: the share of answered questions kept (grounded) and of
never-mentioned ones refused (abstained). The
gateway's RELEVANCE_THRESHOLD (clone_pipeline/memory/grounding.py) is the best balanced
accuracy here. These questions tuned it: the held-out fact sheets of issue 23 are to measure it.

    python benchmarks/abstention.py
"""

from __future__ import annotations

import json

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.memory.grounding import RELEVANCE_THRESHOLD, TOP_K
from clone_pipeline.memory.index import MemoryIndex
from clone_pipeline.memory.passages import passages_from_examples

TOLD = [
    "Where did you grow up, and what was the house like?",
    "How did you end up becoming a teacher?",
    "What happened the winter everything froze?",
    "Tell me about the day Grandpa proposed.",
    "What was it like when you stopped working?",
    "What did you cook for Christmas dinner?",
    "Which songs did you love?",
    "How did you get through it when Arthur died?",
    "What did you do as a girl that got you told off?",
    "Where was the loveliest place you visited?",
    "What did you and your pen friend write about?",
    "How did you meet the man you married?",
    "What do you want us to remember about you?",
    "What was your very first memory?",
    "What was the street party for the Coronation like?",
]
NEVER = [
    "Did you ever fly a plane?",
    "What was it like living in Tokyo?",
    "Did you ever meet the Queen?",
    "Tell me about your time in the army.",
    "What was your favourite video game?",
    "Did you ever go skydiving?",
    "What was your racehorse called?",
    "How did you learn to speak Russian?",
    "What happened when you won the lottery?",
    "Tell me about your motorbike.",
    "Did you ever climb Everest?",
    "What was your tattoo of?",
    "How was your trip to Antarctica?",
    "What did you think of your time in prison?",
    "Tell me about your twin brother in Canada.",
]


def main() -> None:
    doc = json.loads((PERSONAS_DIR / "margaret-ellis" / "export.json").read_text())
    material = SourceMaterial.from_export(doc)
    index, _ = MemoryIndex.build(passages_from_examples(collect(material).examples))
    # what grounding compares: the best relevance among the passages it would be given
    told = [max(h.relevance for h in index.search(q, k=TOP_K)) for q in TOLD]
    never = [max(h.relevance for h in index.search(q, k=TOP_K)) for q in NEVER]
    rows = []
    for threshold in [round(0.25 + 0.01 * i, 2) for i in range(26)]:
        kept = sum(r >= threshold for r in told) / len(told)
        refused = sum(r < threshold for r in never) / len(never)
        rows.append({"threshold": threshold, "answered_kept": round(kept, 3),
                     "never_refused": round(refused, 3),
                     "balanced": round((kept + refused) / 2, 3)})
    print(json.dumps({"told": sorted(round(r, 3) for r in told),
                      "never": sorted(round(r, 3) for r in never),
                      "best": max(rows, key=lambda r: r["balanced"]),
                      "in_use": RELEVANCE_THRESHOLD, "thresholds": rows}, indent=1))


if __name__ == "__main__":
    main()
