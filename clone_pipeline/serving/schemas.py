"""Request bodies, with the limits a request is checked against (422 names the field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clone_pipeline.serving.limits import Limits

LIMITS = Limits()


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=LIMITS.max_message_chars)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The OpenAI chat-completions fields the gateway supports."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=128)
    messages: list[Message] = Field(min_length=1, max_length=LIMITS.max_messages)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    # vLLM's extension: no end token before this many tokens (fixed-length load tests).
    min_tokens: int | None = Field(default=None, ge=0)
    # vLLM's extension: >1 discourages repeating tokens already in the prompt or the answer
    # (a small model's greedy answer can otherwise loop until max_tokens).
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=2.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    user: str | None = Field(default=None, max_length=128)
    n: Literal[1] = 1

    @field_validator("messages")
    @classmethod
    def _prompt_size(cls, messages: list[Message]) -> list[Message]:
        total = sum(len(m.content) for m in messages)
        if total > LIMITS.max_prompt_chars:
            raise ValueError(f"the conversation is {total} characters; at most "
                             f"{LIMITS.max_prompt_chars}")
        return messages

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > LIMITS.max_stop:
            raise ValueError(f"at most {LIMITS.max_stop} stop sequences")
        return stop

    def engine_fields(self) -> dict[str, Any]:
        """The sampling fields passed on to the engine, unset ones left out."""
        return self.model_dump(include={"temperature", "top_p", "stop", "seed", "min_tokens",
                                        "presence_penalty", "frequency_penalty",
                                        "repetition_penalty"},
                               exclude_none=True) | (
            {"max_tokens": self.max_tokens or self.max_completion_tokens}
            if (self.max_tokens or self.max_completion_tokens) else {})


class InferenceOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    maxTokens: int = Field(default=150, ge=1)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    topP: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0)
    includeVoice: bool = False
    emotionalTone: str | None = Field(default=None, max_length=32)


class DeployAction(BaseModel):
    """``POST /api/training/deploy``: one body for the five actions, as the seed has it."""

    model_config = ConfigDict(extra="ignore")
    action: Literal["deploy_model", "inference", "get_deployments", "update_deployment",
                    "delete_deployment"]
    userId: str | None = Field(default=None, max_length=128)
    modelVersionId: str | None = None
    modelVersion: int | None = Field(default=None, ge=1)
    deploymentName: str | None = Field(default=None, min_length=1, max_length=128)
    inferenceType: str = "text"
    optimizations: dict[str, Any] | None = None
    deploymentId: str | None = None
    modelId: str | None = None
    prompt: str | None = Field(default=None, min_length=1, max_length=LIMITS.max_message_chars)
    options: InferenceOptions = Field(default_factory=InferenceOptions)
    updates: dict[str, Any] | None = None
