"""Whether a newly evaluated model version should replace the user's current one.

Held-out answer perplexity decides (lower is better), compared on the same held-out
questions and only between adapters of the same base model: perplexity is per token, so two
tokenizers' figures are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Standing:
    """A version's figures on the candidate's held-out questions."""

    version: int
    base_model: str
    perplexity: float | None  # held-out answer perplexity; None: not measured on these
    base_perplexity: float | None = None  # its base model's on the same questions


@dataclass(frozen=True)
class Verdict:
    promote: bool
    note: str


def judge(candidate: Standing, current: Standing | None, reevaluated: bool = False
          ) -> Verdict:
    """Promote *candidate* when it beats its base and *current* (None: no version is current
    yet); *reevaluated*: current's figure was measured again on the candidate's questions."""
    c = candidate
    kept = f"kept v{current.version}" if current else "no version promoted"
    if c.base_perplexity is None or not c.perplexity < c.base_perplexity:
        return Verdict(False, f"{kept}: v{c.version}'s held-out perplexity {c.perplexity} does "
                              f"not beat its base's {c.base_perplexity} (lower is better)")
    if current is None:
        return Verdict(True, f"promoted v{c.version}: first version that beats its base, "
                             f"held-out perplexity {c.perplexity} vs base's "
                             f"{c.base_perplexity} (lower is better)")
    if current.base_model != c.base_model:
        return Verdict(False, f"{kept}: v{c.version} is built on {c.base_model}, "
                              f"v{current.version} on {current.base_model}; their "
                              f"perplexities are not comparable, so promote by hand")
    if current.perplexity is None:
        return Verdict(False, f"{kept}: it has no held-out perplexity on v{c.version}'s "
                              f"questions to compare with; promote by hand")
    where = (f"v{current.version} re-evaluated on v{c.version}'s held-out questions"
             if reevaluated else "same held-out questions")
    if c.perplexity < current.perplexity:
        return Verdict(True, f"promoted v{c.version}: held-out perplexity {c.perplexity} beats "
                             f"current v{current.version}'s {current.perplexity} (lower is "
                             f"better; {where})")
    return Verdict(False, f"{kept}: v{c.version}'s held-out perplexity {c.perplexity} does not "
                          f"beat v{current.version}'s {current.perplexity} (lower is better; "
                          f"{where})")
