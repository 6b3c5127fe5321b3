"""The ``Problem`` record: one teacher-written (or real) question and its answer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """A question, the answer it is graded against, and free-form metadata."""

    question: str
    answer: str
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(str(data["question"]), str(data["answer"]), dict(data.get("metadata", {})))


# ---- the paper's teacher output format --------------------------------------------------
_PAIR = re.compile(r"<question>(.*?)</question>\s*<answer>(.*?)</answer>", re.DOTALL)


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), else None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            if depth == 0:
                return text[i:j].strip()
            depth -= 1
    return None


def strip_boxed(answer: str) -> str:
    """The content of the last ``\\boxed{...}`` in ``answer``, else ``answer`` stripped.

    An unbalanced box is left as it is, for the domain's validation to reject.
    """
    boxed = last_boxed(answer)
    return boxed if boxed is not None else answer.strip()


def parse_tagged(text: str) -> tuple[list[tuple[str, str]], int]:
    """Question/answer pairs in ``<question>..</question><answer>..</answer>`` format.

    Returns the pairs (answers with their ``\\boxed{}`` kept) and the number of
    ``<question>`` openings that did not form a complete pair (malformed samples).
    """
    pairs = [(q.strip(), a.strip()) for q, a in _PAIR.findall(text)]
    openings = text.count("<question>")
    return pairs, max(0, openings - len(pairs))
