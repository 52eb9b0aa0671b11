"""Collection, readiness, formats, the held-out split and format validation."""

import json

import pytest

from clone_pipeline.data.collect import CollectOptions, SourceMaterial, collect
from clone_pipeline.data.format_dataset import FormatOptions, format_examples, write_formats
from clone_pipeline.data.formats import FORMATS, record_messages, render
from clone_pipeline.data.prompts import system_prompt
from clone_pipeline.data.store import read_jsonl
from clone_pipeline.data.validate import validate_files
from clone_pipeline.training.base_models import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer(models_dir):
    return load_tokenizer("local-tiny", models_dir)


def test_ready_persona(persona):
    c = collect(SourceMaterial.from_export(persona("margaret-ellis")))
    assert c.readiness.ready and c.readiness.score == 100 and not c.readiness.reasons
    m = c.metrics
    assert m.sources == {"responses": 70, "life_stories": 10, "milestone_messages": 10}
    assert m.category_coverage == 10 and m.emotional_diversity >= 5
    assert 0 < m.overall_score <= 100
    assert m.total_words == sum(e.word_count for e in c.examples)
    # the persona's planted email, phone and address are gone from the training text
    assert {"EMAIL", "PHONE", "ADDRESS"} <= set(c.redactions)
    assert not any("@example.com" in e.answer for e in c.examples)


def test_not_ready_persona_says_why(persona):
    c = collect(SourceMaterial.from_export(persona("rosa-delgado")))
    assert not c.readiness.ready
    assert c.readiness.reasons == ["3 question categories covered; at least 5 needed"]
    assert 0 < c.readiness.score < 100


def test_options_change_what_is_collected(persona):
    doc = persona("margaret-ellis")
    c = collect(SourceMaterial.from_export(doc), CollectOptions(include_life_stories=False,
                                                   include_milestones=False))
    assert c.metrics.sources == {"responses": 70}
    strict = collect(SourceMaterial.from_export(doc), CollectOptions(min_word_count=80))
    assert strict.skipped["below_min_word_count"] > 0
    assert not strict.readiness.ready


def test_bad_answers_are_skipped_with_counts(persona):
    doc = persona("walter-okafor")
    doc["responses"][0]["answer"] = ""
    doc["responses"][1]["answer"] = "   \n\t  "
    doc["responses"][2]["answer"] = "😀🎉🙏 👍"
    doc["responses"][3]["answer"] = doc["responses"][4]["answer"]
    doc["responses"][5]["answer"] = ("<script>steal()</script><p>We fixed the engine by "
                                     "hand, every bolt of it, and she ran for ten more years "
                                     "after that without a single complaint.</p>")
    doc["responses"][6]["answer"] = ("Robert'); DROP TABLE responses;-- was what the kids "
                                     "typed into my computer once, and I laughed for a week "
                                     "because it did nothing at all to the old machine.")
    c = collect(SourceMaterial.from_export(doc))
    assert c.skipped["empty_or_no_words"] == 3
    assert c.skipped["exact_duplicate"] == 1
    by_id = {e.id: e for e in c.examples}
    assert "<" not in by_id["responses:r-006"].answer
    assert "steal" not in by_id["responses:r-006"].answer
    assert "DROP TABLE" in by_id["responses:r-007"].answer  # text, kept as the person wrote


def test_user_with_no_data():
    c = collect(SourceMaterial(external_id="nobody", display_name="No Body"))
    assert c.examples == [] and not c.readiness.ready
    assert c.readiness.reasons[0] == "no material imported for this user"


