"""Segment-wise LoRA matmuls for vLLM's CPU punica wrapper.

vLLM V1 always calls the "sgmv" ops with the batch cut into segments: consecutive tokens
that share one adapter slot (``b_seq_start_loc``, ``seq_len_tensor``, ``lora_indices_tensor``;
slot -1 is the bare base). Its CPU versions expand that back to one slot per token and gather
a weight matrix per token (``lora_weights[indices]``: tokens x out x rank floats). Here each
segment is one matmul against its slot's weights. Decode steps (segments of a token or two)
keep vLLM's own ops, which are already cheap there, with one correction: they index slot -1
as the last slot (Python indexing), which applies whatever adapter sits there to a bare-base
token; its rows are masked out here.
"""

from __future__ import annotations

import logging

import torch
from vllm.lora.ops import torch_ops as vllm_ops

log = logging.getLogger("vllm.clone_engine_plugin")

# Below this many tokens per segment on average, vLLM's per-token gather is as fast.
MIN_TOKENS_PER_SEGMENT = 4

_first_call = True


def _segments(starts: torch.Tensor, lengths: torch.Tensor, slots: torch.Tensor):
    return zip(starts.tolist(), lengths.tolist(), slots.tolist(), strict=True)


def _per_token(batches: int, token_nums: int) -> bool:
    """Whether vLLM's per-token ops are the faster choice for this batch."""
    global _first_call
    if _first_call:  # proof, in the log of the process that runs the model, that it is used
        _first_call = False
        log.info("clone_pipeline: first segment-wise LoRA call in this process")
    return token_nums < MIN_TOKENS_PER_SEGMENT * batches


def _base_rows(lengths: torch.Tensor, slots: torch.Tensor) -> torch.Tensor | None:
    """A per-token mask of the bare base's tokens (slot -1), or None when there are none."""
    if not bool((slots < 0).any()):
        return None
    return torch.repeat_interleave(slots < 0, lengths)


def _squeeze(weights: torch.Tensor) -> torch.Tensor:
    return weights.squeeze(1) if weights.dim() == 4 else weights


def sgmv_shrink(inputs, lora_a_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, scaling):
    """output[:, :rank] = scaling * inputs @ A[slot].T (0 for the bare base)."""
    weights = _squeeze(lora_a_weights)
    rank = weights.shape[-2]
    if _per_token(batches, token_nums):
        vllm_ops.sgmv_shrink(inputs, lora_a_weights, output_tensor, b_seq_start_loc,
                             seq_len_tensor, lora_indices_tensor, batches, max_seq_length,
                             token_nums, scaling)
        base = _base_rows(seq_len_tensor, lora_indices_tensor)
        if base is not None:
            output_tensor[:base.shape[0], :rank][base] = 0
        return
    x = inputs.to(output_tensor.dtype)
    for start, length, slot in _segments(b_seq_start_loc, seq_len_tensor, lora_indices_tensor):
        out = output_tensor[start:start + length, :rank]
        if slot < 0:
            out.zero_()
            continue
        out.copy_(x[start:start + length] @ weights[slot].to(output_tensor.dtype).t())
        out.mul_(scaling)


def _expand(inputs, lora_b_weights, output_tensor, starts, lengths, slots, batches,
            max_seq_length, token_nums, offset, size, add_inputs, sliced):
    """output[:, offset:offset+size] (+)= inputs @ B[slot].T (nothing added for the bare
    base; 0 where it overwrites)."""
    if _per_token(batches, token_nums):
        base = _base_rows(lengths, slots)
        if base is not None:  # a zero input row gives a zero LoRA output row
            inputs = inputs.masked_fill(base.unsqueeze(-1), 0)
        if sliced:
            return vllm_ops.sgmv_expand_slice(inputs, lora_b_weights, output_tensor, starts,
                                              lengths, slots, batches, max_seq_length,
                                              token_nums, offset, size, add_inputs)
        return vllm_ops.sgmv_expand(inputs, lora_b_weights, output_tensor, starts, lengths,
                                    slots, batches, max_seq_length, token_nums, add_inputs)
    weights = _squeeze(lora_b_weights)
    width = min(weights.shape[-2], size, output_tensor.shape[1] - offset)
    x = inputs.to(output_tensor.dtype)
    for start, length, slot in _segments(starts, lengths, slots):
        out = output_tensor[start:start + length, offset:offset + width]
        if slot < 0:
            if not add_inputs:
                out.zero_()
            continue
        result = x[start:start + length] @ weights[slot, :width].to(output_tensor.dtype).t()
        if add_inputs:
            out.add_(result)
        else:
            out.copy_(result)


def sgmv_expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, add_inputs=False):
    _expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
            lora_indices_tensor, batches, max_seq_length, token_nums, 0,
            output_tensor.shape[1], add_inputs, sliced=False)


def sgmv_expand_slice(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                      lora_indices_tensor, batches, max_seq_length, token_nums, slice_offset,
                      slice_size, add_inputs=False):
    _expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
            lora_indices_tensor, batches, max_seq_length, token_nums, slice_offset,
            slice_size, add_inputs, sliced=True)


def install() -> bool:
    """Point vLLM's CPU punica wrapper at these ops; False where it has none to replace
    (a vLLM whose CPU wrapper changed shape)."""
    from vllm.lora.punica_wrapper import punica_cpu

    names = ("sgmv_shrink", "sgmv_expand", "sgmv_expand_slice")
    if not all(getattr(punica_cpu, name, None) is getattr(vllm_ops, name) or
               getattr(punica_cpu, name, None) is globals()[name] for name in names):
        return False
    for name in names:
        setattr(punica_cpu, name, globals()[name])
    return True
