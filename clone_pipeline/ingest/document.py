"""Reading the export's JSON safely: numbers, nesting, Unicode and sizes, before the schema.

Python's json accepts things the database cannot store or that make later code crash: integers
of thousands of digits, NaN and Infinity, lone UTF-16 surrogates (``"\\ud800"``), and nesting
deep enough to exhaust the recursion limit. Each becomes a problem that names its field.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clone_pipeline.ingest.errors import Problem, pointer

MAX_DEPTH = 64  # levels of objects and arrays; the contract's own shape needs 4
MAX_INT_DIGITS = 100  # far past any real count or year, far below Python's 4,300-digit limit

# Which lists hold items; below an item (or below `user`, or at the top) a key is a field.
ITEM_LISTS = ("responses", "life_stories", "milestone_messages", "voice_recordings")

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class BadNumber:
    """Stands in for a JSON number Python would parse but nothing can store."""

    problem: str  # what is wrong, for the person: never the number itself


def _parse_int(digits: str) -> int | BadNumber:
    count = len(digits.lstrip("-"))
    if count > MAX_INT_DIGITS:
        return BadNumber(f"an integer of {count:,} digits; the limit is {MAX_INT_DIGITS}")
    return int(digits)


def _parse_float(text: str) -> float | BadNumber:
    value = float(text)
    return value if math.isfinite(value) else BadNumber("a number too large to store")


def _parse_constant(name: str) -> BadNumber:
    return BadNumber(f"{name} is not a JSON number")


def parse(text: str) -> Any:
    """The JSON document in *text*, with unstorable numbers as BadNumber.

    Raises json.JSONDecodeError for invalid JSON and DepthError for nesting Python's parser
    cannot follow (about 1,000 levels).
    """
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_parse_constant)
    except RecursionError:
        raise DepthError(_first_too_deep(text)) from None


class DepthError(ValueError):
    """Nesting too deep for Python's parser; *path* leads to where MAX_DEPTH was passed."""

    def __init__(self, path: list):
        self.path = path
        super().__init__("nested too deeply")


def field_path(path: list) -> list:
    """The field that *path* lies in: `/version`, `/user/persona`, `/responses/3/answer`."""
    if path and path[0] == "user":
        return path[:2]
    if path and path[0] in ITEM_LISTS:
        return path[:3]
    return path[:1]


def depth_problem(path: list) -> Problem:
    return Problem(pointer(field_path(path)),
                   f"nested deeper than {MAX_DEPTH} levels of objects and arrays")


@dataclass
class Scan:
    """What one pass over the document found: problems, and each field's size as JSON."""

    problems: list[Problem]
    field_bytes: dict[tuple, int]


def scan(doc: Any) -> Scan:
    """Walk *doc* without recursion: too-deep nesting, unstorable numbers, lone surrogates
    (in values and in keys), and the compact-JSON size of every field in UTF-8 bytes."""
    problems: list[Problem] = []
    sizes: dict[tuple, int] = defaultdict(int)
    too_deep: set[tuple] = set()
    for path, value in _nodes(doc):
        field = tuple(field_path(path))
        if len(path) >= MAX_DEPTH and isinstance(value, dict | list):
            if field not in too_deep:
                too_deep.add(field)
                problems.append(depth_problem(path))
            continue
        if isinstance(value, BadNumber):
            problems.append(Problem(pointer(path), value.problem))
        elif isinstance(value, str) and _SURROGATE.search(value):
            problems.append(Problem(pointer(path), "contains a lone UTF-16 surrogate (a "
                                                   "broken \\ud800-\\udfff escape); not text"))
        if path and isinstance(path[-1], str) and _SURROGATE.search(path[-1]):
            problems.append(Problem(pointer(path), "field name contains a lone UTF-16 "
                                                   "surrogate; not text"))
        sizes[field] += _json_bytes(value, path, len(field))
    return Scan(problems, dict(sizes))


