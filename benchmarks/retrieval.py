"""Retrieval: what searching a person's memory index adds to a chat request, on this machine.

Two indexes: a demo persona's real passages (Margaret Ellis: her answers, stories and
messages, collected and redacted as the pipeline does), and a family-scale one of 10,000
passages (her passages repeated with their words shuffled, so BM25 and the dot product do
real work on distinct texts). For each, 200 questions (the persona's own questions reworded,
and questions about things she never mentions), one at a time as the gateway would ask:
p50 and p99 of the whole search (question embedding with all-MiniLM-L6-v2, BM25, the dot
product, the fusion), and of its parts. The baseline beside it is a request with no
retrieval: 0 ms added. The goal (issue 23) is at most 30 ms p50 on two cores.

    python benchmarks/retrieval.py [--passages 10000] [--questions 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.memory.index import MemoryIndex, default_embed
from clone_pipeline.memory.passages import Passage, passages_from_examples

OFF_TOPIC = ["What is the capital of Mongolia?", "How do jet engines work?",
             "Who won the 2030 World Cup?", "What is your favourite video game?",
             "Did you ever visit the Moon?"]


def _persona_passages() -> list[Passage]:
    doc = json.loads((PERSONAS_DIR / "margaret-ellis" / "export.json").read_text())
    return passages_from_examples(collect(SourceMaterial.from_export(doc)).examples)


def _scaled(passages: list[Passage], n: int, rng: random.Random) -> list[Passage]:
    out = list(passages)
    while len(out) < n:
        p = rng.choice(passages)
        words = p.text.split()
        rng.shuffle(words)
        out.append(Passage(f"{p.id}-{len(out)}", p.source, p.item_id, p.title,
                           " ".join(words)))
    return out[:n]


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(values, 50)) * 1000, 2),
            "p99_ms": round(float(np.percentile(values, 99)) * 1000, 2)}


def measure(index: MemoryIndex, questions: list[str]) -> dict:
    total, embed_s, search_s = [], [], []
    index.search(questions[0])  # the embedding model loads once per process
    for q in questions:
        t0 = time.perf_counter()
        vector = default_embed([q])[0]
        t1 = time.perf_counter()
        index.search(q, k=4, query_embedding=vector)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        embed_s.append(t1 - t0)
        search_s.append(t2 - t1)
    return {"passages": len(index), "questions": len(questions),
            "search": _percentiles(total), "question_embedding": _percentiles(embed_s),
            "bm25_dot_fusion": _percentiles(search_s),
            "baseline_no_retrieval": {"p50_ms": 0.0, "p99_ms": 0.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(0)
    persona = _persona_passages()
    asked = [p.title for p in persona if p.source == "responses"] + OFF_TOPIC
    questions = [rng.choice(asked) for _ in range(args.questions)]
    small, _ = MemoryIndex.build(persona)
    t0 = time.perf_counter()
    large, embedded = MemoryIndex.build(_scaled(persona, args.passages, rng))
    build_s = time.perf_counter() - t0
    print(json.dumps({
        "machine": {"cpus": os.cpu_count()},
        "persona": measure(small, questions),
        "family_scale": {**measure(large, questions),
                         "build_seconds": round(build_s, 1), "embedded": embedded},
        "goal_p50_ms": 30,
    }, indent=2))


if __name__ == "__main__":
    main()
