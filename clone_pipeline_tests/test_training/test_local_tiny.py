"""The offline base model: really pretrained, cached by recipe, loads offline, stops at EOS."""

import json

import torch

from clone_pipeline.training.local_tiny import ensure_base_model, model_dir


def test_pretrained_not_random(local_tiny):
    _, tokenizer, path = local_tiny
    info = json.loads((path / "local_tiny.json").read_text())
    uniform = torch.log(torch.tensor(float(len(tokenizer)))).item()  # loss of random weights
    assert info["final_loss"] < uniform - 3
    assert info["pretrain_tokens"] > 30_000 and 500_000 < info["parameters"] < 5_000_000


def test_cached_by_recipe(local_tiny, models_dir):
    _, _, path = local_tiny
    assert model_dir(models_dir) == path
    before = (path / "model.safetensors").stat().st_mtime_ns
    assert ensure_base_model(models_dir) == path  # no rebuild
    assert (path / "model.safetensors").stat().st_mtime_ns == before


def test_generation_stops_at_eos_without_role_tokens(local_tiny):
    model, tokenizer, _ = local_tiny
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What do you cook on Sundays?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(0)
    out = model.generate(**prompt, max_new_tokens=200, do_sample=True, temperature=0.8,
                         top_p=0.9)[0][prompt["input_ids"].shape[1]:]
    text = tokenizer.decode(out, skip_special_tokens=True)
    assert out[-1].item() in model.generation_config.eos_token_id  # it stopped by itself
    assert "<|im_start|>" not in text and "assistant\n" not in text and text.strip()
