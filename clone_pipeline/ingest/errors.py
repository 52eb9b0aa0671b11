"""Import problems that name their place and never quote the person's text."""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROBLEMS = 100  # "all problems at once, up to a sane cap"


@dataclass(frozen=True)
class Problem:
    where: str  # a JSON pointer (/responses/3/answer), "line L, column C", or a file path
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class ExportError(Exception):
    """The export cannot be imported; nothing was written. ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[Problem], truncated: int = 0):
        self.source = source
        self.problems = problems
        self.truncated = truncated
        lines = [f"{source}: export rejected, nothing was imported ({self.count} problem(s))"]
        lines += [f"  {p}" for p in problems]
        if truncated:
            lines.append(f"  ... and {truncated} more")
        super().__init__("\n".join(lines))

    @property
    def count(self) -> int:
        return len(self.problems) + self.truncated
