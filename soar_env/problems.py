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


def strip_boxed(answer: str) -> str:
    """The content of the last ``\\boxed{...}`` in ``answer`` (braces balanced), else ``answer``."""
    start = answer.rfind("\\boxed{")
    if start < 0:
        return answer.strip()
    depth, i = 0, start + len("\\boxed{")
    for j in range(i, len(answer)):
        if answer[j] == "{":
            depth += 1
        elif answer[j] == "}":
            if depth == 0:
                return answer[i:j].strip()
            depth -= 1
    return answer.strip()  # unbalanced: leave it to the domain's validation


def parse_tagged(text: str) -> tuple[list[tuple[str, str]], int]:
    """Question/answer pairs in ``<question>..</question><answer>..</answer>`` format.

    Returns the pairs (answers with their ``\\boxed{}`` kept) and the number of
    ``<question>`` openings that did not form a complete pair (malformed samples).
    """
    pairs = [(q.strip(), a.strip()) for q, a in _PAIR.findall(text)]
    openings = text.count("<question>")
    return pairs, max(0, openings - len(pairs))
