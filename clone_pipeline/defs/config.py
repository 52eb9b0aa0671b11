"""Typed run config for the assets (the Launchpad documents itself from these).

Each class mirrors one core options dataclass: defaults are read from the dataclass (one set
of defaults), and a parametrised test checks every core field is exposed here.
"""

from dataclasses import MISSING, fields
from typing import Any

import dagster as dg
from pydantic import Field

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.data.formats import FORMATS
from clone_pipeline.data.prompts import TEMPLATE_STYLES, TemplateStyle
from clone_pipeline.data.quality import ReadinessPolicy
from clone_pipeline.training.base_models import DEFAULT_BASE_MODEL
from clone_pipeline.voice.integration import IntegrationSettings


def core_default(cls: type, name: str) -> Any:
    """The default of field *name* of the core dataclass *cls*."""
    field = {f.name: f for f in fields(cls)}[name]
    return field.default if field.default is not MISSING else field.default_factory()


class CollectConfig(dg.Config):
    include_life_stories: bool = Field(default=core_default(CollectOptions,
                                                            "include_life_stories"),
                                       description="Train on life stories too.")
    include_milestones: bool = Field(default=core_default(CollectOptions, "include_milestones"),
                                     description="Train on milestone messages too.")
    min_word_count: int = Field(default=core_default(CollectOptions, "min_word_count"), ge=0,
                                description="Skip items with fewer words than this.")
    keep_own_name: bool = Field(default=core_default(CollectOptions, "keep_own_name"),
                                description="Keep the person's own name (False redacts it).")
    redact_names: list[str] = Field(default_factory=list,
                                    description="Extra names to replace with [NAME].")
    phone_regions: list[str] = Field(
        default_factory=lambda: list(core_default(CollectOptions, "phone_regions")),
        description="Countries (ISO codes) whose national phone formats are redacted; "
                    "numbers written with +CC are redacted for every country.")
    near_duplicate_threshold: float = Field(
        default=core_default(CollectOptions, "near_duplicate_threshold"), gt=0, le=1,
        description="Word-trigram Jaccard similarity at which two answers count as near "
                    "duplicates (one is skipped).")
    min_responses: int = Field(default=core_default(ReadinessPolicy, "min_responses"), ge=0,
                               description="Readiness: responses needed (of "
                                           "min_words_per_response words or more).")
    min_words_per_response: int = Field(
        default=core_default(ReadinessPolicy, "min_words_per_response"), ge=0,
        description="Readiness: words a response needs to count towards min_responses.")
    min_categories: int = Field(default=core_default(ReadinessPolicy, "min_categories"), ge=0,
                                description="Readiness: question categories needed.")
    workers: int = Field(default=core_default(CollectOptions, "workers"), ge=0,
                         description="Processes for cleaning and redaction (0 = one per CPU).")

    def options(self) -> CollectOptions:
        return CollectOptions(
            include_life_stories=self.include_life_stories,
            include_milestones=self.include_milestones, min_word_count=self.min_word_count,
            keep_own_name=self.keep_own_name, redact_names=tuple(self.redact_names),
            phone_regions=tuple(self.phone_regions),
            near_duplicate_threshold=self.near_duplicate_threshold, workers=self.workers,
            readiness=ReadinessPolicy(min_responses=self.min_responses,
                                      min_words_per_response=self.min_words_per_response,
                                      min_categories=self.min_categories))


class FormatConfig(dg.Config):
    formats: list[str] = Field(default_factory=lambda: list(FORMATS),
                               description=f"Formats to write: {', '.join(FORMATS)}.")
    template_style: str = Field(default=TemplateStyle.LEGACY_PRESERVATION.value,
                                description=f"System prompt style: "
                                            f"{' or '.join(TEMPLATE_STYLES)}.")
    include_system_prompts: bool = Field(
        default=core_default(FormatOptions, "include_system_prompts"))
    with_memories: bool = Field(
        default=core_default(FormatOptions, "with_memories"),
        description="Give each example the memories retrieved for its question (never its "
                    "own answer) after the system prompt, as the gateway does at inference; "
                    "needs memory_index (without it, examples go without).")
    own_answer_share: float = Field(
        default=core_default(FormatOptions, "own_answer_share"), ge=0, le=1,
        description="With with_memories: the share of training examples that see their "
                    "memories exactly as served, their own answer among them when retrieved "
                    "(a reading lesson; held-out examples never do).")
    max_length: int = Field(default=core_default(FormatOptions, "max_length"), ge=64,
                            description="Maximum tokens per record, in the tokenizer below.")
    tokenizer: str = Field(default=DEFAULT_BASE_MODEL,
                           description="Tokenizer that measures max_length: the base model's "
                                       "(smollm2-135m-instruct or local-tiny, built offline, "
                                       "a hub id with local files, or a folder).")
    eval_fraction: float = Field(default=core_default(FormatOptions, "eval_fraction"), ge=0,
                                 lt=1, description="Share of questions held out for "
                                                   "evaluation.")
    seed: int = Field(default=core_default(FormatOptions, "seed"),
                      description="Seed of the held-out question choice.")
    workers: int = Field(default=core_default(FormatOptions, "workers"), ge=0,
                         description="Processes writing formats (0 = one per CPU).")

    def options(self) -> FormatOptions:
        return FormatOptions(formats=tuple(self.formats),
                             include_system_prompts=self.include_system_prompts,
                             with_memories=self.with_memories,
                             own_answer_share=self.own_answer_share, max_length=self.max_length,
                             eval_fraction=self.eval_fraction, seed=self.seed,
                             workers=self.workers)


class VoiceIntegrationConfig(dg.Config):
    """How voice-text alignment turns recordings into training examples."""

    voice_weight: float = Field(default=core_default(IntegrationSettings, "voice_weight"), ge=0,
                                description="Weight of a voice example relative to a text "
                                            "example (repeats = voice/text, rounded).")
    text_weight: float = Field(default=core_default(IntegrationSettings, "text_weight"), gt=0)
    emotional_alignment: bool = Field(
        default=core_default(IntegrationSettings, "emotional_alignment"),
        description="Measure and require emotional consistency between text and voice.")
    prosody_mapping: bool = Field(
        default=core_default(IntegrationSettings, "prosody_mapping"),
        description="Prefix voice examples with rate/pitch/range/contour tags relative to "
                    "the speaker.")
    speech_pattern_learning: bool = Field(
        default=core_default(IntegrationSettings, "speech_pattern_learning"),
        description="Mark pauses and emphasised words inside voice examples.")
    personality_consistency: bool = Field(
        default=core_default(IntegrationSettings, "personality_consistency"),
        description="Keep the person's system prompt on voice examples.")

    def settings(self) -> IntegrationSettings:
        return IntegrationSettings(**self.model_dump())
