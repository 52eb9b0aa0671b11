"""Detectors for addresses on the internet: emails (also written to dodge scrapers), links
that identify someone, and IP addresses. Each yields (start, end) character spans."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

Spans = Iterator[tuple[int, int]]

# Possessive and bounded repeats keep the scan linear on any text (no backtracking into a
# word not followed by an '@'; "a dot b dot c ..." a hundred thousand characters long).
_LOCAL = r"[^\W_][\w.%+-]*+(?:\s+dot\s+[^\W_][\w%+-]*+){0,4}+"  # also "grandpa dot bill"
_LABEL = r"[^\W_][\w-]*+"
# '@' as written, full-width or small; "(at)", "[at]", "{at}", "<at>"; or the word " at ".
_AT = r"(?:\s*[@\uff20\ufe6b]\s*|\s*[(\[{<]\s*at\s*[)\]}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*[(\[{<]\s*dot\s*[)\]}>]\s*|\s+dot\s+|[.\uff0e])"
_DOMAIN = rf"{_LABEL}(?:{_DOT}{_LABEL}){{0,6}}{_DOT}[^\W\d_]{{2,}}\b"
_EMAIL = re.compile(rf"(?<![\w.%+-]){_LOCAL}{_AT}{_DOMAIN}", re.IGNORECASE)
_PLAIN_AT = re.compile(r"\s+at\s+", re.IGNORECASE)
_SPELLED_DOT = re.compile(r"[(\[{<]\s*dot\s*[)\]}>]|\sdot\s", re.IGNORECASE)
# Mail hosts common enough that "margaret at gmail.com" is an address, not a workplace.
_MAIL_HOSTS = re.compile(r"\b(?:gmail|googlemail|yahoo|hotmail|outlook|live|icloud|me|aol|"
                         r"proton|protonmail|gmx|web|orange|free|btinternet|sky|virginmedia|"
                         r"bigpond|rediffmail|comcast|verizon)\.", re.IGNORECASE)

# Top-level domains a link written without a scheme is recognised by (with its path).
_TLDS = ("com|org|net|edu|gov|info|biz|io|co|me|app|dev|page|blog|site|online|shop|ly|tv|"
         "uk|us|ca|au|nz|ie|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|pl|pt|br|mx|ar|in|jp|cn|kr|"
         "za|ng|ke|ru|gr|tr|il|sg|hk|ph")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_BARE_URL = re.compile(rf"(?<![\w@./-])(?:[a-z0-9-]+\.)+(?:{_TLDS})(?::\d+)?/[^\s<>\"']*",
                       re.IGNORECASE)
_HOST = re.compile(r"^(?:https?://)?[^/?#]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


# Something each accepted email has, looked for first in the lower-cased text (plain
# substring tests: most texts have none, and a case-blind regex costs more than the rest).
_AT_HOST = re.compile(r"\bat\s+" + _MAIL_HOSTS.pattern[2:])


def _may_hold_email(text: str) -> bool:
    if "@" in text or "\uff20" in text or "\ufe6b" in text:
        return True
    lowered = text.lower()
    return ("dot" in lowered or "at)" in lowered or "at]" in lowered or "at}" in lowered
            or "at>" in lowered or (" at " in lowered and _AT_HOST.search(lowered) is not None))


def emails(text: str) -> Spans:
    """Emails, including 'name at host dot org', 'name(at)host(dot)org' and full-width '@'.

    The bare word 'at' counts only with a spelled-out dot or a known mail host, so "worked
    at google.com" stays.
    """
    if not _may_hold_email(text):
        return
    for m in _EMAIL.finditer(text):
        found = m.group(0)
        if _PLAIN_AT.search(found) and not (_SPELLED_DOT.search(found)
                                            or _MAIL_HOSTS.search(_PLAIN_AT.split(found)[-1])):
            continue
        yield m.span()


def urls(text: str) -> Spans:
    """Links with anything after the host (a path, query or fragment; without a scheme or
    'www.', a path). A bare site name ("bbc.co.uk", "https://www.bbc.co.uk/") is not
    personal."""
    lowered = text.lower()
    patterns = ((_URL,) if "http" in lowered or "www." in lowered else ()) + \
        ((_BARE_URL,) if "/" in text else ())
    for pattern in patterns:
        for m in pattern.finditer(text):
            found = m.group(0).rstrip(_TRAILING)
            rest = _HOST.sub("", found)
            if rest.strip("/"):
                yield m.start(), m.start() + len(found)


def ip_addresses(text: str) -> Spans:
    """IPv4 and IPv6 addresses that parse as such (not version numbers like 1.2.3.400)."""
    patterns = (_IPV4, _IPV6) if ":" in text else (_IPV4,)
    for pattern in patterns:
        for m in pattern.finditer(text):
            try:
                ipaddress.ip_address(m.group(0))
            except ValueError:
                continue
            yield m.span()
