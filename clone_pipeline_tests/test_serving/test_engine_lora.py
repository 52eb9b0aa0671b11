"""The engine applies each adapter exactly as PEFT does, through clone_pipeline's segment-wise
LoRA ops (engine_plugin/), which replace vLLM's per-token CPU ops."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from clone_pipeline.engine.process import engine_python

pytestmark = pytest.mark.slow

CHECK = Path(__file__).with_name("lora_ops_check.py")


def test_segment_lora_ops_match_vllms_own_on_every_batch_shape():
    """Prefill segments, one long segment, decode steps (vLLM's own ops), mixed batches,
    the bare base's slot; scaling and add/overwrite."""
    done = subprocess.run([str(engine_python()), str(CHECK)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["installed"] is True
    assert report["worst"] and max(report["worst"].values()) < 1e-4, report["worst"]


def test_the_engine_applies_an_adapter_as_peft_does_in_prefill_and_decode(
        engine, local_tiny, canary_adapters):
    """A 60-token prompt (a prefill: the segment ops) and four generated tokens (decode
    steps: the every-slot matmuls): at each, the engine's top log-probabilities match PEFT's
    for the same adapter (PEFT fed the engine's tokens), and differ from the base's."""
    import torch
    from peft import PeftModel

    model, tokenizer, _path = local_tiny
    text = "Tell me about the house you grew up in and the people who lived there. " * 4
    ids = tokenizer(text)["input_ids"][:60]
    name = "peft-check"
    engine.client.load_adapter(name, canary_adapters[3])
    try:
        chosen, engine_tops = _engine_steps(engine, name, ids)
        _, base_tops = _engine_steps(engine, "base", ids)
    finally:
        engine.client.unload_adapter(name)
    peft_model = PeftModel.from_pretrained(model, canary_adapters[3])
    try:
        with torch.no_grad():
            logits = peft_model(torch.tensor([ids + chosen])).logits[0].float()
    finally:
        peft_model.unload()
    assert len(engine_tops) == 4
    for step, top in enumerate(engine_tops):
        peft_logprobs = torch.log_softmax(logits[len(ids) - 1 + step], -1)
        for token_id, logprob in top.items():
            assert math.isclose(logprob, peft_logprobs[token_id].item(), abs_tol=2e-3), (
                step, token_id, logprob, peft_logprobs[token_id].item())
    assert engine_tops[0] != base_tops[0]  # the adapter really changed the answer's odds

    log = (Path(engine.spec["lora_dir"]).parent / "engine.log").read_text()
    # written by the process that runs the model, on the plugin's first call there
    assert "first segment-wise LoRA call in this process" in log


def _engine_steps(engine, model: str, ids: list[int], steps: int = 4
                  ) -> tuple[list[int], list[dict[int, float]]]:
    """The tokens the engine generates greedily after the prompt *ids*, and at each step its
    top-5 (id: log-probability)."""
    reply = engine.client._call("POST", "/v1/completions", json={
        "model": model, "prompt": ids, "max_tokens": steps, "min_tokens": steps,
        "temperature": 0, "logprobs": 5, "return_tokens_as_token_ids": True}).json()
    logprobs = reply["choices"][0]["logprobs"]

    def token_id(token: str) -> int:
        return int(token.removeprefix("token_id:"))
    return ([token_id(t) for t in logprobs["tokens"]],
            [{token_id(t): value for t, value in top.items()}
             for top in logprobs["top_logprobs"]])
