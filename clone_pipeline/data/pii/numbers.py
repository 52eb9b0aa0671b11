"""Detectors for numbers that identify someone: phone numbers, payment cards, IBANs,
government ids, and identity documents named by their label. Loose patterns find candidates;
Google's libphonenumber (``phonenumbers``) and ``python-stdnum`` decide, so years, ages,
prices and dates in a story are left alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers
from stdnum import iban, luhn
from stdnum.au import tfn
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

Spans = Iterator[tuple[int, int]]

# A run of 7 to 20 digits with phone separators between them: the only texts the (slow,
# pure-Python) phone matcher is run on. Bounded, so a wall of digits costs linear time.
_PHONE_RUN = re.compile(r"[+(\uff0b]?\d(?:[ .\-()]{0,3}\d){6,19}\)?")
# The matcher costs about 0.3 ms per run and region; past this many runs in one text the
# rest are taken as numbers without asking it (no story has so many 7-digit runs).
_MAX_MATCHED_RUNS = 40
# Shapes that are phone numbers in any region even when libphonenumber would not call the
# number valid (fictional ranges such as 555-01xx or 07700 900xxx are still someone's
# number in a story): international (+CC, optionally "(0)"), a national trunk 0 with 9+
# digits, North American (area) exchange-line, and a local exchange-line.
_PHONE_SHAPES = re.compile(
    r"(?<![\w+])[+\uff0b]\d{1,3}(?:[ .\-]?\(0\))?(?:[ .\-()]{0,2}\d){6,13}(?![\w])"
    r"|(?<![\w.,])\(?0\d{1,4}\)?(?:[ .\-]{0,2}\d){7,10}(?![\w])"
    r"|(?<![\w.,])(?:\+?1[ .\-]?)?\(?[2-9]\d{2}\)?[ .\-]?\d{3}[ .\-]\d{4}(?![\w])"
    r"|(?<![\w\-.,/])\d{3}-\d{4}(?![\w\-])"
)
_CARD = re.compile(r"(?<![\w.,])\d(?:[ -]?\d){12,18}(?![\w])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,9}\b")
_SEP = re.compile(r"[\s.\-]")

# Government ids whose shape is distinctive enough to take with a valid check digit alone.
_SHAPED_IDS = (
    (re.compile(r"(?<![\w-])\d{3}([- ])\d{2}\1\d{4}(?![\w-])"), ssn.is_valid),  # US SSN
    (re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2}[ -]?\d{2}[ -]?\d{2}[ -]?\d{2}[ -]?[A-D]\b",
                re.IGNORECASE), None),  # UK National Insurance number
    (re.compile(r"\b[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3}"
                r"(?: ?\d{2})\b"), nir.is_valid),  # French NIR with its key
    (re.compile(r"\b\d{2} ?\d{3} ?\d{3} ?\d{3}\b"), idnr.is_valid),  # German tax id
    (re.compile(r"\b[2-9]\d{3}[ -]?\d{4}[ -]?\d{4}\b"), aadhaar.is_valid),  # Indian Aadhaar
    (re.compile(r"\b\d{8}[ -]?[A-Z]\b|\b[XYZ][ -]?\d{7}[ -]?[A-Z]\b"),
     lambda v: dni.is_valid(v) or nie.is_valid(v)),  # Spanish DNI / NIE
)
_CODICE_FISCALE = re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b")
# Nine or ten digits are too common to take without a word saying what they are.
_CONTEXT_ID = re.compile(r"(?<![\w-])\d{3}[ .\-]?\d{2,3}[ .\-]?\d{3,4}(?![\w-])")
_ID_WORDS = re.compile(r"\b(?:SSN|social security|social insurance|SIN|NHS|BSN|"
                       r"burgerservicenummer|TFN|tax file)\b", re.IGNORECASE)
_CONTEXT_CHECKS = (ssn.is_valid, sin.is_valid, nhs.is_valid, bsn.is_valid, tfn.is_valid)

# Documents named by their label, in the languages the redactor supports (EN, FR, DE, ES,
# IT, NL, PT): whatever id follows the label is someone's, check digit or not.
_DOCUMENT_LABELS = (
    r"passport|passeport|reisepass|pass|pasaporte|passaporto|paspoort|passaporte"
    r"|driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|licen[cs]e|permis(?:\s+de\s+conduire)?"
    r"|f(?:ü|ue)hrerschein|permiso(?:\s+de\s+conducir)?|carn[eé](?:\s+de\s+conducir)?"
    r"|patente(?:\s+di\s+guida)?|rijbewijs|carta\s+de\s+condu[çc][ãa]o"
    r"|carteira\s+de\s+motorista|(?:national\s+)?id(?:entity)?\s+card|identity\s+document"
    r"|carte\s+(?:nationale\s+)?d'identit[ée]|personalausweis|ausweis|identiteitskaart"
    r"|carta\s+d'identit[àa]|documento\s+de\s+identidad|c[ée]dula|national\s+insurance"
    r"|NI|NINO|social\s+security|insurance|medicare|medical\s+record|health\s+card"
    r"|tax\s+(?:id|code|number)|steuer-?id|steuernummer|codice\s+fiscale|NIF|NIE|DNI|CPF"
    r"|RG|PPS|PPSN|SIN|SSN|TFN|BSN|NHS|student\s+id|employee\s+id|carta\s+de\s+identidad")
_LABEL = re.compile(r"(?i:\b(?:" + _DOCUMENT_LABELS + r")(?:nummer|nr)?)(?![\w])")
# What follows a label before its id: "no.", "number", ", it's", "(n°", ": ", "est le" ...,
# at most this far and never past the end of a sentence.
_LABEL_REACH = 40
_SENTENCE_END = re.compile(r"(?<!\bn)(?<!\bno)(?<!\bnr)(?<!\bnum)(?<!\bnos)(?<!\bnº)"
                           r"[.!?;]\s+[A-Z]|\n", re.IGNORECASE)
# The id: one token of capitals and digits (groups joined by single spaces or dashes) with
# at least two digits; "passport photo from 1962" and "licence in 1971" stay (see below).
_ID_TOKEN = re.compile(r"(?<![\w-])(?=(?:[A-Z -]*\d){2})[A-Z0-9]+(?:[ -][A-Z0-9]+){0,4}"
                       r"(?![\w-])")


def _compact(value: str) -> str:
    return _SEP.sub("", value)


@lru_cache(maxsize=4096)
def _matched_numbers(window: str, regions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Spans of valid numbers libphonenumber finds in *window* for any of *regions*."""
    found = set()
    for region in ("ZZ",) if window.lstrip("(").startswith(("+", "\uff0b")) else regions:
        for m in phonenumbers.PhoneNumberMatcher(window, region,
                                                 phonenumbers.Leniency.VALID):
            found.add((m.start, m.end))
    return tuple(found)


