"""One redactor for every text that can reach a training file or a system prompt.

Detectors find spans; overlapping spans merge into one (so nothing is half-redacted) and
take the most specific kind; each becomes a typed placeholder such as ``[PHONE]``.
Detection is deliberately conservative where a false positive would damage the person's
story (years, ages, prices, dates other than a birth date), and library-checked where a leak
would hurt (phone numbers by libphonenumber, cards, IBANs and ids by their check digits).
The person's own name and family names are kept unless listed in ``redact_names``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from clone_pipeline.data.examples import Example
from clone_pipeline.data.pii import numbers, online, places

# In order of precedence: when spans of two kinds overlap, the merged span takes the first.
PLACEHOLDERS = ("EMAIL", "URL", "IBAN", "CARD", "GOV_ID", "IP", "PHONE", "DOB", "ADDRESS",
                "NAME")
# Regions whose national phone formats (without +CC) are recognised; +CC numbers are
# recognised for every country whatever this holds.
PHONE_REGIONS = ("US", "CA", "GB", "IE", "FR", "DE", "ES", "IT", "NL", "AU", "NZ", "JP",
                 "IN", "MX", "BR", "ZA")
# Text fields of an example that reach the training files (id and source are ours).
EXAMPLE_TEXT_FIELDS = ("prompt", "answer", "category", "emotional_tone")

_NUMBER = re.compile(r"\d(?:[ .\-()]{0,2}\d)*")  # digits, grouped the ways numbers are
# Every number-bearing detector looks no further than this from a digit (context words
# included), so it runs only on the stretches around digits: stories are mostly words.
_DIGIT_REACH = 120
_CACHED_LENGTH = 1_000
_RANK = {kind: i for i, kind in enumerate(PLACEHOLDERS)}
_ADDRESS_RANK = _RANK["ADDRESS"]


@dataclass(frozen=True)
class PiiPolicy:
    """What to redact. Own and family names are kept by default (they are the story)."""

    redact_names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = field(default=PLACEHOLDERS)
    phone_regions: tuple[str, ...] = PHONE_REGIONS


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


class Redactor:
    """Compiled redaction for one policy: ``find`` gives the spans, ``redact`` the text."""

    def __init__(self, policy: PiiPolicy | None = None):
        self.policy = policy or PiiPolicy()
        names = sorted({n.strip() for n in self.policy.redact_names if n.strip()},
                       key=len, reverse=True)
        self._names = (re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
                       if names else None)
        self._kinds = set(self.policy.kinds)
        regions = tuple(r.upper() for r in self.policy.phone_regions)
        # (kind, detector, digits it needs in one number: 0 = runs on the whole text; else
        # only near digits, where a number has at least that many)
        self._detectors = [(kind, find, digits) for kind, find, digits in (
            ("EMAIL", online.emails, 0),
            ("URL", online.urls, 0),
            ("IBAN", numbers.ibans, 2),  # letters can outnumber digits (BG, KZ, MT)
            ("CARD", numbers.cards, 13),
            ("GOV_ID", numbers.government_ids, 6),
            ("GOV_ID", numbers.tax_codes, 1),
            ("GOV_ID", numbers.labelled_ids, 1),  # "C4J7RX2M9": digits one by one
            ("IP", online.ip_addresses, 1),
            ("PHONE", lambda text: numbers.phones(text, regions), 7),
            ("DOB", places.dates_of_birth, 1),
            ("ADDRESS", places.addresses, 1),
            ("NAME", self._listed_names, 0),
        ) if kind in self._kinds]
        # Questions, categories and tones repeat across thousands of examples (short texts
        # only are cached: answers rarely repeat and may be 100,000 characters).
        self._redact_cached = lru_cache(maxsize=8192)(self._redact)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping spans of personal data in *text*, in order."""
        if not text:
            return []
        windows = _digit_windows(text)
        whole = [(0, len(text), 0)]
        found = sorted((lo + start, lo + end, _RANK[kind])
                       for kind, detect, digits in self._detectors
                       for lo, hi, longest in (windows if digits else whole)
                       if longest >= digits
                       for start, end in detect(text[lo:hi]) if end > start)
        merged: list[list[int]] = []
        for start, end, r in found:
            last = merged[-1] if merged else None
            if last is not None and (start < last[1] or r == last[2] == _ADDRESS_RANK
                                     and not text[last[1]:start].strip(" ,")):
                # overlapping, or parts of one address ("Flat 3, 12 rue de la Paix")
                last[1], last[2] = max(last[1], end), min(last[2], r)
            else:
                merged.append([start, end, r])
        return [Span(s, e, PLACEHOLDERS[r]) for s, e, r in merged]

    def redact(self, text: str) -> tuple[str, Counter]:
        """*text* with each span replaced by its placeholder, and the count of each kind."""
        if not text:
            return text, Counter()
        redacted, counts = (self._redact_cached(text) if len(text) <= _CACHED_LENGTH
                            else self._redact(text))
        return redacted, Counter(dict(counts))

    def _redact(self, text: str) -> tuple[str, tuple[tuple[str, int], ...]]:
        spans = self.find(text)
        for span in reversed(spans):
            text = f"{text[:span.start]}[{span.kind}]{text[span.end:]}"
        return text, tuple(Counter(s.kind for s in spans).items())

    def _listed_names(self, text: str):
        return (m.span() for m in self._names.finditer(text)) if self._names else ()


def _digit_windows(text: str) -> list[tuple[int, int, int]]:
    """Merged (start, end, digits in its longest number) stretches of *text* within
    _DIGIT_REACH of a digit."""
    windows: list[list[int]] = []
    for m in _NUMBER.finditer(text):
        lo, hi = max(0, m.start() - _DIGIT_REACH), min(len(text), m.end() + _DIGIT_REACH)
        digits = sum(ch.isdigit() for ch in m.group(0))
        if windows and lo <= windows[-1][1]:
            windows[-1][1], windows[-1][2] = hi, max(windows[-1][2], digits)
        else:
            windows.append([lo, hi, digits])
    return [(lo, hi, digits) for lo, hi, digits in windows]


def redact_example(example: Example, redactor: Redactor) -> Counter:
    """Redact, in place, every text field of *example* that reaches a training file; the
    counts by kind."""
    counts: Counter = Counter()
    for name in EXAMPLE_TEXT_FIELDS:
        value = getattr(example, name)
        if isinstance(value, str) and value:
            value, found = redactor.redact(value)
            setattr(example, name, value)
            counts.update(found)
    return counts
