"""Assistant-only labels for every trainable format, and packing without cross-talk."""

import pytest
import torch

from clone_pipeline.data.examples import Example
from clone_pipeline.data.formats import render
from clone_pipeline.training.collate import (
    IGNORE,
    TRAINABLE_FORMATS,
    TokenizedExample,
    collate,
    pack,
    tokenize_record,
)

SYSTEM = "You are Walter Okafor. Answer as yourself."
EXAMPLE = Example(id="responses:r-1", source="responses",
                  prompt="What advice would you give about engines?",
                  answer="Measure twice. Then listen to the engine, it tells you the rest.")


@pytest.mark.parametrize("fmt", TRAINABLE_FORMATS)
def test_only_the_answer_is_trained(local_tiny, fmt):
    _, tokenizer, _ = local_tiny
    example = tokenize_record(tokenizer, fmt, render(fmt, EXAMPLE, SYSTEM), 512)
    trained = [t for t in example.labels if t != IGNORE]
    text = tokenizer.decode(trained)
    assert text.startswith(EXAMPLE.answer)
    assert text[len(EXAMPLE.answer):] in ("<|im_end|>", "<|im_end|>\n")  # learns to stop
    assert "Walter" not in text and "engines?" not in text and "user" not in text


def test_untrainable_format_is_refused(local_tiny):
    with pytest.raises(ValueError, match="cannot be trained"):
        tokenize_record(local_tiny[1], "xml", {}, 16)


def test_packing_fills_sequences_and_restarts_positions():
    examples = [TokenizedExample(list(range(n)), list(range(n))) for n in (50, 40, 30, 20, 10)]
    packed = pack(examples, max_length=64)
    # first fit decreasing: [50, 10], [40, 20], [30]; every token kept, none over the limit
    assert sorted(len(p) for p in packed) == [30, 60, 60]
    for seq in packed:
        starts = [i for i, p in enumerate(seq.position_ids) if p == 0]
        assert len(starts) == len(seq.lengths)
        assert all(seq.labels[s] == IGNORE for s in starts)
    with pytest.raises(ValueError, match="exceeds max_length"):
        pack([TokenizedExample([1] * 70, [1] * 70)], 64)


def test_packed_examples_do_not_see_each_other(local_tiny):
    model, tokenizer, _ = local_tiny
    texts = ["The canal froze that winter and we skated to school.",
             "Pops fixed the engine with a wire and a prayer, and it ran for years."]
    examples = [TokenizedExample(ids, ids) for ids in
                (tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts)]
    batch = collate(pack(examples, 128), pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits[0]
        start = 0
        for length in pack(examples, 128)[0].lengths:
            ids = batch["input_ids"][0, start:start + length].unsqueeze(0)
            alone = model(input_ids=ids).logits[0]
            assert torch.allclose(packed[start:start + length], alone, atol=1e-4)
            start += length
        # the control: without the block mask the second example does see the first
        leaky = model(input_ids=batch["input_ids"],
                      position_ids=batch["position_ids"]).logits[0]
    first = pack(examples, 128)[0].lengths[0]
    assert not torch.allclose(leaky[first:], packed[first:], atol=1e-3)


def test_packing_keeps_the_block_mask_unless_flash_attention_really_runs():
    from clone_pipeline.training.config import TrainConfig
    from clone_pipeline.training.hardware import HardwareReport, Profile
    from clone_pipeline.training.memory_estimate import attention_implementation

    flash_gpu = HardwareReport(Profile("h100", "cuda", "bf16", False, 70_000,
                                       attention="flash_attention_2"))
    assert attention_implementation(TrainConfig(), flash_gpu) == "flash_attention_2"
    # Turning flash-attention off on a flash-capable GPU runs SDPA, which needs the mask.
    assert attention_implementation(TrainConfig(flash_attention=False), flash_gpu) == "sdpa"
    cpu = HardwareReport(Profile("cpu", "cpu", "fp32", False, 4_000))
    assert attention_implementation(TrainConfig(), cpu) == "sdpa"
