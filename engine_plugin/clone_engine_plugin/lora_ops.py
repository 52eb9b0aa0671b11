"""LoRA for vLLM's CPU punica wrapper without a weight copy per token.

vLLM's CPU ops (``PunicaWrapperCPU`` over ``torch_ops``) expand every batch to one adapter
slot per token and gather a copy of that slot's weights for each token (``w[indices]``:
tokens x out x rank floats), for every layer, even for layers no adapter trains. Here:

- a prefill (vLLM's "sgmv" segments: consecutive tokens that share a slot): one matmul per
  segment against its slot's weights;
- a decode step (segments of a token or two, typically every sequence on another adapter):
  for each layer slice one matmul against every slot's A at once, a per-step 0/1 mask that
  keeps each token's own slot, and one matmul against every slot's B. B is kept laid out
  slot-major (slots*rank x out) per weight tensor until vLLM next writes an adapter into a
  slot (``activate_adapter``, the only place it does);
- a layer none of whose slots holds weights (a module no loaded adapter trains) is skipped.

Slot -1 is the bare base: it gets no LoRA. (vLLM's own ops index it as the last slot, Python
indexing, and so apply whatever adapter sits there.)
"""

from __future__ import annotations

import contextlib
import ctypes
import logging

import torch
from vllm.lora.ops import torch_ops as vllm_ops

log = logging.getLogger("vllm.clone_engine_plugin")

# Below this many tokens per segment on average, the batch is treated as a decode step.
MIN_TOKENS_PER_SEGMENT = 4
# Up to this many tokens in a step (a decode step of up to 64 sequences, however many
# adapters), one matmul against every slot costs less than a matmul per segment.
EVERY_SLOT_MAX_TOKENS = 64

_first_call = True
# Bumped whenever vLLM writes adapters into slots; facts about weight tensors older than
# this are recomputed.
_generation = 0
_plans: dict[tuple[int, ...], tuple] = {}
_rebuilt = False  # since the last step


def _decode_step(batches: int, token_nums: int) -> bool:
    global _first_call
    if _first_call:  # proof, in the log of the process that runs the model, that it is used
        _first_call = False
        log.info("clone_pipeline: first segment-wise LoRA call in this process")
    return token_nums < MIN_TOKENS_PER_SEGMENT * batches


def _squeeze(weights: torch.Tensor) -> torch.Tensor:
    return weights.squeeze(1) if weights.dim() == 4 else weights


# ------------------------------------------------------------------ prefill: per segment


def _segments(starts: torch.Tensor, lengths: torch.Tensor, slots: torch.Tensor):
    return zip(starts.tolist(), lengths.tolist(), slots.tolist(), strict=True)


def _base_rows(lengths: torch.Tensor, slots: torch.Tensor) -> torch.Tensor | None:
    """A per-token mask of the bare base's tokens (slot -1), or None when there are none."""
    if not bool((slots < 0).any()):
        return None
    return torch.repeat_interleave(slots < 0, lengths)


def sgmv_shrink(inputs, lora_a_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, scaling):
    """output[:, :rank] = scaling * inputs @ A[slot].T (0 for the bare base)."""
    weights = _squeeze(lora_a_weights)
    rank = weights.shape[-2]
    if _decode_step(batches, token_nums):  # not reached from add_lora_linear (see below)
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
    if _decode_step(batches, token_nums):
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


# ------------------------------------------------------------------ decode: every slot at once


def _own_slot_mask(wrapper, slots_n: int, rank: int, copies: int, dtype: torch.dtype
                   ) -> torch.Tensor:
    """tokens x (copies*slots*rank): 1 over each token's own slot's rank columns (in each of
    *copies* slices), 0 elsewhere and for the bare base. Built once per step
    (``update_metadata`` drops it)."""
    masks = wrapper.__dict__.setdefault("_clone_masks", {})
    key = (slots_n, rank, copies, dtype)
    if key not in masks:
        per_token = wrapper.token_lora_indices
        mask = torch.zeros(per_token.shape[0], slots_n, rank, dtype=dtype)
        mine = per_token >= 0
        mask[torch.arange(per_token.shape[0])[mine], per_token[mine]] = 1
        masks[key] = mask.view(per_token.shape[0], -1).repeat(1, copies)
    return masks[key]


class _Matmul:
    """x @ weight for a fixed weight: vLLM's oneDNN GEMM where the build has it (it keeps
    its own packed copy, so the weight is not kept), else torch."""

    def __init__(self, weight: torch.Tensor):  # weight: in x out
        self.dtype, self.handler, self.weight = weight.dtype, None, None
        try:
            from vllm import _custom_ops as ops

            if ops._supports_onednn and weight.dtype in (torch.float32, torch.bfloat16):
                self.handler = ops.create_onednn_mm(weight, 32)  # as vLLM packs its own
                self._mm = ops.onednn_mm
        except (ImportError, AttributeError, RuntimeError):
            self.handler = None
        if self.handler is None:
            self.weight = weight.contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype).contiguous()
        if self.handler is not None:
            return self._mm(self.handler, x, None)
        return x @ self.weight


