"""The ``Problem`` record: one teacher-written (or real) question and its answer."""

from __future__ import annotations

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
