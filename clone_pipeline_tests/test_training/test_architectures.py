"""Other causal-LM families load, keep packed examples apart and train with LoRA.

Real GPT-2, Llama, Qwen2 and Mistral architectures from transformers, built small and random
from their configs (no weights can be downloaded here); the DialoGPT default is a GPT-2.
"""

import pytest
import torch
import transformers as tf

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.data.format_dataset import FormatOptions, format_examples
from clone_pipeline.data.formats import render
from clone_pipeline.training.collate import TokenizedExample, collate, pack
from clone_pipeline.training.config import TrainConfig
from clone_pipeline.training.trainer import Trainer
from clone_pipeline_tests.conftest import load_persona

SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 512}
ARCHITECTURES = {
    "gpt2": lambda v: tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=v, n_embd=64, n_layer=2,
                                                       n_head=2, n_positions=512)),
    "llama": lambda v: tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=v, **SMALL)),
    "qwen2": lambda v: tf.Qwen2ForCausalLM(tf.Qwen2Config(vocab_size=v, **SMALL)),
    "mistral": lambda v: tf.MistralForCausalLM(tf.MistralConfig(vocab_size=v, **SMALL)),
}


@pytest.fixture(scope="module")
def records(local_tiny):
    tokenizer = local_tiny[1]
    formatted = format_examples(
        collect(SourceMaterial.from_export(load_persona("walter-okafor"))).examples,
        "You are Walter.", tokenizer, FormatOptions(max_length=256))
    return ([render("conversational", e, "You are Walter.") for e in formatted.train_examples][:16],
            [render("conversational", e, "You are Walter.") for e in formatted.eval_examples][:4])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_architecture_packs_and_trains(arch, local_tiny, records, tmp_path, models_dir):
    tokenizer = local_tiny[1]
    torch.manual_seed(0)
    model = ARCHITECTURES[arch](len(tokenizer)).eval()
    folder = tmp_path / arch
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    a = TokenizedExample(list(range(10, 40)), list(range(10, 40)))
    b = TokenizedExample(list(range(100, 120)), list(range(100, 120)))
    batch = collate(pack([a, b], 64), pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits[0]
        alone = model(input_ids=torch.tensor([b.input_ids])).logits[0]
    assert torch.allclose(packed[30:50], alone, atol=1e-4)  # b never sees a

    result = Trainer(TrainConfig(base_model=str(folder), max_steps=2, batch_size=4,
                                 context_length=256, save_steps=100,
                                 early_stopping_patience=0),
                     *records, output_dir=tmp_path / "out", models_dir=models_dir,
                     log=lambda m: None).run()
    assert result.status == "completed" and (result.adapter_dir /
                                             "adapter_model.safetensors").exists()
