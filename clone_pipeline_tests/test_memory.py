"""The memory index (clone_pipeline/memory): passages that keep their source, hybrid search
that finds a passage by its words and by its meaning, and builds that re-embed only what
changed. Real BM25 (bm25s) and the real all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clone_pipeline.data.collect import SourceMaterial, collect
from clone_pipeline.demo import PERSONAS_DIR
from clone_pipeline.memory.index import MemoryIndex, default_embed
from clone_pipeline.memory.passages import Passage, passages_from_examples, split_text

# Three memories of one person, for searching (also the serving tests' grounded user).
PASSAGES = [
    Passage("responses:r1#0", "responses", "r1", "What was your first job?",
            "I started at Hartley's bakery on the corner at fifteen, up at four."),
    Passage("life_stories:s1#0", "life_stories", "s1", "The orchard summer",
            "We picked apples until our hands were sticky and the ladders creaked."),
    Passage("responses:r2#0", "responses", "r2", "How did you meet Grandpa?",
            "At a dance in the church hall; he trod on my feet twice."),
]


def _margaret_passages() -> list[Passage]:
    doc = json.loads((PERSONAS_DIR / "margaret-ellis" / "export.json").read_text())
    return passages_from_examples(collect(SourceMaterial.from_export(doc)).examples)


def test_long_text_is_split_between_sentences_and_short_text_is_kept_whole():
    story = " ".join(f"Sentence number {n} of the story has several words in it." for n in
                     range(40))
    pieces = split_text(story, max_words=60)
    assert len(pieces) > 4 and " ".join(pieces) == story
    assert all(len(p.split()) <= 60 and p.endswith(".") for p in pieces)
    assert split_text("One short answer.") == ["One short answer."]


def test_every_passage_names_its_source_and_stories_keep_their_titles():
    passages = _margaret_passages()
    assert {p.source for p in passages} == {"responses", "life_stories", "milestone_messages"}
    assert len({p.id for p in passages}) == len(passages)
    answer = next(p for p in passages if p.source == "responses")
    assert answer.title.endswith("?") and answer.id.startswith(f"responses:{answer.item_id}#")
    story = next(p for p in passages if p.source == "life_stories")
    assert not story.title.startswith("Tell me")


def test_search_finds_a_passage_by_its_words_and_by_its_meaning():
    index, embedded = MemoryIndex.build(PASSAGES)
    assert embedded == 3
    # a shared rare word (lexical)
    assert index.search("Tell me about Hartley's", k=1)[0].passage.item_id == "r1"
    # the same meaning in other words (dense): "husband", "know each other" / "meet Grandpa"
    hit = index.search("Where did you and your husband get to know each other?", k=1)[0]
    assert hit.passage.item_id == "r2"
    assert index.search("fruit harvest", k=1)[0].passage.item_id == "s1"
    # relevance tells a question about her life from one she never spoke of
    unrelated = index.search("What is the capital of Mongolia?", k=1)[0]
    assert unrelated.relevance < hit.relevance


def test_a_rebuild_re_embeds_only_the_passages_that_changed(tmp_path):
    passages = _margaret_passages()
    calls: list[int] = []

    def counting_embed(texts):
        calls.append(len(texts))
        return default_embed(texts)

    first, embedded = MemoryIndex.build(passages, embed=counting_embed)
    assert embedded == len(passages) and calls == [len(passages)]
    first.save(tmp_path / "memory")

    changed = [*passages[:-1], Passage(**{**passages[-1].as_dict(),
                                          "text": passages[-1].text + " And that was that."})]
    loaded = MemoryIndex.load(tmp_path / "memory")
    second, embedded = MemoryIndex.build(changed, previous=loaded, embed=counting_embed)
    assert embedded == 1 and calls[-1] == 1
    np.testing.assert_array_equal(second.embeddings[:-1], first.embeddings[:-1])
    assert not np.array_equal(second.embeddings[-1], first.embeddings[-1])


def test_an_empty_or_missing_index_answers_nothing(tmp_path):
    assert MemoryIndex.load(tmp_path / "nowhere") is None
    empty, _ = MemoryIndex.build([])
    assert empty.search("anything") == []


def test_grounding_keeps_relevant_passages_in_budget_and_abstains_only_about_her_life():
    from clone_pipeline.memory.grounding import asks_about_her, ground

    passages = [
        Passage("responses:r1#0", "responses", "r1", "What was your first job?",
                "I started at Hartley's bakery on the corner at fifteen, up at four."),
        Passage("life_stories:s1#0", "life_stories", "s1", "The bakery years",
                " ".join(["We baked bread and buns for the whole street."] * 20)),
    ]
    index, _ = MemoryIndex.build(passages)
    ask = [{"role": "user", "content": "Tell me about your job at the bakery."}]
    both = ground(index, ask, threshold=0.3)  # a low bar: the budget is what this checks
    assert {h.passage.item_id for h in both.memories} == {"r1", "s1"} and not both.abstain
    assert "Hartley's bakery" in both.system_prompt("You are Margaret.")
    assert both.system_prompt("You are Margaret.").startswith("You are Margaret.")
    tight = ground(index, ask, threshold=0.3, budget_words=40)  # the story no longer fits
    assert [h.passage.item_id for h in tight.memories] == ["r1"]

    never = ground(index, [{"role": "user", "content": "Did you ever sail to Iceland?"}])
    assert never.memories == [] and never.abstain and never.sources() == []
    assert not ground(index, [{"role": "user", "content": "Hello!"}]).abstain
    assert asks_about_her("Where did you grow up?")
    assert not asks_about_her("How are you?") and not asks_about_her("Thanks, Grandma!")


def test_training_examples_get_the_memories_the_gateway_would_give_but_never_their_own():
    from clone_pipeline.data.examples import Example
    from clone_pipeline.data.formats import render
    from clone_pipeline.memory.grounding import add_memories, persona_prompt

    index, _ = MemoryIndex.build(PASSAGES)
    own = Example("responses:r1", "responses", "What was your first job?", "The bakery.")
    other = Example("responses:r9", "responses", "Where did you work as a girl?", "A shop.")
    assert add_memories(index, [own, other]) == 1
    assert own.context is None  # its own answer is what it is taught; nothing else fits
    assert "Hartley's" in other.context  # another question's memories are there to use
    [system, user, _] = render("conversational", other, "You are Nan.")["messages"]
    assert system["content"].startswith("You are Nan.\n\nThings you have told your family")
    # deployment and evaluation start from the persona's prompt, not this record's memories
    assert persona_prompt(system["content"]) == "You are Nan."
    assert user["content"] == other.prompt


def test_a_reading_lesson_shows_training_examples_their_own_answer_but_never_held_out_ones():
    from clone_pipeline.data.examples import Example
    from clone_pipeline.memory.grounding import add_memories

    index, _ = MemoryIndex.build(PASSAGES)

    def asked() -> tuple[Example, Example]:
        return (Example("responses:r1", "responses", "What was your first job?", "The bakery."),
                Example("responses:r2", "responses", "How did you meet Grandpa?", "A dance."))

    trained, held = asked()
    assert add_memories(index, [trained, held], own_answer_share=1.0,
                        held_out=frozenset({held.id})) == 1
    assert "Hartley's bakery" in trained.context  # its own answer, as the gateway serves it
    assert held.context is None  # a held-out example would only measure copying
    none_shown = asked()
    add_memories(index, list(none_shown), own_answer_share=0.0)
    assert all(e.context is None for e in none_shown)
    # the share is a keyed hash of (seed, example): about half for 0.5, and a re-run with
    # the same seed picks the same
    def own_shown(seed: int) -> bool:
        example = asked()[0]
        add_memories(index, [example], own_answer_share=0.5, seed=seed)
        return example.context is not None

    picks = [own_shown(seed) for seed in range(60)]
    assert 15 < sum(picks) < 45
    assert [own_shown(seed) for seed in range(60)] == picks
    with pytest.raises(ValueError, match="own_answer_share"):
        add_memories(index, [asked()[0]], own_answer_share=1.5)
