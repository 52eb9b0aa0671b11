"""The engine applies each adapter exactly as PEFT does, through clone_pipeline's segment-wise
LoRA ops (engine_plugin/), which replace vLLM's per-token CPU ops."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from clone_pipeline.engine.process import engine_python
from clone_pipeline_tests.test_serving.conftest import assert_engine_matches_peft

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
    model, tokenizer, _path = local_tiny
    text = "Tell me about the house you grew up in and the people who lived there. " * 4
    ids = tokenizer(text)["input_ids"][:60]
    assert_engine_matches_peft(engine, model, canary_adapters[3], ids)

    log = (Path(engine.spec["lora_dir"]).parent / "engine.log").read_text()
    # written by the process that runs the model, on the plugin's first call there
    assert "first segment-wise LoRA call in this process" in log

