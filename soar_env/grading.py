"""Is a completion right? One score per completion, always.

Synthetic domains whose answer is one exact string are graded by exact match of the whole
answer. For the embedded chain domain that is the whole trace: a final-state-only check
succeeds ~10% of the time by chance, so no long chain would ever be 0/128 (see
shared/docs/embedded-domain.md).
"""

from __future__ import annotations

from collections.abc import Sequence


def exact_match(completion: str, reference: str) -> float:
    """1.0 when the completion equals the reference (outer whitespace ignored), else 0.0."""
    return 1.0 if completion.strip() == reference.strip() else 0.0


def exact_match_scores(completions: Sequence[str], references: Sequence[str]) -> list[float]:
    """``exact_match`` of each completion against its reference (a TRL-style reward)."""
    if len(completions) != len(references):
        raise ValueError(
            f"Expects one reference per completion, actual {len(references)} for {len(completions)}"
        )
    return [exact_match(c, r) for c, r in zip(completions, references)]
