"""Answers grounded in the person's memories, through the real gateway and engine: the
passages retrieved for a turn are named as the reply's sources (an extension field, and a
last SSE chunk, that the official OpenAI client ignores), a question about her life that
nothing she told answers gets an honest "I never told you that" instead of an invention,
small talk is not refused, and a person without a memory index is served as before."""

from __future__ import annotations

import json

import httpx
import pytest
from openai import OpenAI

from clone_pipeline.memory.grounding import ABSTAIN_REPLY, RELEVANCE_THRESHOLD
from clone_pipeline.memory.index import MemoryIndex
from clone_pipeline.services import deployments, tokens
from clone_pipeline.services.memory import memory_folder
from clone_pipeline_tests.test_memory import PASSAGES

NO_CACHE = {"caching": False}


@pytest.fixture
def grounded(serving_root, engine, gateway_factory):
    settings = serving_root.settings
    remembering, forgetful = serving_root.users[:2]
    MemoryIndex.build(PASSAGES)[0].save(memory_folder(settings, remembering))
    url = gateway_factory(settings)
    found = {}
    for user in (remembering, forgetful):
        dep = deployments.deploy_model(settings, engine, user, optimizations=NO_CACHE)
        found[user] = (dep, tokens.create_token(settings, user)[0])
    return url, found[remembering], found[forgetful]

ORCHARD = "Tell me about picking apples in the orchard."


def _chat(url, token, model, content, **extra):
    return httpx.post(f"{url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"model": model, "max_tokens": 8,
                            "messages": [{"role": "user", "content": content}], **extra})


def test_a_reply_names_the_memories_it_was_given(grounded):
    url, (dep, token), _ = grounded
    reply = _chat(url, token, dep.name, "Where did you work when you were young?")
    assert reply.status_code == 200
    sources = reply.json()["sources"]
    assert sources[0] == {"kind": "responses", "id": "r1", "passage": "responses:r1#0",
                          "title": "What was your first job?", "score": sources[0]["score"]}
    assert all(s["score"] >= RELEVANCE_THRESHOLD for s in sources)

    # the official client reads the same reply; the extension field is there for those
    # who look
    client = OpenAI(base_url=f"{url}/v1", api_key=token)
    completion = client.chat.completions.create(
        model=dep.name, max_tokens=8,
        messages=[{"role": "user", "content": "Where did you work when you were young?"}])
    assert completion.choices[0].message.content
    assert completion.model_extra["sources"][0]["id"] == "r1"


def test_a_stream_ends_with_a_sources_chunk_the_openai_client_skips(grounded):
    url, (dep, token), _ = grounded
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"model": dep.name, "max_tokens": 8, "stream": True,
                            "messages": [{"role": "user",
                                          "content": ORCHARD}]}) as r:
        lines = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]" and lines.count("[DONE]") == 1
    last = json.loads(lines[-2])
    assert last["choices"] == [] and last["sources"][0]["id"] == "s1"

    client = OpenAI(base_url=f"{url}/v1", api_key=token)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in
                   client.chat.completions.create(
                       model=dep.name, max_tokens=8, stream=True,
                       messages=[{"role": "user", "content": ORCHARD}])
                   if chunk.choices)
    assert text


def test_what_she_never_told_is_answered_honestly_and_small_talk_is_not_refused(grounded):
    url, (dep, token), _ = grounded
    never = _chat(url, token, dep.name, "Did you ever climb Mount Everest?").json()
    assert never["choices"][0]["message"]["content"] == ABSTAIN_REPLY
    assert never["abstained"] is True and never["sources"] == []
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=60,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"model": dep.name, "stream": True,
                            "stream_options": {"include_usage": True}, "messages": [
                          {"role": "user", "content": "Did you ever fly a plane?"}]}) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines()
                  if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks
                   if c["choices"]) == ABSTAIN_REPLY
    # asked for usage, the stream has its usage chunk like any other: no model ran
    assert [c["usage"] for c in chunks if "usage" in c] == [
        {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}]

    hello = _chat(url, token, dep.name, "Hello!").json()
    assert "abstained" not in hello and hello["choices"][0]["message"]["content"] is not None

    seed = httpx.post(f"{url}/api/training/deploy", timeout=60,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"action": "inference", "modelId": str(dep.id),
                            "prompt": "What was your first job?",
                            "options": {"maxTokens": 8}}).json()
    assert seed["result"]["sources"][0]["id"] == "r1" and not seed["result"]["abstained"]


def test_a_person_without_memories_is_served_as_before(grounded):
    url, _, (dep, token) = grounded
    reply = _chat(url, token, dep.name, "Did you ever climb Mount Everest?").json()
    assert "sources" not in reply and "abstained" not in reply
