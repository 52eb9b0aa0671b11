"""Run by the engine's Python (it has vLLM): the plugin's LoRA ops against vLLM's own CPU ops
on random batches, after adapters change slots, and on layers no adapter trains. Prints one
JSON line of the largest differences."""

import json
from types import SimpleNamespace

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
    installed = lora_ops.install()
    worst.update(whole_layers())
    print(json.dumps({"installed": installed, "worst": worst,
                      "empty layer skipped": empty_layer_skipped()}))


def whole_layers() -> dict[str, float]:
    """add_lora_linear on a three-slice layer (q, k, v) through vLLM's real CPU punica
    wrapper: installed (every-slot matmuls for decode steps, skipping empty slices) against
    vLLM's own method over the segment ops, in decode steps with and without the bare base,
    a prefill, after new weights are written into a slot, and with one slice empty."""
    from vllm.lora.layers.utils import LoRAMapping
    from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

    wrapper = PunicaWrapperCPU(max_num_batched_tokens=256, max_batches=32, device="cpu")
    mine, theirs = PunicaWrapperCPU.add_lora_linear, PunicaWrapperCPU.add_lora_linear.__wrapped__
    slices = (HIDDEN, 16, 16)
    a = tuple(torch.randn(SLOTS, 1, RANK, HIDDEN) for _ in slices)
    b = tuple(torch.randn(SLOTS, 1, size, RANK) for size in slices)
    cases = {"decode": [0, 3, 5, 1, 2, 4, 0, 3], "decode with the bare base": [2, -1, 4, -1],
             "only the bare base": [-1] * 5,
             "one sequence": [5], "a short prefill": [1] * 9 + [4] * 7 + [-1] * 5,
             "a prefill (segments)": [1] * 40 + [4] * 30 + [-1] * 10}
    worst = {}

    def compare(name, tokens, a, b, scale=0.5):
        wrapper.update_metadata(LoRAMapping([s + 1 for s in tokens], [1], is_prefill=True),
                                list(range(1, SLOTS + 1)), SLOTS, 100)
        x, y = torch.randn(len(tokens), HIDDEN), torch.randn(len(tokens), sum(slices))
        got, want = y.clone(), y.clone()
        mine(wrapper, got, x, a, b, scale, slices)
        theirs(wrapper, want, x, a, b, scale, slices)
        worst[f"layer: {name}"] = (got - want).abs().max().item()

    for name, tokens in cases.items():
        compare(name, tokens, a, b)
    lora_ops._activate_adapter(lambda manager: [w[3].normal_() for w in b])(None)
    compare("decode after a slot is rewritten", cases["decode"], a, b)
    empty = torch.zeros_like(b[1])
    lora_ops._activate_adapter(lambda manager: True)(None)
    compare("decode, one slice empty", cases["decode"], a, (b[0], empty, b[2]))
    return worst


def empty_layer_skipped() -> bool:
    """add_lora_linear runs for a layer with weights in any slot, not for one with none."""
    ran = []
    add = lora_ops._add_lora_linear(lambda *args, **kwargs: ran.append(args[-1]))
    a = torch.randn(SLOTS, 1, RANK, HIDDEN)
    empty, held = torch.zeros(SLOTS, 1, HIDDEN, RANK), torch.zeros(SLOTS, 1, HIDDEN, RANK)
    held[2, 0, 5, 1] = 1.0
    prefill = SimpleNamespace(is_prefill=True, no_lora=False,
                              prefill_metadata=(None, None, None, 1, 200, 200))
    for name, b in {"empty": (empty, empty), "held": (empty, held)}.items():
        add(prefill, None, None, (a, a), b, 1.0, (HIDDEN, HIDDEN), name)
    return ran == ["held"]


if __name__ == "__main__":
    main()
