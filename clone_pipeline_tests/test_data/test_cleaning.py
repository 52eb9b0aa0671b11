"""Text normalisation, PII redaction and deduplication."""

import pytest

from clone_pipeline.data.dedup import deduplicate
from clone_pipeline.data.pii import PiiPolicy, Redactor
from clone_pipeline.data.text_clean import normalise_text, word_count


def test_normalise_strips_markup_and_noise():
    raw = ("<p>Hello&nbsp;there,</p><script>alert('x')</script>  we went\u200b to the\t"
           "<b>sea</b>.\r\n\r\n\r\nCafe\u0301\x07")
    assert normalise_text(raw) == "Hello there,\nwe went to the sea.\n\nCaf\u00e9"


def test_plain_text_and_comparisons_are_left_alone():
    text = "I was 5 < 7 years old & happy; x<y is maths, not markup."
    assert normalise_text(text) == text


@pytest.mark.parametrize("text,words", [("", 0), ("   \n\t ", 0), ("😀🎉 🙏", 0),
                                        ("don't stop-believing 1963!", 3)])
def test_word_count(text, words):
    assert word_count(text) == words


@pytest.mark.parametrize("text,kind", [
    ("write to susan.ellis1975@example.com soon", "EMAIL"),
    ("call +44 113 496 0732 tonight", "PHONE"),
    ("ring (410) 555-0187 after six", "PHONE"),
    ("we lived at 14 Marsh Lane, Leeds LS6 2QT", "ADDRESS"),
    ("home was 2210 Eastern Ave, Baltimore, MD 21224", "ADDRESS"),
    ("my SSN is 123-45-6789", "GOV_ID"),
    ("NI number AB 12 34 56 C", "GOV_ID"),
    ("card 4111 1111 1111 1111 expired", "CARD"),
    ("the router was 192.168.1.20", "IP"),
    ("or 2001:db8::1 on v6", "IP"),
    ("see https://facebook.com/profile.php?id=12345", "URL"),
])
def test_pii_is_redacted_with_typed_placeholders(text, kind):
    redacted, counts = Redactor().redact(text)
    assert f"[{kind}]" in redacted and counts[kind] >= 1


@pytest.mark.parametrize("text", [
    "In 1963 I was 15 and it cost $1,250.",
    "Born in 1948; the war ran from 1939 to 1945, and on 12 May 1945 we danced.",
    "The train left at 10:30 and we read bbc.co.uk at https://www.bbc.co.uk/",
    "Card games: 4111 points at table 12, round 3 of 20.",
])
def test_ordinary_numbers_are_kept(text):
    assert Redactor().redact(text)[0] == text


@pytest.mark.parametrize("text", [
    " dot ".join(["name"] * 20_000),  # once quadratic in the obfuscated-email pattern
    " ".join("0123456789" * 5_000),  # once one 50,000-digit phone candidate
    " and ".join(f"0113 496 {i:04d}" for i in range(5_000)),
], ids=["spelled-dots", "digit-wall", "many-numbers"])
def test_redaction_stays_fast_on_hostile_text(text):
    """A 100,000-character field (the import's limit) is redacted in well under a minute."""
    import time

    start = time.process_time()
    Redactor().find(text)
    assert time.process_time() - start < 5


def test_names_are_kept_unless_listed():
    text = "Arthur and Margaret Ellis met Susan."
    assert Redactor().redact(text)[0] == text
    redacted, counts = Redactor(PiiPolicy(redact_names=("Susan", "Margaret Ellis"))).redact(text)
    assert redacted == "Arthur and [NAME] met [NAME]." and counts["NAME"] == 2


def test_dedup_finds_exact_and_near_duplicates_keeping_the_first():
    base = ("I remember the smell of my father's workshop, the sawdust and the oil, and the "
            "radio playing the cricket on Saturday afternoons while he worked.")
    other = "We sailed every summer of 1971 with my brother, and the boat leaked every time."
    texts = [base, base.upper() + "!!", base.replace("Saturday", "Sunday"), other, other]
    result = deduplicate(texts)
    assert result.keep == [True, False, False, True, False]
    assert (result.exact_duplicates, result.near_duplicates) == (2, 1)


def test_dedup_keeps_different_texts_on_the_same_topic():
    texts = [f"My favourite memory of {place} is the morning light over the water and the "
             f"smell of bread from the bakery on the corner of {street} street."
             for place, street in [("Whitby", "Church"), ("Leeds", "Briggate"),
                                   ("Scarborough", "Foreshore")]]
    texts.append("Nothing at all like the others: a list of tools in my grandfather's shed.")
    assert all(deduplicate(texts, threshold=0.9).keep)


def test_dedup_scales_linearly():
    """Bucketing, not all pairs: 20k distinct texts finish quickly and keep everything."""
    import random
    import time

    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choices(vocab, k=30)) for _ in range(20_000)]
    start = time.perf_counter()
    result = deduplicate(texts)
    assert all(result.keep)
    assert time.perf_counter() - start < 60  # all-pairs would be 2e8 comparisons