def phones(text: str, regions: tuple[str, ...]) -> Spans:
    """Phone numbers: valid in one of *regions* (national forms) or any country (+CC), or
    in one of the unmistakable shapes above."""
    shaped = [m.span() for m in _PHONE_SHAPES.finditer(text)]
    yield from shaped
    checked = 0
    for run in _PHONE_RUN.finditer(text):
        start, end = run.span()
        if any(s <= start and end <= e for s, e in shaped):
            continue
        checked += 1
        if checked > _MAX_MATCHED_RUNS:  # a wall of numbers, not a story: redact, fast
            yield start, end
            continue
        lo, hi = max(0, start - 1), min(len(text), end + 1)
        for s, e in _matched_numbers(text[lo:hi], regions):
            yield lo + s, lo + e


def cards(text: str) -> Spans:
    """Payment card numbers: 13 to 19 digits passing the Luhn check."""
    for m in _CARD.finditer(text):
        if luhn.is_valid(_compact(m.group(0))):
            yield m.span()


def ibans(text: str) -> Spans:
    """IBANs with a valid checksum; the longest valid run of groups is taken, so a word in
    capitals after it is not swallowed."""
    for m in _IBAN.finditer(text):
        groups = m.group(0).split(" ") if " " in m.group(0) else [m.group(0)]
        for n in range(len(groups), 0, -1):
            if iban.is_valid("".join(groups[:n])):
                yield m.start(), m.start() + len(" ".join(groups[:n]))
                break


def labelled_ids(text: str) -> Spans:
    """Identity documents named as such ("Passport no. 532 118 804", "my old passport,
    number 504938271", "Führerschein-Nr. B072RRE2I55", "NI number: AB 48 19 66 C"): the
    first id-shaped token within a few words after the label, in the same sentence. An id
    of digits alone needs six of them (a year, an age or "2500 metres" is not one); with
    letters, five characters."""
    for label in _LABEL.finditer(text):
        window = text[label.end():label.end() + _LABEL_REACH]
        stop = _SENTENCE_END.search(window)
        window = window[:stop.start() + 1] if stop else window
        m = _ID_TOKEN.search(window)
        if m is None:
            continue
        chars = sum(ch.isalnum() for ch in m.group(0))
        if chars <= 20 and (chars >= 5 if any(ch.isalpha() for ch in m.group(0))
                            else chars >= 6):
            yield label.end() + m.start(), label.end() + m.end()


def tax_codes(text: str) -> Spans:
    """Italian codici fiscali (letters and digits) with a valid check letter."""
    for m in _CODICE_FISCALE.finditer(text):
        if codicefiscale.is_valid(m.group(0)):
            yield m.span()


def government_ids(text: str) -> Spans:
    """SSN (any separators), UK National Insurance and NHS, French NIR, German tax id,
    Aadhaar, Spanish DNI/NIE, Canadian SIN, Dutch BSN, Australian TFN, each checked by its
    check digit; bare nine- or ten-digit ones need a word such as 'SSN' or 'NHS' within 40
    characters."""
    for pattern, valid in _SHAPED_IDS:
        for m in pattern.finditer(text):
            if valid is None or valid(_compact(m.group(0))):
                yield m.span()
    for m in _CONTEXT_ID.finditer(text):
        near = text[max(0, m.start() - 40):m.end() + 40]
        if _ID_WORDS.search(near) and any(ok(_compact(m.group(0))) for ok in _CONTEXT_CHECKS):
            yield m.span()
