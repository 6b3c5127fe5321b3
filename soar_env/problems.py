"""The ``Problem`` record: one teacher-written (or real) question and its answer."""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHARSET = frozenset(string.printable) - frozenset("\x0b\x0c")
"""Printable ASCII with space, tab, newline and carriage return (LaTeX fits): the action space's charset."""


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
_Q, _QE, _A, _AE = "<question>", "</question>", "<answer>", "</answer>"
_SPACE = re.compile(r"\s*")


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

    One left-to-right scan with ``str.find``, linear in ``len(text)``: a sample runs from a
    ``<question>`` to the next ``<question>`` (or the end) and must hold ``</question>``,
    whitespace, ``<answer>`` and ``</answer>`` in that order. No search crosses the next
    opening, so a missing tag costs only its own sample (a lazy DOTALL regex rescanned the
    rest of the text from every opening: 27 s on 160 KB of ``<question>``).
    """
    pairs, openings, start = [], 0, text.find(_Q)
    while start >= 0:
        openings += 1
        nxt = text.find(_Q, start + len(_Q))
        stop = len(text) if nxt < 0 else nxt
        q_end = text.find(_QE, start + len(_Q), stop)
        if q_end >= 0:
            a_start = _SPACE.match(text, q_end + len(_QE), stop).end()
            if text.startswith(_A, a_start, stop):
                a_end = text.find(_AE, a_start + len(_A), stop)
                if a_end >= 0:
                    pairs.append((text[start + len(_Q) : q_end].strip(),
                                  text[a_start + len(_A) : a_end].strip()))
        start = nxt
    return pairs, openings - len(pairs)


def raw_text_cap(size: int, max_chars: int) -> int:
    """Characters of raw teacher text the env reads: ``size * 2 * (max_chars + 64)``.

    Room for ``size`` pairs whose question and answer both reach ``max_chars``, plus 128
    characters per pair for the tags (46) and whitespace: 2,048 on SOAR-Tiny-v0 (n = 8,
    64-character texts), 532,480 on the math preset (n = 64, 4096). Text past it is not read.
    """
    return size * 2 * (max_chars + 64)


# ---- characters a domain accepts ----------------------------------------------------------
def ascii_error(text: str) -> str | None:
    """Why ``text`` is outside ``CHARSET`` (printable ASCII, tab, newline), else None."""
    bad = set(text) - CHARSET
    return f"characters outside printable ASCII: {sorted(bad)[:5]}" if bad else None


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})  # Unicode's category C ("Other"), all of it


def unicode_error(text: str) -> str | None:
    """Why ``text`` is not printable Unicode, else None.

    One rule, whatever path the text came by: no character of Unicode's category C but
    newline and tab. That is control characters (Cc), invisible format characters (Cf: zero
    width spaces and joiners such as U+200B and U+200D, the byte order mark, soft hyphens,
    and every bidirectional control such as U+202E, which make a logged problem display
    otherwise than the student reads it), surrogates (Cs), private-use (Co) and unassigned
    (Cn) code points. Accepts what a math teacher writes: ×, π, ≤, ∑, Greek, accented
    letters, emoji (not those joined into one by U+200D).
    """
    bad = {c for c in set(text) - {"\n", "\t"} if unicodedata.category(c) in _UNPRINTABLE}
    return f"unprintable characters: {sorted(bad)[:5]}" if bad else None


def parse_paper_sample(text: str) -> tuple[str, str] | str:
    """One teacher completion in the paper's format as (question, boxed answer), or the reason
    it is malformed: the first ``<question>/<answer>`` pair, its answer in ``\\boxed{}``."""
    pairs, _ = parse_tagged(text)
    if not pairs:
        return "no <question>/<answer> pair"
    answer = last_boxed(pairs[0][1])
    return "answer without \\boxed{}" if answer is None else (pairs[0][0], answer)


# ---- datasets handed to the env ------------------------------------------------------------
def validated(domain: Any, pairs: list[tuple[str, str]]) -> list[Problem | str]:
    """Each (question, answer) pair as a ``Problem``, or the reason the domain rejects it.

    The domain's ``validate_batch`` judges them all at once (Math-Verify parses all answers
    in one bounded batch).
    """
    reasons = domain.validate_batch(pairs)
    return [why if why else Problem(q, a) for (q, a), why in zip(pairs, reasons)]


def text_error(domain: Any, text: str, max_chars: int) -> str | None:
    """Why a question or answer field is unusable as text (too long, bad characters), else None.

    The character rule is the domain's ``text_error`` (e.g. ``ascii_error``, ``unicode_error``).
    """
    if len(text) > max_chars:
        return f"over {max_chars} characters ({len(text)})"
    return domain.text_error(text)


def problems_from_action(
    action: Any, domain: Any, size: int, max_chars: int
) -> tuple[list[Problem], list[str]]:
    """The env's action as valid problems, and one error message per invalid one.

    ``action`` is a sequence of ``size`` problems (``Problem``, dicts with ``question`` and
    ``answer``, or pairs) or the teacher's raw ``<question>/<answer>\\boxed{}`` text. Only a
    structurally wrong action raises ``ValueError`` ("Expects ..."): not a sequence or str,
    a wrong count, an item that is not a problem, a field that is not a str. Everything
    else is judged per problem, by the same rules on both paths, and only counted: a field
    over ``max_chars`` or with characters the domain's ``text_error`` rejects, an empty
    field, a problem the domain rejects. Raw text is read up to ``raw_text_cap(size,
    max_chars)`` characters (the rest is one error) and only its first ``size`` pairs are
    used (each further pair is one error), so no text can cost more than a bounded parse.
    """
    if isinstance(action, str):
        items, errors = _raw_items(action, domain, size, max_chars)
    else:
        items, errors = _list_items(action, domain, size, max_chars)
    problems = []
    for item in validated(domain, items):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            errors.append(item)
    return problems, errors


def _field_error(domain: Any, where: str, question: str, answer: str, max_chars: int) -> str | None:
    for name, value in (("question", question), ("answer", answer)):
        why = text_error(domain, value, max_chars)
        if why:
            return f"{where} {name}: {why}"
    return None


def _raw_items(text: str, domain: Any, n: int, max_chars: int) -> tuple[list[tuple[str, str]], list[str]]:
    errors = []
    cap = raw_text_cap(n, max_chars)
    if len(text) > cap:  # before any parsing, so the parse below is bounded by the cap
        errors.append(f"raw text: {len(text) - cap} characters past the {cap}-character cap not read")
        text = text[:cap]
    pairs, broken = parse_tagged(text)
    errors += ["raw text: incomplete <question>/<answer> pair"] * broken
    errors += [f"raw text: pair {i} beyond the dataset size {n}" for i in range(n, len(pairs))]
    items = []
    for i, (question, answer) in enumerate(pairs[:n]):
        # The field rules see the text between the tags, as a list action's field would be.
        why = _field_error(domain, f"raw text pair {i}", question, answer, max_chars)
        # The paper's format boxes the answer; a pair without \boxed{} is malformed.
        boxed = last_boxed(answer)
        if why is None and boxed is None:
            why = f"raw text pair {i}: answer without \\boxed{{}}"
        if why is None and (not question or not boxed):
            why = f"raw text pair {i}: empty question or answer"
        if why:
            errors.append(why)
        else:
            items.append((question, boxed))
    return items, errors


def _list_items(action: Any, domain: Any, n: int, max_chars: int) -> tuple[list[tuple[str, str]], list[str]]:
    items, errors = [], []
    for i, (question, answer) in enumerate(_items_from(action, n)):
        why = _field_error(domain, f"problem {i}", question, answer, max_chars)
        if why is None and (not question.strip() or not answer.strip()):
            why = f"problem {i}: empty question or answer"
        if why:
            errors.append(why)
        else:
            items.append((question, answer.strip()))
    return items, errors


def _items_from(action: Any, n: int) -> list[tuple[str, str]]:
    if isinstance(action, np.ndarray) and action.ndim == 1:
        action = list(action)  # Tuple.contains accepts a 1-D array of problems too
    if not isinstance(action, (tuple, list)):
        raise ValueError(
            f"Expects a dataset: a tuple of {n} problems (dicts with 'question' and "
            f"'answer', Problem objects or pairs) or the teacher's raw text, actual "
            f"{type(action).__name__}"
        )
    if len(action) != n:
        raise ValueError(f"Expects {n} problems per action, actual {len(action)}")
    items = []
    for i, item in enumerate(action):
        if isinstance(item, Problem):
            q, a = item.question, item.answer
        elif isinstance(item, dict) and set(item) >= {"question", "answer"}:
            q, a = item["question"], item["answer"]
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            q, a = item
        else:
            raise ValueError(
                f"Expects problem {i} as a dict with 'question' and 'answer', a Problem "
                f"or a pair, actual {type(item).__name__}"
            )
        for name, value in (("question", q), ("answer", a)):
            if not isinstance(value, str):
                raise ValueError(f"Expects problem {i} {name} as str, actual {type(value).__name__}")
        items.append((q, a))
    return items
