"""Each Dagster run config exposes every field of its core options with the same default,
and each REST body's option fields have the core defaults too, so the Launchpad, the CLI, the
REST API and the Python API cannot drift apart."""

import re
from dataclasses import fields
from pathlib import Path

import dagster as dg
import pytest
import yaml

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.data.prompts import TemplateStyle
from clone_pipeline.data.quality import ReadinessPolicy
from clone_pipeline.definitions import defs
from clone_pipeline.defs.config import (
    CollectConfig,
    FormatConfig,
    VoiceIntegrationConfig,
    core_default,
)
from clone_pipeline.defs.training_config import (
    TrainingRunConfig,
    preset_run_config,
    preset_yaml,
)
from clone_pipeline.serving.operate_schemas import (
    CollectRequest,
    FormatRequest,
    VoiceIntegrateRequest,
)
from clone_pipeline.training.base_models import PRODUCT_DEFAULT
from clone_pipeline.training.config import PRESETS, TrainConfig
from clone_pipeline.voice.integration import IntegrationSettings

# (Dagster config, core dataclass, core fields exposed under another shape)
PAIRS = [
    (CollectConfig, CollectOptions, {"readiness"}),
    (CollectConfig, ReadinessPolicy, set()),
    (FormatConfig, FormatOptions, set()),
    (TrainingRunConfig, TrainConfig, set()),
    (VoiceIntegrationConfig, IntegrationSettings, set()),
]


@pytest.mark.parametrize(("config_cls", "core_cls", "nested"), PAIRS,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_every_core_field_is_exposed_with_the_core_default(config_cls, core_cls, nested):
    exposed = config_cls.model_fields
    for field in fields(core_cls):
        if field.name in nested:
            continue
        assert field.name in exposed, f"{config_cls.__name__} lacks {field.name}"
        default = exposed[field.name].get_default(call_default_factory=True)
        expected = core_default(core_cls, field.name)
        if isinstance(expected, tuple):
            default = tuple(default)
        assert default == expected, f"{config_cls.__name__}.{field.name}"


# (REST body, the core dataclass its options set, its fields that set no core option)
REST_PAIRS = [
    (CollectRequest, CollectOptions, {"userId", "waitSeconds"}),
    (FormatRequest, FormatOptions, {"userId", "waitSeconds", "format", "templateStyle"}),
    (VoiceIntegrateRequest, IntegrationSettings, {"userId", "waitSeconds"}),
]


@pytest.mark.parametrize(("body_cls", "core_cls", "own"), REST_PAIRS,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_every_rest_option_has_the_core_default(body_cls, core_cls, own):
    core_fields = {f.name for f in fields(core_cls)}
    for name, field in body_cls.model_fields.items():
        if name in own:
            continue
        core_name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
        assert core_name in core_fields, f"{body_cls.__name__}.{name}: no {core_cls.__name__} " \
                                         f"field {core_name}"
        assert field.get_default(call_default_factory=True) == \
            core_default(core_cls, core_name), f"{body_cls.__name__}.{name}"


def test_the_rest_format_and_template_style_defaults_are_the_pipelines():
    body = FormatRequest()
    assert body.format == TrainConfig().train_format
    assert body.templateStyle == FormatConfig().template_style == \
        TemplateStyle.LEGACY_PRESERVATION


def test_default_run_config_converts_to_the_default_core_options():
    assert CollectConfig().options() == CollectOptions()
    assert FormatConfig().options() == FormatOptions()
    assert TrainingRunConfig().train_config() == TrainConfig()
    assert VoiceIntegrationConfig().settings() == IntegrationSettings()


def test_every_field_of_a_run_config_reaches_the_core():
    changed = CollectConfig(min_words_per_response=7, near_duplicate_threshold=0.9,
                            workers=3).options()
    assert changed.readiness.min_words_per_response == 7
    assert changed.near_duplicate_threshold == 0.9 and changed.workers == 3
    trained = TrainingRunConfig(warmup_ratio=0.2, weight_decay=0.01, logging_steps=5)
    assert (trained.train_config().warmup_ratio, trained.train_config().weight_decay,
            trained.train_config().logging_steps) == (0.2, 0.01, 5)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_training_run_config(name):
    config = TrainingRunConfig(**PRESETS[name])
    assert config.train_config().hardware_profile == PRESETS[name]["hardware_profile"]


EXAMPLES = Path(__file__).parents[2] / "examples" / "run_config"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shipped_example_run_config_is_what_the_code_generates(name):
    shipped = EXAMPLES / f"{name}.yaml"
    assert shipped.read_text(encoding="utf-8") == preset_yaml(name), (
        f"{shipped} is out of date: python -m clone_pipeline.defs.training_config "
        f"examples/run_config")
    job = defs.resolve_job_def("complete_workflow")
    assert dg.validate_run_config(job, yaml.safe_load(shipped.read_text()))
    assert preset_run_config(name)["ops"]["trained_adapter"]["config"] == \
        {**TrainingRunConfig().model_dump(), "base_model": PRODUCT_DEFAULT, **PRESETS[name]}