def _nodes(doc: Any) -> Iterator[tuple[list, Any]]:
    """(path, value) for every value in *doc*, parents first; the children of a container
    MAX_DEPTH levels down are not visited (the caller reports the depth)."""
    stack: list[tuple[list, Any]] = [([], doc)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if len(path) >= MAX_DEPTH:
            continue
        if isinstance(value, dict):
            stack.extend(([*path, k], v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(([*path, i], v) for i, v in reversed(list(enumerate(value))))


def _json_bytes(value: Any, path: list, field_depth: int) -> int:
    """This node's share of its field's compact UTF-8 JSON (``separators=(",", ":")``): its
    own key and separator unless it is the field itself, brackets, or the scalar."""
    size = 0
    if len(path) > field_depth:
        size += 1  # the comma before it, or the closing bracket after the last child
        if isinstance(path[-1], str):
            size += _encoded(path[-1]) + 1  # "key":
    if isinstance(value, dict | list):
        return size + (2 if not value else 1)  # the opening bracket (and closing, if empty)
    if isinstance(value, str):
        return size + _encoded(value)
    return size if isinstance(value, BadNumber) else size + len(json.dumps(value))


def _encoded(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _first_too_deep(text: str) -> list:
    """Path to the first object or array nested past MAX_DEPTH in *text* (a JSON document
    that Python's parser could not follow), found by scanning its brackets and keys."""
    path: list = []  # per open container: the key or index being read in it
    for token in _TOKEN.finditer(text):
        t = token.group()
        if t in "[{":
            if len(path) == MAX_DEPTH:
                break
            path.append(0 if t == "[" else "")
        elif t in "]}":
            path.pop()
        elif t == ",":
            if isinstance(path[-1], int):
                path[-1] += 1
        elif t.endswith(":"):
            path[-1] = json.loads(t[:-1].rstrip())
    return path


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"\s*:|"(?:[^"\\]|\\.)*"|[\[\]{},]')


# Invisible characters that change how a label reads (bidi controls, zero-width spaces, the
# BOM): dropped from names that go verbatim into every system prompt. U+200C/U+200D (zero-width
# non-joiner and joiner) are part of Persian and Indic words and emoji sequences, so they are
# kept between two visible characters and dropped elsewhere.
_HIDING = re.compile("[\u061c\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff]")
_JOINER = re.compile("[\u200c\u200d]")


def clean_label(text: str) -> str:
    """*text* (NFC) without bidi controls and stray zero-width characters."""
    text = _HIDING.sub("", unicodedata.normalize("NFC", text))
    out = []
    for i, ch in enumerate(text):
        if _JOINER.match(ch) and not (0 < i < len(text) - 1 and _visible(text[i - 1])
                                      and _visible(text[i + 1])):
            continue
        out.append(ch)
    return "".join(out)


def _visible(ch: str) -> bool:
    return not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs")


def has_visible(text: str) -> bool:
    return any(_visible(ch) for ch in text)


def label_paths(doc: dict) -> Iterator[list]:
    """Where the short labels that reach the system prompt live: the display name and the
    persona's tone and address terms."""
    user = doc.get("user")
    if not isinstance(user, dict):
        return
    if isinstance(user.get("display_name"), str):
        yield ["user", "display_name"]
    persona = user.get("persona")
    if not isinstance(persona, dict):
        return
    if isinstance(persona.get("tone"), str):
        yield ["user", "persona", "tone"]
    terms = persona.get("address_terms")
    if isinstance(terms, list):
        yield from (["user", "persona", "address_terms", i]
                    for i, term in enumerate(terms) if isinstance(term, str))


def normalised(doc: Any) -> Any:
    """*doc* with every string in NFC and the labels cleaned. Run only on a document that
    scan() passed: its nesting is at most MAX_DEPTH, so this recursion is bounded."""
    doc = _nfc(doc)
    for path in label_paths(doc):
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = clean_label(parent[path[-1]])
    return doc


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, list):
        return [_nfc(v) for v in value]
    if isinstance(value, dict):
        return {k: _nfc(v) for k, v in value.items()}
    return value
