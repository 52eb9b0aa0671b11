"""Import problems that name their place and never quote the person's text."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PROBLEMS = 100  # "all problems at once, up to a sane cap"
MAX_SHOWN_CHARS = 200  # a place longer than this (a pasted key, a huge path) is cut

# Characters that would break the one-line message or hide part of it: C0/C1 controls
# (newlines, NUL), lone surrogates (unprintable), bidi controls and zero-width characters.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200b-\u200f\u202a-\u202e"
                     "\u2060\u2066-\u2069\ufeff]")


def shown(place: str) -> str:
    """*place* made safe to print on one line: unsafe characters as escapes, cut if long."""
    safe = _UNSAFE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace")
                       .decode("ascii"), place)
    return safe if len(safe) <= MAX_SHOWN_CHARS else safe[:MAX_SHOWN_CHARS - 1] + "…"


def pointer(parts) -> str:
    """The JSON pointer (RFC 6901) of *parts*, a list of keys and indices."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) \
        if parts else "/"


@dataclass(frozen=True)
class Problem:
    where: str  # a JSON pointer (/responses/3/answer), "line L, column C", or a file path
    message: str

    def __str__(self) -> str:
        return f"{shown(self.where)}: {self.message}"


class ExportError(Exception):
    """The export cannot be imported; nothing was written. ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[Problem], truncated: int = 0):
        self.source = source
        self.problems = problems
        self.truncated = truncated
        lines = [f"{shown(source)}: export rejected, nothing was imported ({self.count} "
                 f"problem(s))"]
        lines += [f"  {p}" for p in problems]
        if truncated:
            lines.append(f"  ... and {truncated} more")
        super().__init__("\n".join(lines))

    @property
    def count(self) -> int:
        return len(self.problems) + self.truncated
