"""Fidelity on a fact sheet (clone_pipeline/memory/fidelity): held-out questions scored for
recall and honest abstention, each asked as the gateway would (grounded in the person's
memories, or the abstention). The memory index is real (BM25 + MiniLM); the answerers here
are plain functions so the scoring itself is what is tested."""

from __future__ import annotations

import json

import pytest

from clone_pipeline.demo import persona_dirs
from clone_pipeline.memory.fidelity import (
    CONFIGURATIONS,
    Fact,
    FactSheet,
    FactSheetError,
    is_honest,
    measure,
)
from clone_pipeline.memory.grounding import ABSTAIN_REPLY
from clone_pipeline.memory.index import MemoryIndex
from clone_pipeline_tests.test_memory import PASSAGES

SHEET = FactSheet(
    told=(Fact("Where did you work when you were fifteen?", ("Hartley's", "bakery")),
          Fact("What fruit did you pick one summer?", ("apples",))),
    never_told=("Tell me about your years flying planes for the air force.",))


def test_an_expected_word_counts_only_as_a_whole_word_in_any_case():
    fact = Fact("Who is your granddaughter?", ("Ada",))
    assert fact.recalled_in("Little ada, of course.")
    assert not fact.recalled_in("She lives in Canada.")


def test_an_honest_answer_declines_and_an_invention_does_not():
    assert is_honest(ABSTAIN_REPLY)
    assert is_honest("Oh, I never flew a plane in my life, love.")
    assert is_honest("I don't recall anything like that.")
    assert not is_honest("I flew Spitfires over the Channel in 1944.")


def test_memories_give_the_model_the_facts_and_a_never_told_question_gets_the_abstention():
    index, _ = MemoryIndex.build(PASSAGES)
    asked = []

    def echo(conversations):  # answers with what it was told: recall follows retrieval
        asked.extend(conversations)
        return [c[0]["content"] for c in conversations]

    report = measure(SHEET, "You are Nan.", index, {"base": echo})
    assert set(report.scores) == {"base", "base+memories"}  # no adapter given
    alone, grounded = report.scores["base"], report.scores["base+memories"]
    assert alone.fact_recall == 0.0 and grounded.fact_recall == 1.0
    assert grounded.abstained == 1 and grounded.honest_abstention == 1.0
    assert alone.honest_abstention == 0.0  # "You are Nan." is not a refusal
    # the never-told question never reached the model when memories were searched
    never = SHEET.never_told[0]
    assert sum(c[-1]["content"] == never for c in asked) == 1
    sample = next(s for s in report.samples if s["kind"] == "never_told")
    assert sample["base+memories"] == ABSTAIN_REPLY
    assert list(report.as_dict()["scores"]) == ["base", "base+memories"]


def test_without_an_index_only_the_plain_configurations_are_measured():
    report = measure(SHEET, "You are Nan.", None,
                     {"base": lambda cs: ["."] * len(cs), "adapter": lambda cs: ["."] * len(cs)})
    assert list(report.scores) == [c for c in CONFIGURATIONS if "+" not in c]


@pytest.mark.parametrize("folder", [p for p in persona_dirs() if (p / "facts.json").is_file()],
                         ids=lambda p: p.name)
def test_each_demo_fact_sheet_loads_and_asks_what_the_export_never_asked(folder):
    sheet = FactSheet.load(folder / "facts.json")
    assert len(sheet.told) >= 10 and len(sheet.never_told) >= 8
    export = json.loads((folder / "export.json").read_text())
    asked = {r["question"].lower() for r in export["responses"]}
    assert not asked & {f.question.lower() for f in sheet.told}  # held out: new wording
    material = json.dumps(export).lower()
    for fact in sheet.told:  # every fact is in her material ...
        assert any(w.lower() in material for w in fact.expect), fact.question


@pytest.mark.parametrize("data, where", [
    ({"format": "other"}, "not a fact sheet"),
    ({"format": "clone-pipeline-fact-sheet", "told": [{"question": "Q?"}], "never_told": []},
     "/told/0 needs"),
    ({"format": "clone-pipeline-fact-sheet", "told": [], "never_told": [""]},
     "/never_told/0 must"),
])
def test_a_broken_fact_sheet_is_refused_saying_where(data, where):
    with pytest.raises(FactSheetError, match=where):
        FactSheet.from_dict(data, "facts.json")


def test_greedy_decoding_penalises_only_what_the_answer_already_said_never_the_prompt():
    """The memories' own words stay as likely as before (a repetition penalty would lower
    them); a token the answer has said twice is lowered twice, as vLLM's frequency_penalty."""
    import torch

    from clone_pipeline.training.evaluation import FrequencyPenalty

    prompt, answer = [5, 7, 7, 9], [3, 3, 7]
    scores = torch.zeros(1, 12)
    out = FrequencyPenalty(len(prompt), 0.5)(torch.tensor([prompt + answer]), scores.clone())
    assert out[0, 3].item() == -1.0  # said twice in the answer
    assert out[0, 7].item() == -0.5  # once in the answer; its two prompt uses do not count
    assert out[0, 5].item() == 0.0 and out[0, 9].item() == 0.0  # the prompt's words untouched
    fresh = FrequencyPenalty(len(prompt), 0.5)(torch.tensor([prompt]), scores.clone())
    assert torch.equal(fresh, scores)  # nothing said yet, nothing lowered
