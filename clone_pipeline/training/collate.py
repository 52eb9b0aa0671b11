"""Turn formatted records into token ids with assistant-only labels, and pack them.

Loss is computed on the person's words only: every token the model did not have to write
(system prompt, question, role markers) gets the label -100. Packing puts several short
examples in one sequence without letting them see each other: position ids restart at every
example, and the attention mask is block-diagonal (flash-attention varlen uses the position
ids instead on GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch

from clone_pipeline.data.formats import MESSAGE_FORMATS, record_messages, template_text

IGNORE = -100
PROMPT_FORMATS = ("instruction", "alpaca")  # trained through a prompt/response template
TRAINABLE_FORMATS = MESSAGE_FORMATS + PROMPT_FORMATS


@dataclass
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where the token is not the person's answer

    def __len__(self) -> int:
        return len(self.input_ids)


def tokenize_record(tokenizer, fmt: str, record: dict, max_length: int) -> TokenizedExample:
    """Token ids and labels for one record of *fmt*; only assistant tokens are labelled."""
    if fmt in MESSAGE_FORMATS:
        ids, mask = _chat_ids_and_mask(tokenizer, record_messages(fmt, record))
    elif fmt in PROMPT_FORMATS:
        ids, mask = _prompt_ids_and_mask(tokenizer, fmt, record)
    else:
        raise ValueError(f"format {fmt!r} cannot be trained; use one of {TRAINABLE_FORMATS}")
    ids, mask = ids[:max_length], mask[:max_length]
    return TokenizedExample(ids, [t if m else IGNORE for t, m in zip(ids, mask, strict=True)])


def _chat_ids_and_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    if "{% generation %}" in (getattr(tokenizer, "chat_template", None) or ""):
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        mask = out.get("assistant_masks")
        if mask is not None and any(mask):
            return list(out["input_ids"]), list(mask)
    # Templates without {% generation %} markers (SmolLM2's own): the assistant's tokens are
    # what each assistant turn adds to the conversation before it and its reply header.
    ids: list[int] = []
    mask = []
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            header = _render(tokenizer, messages[:i], add_generation_prompt=True)
            mask += [0] * (len(header) - len(ids))
            ids = header
        rendered = _render(tokenizer, messages[: i + 1])
        mask += [int(message["role"] == "assistant")] * (len(rendered) - len(ids))
        ids = rendered
    return ids, mask


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> list[int]:
    if not messages:
        return []
    return list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                              add_generation_prompt=add_generation_prompt
                                              )["input_ids"])


def _prompt_ids_and_mask(tokenizer, fmt: str, record: dict) -> tuple[list[int], list[int]]:
    system = record.get("system") if fmt == "instruction" else record.get("input") or None
    answer = record["response"] if fmt == "instruction" else record["output"]
    prompt = template_text(fmt, system, record["instruction"], "")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    answer_ids.append(tokenizer.eos_token_id)  # the model learns to stop
    return prompt_ids + answer_ids, [0] * len(prompt_ids) + [1] * len(answer_ids)


@dataclass
class PackedSequence:
    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # one per example, in order

    def add(self, example: TokenizedExample) -> None:
        self.input_ids += example.input_ids
        # The first token of an example is never a target: it must not be predicted from
        # the end of the previous example.
        self.labels += [IGNORE] + example.labels[1:]
        self.position_ids += list(range(len(example)))
        self.lengths.append(len(example))

    def __len__(self) -> int:
        return len(self.input_ids)


def pack(examples: list[TokenizedExample], max_length: int) -> list[PackedSequence]:
    """First-fit-decreasing packing of examples into sequences of at most *max_length*."""
    bins: list[PackedSequence] = []
    for example in sorted(examples, key=len, reverse=True):
        if len(example) > max_length:
            raise ValueError(f"example of {len(example)} tokens exceeds max_length "
                             f"{max_length}; truncate when tokenizing")
        target = next((b for b in bins if len(b) + len(example) <= max_length), None)
        if target is None:
            target = PackedSequence()
            bins.append(target)
        target.add(example)
    return bins


def collate(batch: list[PackedSequence], pad_id: int, block_mask: bool = True
            ) -> dict[str, torch.Tensor]:
    """Pad a batch of packed sequences into tensors.

    block_mask: add a 4-D boolean attention mask (batch, 1, L, L) that is causal within each
    example and blocks attention across examples (CPU / SDPA). Without it, only position_ids
    mark the boundaries (flash-attention 2 turns them into varlen sequence lengths).
    """
    width = max(len(b) for b in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), 1, width, width), dtype=torch.bool) if block_mask else None
    for row, seq in enumerate(batch):
        n = len(seq)
        ids[row, :n] = torch.tensor(seq.input_ids)
        labels[row, :n] = torch.tensor(seq.labels)
        positions[row, :n] = torch.tensor(seq.position_ids)
        if mask is not None:
            start = 0
            for length in seq.lengths:
                end = start + length
                mask[row, 0, start:end, start:end] = torch.ones(length, length,
                                                                dtype=torch.bool).tril()
                start = end
            # Padding rows attend to themselves only (keeps softmax finite; never a target).
            idx = torch.arange(n, width)
            mask[row, 0, idx, idx] = True
    out = {"input_ids": ids, "labels": labels, "position_ids": positions}
    if mask is not None:
        out["attention_mask"] = mask
    return out


def answer_loss(model, batch: dict[str, torch.Tensor], answer_only_logits: bool = True
                ) -> tuple[torch.Tensor, int]:
    """Run *model* on *batch* (collate's tensors, labels included) and return the summed
    next-token cross-entropy over labelled (answer) tokens, and their count.

    Summed, not averaged, so callers can divide by the count of a whole batch: gradient
    accumulation then gives exactly the full-batch mean. The vocabulary projection is applied
    only where a token is a target (*answer_only_logits*, for models whose forward takes
    ``logits_to_keep``): with a 49k vocabulary and a 576-wide model it is a fifth of the work
    and most of the memory of a step, and most of a packed sequence is prompt.
    """
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    count = int(keep.sum())
    head = _output_head(model) if answer_only_logits else None
    if head is None:
        logits = model(**inputs).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
            ignore_index=IGNORE, reduction="sum")
        return loss, count
    # One position's logits instead of all (the forward must make some); the final hidden
    # states, after the last norm, are the head's input.
    out = model(**inputs, output_hidden_states=True,
                logits_to_keep=torch.zeros(1, dtype=torch.long, device=targets.device))
    hidden = out.hidden_states[-1][:, :-1][keep]
    return torch.nn.functional.cross_entropy(head(hidden).float(), targets[keep],
                                             reduction="sum"), count


def _output_head(model):
    """The vocabulary projection of *model* (unwrapped from DDP and PEFT), or None when its
    forward cannot skip computing the logits itself."""
    inner = getattr(model, "module", model)  # DDP
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # PEFT
    if not _keeps_selected_logits(type(inner)):
        return None
    return inner.get_output_embeddings()


@lru_cache(maxsize=32)
def _keeps_selected_logits(model_class: type) -> bool:
    """Whether the class's forward takes ``logits_to_keep`` (asked once per class, not per
    micro-batch)."""
    import inspect

    return "logits_to_keep" in inspect.signature(model_class.forward).parameters
