"""Fit examples to a token budget, split them by question and write every format."""

from __future__ import annotations

import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from clone_pipeline.data.examples import Example
from clone_pipeline.data.formats import FORMATS, messages, render, template_text
from clone_pipeline.data.split import split_by_question
from clone_pipeline.data.store import combined_hash, write_jsonl

PARALLEL_MIN_EXAMPLES = 5_000  # below this, starting worker processes costs more than it saves
MIN_ANSWER_TOKENS = 16  # below this a truncated answer says nothing in the person's voice
_SENTENCE_END = (".", "!", "?", "…", ".\"", "!\"", "?\"")


@dataclass(frozen=True)
class FormatOptions:
    formats: tuple[str, ...] = FORMATS
    include_system_prompts: bool = True
    # Each example sees the memories retrieved for its question (never its own answer), as
    # the gateway gives them, for the adapter to learn to answer from them. Off by default:
    # benchmarks/memory_training.py found no payoff (Margaret's fact recall with memories
    # 0.067 trained with them, 0.133 without) for prompts about three times longer.
    with_memories: bool = False
    # With memories: the share of training examples that see them exactly as the gateway
    # would serve them, their own answer among them when retrieved (a reading lesson); the
    # rest, and every held-out example, never see their own answer.
    own_answer_share: float = 0.0
    max_length: int = 2048  # tokens of the configured tokenizer, whole record
    eval_fraction: float = 0.1
    seed: int = 0
    # Processes that render and write formats (0 = one per CPU). Above 1 it spawns
    # workers, so a calling script needs the usual `if __name__ == "__main__":` guard.
    workers: int = 1


@dataclass
class Formatted:
    """Examples fitted to the budget and split; ``write`` renders them to files."""

    formats: tuple[str, ...]
    token_stats: dict[str, dict[str, float]]  # per format
    train_examples: list[Example]
    eval_examples: list[Example]
    truncated: int
    dropped: int
    system_prompt: str | None
    overhead_tokens: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WrittenFormat:
    format: str
    train_path: Path
    eval_path: Path
    sha256: str  # of the train and eval files together
    train_count: int
    eval_count: int


def _lengths(tokenizer, texts: list[str]) -> list[int]:
    """Token count of each text (no special tokens added)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # the Rust tokenizer directly: skips per-item Python wrapping
        return [len(e.ids) for e in backend.encode_batch(texts, add_special_tokens=False)]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _overhead(tokenizer, fmt: str, system: str | None) -> int:
    """Tokens a record of *fmt* adds around its prompt and answer. Message formats are what
    the model's own chat template makes of them, when it has one."""
    if fmt in ("conversational", "openai", "sharegpt") and getattr(tokenizer, "chat_template",
                                                                  None):
        empty = messages(Example(id="", source="", prompt="", answer=""), system)
        return len(tokenizer.apply_chat_template(empty, tokenize=True, return_dict=True)
                   ["input_ids"])
    return _lengths(tokenizer, [template_text(fmt, system, "", "")])[0]


def _truncate(tokenizer, answer: str, budget: int) -> str:
    """The longest prefix of *answer* within *budget* tokens, cut at a sentence end if one
    falls in the second half of it."""
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"][:budget]
    text = tokenizer.decode(ids).rstrip()
    cut = max(text.rfind(end) + len(end) for end in _SENTENCE_END)
    return text[:cut] if cut > len(text) // 2 else text


def _stats(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {"records": 0, "total_tokens": 0}
    ordered = sorted(lengths)
    return {"records": len(ordered), "total_tokens": sum(ordered),
            "mean_tokens": round(statistics.fmean(ordered), 1),
            "median_tokens": statistics.median(ordered),
            "p95_tokens": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
            "max_tokens": ordered[-1]}


def format_examples(examples: list[Example], system: str | None, tokenizer,
                    options: FormatOptions, held_out: frozenset[str] | None = None
                    ) -> Formatted:
    """Render *examples* in every requested format, each record within max_length tokens.

    Token counts are additive: prompt and answer are tokenized once, and each format adds its
    template overhead (measured by tokenizing the template with empty fields). Fields are
    separated by special tokens or newlines, where byte-level BPE does not merge across.
    *held_out* (example ids), when the caller has already split, is the held-out set;
    otherwise whole question groups are held out here.
    """
    unknown = set(options.formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown format(s) {sorted(unknown)}; choose from {FORMATS}")
    system = system if options.include_system_prompts else None
    overhead = {fmt: _overhead(tokenizer, fmt, system) for fmt in options.formats}
    worst = max(overhead.values())
    # A prompt's tokens include its memories (an upper bound: counted apart from the system).
    prompts = [f"{e.context}\n\n{e.prompt}" if e.context else e.prompt for e in examples]
    unique_prompts = list(dict.fromkeys(prompts))  # questions repeat
    prompt_tokens = dict(zip(unique_prompts, _lengths(tokenizer, unique_prompts), strict=True))
    prompt_len = [prompt_tokens[p] for p in prompts]
    answer_len = _lengths(tokenizer, [e.answer for e in examples])
    kept, lengths, truncated, dropped = [], [], 0, 0
    for example, p_len, a_len in zip(examples, prompt_len, answer_len, strict=True):
        budget = options.max_length - worst - p_len
        if a_len > budget:
            if budget < MIN_ANSWER_TOKENS:
                dropped += 1
                continue
            example.answer = _truncate(tokenizer, example.answer, budget)
            a_len = _lengths(tokenizer, [example.answer])[0]
            truncated += 1
        kept.append(example)
        lengths.append(p_len + a_len)
    content_len = {e.id: n for e, n in zip(kept, lengths, strict=True)}
    if held_out is None:
        train, evaluation = split_by_question(kept, options.eval_fraction, options.seed)
    else:
        train = [e for e in kept if e.id not in held_out]
        evaluation = [e for e in kept if e.id in held_out]
    stats = {fmt: _stats([content_len[e.id] + overhead[fmt] for e in kept])
             for fmt in options.formats}
    return Formatted(tuple(options.formats), stats, train, evaluation, truncated, dropped,
                     system, overhead)


def write_formats(formatted: Formatted, folder: Path, workers: int = 1
                  ) -> list[WrittenFormat]:
    """Write ``<format>.train.jsonl`` and ``<format>.eval.jsonl`` for every format.

    Records are rendered as they are written (never all formats in memory at once); with
    workers > 1, formats are written in parallel processes.
    """
    jobs = [(fmt, formatted.train_examples, formatted.eval_examples, formatted.system_prompt,
             folder) for fmt in formatted.formats]
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    n_examples = len(formatted.train_examples) + len(formatted.eval_examples)
    if workers > 1 and n_examples >= PARALLEL_MIN_EXAMPLES:
        # spawn, not fork: the parent may hold threads (tokenizers, torch) mid-lock.
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            return list(pool.map(_write_format, jobs))
    return [_write_format(job) for job in jobs]


def _write_format(job) -> WrittenFormat:
    fmt, train, evaluation, system, folder = job
    paths = folder / f"{fmt}.train.jsonl", folder / f"{fmt}.eval.jsonl"
    hashes = [write_jsonl(path, (render(fmt, e, system) for e in part))
              for path, part in zip(paths, (train, evaluation), strict=True)]
    return WrittenFormat(fmt, *paths, combined_hash(hashes), len(train), len(evaluation))
