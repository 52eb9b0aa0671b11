"""Run by the engine's Python (it has vLLM): the plugin's segment-wise LoRA ops against
vLLM's own CPU ops on random batches. Prints one JSON line of the largest differences."""

import json

import torch
from clone_engine_plugin import lora_ops
from vllm.lora.ops import torch_ops as vllm_ops

torch.manual_seed(0)
SLOTS, RANK, HIDDEN = 6, 8, 48


def batch(lengths: list[int], slots: list[int]):
    lengths_t = torch.tensor(lengths)
    starts = torch.zeros_like(lengths_t)
    starts[1:] = torch.cumsum(lengths_t, 0)[:-1]
    meta = (starts, lengths_t, torch.tensor(slots), len(lengths), max(lengths), sum(lengths))
    return torch.randn(sum(lengths), HIDDEN), meta


def main() -> None:
    a = torch.randn(SLOTS, 1, RANK, HIDDEN)
    b = torch.randn(SLOTS, 1, HIDDEN + 4, RANK)  # wider than the output, as vLLM allows
    # Slot -1 (the bare base) is checked on its own below: vLLM's ops index it as the last
    # slot (whatever adapter sits there), the plugin gives it no LoRA.
    cases = {"prefill": ([9, 5, 12, 7], [2, 0, 5, 2]), "one adapter": ([40], [3]),
             "decode (vLLM's ops)": ([1, 1, 1, 1, 1], [1, 4, 0, 2, 3]),
             "mixed": ([1, 30, 1, 6], [0, 1, 2, 0]),
             "at the threshold": ([4, 4, 4], [5, 1, 3])}
    worst = {}
    for name, (lengths, slots) in cases.items():
        x, meta = batch(lengths, slots)
        n = x.shape[0]
        for scale in (1.0, 0.5):
            mine, theirs = torch.zeros(n, RANK), torch.zeros(n, RANK)
            lora_ops.sgmv_shrink(x, a, mine, *meta, scale)
            vllm_ops.sgmv_shrink(x, a, theirs, *meta, scale)
            worst[f"{name} shrink"] = max(worst.get(f"{name} shrink", 0),
                                          (mine - theirs).abs().max().item())
        low = torch.randn(n, RANK)
        for add in (True, False):
            base = torch.randn(n, 3 * HIDDEN)
            mine, theirs = base.clone(), base.clone()
            lora_ops.sgmv_expand_slice(low, b[:, :, :HIDDEN], mine, *meta, HIDDEN, HIDDEN,
                                       add)
            vllm_ops.sgmv_expand_slice(low, b[:, :, :HIDDEN], theirs, *meta, HIDDEN, HIDDEN,
                                       add)
            worst[f"{name} expand_slice add={add}"] = (mine - theirs).abs().max().item()
            mine, theirs = base[:, :HIDDEN].clone(), base[:, :HIDDEN].clone()
            lora_ops.sgmv_expand(low, b, mine, *meta, add)
            vllm_ops.sgmv_expand(low, b, theirs, *meta, add)
            worst[f"{name} expand add={add}"] = (mine - theirs).abs().max().item()
    # bf16 activations (a bf16 engine): cast to the float32 buffer as vLLM does.
    x, meta = batch([9, 5, 12, 7], [2, 0, 5, 2])
    mine, theirs = torch.zeros(33, RANK), torch.zeros(33, RANK)
    lora_ops.sgmv_shrink(x.bfloat16(), a, mine, *meta, 0.5)
    vllm_ops.sgmv_shrink(x.bfloat16(), a, theirs, *meta, 0.5)
    worst["bf16 shrink"] = (mine - theirs).abs().max().item()
    # The bare base, in a prefill batch and in a decode step: no LoRA at all, while the
    # adapter's rows are what vLLM computes.
    for name, (lengths, slots) in {"prefill": ([8, 8], [-1, 1]),
                                   "decode": ([1, 1, 1], [-1, 1, -1])}.items():
        x, meta = batch(lengths, slots)
        n, base = x.shape[0], torch.repeat_interleave(torch.tensor(slots) < 0,
                                                      torch.tensor(lengths))
        shrunk, theirs = torch.full((n, RANK), 7.0), torch.zeros(n, RANK)
        lora_ops.sgmv_shrink(x, a, shrunk, *meta, 1.0)
        vllm_ops.sgmv_shrink(x, a, theirs, *meta, 1.0)
        worst[f"bare base shrinks to zero, {name}"] = shrunk[base].abs().max().item()
        worst[f"its neighbour's shrink, {name}"] = (shrunk - theirs)[~base].abs().max().item()
        low = torch.randn(n, RANK)
        out, theirs = torch.full((n, HIDDEN), 7.0), torch.full((n, HIDDEN), 7.0)
        lora_ops.sgmv_expand(low, b, out, *meta, True)
        vllm_ops.sgmv_expand(low, b, theirs, *meta, True)
        worst[f"bare base untouched, {name}"] = (out[base] - 7.0).abs().max().item()
        worst[f"its neighbour's expand, {name}"] = (out - theirs)[~base].abs().max().item()
    print(json.dumps({"installed": lora_ops.install(), "worst": worst}))


if __name__ == "__main__":
    main()
