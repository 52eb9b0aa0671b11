"""Typed run config for the data assets (the Launchpad documents itself from these)."""


import dagster as dg
from pydantic import Field

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.data.formats import FORMATS
from clone_pipeline.data.quality import ReadinessPolicy


class CollectConfig(dg.Config):
    include_life_stories: bool = Field(default=True, description="Train on life stories too.")
    include_milestones: bool = Field(default=True,
                                     description="Train on milestone messages too.")
    min_word_count: int = Field(default=20, ge=0,
                                description="Skip items with fewer words than this.")
    keep_own_name: bool = Field(default=True,
                                description="Keep the person's own name (False redacts it).")
    redact_names: list[str] = Field(default_factory=list,
                                    description="Extra names to replace with [NAME].")
    min_responses: int = Field(default=50, ge=0,
                               description="Readiness: responses of 20+ words needed.")
    min_categories: int = Field(default=5, ge=0,
                                description="Readiness: question categories needed.")
    workers: int = Field(default=0, ge=0,
                         description="Processes for cleaning and redaction (0 = one per CPU)."
                         )

    def options(self) -> CollectOptions:
        return CollectOptions(
            include_life_stories=self.include_life_stories,
            include_milestones=self.include_milestones, min_word_count=self.min_word_count,
            keep_own_name=self.keep_own_name, redact_names=tuple(self.redact_names),
            workers=self.workers,
            readiness=ReadinessPolicy(min_responses=self.min_responses,
                                      min_categories=self.min_categories))


class FormatConfig(dg.Config):
    formats: list[str] = Field(default_factory=lambda: list(FORMATS),
                               description=f"Formats to write: {', '.join(FORMATS)}.")
    template_style: str = Field(default="legacy_preservation",
                                description="System prompt style: legacy_preservation or "
                                            "casual.")
    include_system_prompts: bool = Field(default=True)
    max_length: int = Field(default=2048, ge=64,
                            description="Maximum tokens per record, in the tokenizer below.")
    tokenizer: str = Field(default="local-tiny",
                           description="Tokenizer that measures max_length: the base model's "
                                       "hub id or local path, or local-tiny (built offline).")
    eval_fraction: float = Field(default=0.1, ge=0, lt=1,
                                 description="Share of questions held out for evaluation.")
    seed: int = Field(default=0, description="Seed of the held-out question choice.")
    workers: int = Field(default=0, ge=0,
                         description="Processes writing formats (0 = one per CPU).")

    def options(self) -> FormatOptions:
        return FormatOptions(formats=tuple(self.formats),
                             include_system_prompts=self.include_system_prompts,
                             max_length=self.max_length, eval_fraction=self.eval_fraction,
                             seed=self.seed, workers=self.workers)
