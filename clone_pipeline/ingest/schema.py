"""JSON Schema of the user export (version 1) and problem reporting against it.

Messages are written for people and never echo field values: an export holds private text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from clone_pipeline.ingest.document import clean_label, has_visible, scan
from clone_pipeline.ingest.errors import Problem, pointer

FORMAT = "clone-pipeline/user-export"
VERSION = 1
MAX_TEXT_CHARS = 100_000
# Stored as JSON beside the person's material, so bounded like it: the persona, and the unknown
# fields of one object (the user or one item; the contract keeps them but ignores them).
MAX_PERSONA_BYTES = 64 * 1024
MAX_UNKNOWN_BYTES = 64 * 1024
# The same rule as files.SAFE_ID: a letter or digit first (so never "." or ".."), and
# "(?![\s\S])" instead of "$", which would also accept a trailing newline.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(?![\s\S])"
ID_RULE = ("must be 1 to 128 characters of letters, digits, '.', '_' or '-', starting with a "
           "letter or digit")

# A recording's field naming the item it tells -> the list that item must be in.
TELLS = {"response_id": "responses", "story_id": "life_stories"}

# List name -> the item's required text field (the one that must exist and is size-limited).
TEXT_FIELD = {
    "responses": "answer",
    "life_stories": "content",
    "milestone_messages": "content",
    "voice_recordings": "text",
}

_text = {"type": "string", "maxLength": MAX_TEXT_CHARS}
_opt_text = {"type": ["string", "null"], "maxLength": MAX_TEXT_CHARS}
_id = {"type": "string", "pattern": ID_PATTERN}
_ref = {"type": ["string", "null"], "pattern": ID_PATTERN}  # another item's id, or none
_timestamp = {"type": ["string", "null"], "x-timestamp": True}


def _item(required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["id", *required],
            "properties": {"id": _id, **props}}


EXPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "version", "user"],
    "properties": {
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "user": {
            "type": "object",
            "required": ["external_id", "display_name"],
            "properties": {
                "external_id": _id,
                "display_name": {"type": "string", "minLength": 1, "maxLength": 1000},
                "locale": {"type": ["string", "null"], "maxLength": 35},
                "birth_year": {"type": ["integer", "null"], "minimum": 1850, "maximum": 2100},
                "persona": {"type": ["object", "null"]},
            },
        },
        "responses": {"type": "array", "items": _item(
            ["category", "question", "answer"],
            {"category": {"type": "string", "minLength": 1, "maxLength": 128},
             "question": _text, "answer": _text,
             "emotional_tone": {"type": ["string", "null"], "maxLength": 64},
             "created_at": _timestamp})},
        "life_stories": {"type": "array", "items": _item(
            ["content"],
            {"title": _opt_text, "category": {"type": ["string", "null"], "maxLength": 128},
             "era": {"type": ["string", "null"], "maxLength": 64}, "content": _text,
             "created_at": _timestamp})},
        "milestone_messages": {"type": "array", "items": _item(
            ["content"],
            {"recipient": _opt_text, "occasion": _opt_text, "content": _text,
             "deliver_on": {"type": ["string", "null"], "x-date": True},
             "created_at": _timestamp})},
        "voice_recordings": {"type": "array", "items": _item(
            ["text", "file"],
            {"passage_id": {"type": ["string", "null"], "maxLength": 128}, "text": _text,
             "response_id": _ref, "story_id": _ref,
             "file": {"type": "string", "minLength": 1, "maxLength": 4096},
             "recorded_at": _timestamp, "created_at": _timestamp})},
    },
}

_VALIDATOR = Draft202012Validator(EXPORT_SCHEMA)


def schema_json() -> str:
    """EXPORT_SCHEMA as published (`clone-pipeline schema`, docs/user-export.schema.json).
    Its x-timestamp and x-date keywords are checked by the importer: ISO 8601."""
    return json.dumps({"title": "clone_pipeline user export, version 1",
                       **EXPORT_SCHEMA}, indent=2) + "\n"


def _describe(error: ValidationError) -> tuple[str, str]:
    """(pointer, message) for one schema error, without quoting the offending value."""
    where = list(error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1]
        return pointer([*where, missing]), "required"
    if kind == "maxLength":
        if error.validator_value == MAX_TEXT_CHARS:
            return pointer(where), (f"longer than {MAX_TEXT_CHARS:,} characters "
                                    f"({len(error.instance):,})")
        return pointer(where), f"longer than {error.validator_value} characters"
    if kind == "minLength":
        return pointer(where), "must not be empty"
    if kind == "pattern":
        return pointer(where), ID_RULE
    if kind == "const":
        return pointer(where), f"must be {error.validator_value!r}"
    if kind == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return pointer(where), f"must be {expected}, not {type(error.instance).__name__}"
    if kind in ("minimum", "maximum"):
        return pointer(where), f"out of range ({kind} {error.validator_value})"
    return pointer(where), f"invalid ({kind})"


def export_problems(doc: Any) -> list[Problem]:
    """Every problem in *doc*: unsafe values first (each named once), then the schema, then
    the size limits on what is stored as JSON."""
    scanned = scan(doc)
    seen = {p.where for p in scanned.problems}
    return [*scanned.problems, *(p for p in schema_problems(doc) if p.where not in seen),
            *_stored_json_problems(doc, scanned.field_bytes), *_label_problems(doc)]


def _stored_json_problems(doc: Any, field_bytes: dict[tuple, int]) -> list[Problem]:
    """Persona and unknown fields over their limits (sizes as compact UTF-8 JSON)."""
    if not isinstance(doc, dict):
        return []
    problems = []
    persona = field_bytes.get(("user", "persona"), 0)
    if persona > MAX_PERSONA_BYTES:
        problems.append(Problem("/user/persona", _over("the persona is", persona,
                                                       MAX_PERSONA_BYTES)))
    objects = [(["user"], doc.get("user"), _known("user"))]
    for list_name in TEXT_FIELD:
        items = doc.get(list_name)
        if isinstance(items, list):
            objects += [([list_name, i], item, _known(list_name))
                        for i, item in enumerate(items)]
    for path, obj, known in objects:
        if not isinstance(obj, dict):
            continue
        unknown = {k: field_bytes.get((*path, k), 0) for k in obj if k not in known}
        if sum(unknown.values()) > MAX_UNKNOWN_BYTES:
            largest = max(unknown, key=unknown.__getitem__)
            problems.append(Problem(pointer([*path, largest]), _over(
                "unknown fields here (kept, not used) total", sum(unknown.values()),
                MAX_UNKNOWN_BYTES)))
    return problems


def _known(place: str) -> set[str]:
    props = EXPORT_SCHEMA["properties"][place]
    return set((props if place == "user" else props["items"])["properties"])


def _over(what: str, size: int, limit: int) -> str:
    return f"{what} {size:,} bytes as JSON; the limit is {limit // 1024} KiB"


def _label_problems(doc: Any) -> list[Problem]:
    """A display name of only invisible characters would reach every prompt as nothing."""
    user = doc.get("user") if isinstance(doc, dict) else None
    name = user.get("display_name") if isinstance(user, dict) else None
    if isinstance(name, str) and name and not has_visible(clean_label(name)):
        return [Problem("/user/display_name", "has no visible characters once bidi controls "
                                              "and zero-width characters are removed")]
    return []


def schema_problems(doc: Any) -> list[Problem]:
    """Every schema violation, duplicate id, bad timestamp and recording that names an item
    the export lacks, in document order."""
    problems = [Problem(*_describe(e)) for e in
                sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(map(str, e.path)))]
    if not isinstance(doc, dict):
        return problems
    for list_name in TEXT_FIELD:
        items = doc.get(list_name)
        if not isinstance(items, list):
            continue
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            item_id = item.get("id")
            if isinstance(item_id, str):
                if item_id in seen:
                    problems.append(Problem(pointer([list_name, index, "id"]),
                                            f"duplicate id (first used at "
                                            f"{pointer([list_name, seen[item_id]])})"))
                else:
                    seen[item_id] = index
            for field in ("created_at", "recorded_at", "deliver_on"):
                value = item.get(field)
                if isinstance(value, str) and not _valid_time(value, field == "deliver_on"):
                    problems.append(Problem(pointer([list_name, index, field]),
                                            "not an ISO 8601 date" if field == "deliver_on"
                                            else "not an ISO 8601 timestamp"))
    return problems + _reference_problems(doc)


def _reference_problems(doc: dict) -> list[Problem]:
    """A spoken answer or story must name one that is in the same export (the link is how a
    reply finds the recording of what it quotes)."""
    recordings = doc.get("voice_recordings")
    if not isinstance(recordings, list):
        return []
    ids = {field: _ids(doc.get(list_name)) for field, list_name in TELLS.items()}
    problems = []
    for index, item in enumerate(recordings):
        if not isinstance(item, dict):
            continue
        # an id that breaks the id rule is reported once, by the schema
        named = [field for field in TELLS if isinstance(item.get(field), str)
                 and re.match(ID_PATTERN, item[field])]
        if len(named) > 1:
            problems.append(Problem(pointer(["voice_recordings", index, "story_id"]),
                                    "a recording tells one item: give response_id or "
                                    "story_id, not both"))
        for field in named:
            if item[field] not in ids[field]:
                problems.append(Problem(pointer(["voice_recordings", index, field]), (
                    f"no item of /{TELLS[field]} in this export has this id: add that item "
                    f"to the export, or leave {field} out (a recording that tells no "
                    f"{'answer' if field == 'response_id' else 'story'} needs neither)")))
    return problems


def _ids(items: Any) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {item["id"] for item in items if isinstance(item, dict)
            and isinstance(item.get("id"), str)}


def _valid_time(value: str, date_only: bool) -> bool:
    from datetime import date, datetime

    try:
        (date if date_only else datetime).fromisoformat(value)
    except ValueError:
        return False
    return True
