"""Personal data planted in every field of a ready persona that reaches a training file or
the system prompt: none of it may reach the collected file or any formatted file.

The values are the ones that leaked before (issue 9): international phones in the ways
people write them, SSNs without dashes, IBANs, obfuscated emails, links without a scheme, an
address without a number-street-suffix shape, a date of birth; planted in answers, question
text (also the collected file's grouping key), response category and emotional tone, story
title, category and text, milestone recipient, occasion and text, and the persona's tone and
address terms (the system prompt of every formatted record).
"""

import json

from clone_pipeline.data.collect import CollectOptions
from clone_pipeline.data.format_dataset import FormatOptions
from clone_pipeline.data.formats import FORMATS
from clone_pipeline.services.datasets import collect_user_data, format_user_data
from clone_pipeline.services.ingest import import_export

USER = "margaret-ellis"
PHONES = ["+33 1 23 45 67 89", "+61.2.9876.5432", "+61 2 9876 5432", "+81 3-1234-5678",
          "+44 (0)20 7946 0958"]
PLANTED = {
    "answer": ("Ring me on {}, {}, {} or {}, or the London flat on {}. My SSN is 123 45 "
               "6789 (the old card says SSN 123456789) and the rent goes to GB82 WEST 1234 "
               "5698 7654 32. Write to margaret at example dot com, m.ellis(at)host(dot)org or "
               "ellis＠example.com; the photos are at example.org/invite/Zq81Kd. We lived at "
               "Flat 3, 12 rue de la Paix. I was born on 12 May 1948.").format(*PHONES),
    "question": "Should we ring +33 1 98 76 54 32 or write to grandma at example dot com?",
    "category": "call +61 2 9876 5432",
    "emotional_tone": "nana(at)example(dot)org",
    "story_title": "The flat at Apartment 4B, +81 3-1234-5678",
    "story_category": "DE89 3704 0044 0532 0130 00",
    "recipient": "Lucy (+44 (0)20 7946 0958)",
    "occasion": "birthday, DOB 03/05/1975",
    "persona_tone": "warm, email tone.keeper at example dot com",
    "address_term": "Grandma on +61.2.9876.5432",
}
# Distinctive parts of the values: none may survive in any form.
NEEDLES = [*PHONES, "+33 1 98 76 54 32", "123 45 6789", "123456789", "GB82 WEST",
           "5698 7654", "DE89 3704", "0532 0130", "example dot com", "(at)host", "(dot)org",
           "ellis＠example", "example.org/invite", "Zq81Kd", "rue de la Paix", "Apartment 4B",
           "12 May 1948", "03/05/1975", "9876", "1234-5678", "7946 0958", "tone.keeper",
           "nana(at)", "33 1 23 45"]


def _planted_export(doc: dict) -> dict:
    r, s, m = doc["responses"][0], doc["life_stories"][0], doc["milestone_messages"][0]
    r["answer"] += " " + PLANTED["answer"]
    r["question"] = PLANTED["question"]
    r["category"], r["emotional_tone"] = PLANTED["category"], PLANTED["emotional_tone"]
    s["title"], s["category"] = PLANTED["story_title"], PLANTED["story_category"]
    s["content"] += " " + PLANTED["answer"]
    m["recipient"], m["occasion"] = PLANTED["recipient"], PLANTED["occasion"]
    m["content"] += " " + PLANTED["answer"]
    doc["user"]["persona"] = {"tone": PLANTED["persona_tone"],
                              "address_terms": [PLANTED["address_term"], "Mum"]}
    doc["voice_recordings"] = []  # written material only: the data stages
    return doc


def _strings(value):
    """Every string in a JSON value (keys too), decoded from its escapes."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _leaks(path) -> list[str]:
    text = "\n".join(s for line in path.read_text(encoding="utf-8").splitlines()
                     for s in _strings(json.loads(line)))
    return [needle for needle in NEEDLES if needle in text]


def test_planted_personal_data_reaches_no_training_file(sqlite_settings, persona, write_export):
    import_export(write_export(_planted_export(persona(USER))), sqlite_settings)
    collected = collect_user_data(sqlite_settings, USER, CollectOptions())
    assert collected.collection.readiness.ready
    by_id = {e.id: e for e in collected.collection.examples}
    planted = by_id["responses:r-001"]
    assert planted.prompt.startswith("Should we ring [PHONE]") and "[EMAIL]" in planted.prompt
    assert planted.group == "should we ring phone or write to email"
    assert (planted.category, planted.emotional_tone) == ("call [PHONE]", "[EMAIL]")
    assert {"PHONE", "GOV_ID", "IBAN", "EMAIL", "URL", "ADDRESS", "DOB"} <= set(
        planted.redactions)
    assert _leaks(collected.path) == []

    files = [collected.path]
    for style in ("legacy_preservation", "casual"):
        formatted = format_user_data(sqlite_settings, USER,
                                     FormatOptions(formats=FORMATS, max_length=1024),
                                     tokenizer_name="local-tiny", template_style=style)
        files += [row[key] for row in formatted.rows for key in ("train_path", "eval_path")]
    assert len(files) == 1 + 2 * 2 * len(FORMATS)
    assert {str(f): _leaks(f) for f in files if _leaks(f)} == {}
    system = json.loads(formatted.rows[0]["train_path"].read_text().splitlines()[0])
    assert "Grandma on [PHONE]" in json.dumps(system, ensure_ascii=False)
