"""Segment-wise LoRA matmuls for vLLM's CPU punica wrapper.

vLLM V1 always calls the "sgmv" ops with the batch cut into segments: consecutive tokens
that share one adapter slot (``b_seq_start_loc``, ``seq_len_tensor``, ``lora_indices_tensor``;
slot -1 is the bare base). Its CPU versions expand that back to one slot per token and gather
a weight matrix per token (``lora_weights[indices]``: tokens x out x rank floats). Here each
segment is one matmul against its slot's weights. Decode steps (segments of a token or two)
keep vLLM's own ops, which are already cheap there and avoid a Python loop per sequence.
"""

from __future__ import annotations

import torch
from vllm.lora.ops import torch_ops as vllm_ops

# Below this many tokens per segment on average, vLLM's per-token gather is as fast.
MIN_TOKENS_PER_SEGMENT = 4


def _segments(starts: torch.Tensor, lengths: torch.Tensor, slots: torch.Tensor):
    return zip(starts.tolist(), lengths.tolist(), slots.tolist(), strict=True)


def _short(batches: int, token_nums: int) -> bool:
    return token_nums < MIN_TOKENS_PER_SEGMENT * batches


def sgmv_shrink(inputs, lora_a_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, scaling):
    """output[:, :rank] = scaling * inputs @ A[slot].T, segment by segment."""
    if _short(batches, token_nums):
        return vllm_ops.sgmv_shrink(inputs, lora_a_weights, output_tensor,
                                        b_seq_start_loc, seq_len_tensor, lora_indices_tensor,
                                        batches, max_seq_length, token_nums, scaling)
    weights = lora_a_weights.squeeze(1) if lora_a_weights.dim() == 4 else lora_a_weights
    rank = weights.shape[-2]
    x = inputs.to(output_tensor.dtype)
    for start, length, slot in _segments(b_seq_start_loc, seq_len_tensor, lora_indices_tensor):
        out = output_tensor[start:start + length, :rank]
        if slot < 0:
            out.zero_()
            continue
        out.copy_(x[start:start + length] @ weights[slot].to(output_tensor.dtype).t())
        out.mul_(scaling)


def _expand(inputs, lora_b_weights, output_tensor, starts, lengths, slots, offset, size,
            add_inputs):
    weights = lora_b_weights.squeeze(1) if lora_b_weights.dim() == 4 else lora_b_weights
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
    """output[:, :out] (+)= inputs @ B[slot].T, segment by segment."""
    if _short(batches, token_nums):
        return vllm_ops.sgmv_expand(inputs, lora_b_weights, output_tensor,
                                        b_seq_start_loc, seq_len_tensor, lora_indices_tensor,
                                        batches, max_seq_length, token_nums, add_inputs)
    _expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
            lora_indices_tensor, 0, output_tensor.shape[1], add_inputs)


def sgmv_expand_slice(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                      lora_indices_tensor, batches, max_seq_length, token_nums, slice_offset,
                      slice_size, add_inputs=False):
    """output[:, offset:offset+size] (+)= inputs @ B[slot].T, segment by segment."""
    if _short(batches, token_nums):
        return vllm_ops.sgmv_expand_slice(
            inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
            lora_indices_tensor, batches, max_seq_length, token_nums, slice_offset,
            slice_size, add_inputs)
    _expand(inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
            lora_indices_tensor, slice_offset, slice_size, add_inputs)


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
