"""Redaction measured: recall per kind on a labelled set, false positives on the demo
personas' PII-free sentences.

``data/pii_labelled.jsonl``: realistic sentences written for this project, each with the
exact text and kind of every personal value in it (values are fictional but pass their
checks: libphonenumber, IBAN mod 97, Luhn, the ids' check digits). A value counts as found
when every letter and digit of it is inside a redacted span (of any kind: a leak is what
matters; the right-kind rate is printed too). ``data/pii_free_demo_sentences.jsonl``: 200
sentences of the demo personas' material with no personal data in it (every sentence with a
digit or a word such as 'born', 'birthday' or 'Street', then an even spread of the rest), so
years, ages, prices, times and family names are what the redactor must leave alone.
``data/pii_labelled_held_out.jsonl``: 62 more spans written the same way after the redactor
was tuned on the first set, and not tuned on since: an estimate less flattered by tuning.
``pytest -s`` prints the tables the README quotes.
"""

import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from clone_pipeline.data.pii import PLACEHOLDERS, PiiPolicy, Redactor

DATA = Path(__file__).parent / "data"
MIN_RECALL = 0.95
MIN_RECALL_PER_KIND = 0.85
MAX_FALSE_POSITIVE_RATE = 0.02


def _jsonl(name: str) -> list[dict]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@cache
def _redactor(names: tuple[str, ...]) -> Redactor:
    return Redactor(PiiPolicy(redact_names=names))


@pytest.fixture(scope="module")
def labelled():
    return _jsonl("pii_labelled.jsonl")


@pytest.fixture(scope="module")
def held_out():
    return _jsonl("pii_labelled_held_out.jsonl")


@pytest.fixture(scope="module")
def pii_free():
    return _jsonl("pii_free_demo_sentences.jsonl")


def _measure(labelled: list[dict]) -> tuple[Counter, Counter, Counter, list[str]]:
    """(spans, found, found as the right kind) per kind, and the values missed."""
    total, found, right_kind, missed = Counter(), Counter(), Counter(), []
    for record in labelled:
        text = record["text"]
        spans = _redactor(tuple(record.get("redact_names", ()))).find(text)
        for label in record["spans"]:
            start = text.index(label["text"])
            needed = {i for i in range(start, start + len(label["text"])) if text[i].isalnum()}
            covering = [s for s in spans if any(s.start <= i < s.end for i in needed)]
            covered = {i for i in needed for s in covering if s.start <= i < s.end}
            total[label["kind"]] += 1
            if covered == needed:
                found[label["kind"]] += 1
                right_kind[label["kind"]] += any(s.kind == label["kind"] for s in covering)
            else:
                missed.append(f"{label['kind']}: {label['text']!r} in {text!r}")
    return total, found, right_kind, missed


def test_the_labelled_set_is_broad_enough(labelled, pii_free):
    kinds = Counter(s["kind"] for r in labelled for s in r["spans"])
    assert sum(kinds.values()) >= 200 and len(kinds) >= 10
    assert set(kinds) == set(PLACEHOLDERS)
    assert len({r["country"] for r in labelled}) >= 6
    assert len(pii_free) == 200


def _table(title: str, total: Counter, found: Counter, right_kind: Counter,
           flagged: Counter | None = None, sentences: int = 0) -> str:
    rows = [title, f"{'kind':<8} {'spans':>5} {'recall':>7} {'right kind':>10}"
                   + (f" {'FP rate':>8}" if flagged is not None else "")]
    for kind in [*PLACEHOLDERS, "all"]:
        n = total[kind] if kind != "all" else sum(total.values())
        hit = found[kind] if kind != "all" else sum(found.values())
        right = right_kind[kind] if kind != "all" else sum(right_kind.values())
        row = f"{kind:<8} {n:>5} {hit / n:>7.3f} {right / n:>10.3f}"
        if flagged is not None:
            row += f" {flagged[kind] / sentences:>8.3f}"
        rows.append(row)
    return "\n".join(rows)


def test_redaction_finds_personal_data_and_leaves_the_story(labelled, held_out, pii_free):
    total, found, right_kind, missed = _measure(labelled)
    flagged = Counter()
    for sentence in pii_free:
        kinds = {s.kind for s in _redactor(()).find(sentence["text"])}
        flagged.update(kinds | ({"all"} if kinds else set()))
    held = _measure(held_out)
    print("\n" + _table("labelled set (PII-free: demo sentences)", total, found, right_kind,
                        flagged, len(pii_free))
          + "\n" + _table("held-out set (written after tuning)", *held[:3])
          + "\nmissed:\n  " + "\n  ".join(missed + held[3] or ["none"]))

    assert sum(found.values()) / sum(total.values()) >= MIN_RECALL, missed
    for kind in PLACEHOLDERS:
        assert found[kind] / total[kind] >= MIN_RECALL_PER_KIND, (kind, missed)
    assert sum(held[1].values()) / sum(held[0].values()) >= MIN_RECALL, held[3]
    assert flagged["all"] / len(pii_free) <= MAX_FALSE_POSITIVE_RATE, [
        s["text"] for s in pii_free if _redactor(()).find(s["text"])]


# Generalisation (issue 23): identity documents by their label in the seven languages,
# IBANs of every registry country (compact and grouped), addresses with the flat or floor
# before or after the street, birth dates without "born". Four rounds, each written after
# the previous round's misses were fixed; each round's recall when first measured, before
# any fix, was (README "Privacy"): v2 GOV_ID 0.833, ADDRESS 0.95, DOB 0.95, the rest 1.0;
# v3 GOV_ID 0.833, ADDRESS 0.90, DOB 1.0; v4 GOV_ID 0.80, ADDRESS 0.89, DOB 0.90,
# IBAN 1.0; v5 (the last) GOV_ID 0.933, DOB 0.90, ADDRESS and IBAN 1.0.
GENERALISATION_ROUNDS = ("pii_held_out_v2.jsonl", "pii_held_out_v3.jsonl",
                         "pii_held_out_v4.jsonl", "pii_held_out_v5.jsonl")
MIN_RECALL_EACH_KIND = 0.95


def test_redaction_generalises_to_documents_ibans_addresses_and_birth_phrasings():
    rows = [row for name in GENERALISATION_ROUNDS for row in _jsonl(name)]
    total, found, right_kind, missed = _measure(rows)
    print("\n" + "\n".join(
        f"{kind:<8} {total[kind]:>5} {found[kind] / total[kind]:>7.3f}" for kind in total)
        + "\nmissed:\n  " + "\n  ".join(missed or ["none"]))
    assert len({row["country"] for row in rows
                if any(s["kind"] == "IBAN" for s in row["spans"])}) >= 80
    for kind in total:
        assert found[kind] / total[kind] >= MIN_RECALL_EACH_KIND, (kind, missed)


def test_no_number_in_200_story_sentences_is_taken_for_personal_data():
    """Years, ages, prices, room, flight, bus, page and seat numbers, times and weights."""
    sentences = _jsonl("pii_free_story_numbers.jsonl")
    assert len(sentences) == 200
    assert [s["text"] for s in sentences if _redactor(()).find(s["text"])] == []
