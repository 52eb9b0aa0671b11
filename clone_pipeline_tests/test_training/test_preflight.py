"""Memory pre-flight: the run's estimated peak memory against what its profile has free."""

import re
from dataclasses import replace

import pytest
from transformers import LlamaConfig

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.defs.training_config import TrainingRunConfig
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.services.datasets import collect_user_data, format_user_data
from clone_pipeline.services.ingest import import_export
from clone_pipeline.services.training import preflight
from clone_pipeline.training.base_models import PRODUCT_DEFAULT
from clone_pipeline.training.config import PRESETS, TrainConfig
from clone_pipeline.training.hardware import select_profile
from clone_pipeline.training.preflight import PreflightError
from clone_pipeline.training.trainer import load_model

USER = "margaret-ellis"
GIB = 2**30


@pytest.fixture
def ready_user(sqlite_settings):
    """Margaret imported, collected and formatted: everything pre-flight looks for."""
    import_export(PERSONAS_DIR / USER, sqlite_settings)
    collect_user_data(sqlite_settings, USER, CollectOptions())
    format_user_data(sqlite_settings, USER,
                     FormatOptions(formats=("conversational",), max_length=512),
                     tokenizer_name="local-tiny", template_style="legacy_preservation")
    return sqlite_settings


@pytest.fixture
def seven_b_folder(tmp_path):
    """A Llama-2-7B-shaped model folder (its config only: the estimate needs no weights)."""
    folder = tmp_path / "llama-7b-shape"
    LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                dtype="bfloat16").save_pretrained(folder)
    return folder


def test_demo_preset_on_the_default_base_passes_against_the_memory_measured_now(
        ready_user, smollm2):
    config = TrainingRunConfig(**PRESETS["cpu_demo"], base_model=PRODUCT_DEFAULT).train_config()
    inputs = preflight(ready_user, USER, config, min_free_disk_gb=0.1)
    check = inputs.memory
    assert check.source == "available RAM" and check.available_mb > 0
    assert 0 < check.estimate.total_bytes < check.available_mb * 2**20
    assert check.estimate.parameters == 134_515_008  # SmolLM2-135M, read from its config
    assert check.estimate.context_length == 512
    # a power of two up to the preset's 8: what fits half the free memory at the precision
    # this CPU trains in (2 in fp32 here, 4 in bf16)
    assert check.estimate.micro_batch in (1, 2, 4, 8)


def test_estimate_counts_the_real_model_exactly(local_tiny, models_dir, ready_user):
    config = TrainConfig(hardware_profile="cpu", context_length=512, batch_size=4)
    estimate = preflight(ready_user, USER, config, min_free_disk_gb=0.1).memory.estimate
    model, _ = load_model(config, select_profile("cpu"), models_dir)  # the trainer's model
    frozen = [p for p in model.parameters() if not p.requires_grad]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert estimate.parameters == sum(p.numel() for p in frozen)
    assert estimate.weights_bytes == sum(p.numel() * p.element_size() for p in frozen)
    assert estimate.weights_format == "float32"
    assert estimate.trainable_parameters == trainable
    assert estimate.adapter_bytes == 16 * trainable  # fp32 weight, gradient, two moments


def test_a_model_too_big_for_the_memory_fails_with_the_figures(ready_user, seven_b_folder):
    config = TrainConfig(base_model=str(seven_b_folder), hardware_profile="cpu")
    with pytest.raises(PreflightError) as failure:
        preflight(ready_user, USER, config, min_free_disk_gb=0.1,
                  available_memory_mb=16 * 1024)
    message = str(failure.value)
    assert "not enough memory to train on the 'cpu' profile" in message
    assert "base weights 12.55 GiB (6,738.4M parameters, bfloat16)" in message
    assert "micro-batch 1 x 1024 tokens" in message and "16.00 GiB" in message
    assert "shorten context_length to" in message and "smaller base model" in message
    assert not (ready_user.adapters_dir / USER).exists()  # nothing written before the check

    # The same run fits where there is room for it: the figures decide, not the model's size.
    roomy = preflight(ready_user, USER, config, min_free_disk_gb=0.1,
                      available_memory_mb=64 * 1024).memory.estimate
    assert 20 * GIB < roomy.total_bytes < 64 * GIB


def test_the_advice_given_makes_the_run_fit(ready_user):
    config = TrainConfig(hardware_profile="cpu", context_length=512, batch_size=4,
                         micro_batch_size=4)
    estimate = preflight(ready_user, USER, config, min_free_disk_gb=0.1).memory.estimate
    per_sequence = estimate.activation_bytes / 4
    rest = estimate.total_bytes - estimate.activation_bytes
    for sequences, advised in ((1.5, r"set micro_batch_size to (\d+)"),
                               (0.5, r"shorten context_length to (\d+) tokens")):
        available_mb = (rest + sequences * per_sequence) / 2**20
        with pytest.raises(PreflightError) as failure:
            preflight(ready_user, USER, config, min_free_disk_gb=0.1,
                      available_memory_mb=available_mb)
        value = int(re.search(advised, str(failure.value)).group(1))
        field = "micro_batch_size" if "micro" in advised else "context_length"
        assert value < getattr(config, field)
        followed = preflight(ready_user, USER, replace(config, **{field: value}),
                             min_free_disk_gb=0.1, available_memory_mb=available_mb)
        assert followed.memory.estimate.total_bytes <= available_mb * 2**20