def test_every_format_renders_and_validates(persona, tokenizer, tmp_path, monkeypatch):
    from clone_pipeline.data import format_dataset

    monkeypatch.setattr(format_dataset, "PARALLEL_MIN_EXAMPLES", 1)
    doc = persona("margaret-ellis")
    c = collect(SourceMaterial.from_export(doc))
    system = system_prompt("Margaret Ellis", doc["user"]["persona"], 1948,
                           "legacy_preservation")
    out = format_examples(c.examples, system, tokenizer, FormatOptions(max_length=512))
    written = write_formats(out, tmp_path, workers=2)  # the parallel path, as assets run it
    assert [w.format for w in written] == list(FORMATS)
    files, records = {}, {}
    for w in written:
        assert w.train_count + w.eval_count == len(c.examples) - out.dropped
        assert out.token_stats[w.format]["max_tokens"] <= 512
        files[w.format] = [w.train_path, w.eval_path]
        records[w.format] = list(read_jsonl(w.train_path))
        assert len(records[w.format]) == w.train_count
    report = validate_files(files, tokenizer, 512)
    assert report.passed, report.problems
    assert report.round_trips == 5 * len(c.examples)  # five message formats
    first = records["conversational"][0]
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert records["alpaca"][0].keys() == {"instruction", "input", "output"}
    assert records["llama"][0]["text"].startswith("<|begin_of_text|>")
    assert record_messages("chat", records["chat"][0]) == first["messages"]
    assert records["sharegpt"][0]["conversations"][1]["from"] == "human"


def test_split_holds_out_whole_questions(persona, tokenizer):
    doc = persona("margaret-ellis")
    for i in range(5):  # the same question answered twice must stay on one side
        doc["responses"].append({**doc["responses"][i], "id": f"again-{i}",
                                 "answer": doc["life_stories"][i]["content"][:400]})
    c = collect(SourceMaterial.from_export(doc))
    out = format_examples(c.examples, None, tokenizer, FormatOptions(eval_fraction=0.2))
    train_q = {e.group for e in out.train_examples}
    eval_q = {e.group for e in out.eval_examples}
    assert eval_q and not train_q & eval_q
    assert all(e.source == "responses" for e in out.eval_examples)


def test_max_length_truncates_at_sentences_and_drops_what_cannot_fit(persona, tokenizer):
    c = collect(SourceMaterial.from_export(persona("walter-okafor")))
    out = format_examples(c.examples, "short system", tokenizer,
                          FormatOptions(max_length=96, formats=("chat", "openai")))
    assert out.truncated > 0
    assert out.token_stats["chat"]["max_tokens"] <= 96
    for example in out.train_examples:
        record = render("openai", example, "short system")
        ids = tokenizer.apply_chat_template(record["messages"], tokenize=True,
                                            return_dict=True)["input_ids"]
        assert len(ids) <= 96
    tiny = format_examples(c.examples, "short system", tokenizer,
                           FormatOptions(max_length=40, formats=("chat",)))
    assert tiny.dropped > 0


def test_validation_catches_broken_records(tokenizer, tmp_path):
    path = tmp_path / "openai.train.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n"
                    + json.dumps({"messages": [{"role": "narrator", "content": "x"},
                                               {"role": "assistant", "content": ""}]}) + "\n")
    report = validate_files({"openai": [path]}, tokenizer, 64)
    assert not report.passed and len(report.problems) >= 2
    assert report.problems[0].startswith("openai.train.jsonl:1")


def test_unknown_format_and_style_are_clear_errors(tokenizer):
    with pytest.raises(ValueError, match="unknown format"):
        format_examples([], None, tokenizer, FormatOptions(formats=("xml",)))
    with pytest.raises(ValueError, match="template_style"):
        system_prompt("A B", {}, None, "pirate")


def test_casual_and_legacy_prompts_use_the_persona():
    persona = {"tone": "wry", "address_terms": ["Dad", "Pops"]}
    legacy = system_prompt("Walter Okafor", persona, 1952, "legacy_preservation")
    casual = system_prompt("Walter Okafor", persona, 1952, "casual")
    assert "Walter Okafor, born in 1952" in legacy and "Dad or Pops" in legacy
    assert casual.startswith("You are Walter.") and "wry" in casual


def test_parallel_cleaning_matches_serial(persona, monkeypatch):
    from clone_pipeline.data import collect as collect_module

    material = SourceMaterial.from_export(persona("walter-okafor"))
    serial = collect(material, CollectOptions(workers=1))
    monkeypatch.setattr(collect_module, "_CHUNK", 25)  # several chunks from a small user
    parallel = collect(SourceMaterial.from_export(persona("walter-okafor")),
                       CollectOptions(workers=2))
    assert [e.as_dict() for e in parallel.examples] == [e.as_dict() for e in serial.examples]
    assert parallel.skipped == serial.skipped and parallel.redactions == serial.redactions
