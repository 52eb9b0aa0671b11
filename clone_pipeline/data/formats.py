"""Render examples into the training formats and validate them.

Formats: conversational (messages with metadata), instruction, chat (ChatML text), alpaca,
llama (Llama 3 chat text), openai (fine-tuning JSONL) and sharegpt.
"""

from __future__ import annotations

import re
from typing import Any

from clone_pipeline.data.examples import Example

FORMATS = ("conversational", "instruction", "chat", "alpaca", "llama", "openai", "sharegpt")
# Formats whose records carry a role-tagged conversation (checked through a chat template).
MESSAGE_FORMATS = ("conversational", "openai", "sharegpt", "chat", "llama")

_LLAMA_HEADER = "<|start_header_id|>{role}<|end_header_id|>\n\n"


def messages(example: Example, system: str | None) -> list[dict[str, str]]:
    system = with_context(system, example)
    out = [{"role": "system", "content": system}] if system else []
    return out + [{"role": "user", "content": example.prompt},
                  {"role": "assistant", "content": example.answer}]


def chatml_text(msgs: list[dict[str, str]]) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)


def llama3_text(msgs: list[dict[str, str]]) -> str:
    return "<|begin_of_text|>" + "".join(
        _LLAMA_HEADER.format(role=m["role"]) + m["content"] + "<|eot_id|>" for m in msgs)


_SHAREGPT_ROLE = {"system": "system", "user": "human", "assistant": "gpt"}


def with_context(system: str | None, example: Example) -> str | None:
    """The system text an example is trained with: the persona's prompt, then the memories
    retrieved for it (as the gateway puts them)."""
    return "\n\n".join(p for p in (system, example.context) if p) or None


def render(fmt: str, example: Example, system: str | None) -> dict[str, Any]:
    """One JSON record of *fmt* for *example*; *system* is None when system prompts are off."""
    msgs = messages(example, system)
    system = with_context(system, example)
    if fmt == "conversational":
        return {"id": example.id, "source": example.source, "category": example.category,
                "emotional_tone": example.emotional_tone, "messages": msgs}
    if fmt == "openai":
        return {"messages": msgs}
    if fmt == "sharegpt":
        return {"conversations": [{"from": _SHAREGPT_ROLE[m["role"]], "value": m["content"]}
                                  for m in msgs]}
    if fmt == "chat":
        return {"text": chatml_text(msgs)}
    if fmt == "llama":
        return {"text": llama3_text(msgs)}
    if fmt == "instruction":
        record = {"instruction": example.prompt, "response": example.answer}
        return {"system": system, **record} if system else record
    if fmt == "alpaca":
        # Alpaca has no system role: the persona's prompt travels in "input" as context.
        return {"instruction": example.prompt, "input": system or "", "output": example.answer}
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def template_text(fmt: str, system: str | None, prompt: str, answer: str) -> str:
    """The text a trainer sees for *fmt* (used to measure each format's token overhead)."""
    msgs = messages(Example(id="", source="", prompt=prompt, answer=answer), system)
    if fmt == "llama":
        return llama3_text(msgs)
    if fmt in ("instruction", "alpaca"):
        head = f"{system}\n\n" if system else ""
        return f"{head}### Instruction:\n{prompt}\n\n### Response:\n{answer}"
    return chatml_text(msgs)  # chat, and the message formats rendered through ChatML


# ------------------------------------------------------------------ schemas

_str = {"type": "string", "minLength": 1}
_message = {"type": "object", "required": ["role", "content"], "additionalProperties": False,
            "properties": {"role": {"enum": ["system", "user", "assistant"]},
                           "content": _str}}
_messages = {"type": "array", "minItems": 2, "items": _message}
SCHEMAS: dict[str, dict[str, Any]] = {
    "conversational": {"type": "object", "required": ["id", "source", "messages"],
                       "properties": {"id": _str, "source": _str, "messages": _messages}},
    "openai": {"type": "object", "required": ["messages"], "additionalProperties": False,
               "properties": {"messages": _messages}},
    "sharegpt": {"type": "object", "required": ["conversations"],
                 "properties": {"conversations": {
                     "type": "array", "minItems": 2,
                     "items": {"type": "object", "required": ["from", "value"],
                               "properties": {"from": {"enum": ["system", "human", "gpt"]},
                                              "value": _str}}}}},
    "chat": {"type": "object", "required": ["text"],
             "properties": {"text": {"type": "string",
                                     "pattern": r"^<\|im_start\|>(system|user|assistant)\n"}}},
    "llama": {"type": "object", "required": ["text"],
              "properties": {"text": {"type": "string", "pattern": r"^<\|begin_of_text\|>"}}},
    "instruction": {"type": "object", "required": ["instruction", "response"],
                    "properties": {"instruction": _str, "response": _str,
                                   "system": {"type": "string"}}},
    "alpaca": {"type": "object", "required": ["instruction", "input", "output"],
               "additionalProperties": False,
               "properties": {"instruction": _str, "input": {"type": "string"},
                              "output": _str}},
}

_CHATML_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>\n", re.S)
_LLAMA_TURN = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
                         re.S)


def record_messages(fmt: str, record: dict[str, Any]) -> list[dict[str, str]]:
    """Recover the role-tagged conversation from a record of a message format."""
    if fmt in ("conversational", "openai"):
        return record["messages"]
    if fmt == "sharegpt":
        back = {v: k for k, v in _SHAREGPT_ROLE.items()}
        return [{"role": back[t["from"]], "content": t["value"]}
                for t in record["conversations"]]
    pattern = _CHATML_TURN if fmt == "chat" else _LLAMA_TURN
    return [{"role": r, "content": c} for r, c in pattern.findall(record["text"])]
