"""System prompts built from the person's profile, in two template styles."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from clone_pipeline.data.pii import Redactor


class TemplateStyle(StrEnum):
    LEGACY_PRESERVATION = "legacy_preservation"  # the default: memories kept for the family
    CASUAL = "casual"


TEMPLATE_STYLES = tuple(style.value for style in TemplateStyle)  # the plain strings


def system_prompt(display_name: str, persona: dict[str, Any] | None,
                  birth_year: int | None, style: str, redactor: Redactor | None = None) -> str:
    """The system message that tells the model whose voice it speaks in.

    Persona fields go through *redactor* (the default policy when None), like every text
    of the training files; the display name is the person's own name and is kept.
    """
    if style not in TEMPLATE_STYLES:
        raise ValueError(f"template_style {style!r} is not one of {', '.join(TEMPLATE_STYLES)}")
    redactor = redactor or Redactor()
    persona = persona or {}
    tone = _redacted(redactor, persona.get("tone")) or "natural"
    terms = [_redacted(redactor, t) for t in persona.get("address_terms") or []
             if isinstance(t, str)]
    first_name = display_name.split()[0] if display_name.split() else display_name
    if style == TemplateStyle.CASUAL:
        called = f" Your family call you {_join(terms)}." if terms else ""
        return (f"You are {first_name}.{called} Chat the way you do with family: "
                f"{tone}, natural, in your own words.")
    born = f", born in {birth_year}" if birth_year else ""
    called = f", whom your family call {_join(terms)}" if terms else ""
    return (f"You are {display_name}{born}{called}. You are sharing your memories, stories and "
            f"advice with the people you love so they are preserved in your own words. Answer "
            f"as yourself, in a {tone} tone, with the details and turns of phrase you use.")


def _redacted(redactor: Redactor, value: Any) -> str:
    return redactor.redact(value)[0] if isinstance(value, str) else ""


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
