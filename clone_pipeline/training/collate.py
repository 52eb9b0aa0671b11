"""Turn formatted records into token ids with assistant-only labels, and pack them.

Loss is computed on the person's words only: every token the model did not have to write
(system prompt, question, role markers) gets the label -100. Packing puts several short
examples in one sequence without letting them see each other: position ids restart at every
example, and the attention mask is block-diagonal (flash-attention varlen uses the position
ids instead on GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    mask = out.get("assistant_masks")
    if mask is not None and any(mask):
        return list(out["input_ids"]), list(mask)
    # Templates without {% generation %} markers: the assistant's tokens are what each
    # assistant turn adds to the rendering of the conversation before it.
    ids: list[int] = []
    mask = []
    for i, message in enumerate(messages):
        rendered = tokenizer.apply_chat_template(messages[: i + 1], tokenize=True,
                                                 return_dict=True)["input_ids"]
        added = list(rendered[len(ids):])
        mask += [int(message["role"] == "assistant")] * len(added)
        ids = list(rendered)
    return ids, mask


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


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over labelled (answer) tokens, and their count.

    Summed, not averaged, so callers can divide by the count of a whole batch: gradient
    accumulation then gives exactly the full-batch mean.
    """
    targets = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.size(-1)), targets.reshape(-1),
        ignore_index=IGNORE, reduction="sum")
    return loss, int((targets != IGNORE).sum())
