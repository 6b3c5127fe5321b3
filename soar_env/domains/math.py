"""The math domain's data: MATH-format files, CHAMP, and the paper's prompts.

Grading is ``soar_env.grading`` (Math-Verify on the last ``\\boxed{}``); ``MathDomain``
bundles prompts, grading and validation for the environment.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from soar_env.grading import MAX_ANSWER_CHARS, graded_rewards, is_correct_batch, last_boxed
from soar_env.problems import Problem, strip_boxed

logger = logging.getLogger(__name__)

# The paper's teacher prompt is fixed and data-free: seeding it with example problems made the
# teacher copy them. Its exact wording is not in soar-paper.md; this follows what it describes.
TEACHER_PROMPT = (
    "Write a new math problem for a student to practice on, together with its final answer. "
    "The problem must be self-contained, well-posed and have a single, checkable answer.\n"
    "Use exactly this format:\n"
    "<question>the problem statement</question><answer>\\boxed{the final answer}</answer>"
)

_METADATA_KEYS = ("level", "type", "subject", "unique_id")


def math_student_prompt(question: str) -> str:
    """The student's prompt for ``question``: solve it and box the final answer."""
    return f"{question.strip()}\nPlease reason step by step, and put your final answer within \\boxed{{}}."


def load_math_jsonl(path: str | Path) -> list[Problem]:
    """Problems from a local MATH-format file: JSONL, a JSON list, or parquet (with pandas).

    Each row needs a ``problem`` and either an ``answer`` or a ``solution`` whose last
    ``\\boxed{}`` is the answer (as in Hendrycks' MATH and MATH-500). Metadata keeps ``level``,
    ``type``, ``subject`` and ``unique_id`` when present. Rows without an extractable answer
    are skipped, and their number is logged as a warning.

    Args:
        path: The file; ``.parquet`` is read with pandas, anything else as JSON or JSONL.

    Returns:
        One ``Problem`` per usable row, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not JSON or JSONL, a row is not an object with a ``problem``,
            or no row has an answer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expects a MATH-format file (JSONL, JSON list or parquet), actual {path}")
    rows = _read_rows(path)
    problems, skipped = [], 0
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("problem"), str):
            raise ValueError(
                f"Expects row {n} of {path} to be an object with a 'problem' string, actual {row!r:.200}"
            )
        answer = _answer_of(row)
        if not answer:
            skipped += 1
            continue
        metadata = {key: row[key] for key in _METADATA_KEYS if row.get(key) is not None}
        problems.append(Problem(row["problem"].strip(), answer, metadata))
    if not problems:
        raise ValueError(
            f"Expects rows with an 'answer' or a \\boxed{{}} answer in the 'solution', "
            f"actual none among the {len(rows)} rows of {path}"
        )
    if skipped:
        logger.warning(
            "Skipped %d of %d rows of %s: no 'answer' and no \\boxed{} in the solution",
            skipped,
            len(rows),
            path,
        )
    return problems


def load_champ() -> list[Problem]:
    """The 270 CHAMP competition problems (Mao et al., 2024), from the ``champ-dataset`` package.

    The package ships the data, so this works offline. CHAMP answers are free text such as
    ``"x=2, y=1"``, ``"No"`` or ``"The limit exists and is equal to 3"``; they are kept as
    given (``@@`` math markers removed; the marked form is in ``metadata["raw_answer"]``).

    Raises:
        ImportError: ``champ-dataset`` is not installed.
    """
    try:
        import champ_dataset
    except ImportError as err:
        raise ImportError("CHAMP needs the champ-dataset package: pip install champ-dataset") from err
    dataset = champ_dataset.load("v0")  # the one version the package ships
    return [
        Problem(
            p.text.strip(),
            p.answer.strip(),
            {"unique_id": p.identifier, "subject": p.category, "raw_answer": p.raw_answer, "source": "champ"},
        )
        for p in dataset.problems.values()
    ]


def _read_rows(path: Path) -> list[Any]:
    if path.suffix == ".parquet":
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                f"Reading {path} needs pandas (and pyarrow): pip install pandas pyarrow"
            ) from err
        return pd.read_parquet(path).to_dict(orient="records")
    text = path.read_text(encoding="utf-8")
    try:
        if text.lstrip().startswith("["):
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise ValueError(
            f"Expects {path} to hold a JSON list or one JSON object per line, actual: {err}"
        ) from err


def _answer_of(row: dict[str, Any]) -> str | None:
    answer = row.get("answer")
    if isinstance(answer, int | float) and not isinstance(answer, bool) and answer == answer:  # not NaN
        answer = str(answer)
    if isinstance(answer, str) and answer.strip():
        return last_boxed(answer) or answer.strip()  # some files keep the \boxed{} in the answer field
    solution = row.get("solution")
    return last_boxed(solution) if isinstance(solution, str) else None


class MathDomain:
    """Math problems graded with Math-Verify, in the paper's formats (the env's math domain).

    - ``grade_batch``: 1.0 when the last ``\\boxed{}`` verifies against the reference (the
      accuracy measures and the fail@k filter);
    - ``reward_batch``: the paper's graded student reward (the inner loop's RLOO reward);
    - ``validate``: a teacher problem needs a question and a boxed-able answer of at most
      ``MAX_ANSWER_CHARS`` characters without NUL bytes.
    """

    name = "math"
    teacher_prompt = TEACHER_PROMPT

    @staticmethod
    def student_prompt(question: str) -> str:
        return math_student_prompt(question)

    @staticmethod
    def grade_batch(completions: list[str], references: list[str]) -> list[float]:
        return [float(ok) for ok in is_correct_batch(completions, references)]

    @staticmethod
    def reward_batch(completions: list[str], references: list[str]) -> list[float]:
        return graded_rewards(completions, references)

    @staticmethod
    def validate(question: str, answer: str) -> str | None:
        if not question.strip():
            return "question: empty"
        answer = strip_boxed(answer)
        if not answer:
            return "answer: empty"
        if len(answer) > MAX_ANSWER_CHARS or "\x00" in answer:
            return f"answer: expects at most {MAX_ANSWER_CHARS} characters without NUL bytes"
        return None


def load_problems(dataset: str | Path) -> list[Problem]:
    """``'champ'`` for CHAMP, else a MATH-format file (see ``load_math_jsonl``)."""
    return load_champ() if str(dataset).lower() == "champ" else load_math_jsonl(dataset)
