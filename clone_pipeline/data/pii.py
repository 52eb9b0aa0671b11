"""PII redaction with typed placeholders.

Patterns are deliberately conservative where a false positive would damage the person's
story (years, ages, prices), and aggressive where a leak would hurt (cards are Luhn-checked,
IPs octet-checked). The person's own name and family names are kept unless listed in
``redact_names``.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field

PLACEHOLDERS = ("EMAIL", "URL", "IP", "CARD", "GOV_ID", "PHONE", "ADDRESS", "NAME")

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# URLs that carry identifiers: a query string, a fragment, or a path segment with digits or a
# user handle. A bare site name ("bbc.co.uk", "https://example.org/") is not personal.
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_GOV_ID = re.compile(
    r"\b\d{3}-\d{2}-\d{4}\b"  # US SSN
    r"|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"  # UK National Insurance
    r"|\b\d{3} ?\d{3} ?\d{4}\b(?=[^\n]{0,40}\b(?:NHS|nhs)\b)"  # NHS number near 'NHS'
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?|\d{2,5}[\s.-])\d{3,4}[\s.-]?\d{3,4}"
    r"(?!\w)"
    r"|(?<![\w-])\d{3}-\d{4}(?![\w-])"  # local seven-digit number
)
_STREET_SUFFIX = (r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct"
                  r"|Way|Place|Pl|Terrace|Close|Crescent|Gardens|Grove|Parkway|Pkwy|Square|Sq"
                  r"|Highway|Hwy|Row|Mews|Walk)")
_ADDRESS = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][A-Za-z'.-]*\s+){1,4}" + _STREET_SUFFIX + r"\b\.?"
    r"(?:,?\s+(?:Apt|Unit|Flat|Suite)\.?\s*\w+)?"
    r"(?:,\s*[A-Z][a-z'.-]+(?:\s+[A-Z][a-z'.-]+){0,2})?"  # town
    r"(?:,?\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?"  # US state + ZIP
    r"|,?\s*[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})?"  # UK postcode
)
_DIGIT = re.compile(r"\d")
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2}\b")


@dataclass(frozen=True)
class PiiPolicy:
    """What to redact. Own and family names are kept by default (they are the story)."""

    redact_names: tuple[str, ...] = ()
    kinds: tuple[str, ...] = field(default=PLACEHOLDERS)


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _url_has_identifier(url: str) -> bool:
    rest = re.sub(r"^(?:https?://)?(?:www\.)?[^/?#]+", "", url, flags=re.IGNORECASE)
    rest = rest.rstrip(".,;:!?)")
    if not rest or rest == "/":
        return False
    return bool(re.search(r"[?#=]|\d|/(?:u|user|users|profile|in|@)[/@]|@", rest))


class Redactor:
    """Compiled redaction for one policy; ``redact`` returns the text and counts by type."""

    def __init__(self, policy: PiiPolicy | None = None):
        self.policy = policy or PiiPolicy()
        names = sorted({n.strip() for n in self.policy.redact_names if n.strip()},
                       key=len, reverse=True)
        self._names = (re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b")
                       if names else None)
        self._kinds = set(self.policy.kinds)

    def redact(self, text: str) -> tuple[str, Counter]:
        counts: Counter = Counter()
        if not text:
            return text, counts
        # Cheap gates keep the common case (plain prose) fast: most texts have no '@', no
        # run of digits and no 'http'.
        has_digit = _DIGIT.search(text) is not None
        if "EMAIL" in self._kinds and "@" in text:
            text = self._sub(_EMAIL, "EMAIL", text, counts)
        if "URL" in self._kinds and ("http" in text or "www." in text):
            text = self._sub(_URL, "URL", text, counts, _url_has_identifier)
        if has_digit:
            if "IP" in self._kinds:
                text = self._sub(_IPV4, "IP", text, counts, _valid_ip)
                if ":" in text:
                    text = self._sub(_IPV6, "IP", text, counts, _valid_ip)
            if "CARD" in self._kinds:
                text = self._sub(_CARD, "CARD", text, counts,
                                 lambda m: _luhn_ok(re.sub(r"\D", "", m)))
            if "GOV_ID" in self._kinds:
                text = self._sub(_GOV_ID, "GOV_ID", text, counts)
            if "ADDRESS" in self._kinds:
                text = self._sub(_ADDRESS, "ADDRESS", text, counts)
                text = self._sub(_UK_POSTCODE, "ADDRESS", text, counts)
            if "PHONE" in self._kinds:
                text = self._sub(_PHONE, "PHONE", text, counts, _looks_like_phone)
        if self._names is not None and "NAME" in self._kinds:
            text = self._sub(self._names, "NAME", text, counts)
        return text, counts

    @staticmethod
    def _sub(pattern: re.Pattern, kind: str, text: str, counts: Counter, accept=None) -> str:
        def replace(match: re.Match) -> str:
            if accept is not None and not accept(match.group(0)):
                return match.group(0)
            counts[kind] += 1
            return f"[{kind}]"

        return pattern.sub(replace, text)


def _valid_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _looks_like_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 7 <= len(digits) <= 15
