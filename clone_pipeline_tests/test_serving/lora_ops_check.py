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
    # Slot -1 (the bare base) is left out: vLLM's gather reads it as the last slot (a slot
    # it keeps zero for that), the plugin skips it; checked on its own below.
    cases = {"prefill": ([9, 5, 12, 7], [2, 0, 5, 2]), "one adapter": ([40], [3]),
             "decode": ([1, 1, 1, 1, 1], [1, 4, 0, 2, 3]), "mixed": ([1, 30, 1, 6], [0, 1, 2, 0])}
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
    # The bare base inside a prefill batch: no LoRA contribution at all.
    x, meta = batch([8, 8], [-1, 1])
    out = torch.full((16, HIDDEN), 7.0)
    lora_ops.sgmv_expand(torch.randn(16, RANK), b, out, *meta, True)
    worst["bare base untouched"] = (out[:8] - 7.0).abs().max().item()
    shrunk = torch.full((16, RANK), 7.0)
    lora_ops.sgmv_shrink(x, a, shrunk, *meta, 1.0)
    worst["bare base shrinks to zero"] = shrunk[:8].abs().max().item()
    print(json.dumps({"installed": lora_ops.install(), "worst": worst}))


if __name__ == "__main__":
    main()
