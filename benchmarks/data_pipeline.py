"""Benchmark the data half: collect (normalise + redact + dedup + assess) and format.

Generates a synthetic user with up to 100,000 responses (sentences drawn from the shipped
general corpus, with planted duplicates, near duplicates, PII and HTML), runs each size in a
fresh process and prints JSON: records/s, seconds per stage and peak memory, with the
near-duplicate step side by side with an all-pairs baseline to show linear vs quadratic
growth.

    python benchmarks/data_pipeline.py [--sizes 25000 50000 100000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import time
from pathlib import Path

from harness import emit, run_child

TARGET_SECONDS = 30.0  # the whole data half for 100,000 records on 2 cores


def synthetic_material(n: int, seed: int = 0):
    from clone_pipeline.data.collect import SourceMaterial
    from clone_pipeline.training.local_tiny import CORPUS_DIR

    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(CORPUS_DIR.glob("*.txt")))
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if 6 <= len(s.split()) <= 40]
    rng = random.Random(seed)
    categories = ["childhood", "family", "career", "love", "values", "hobbies", "travel",
                  "challenges", "faith", "advice"]
    tones = ["nostalgic", "joyful", "proud", "tender", "reflective", "humorous"]
    questions = [f"Question {i} about {categories[i % 10]}?" for i in range(500)]
    responses = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.02 and responses:  # exact duplicate of an earlier answer
            answer = rng.choice(responses)["answer"]
        elif roll < 0.04 and responses:  # near duplicate: one word changed
            words = rng.choice(responses)["answer"].split()
            words[rng.randrange(len(words))] = "indeed"
            answer = " ".join(words)
        else:
            answer = " ".join(rng.sample(sentences, rng.randint(2, 4)))
            if roll < 0.09:
                answer += (f" Write to me at person{i}@example.com or call "
                           f"(410) 555-{i % 10000:04d}.")
            elif roll < 0.11:
                answer = f"<p>{answer}</p><script>x()</script>"
        responses.append({"item_id": f"r-{i}", "question": questions[i % 500],
                          "category": categories[i % 10], "answer": answer,
                          "emotional_tone": tones[i % 6]})
    return SourceMaterial(external_id="bench-user", display_name="Bench User",
                          responses=responses)


def run_once(n: int, workdir: Path) -> dict:
    """One size, in this process: returns timings and peak memory."""
    from clone_pipeline.data.collect import CollectOptions, collect
    from clone_pipeline.data.format_dataset import FormatOptions, format_examples, write_formats
    from clone_pipeline.training.base_models import load_tokenizer

    material = synthetic_material(n)
    tokenizer = load_tokenizer("local-tiny", workdir / "models")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    collection = collect(material, CollectOptions(workers=0))  # as the asset runs it
    t1 = time.perf_counter()
    formatted = format_examples(collection.examples, "You are Bench User.", tokenizer,
                                FormatOptions(max_length=512))
    t2 = time.perf_counter()
    write_formats(formatted, workdir / "formatted", workers=0)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "records": n, "examples_kept": len(collection.examples),
        "skipped": dict(collection.skipped), "redactions": dict(collection.redactions),
        "collect_s": round(t1 - t0, 2), "format_s": round(t2 - t1, 2),
        "render_write_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
        "records_per_s": round(n / (t3 - t0)),
        "peak_rss_mb": round(peak / 1024), "rss_growth_mb": round((peak - rss_before) / 1024),
    }


def all_pairs_baseline(n: int) -> dict:
    """Near-duplicate detection by comparing every pair (what LSH avoids)."""
    material = synthetic_material(n)
    shingles = []
    for r in material.responses:
        words = re.findall(r"\w+", r["answer"].lower())
        shingles.append({" ".join(words[i:i + 3]) for i in range(max(len(words) - 2, 1))})
    start = time.perf_counter()
    near = 0
    for i in range(len(shingles)):
        for j in range(i):
            a, b = shingles[i], shingles[j]
            if len(a & b) / len(a | b) >= 0.7:
                near += 1
                break
    return {"records": n, "dedup_s": round(time.perf_counter() - start, 2),
            "comparisons": n * (n - 1) // 2}


def lsh_dedup(n: int) -> dict:
    from clone_pipeline.data.dedup import deduplicate

    texts = [r["answer"] for r in synthetic_material(n).responses]
    start = time.perf_counter()
    deduplicate(texts)
    return {"records": n, "dedup_s": round(time.perf_counter() - start, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    parser.add_argument("--baseline-sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n = args.child[0], int(args.child[1])
        workdir = Path(os.environ.get("BENCH_WORKDIR", "/tmp/clone-bench"))
        workdir.mkdir(parents=True, exist_ok=True)
        result = {"pipeline": lambda: run_once(n, workdir), "all_pairs": lambda:
                  all_pairs_baseline(n), "lsh": lambda: lsh_dedup(n)}[kind]()
        print(json.dumps(result))
        return
    pipeline = [run_child(__file__, "--child", "pipeline", str(n)) for n in args.sizes]
    dedup = [{"lsh": run_child(__file__, "--child", "lsh", str(n)),
              "all_pairs": run_child(__file__, "--child", "all_pairs", str(n))}
             for n in args.baseline_sizes]
    largest = pipeline[-1]
    report = {
        "benchmark": "data_pipeline", "cpus": os.cpu_count(),
        "pipeline": pipeline,
        "near_duplicate_scaling": dedup,
        "target": {"records": 100_000, "max_seconds": TARGET_SECONDS},
        "met": largest["records"] >= 100_000 and largest["total_s"] <= TARGET_SECONDS,
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