def _layer_plan(lora_a_stacked, lora_b_stacked, output_slices):
    """For this generation of a layer's weights: (slots, rank, one matmul against every live
    slice's A for every slot at once, per live slice (offset, width, matmul against its B
    laid out slot-major)); None when no slot holds B weights for any slice. A slice with none
    is left out."""
    key = tuple(id(b) for b in lora_b_stacked)
    found = _plans.get(key)
    if found is not None and found[0] == _generation and all(
            mine is theirs for mine, theirs in zip(found[1], lora_b_stacked, strict=True)):
        return found[2]
    _plans.pop(key, None)  # freed before the new one is built: no second copy
    del found
    a_parts, expands, offset = [], [], 0
    for a, b, size in zip(lora_a_stacked, lora_b_stacked, output_slices, strict=True):
        a, b = _squeeze(a), _squeeze(b)
        if bool(b.any()):
            a_parts.append(a.reshape(a.shape[0] * a.shape[1], -1))
            width = min(b.shape[1], size)
            flat_b = b[:, :width].transpose(1, 2).reshape(-1, width)  # slots*rank x width
            expands.append((offset, width, _Matmul(flat_b)))
        offset += size
    plan = None
    if expands:
        a0 = _squeeze(lora_a_stacked[0])
        plan = (a0.shape[0], a0.shape[1], _Matmul(torch.cat(a_parts).t()), expands)
    _plans[key] = (_generation, tuple(lora_b_stacked), plan)
    global _rebuilt
    _rebuilt = True
    return plan


def lora_linear_decode(wrapper, plan, y, x, scale):
    """y[:, slice] += ((x @ A_all.T) * own-slot mask * scale) @ B_all, for every slice."""
    slots_n, rank, shrink, expands = plan
    mask = _own_slot_mask(wrapper, slots_n, rank, len(expands), shrink.dtype)
    n, cols = mask.shape[0], slots_n * rank
    every = shrink(x[:n])
    every.mul_(mask)
    if scale != 1.0:
        every.mul_(scale)
    for i, (offset, width, expand) in enumerate(expands):
        y[:n, offset:offset + width].add_(
            expand(every[:, i * cols:(i + 1) * cols]).to(y.dtype))


def _add_lora_linear(original):
    """PunicaWrapperCPU.add_lora_linear: nothing for a layer with no weights in any slot,
    the every-slot matmuls for a decode step, vLLM's own (over the segment ops) otherwise."""
    def add_lora_linear(self, y, x, lora_a_stacked, lora_b_stacked, scale, output_slices,
                        *args, **kwargs):
        plan = _layer_plan(lora_a_stacked, lora_b_stacked, output_slices)
        if plan is None or (self.is_prefill and self.no_lora):  # (vLLM: all bare base)
            return y
        *_, batches, _, token_nums = self.prefill_metadata
        if (self.is_prefill and kwargs.get("buffer") is None
                and (token_nums <= EVERY_SLOT_MAX_TOKENS
                     or _decode_step(batches, token_nums))):
            lora_linear_decode(self, plan, y.view(-1, y.shape[-1]), x.view(-1, x.shape[-1]),
                               scale)
            return y
        return original(self, y, x, lora_a_stacked, lora_b_stacked, scale, output_slices,
                        *args, **kwargs)
    add_lora_linear.__wrapped__ = original
    return add_lora_linear


def _release_freed_memory() -> None:
    """Hand the old matmuls' freed memory back to the system (glibc keeps freed blocks of
    this size in its heap, so the engine would grow each time adapters change slots)."""
    global _rebuilt
    _rebuilt = False
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _update_metadata(original):
    def update_metadata(self, *args, **kwargs):
        self.__dict__.pop("_clone_masks", None)
        if _rebuilt:  # the last step rebuilt matmuls: once per step at most
            _release_freed_memory()
        return original(self, *args, **kwargs)
    update_metadata.__wrapped__ = original
    return update_metadata


def _activate_adapter(original):
    """LoRAModelManager.activate_adapter, marking every weight tensor's facts stale when it
    wrote an adapter into a slot (False: it was in one already, nothing written)."""
    def activate_adapter(self, *args, **kwargs):
        global _generation
        wrote = True
        try:
            wrote = original(self, *args, **kwargs)
            return wrote
        finally:
            if wrote is not False:
                _generation += 1
    activate_adapter.__wrapped__ = original
    return activate_adapter


def install() -> bool:
    """Point vLLM's CPU punica wrapper at these ops; False where it has none to replace
    (a vLLM whose CPU wrapper or adapter manager changed shape)."""
    from vllm.lora import model_manager
    from vllm.lora.punica_wrapper import punica_cpu

    names = ("sgmv_shrink", "sgmv_expand", "sgmv_expand_slice")
    wrapper, manager = punica_cpu.PunicaWrapperCPU, model_manager.LoRAModelManager
    if not all(getattr(punica_cpu, name, None) in (getattr(vllm_ops, name), globals()[name])
               for name in names):
        return False
    patches = [(wrapper, "add_lora_linear", _add_lora_linear),
               (wrapper, "update_metadata", _update_metadata),
               (manager, "activate_adapter", _activate_adapter)]
    if not all(callable(getattr(owner, name, None)) for owner, name, _ in patches):
        return False
    for name in names:
        setattr(punica_cpu, name, globals()[name])
    for owner, name, wrap in patches:
        if not hasattr(getattr(owner, name), "__wrapped__"):
            setattr(owner, name, wrap(getattr(owner, name)))
    return True
