"""The math domain's data: MATH-format files, CHAMP, and the paper's prompts.

Grading is ``soar_env.grading`` (Math-Verify on the last ``\\boxed{}``); ``MathDomain``
bundles prompts, grading and validation for the environment.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from soar_env.files import cache_dir, write_atomic
from soar_env.grading import MAX_ANSWER_CHARS, graded_rewards, is_correct_batch, last_boxed, parses_batch
from soar_env.problems import Problem, parse_paper_sample, strip_boxed, unicode_error

if TYPE_CHECKING:
    from soar_env.config import SoarConfig

logger = logging.getLogger(__name__)

# The paper's teacher prompt is fixed and data-free: seeding it with example problems made the
# teacher copy them. The paper does not print its exact wording; this follows what it describes.
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
        raise FileNotFoundError(f"Dataset file not found: {path} (expects a MATH-format JSONL, "
                                "JSON list or parquet file)")
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

    Implements the ``Domain`` protocol (``soar_env.domains.base``), without optional
    capabilities (no generator, solver or profiler: problems come from a dataset).

    - ``hard_candidates``: the first problems of ``dataset`` (a MATH-format file, 'champ'
      or a hub id; ``load_problems``);
    - ``grade_batch``: 1.0 when the last ``\\boxed{}`` verifies against the reference (the
      accuracy measures and the fail@k filter);
    - ``reward_batch``: the paper's graded student reward (the inner loop's RLOO reward);
    - ``text_error``: the characters an action's texts may hold (``unicode_error``);
    - ``parse_teacher_sample``: the first ``<question>/<answer>`` pair, answer boxed;
    - ``validate``: a teacher problem needs a question and a boxed-able answer of at most
      ``MAX_ANSWER_CHARS`` characters without NUL bytes;
    - ``validate_batch``: ``validate``, then the paper's last check, in one bounded batch:
      Math-Verify must parse the answer into a math object.
    """

    name = "math"
    preset = "paper"
    teacher_prompt = TEACHER_PROMPT
    max_text = 4096
    max_answer_tokens = None
    default_student = None
    exact_answers = False
    generator = solver = profiler = validity = None
    # Action texts: any printable Unicode (×, π, ≤, Greek...); no control or invisible format
    # characters (bidi controls, zero-width joiners...) but \n, \t.
    text_error = staticmethod(unicode_error)

    def __init__(self, dataset: str | Path | None = None):
        self.dataset = dataset

    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        if not self.dataset:
            raise ValueError("The math domain expects dataset= (a MATH-format JSON/JSONL/parquet "
                             "file, or 'champ'); none was given")
        return load_problems(self.dataset)[:count]  # the dataset's order: seed is unused

    @staticmethod
    def student_prompt(question: str) -> str:
        return math_student_prompt(question)

    @staticmethod
    def teacher_max_tokens(with_answer: bool) -> None:
        return None  # the teacher config's max_new_tokens (the paper's: 1024)

    parse_teacher_sample = staticmethod(parse_paper_sample)

    @staticmethod
    def grade_batch(completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        return [float(ok) for ok in is_correct_batch(list(completions), [p.answer for p in problems])]

    @staticmethod
    def reward_batch(completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        return graded_rewards(list(completions), [p.answer for p in problems])

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

    @classmethod
    def validate_batch(cls, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        reasons = [cls.validate(q, a) for q, a in pairs]
        todo = [i for i, why in enumerate(reasons) if why is None]
        for i, ok in zip(todo, parses_batch([pairs[i][1] for i in todo])):
            if not ok:
                reasons[i] = "answer: Math-Verify cannot parse it"
        return reasons


def domain_from_config(config: SoarConfig) -> MathDomain:
    """The registered ``"math"`` domain: the problems of ``config.dataset``."""
    if not config.dataset:  # before any model is loaded: name what is missing at once
        raise ValueError("The math domain expects dataset= (a MATH-format JSON/JSONL/parquet "
                         "file, or 'champ'); none was given")
    return MathDomain(config.dataset)


def load_olympiadbench(path: str | Path) -> list[Problem]:
    """OlympiadBench's English, text-only, auto-verifiable problems from a local file.

    Rows as in the official release (and the ``Hothan/OlympiadBench`` hub copy): ``question``,
    ``final_answer`` (a list of strings, ``$``-delimited), optional ``context``, ``language``,
    ``modality``/``image_*``, ``subject`` and ``question_type``. Kept: English rows without an
    image whose subject is math (when given) and whose question type is open-ended with a
    final answer (theorem proving has none). Several final answers are joined with ", ".
    The paper uses it as a held-out evaluation set (158/158 after fail@128).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no row is usable, or a row is not an object with a ``question``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expects an OlympiadBench file (JSONL, JSON list or parquet), actual {path}")
    rows = _read_rows(path)
    problems = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("question"), str):
            raise ValueError(
                f"Expects row {n} of {path} to be an object with a 'question', actual {row!r:.200}"
            )
        if not _olympiad_usable(row):
            continue
        answers = row.get("final_answer")
        answers = [answers] if isinstance(answers, str) else list(answers)
        answer = ", ".join(a.strip().strip("$").strip() for a in answers)
        context = row.get("context")
        question = row["question"].strip()
        if isinstance(context, str) and context.strip():  # shared context of a multi-part problem
            question = f"{context.strip()}\n{question}"
        metadata = {"unique_id": row.get("id"), "subject": row.get("subfield") or row.get("subject"),
                    "source": "olympiadbench"}
        problems.append(Problem(question, answer, {k: v for k, v in metadata.items() if v is not None}))
    if not problems:
        raise ValueError(
            f"Expects English text-only rows with a 'final_answer' in {path}, actual none of {len(rows)}"
        )
    logger.info("OlympiadBench: kept %d of %d rows of %s", len(problems), len(rows), path)
    return problems


def _olympiad_usable(row: dict[str, Any]) -> bool:
    answers = row.get("final_answer")
    if isinstance(answers, str):
        answers = [answers]
    if answers is None or not len(answers) or not all(isinstance(a, str) and a.strip() for a in answers):
        return False
    if str(row.get("language", "English")).lower() not in ("english", "en"):
        return False
    modality = str(row.get("modality", "text-only")).lower()
    if any(row.get(f"image_{i}") for i in range(1, 10)) or "text-only" not in modality:
        return False
    if "math" not in str(row.get("subject", "math")).lower():
        return False
    kind = str(row.get("question_type", "")).lower()
    return "proof" not in kind and "theorem" not in kind


def load_problems(dataset: str | Path) -> list[Problem]:
    """Problems from ``dataset``: ``'champ'``, a local file, or (online) a hub dataset id.

    A local file is read as OlympiadBench when its rows have ``final_answer``, else as
    MATH-format (``problem`` + ``answer`` or ``solution``; HARP's rows have this shape).
    A string that is not an existing path is tried as a ``datasets`` hub id
    (``"id"``, ``"id:split"`` or ``"id:config:split"``; default split ``test``, the evaluation
    problems hard sets are drawn from), saved once as
    JSONL under ``$SOAR_ENV_CACHE/datasets``; offline this fails with an error that says how
    to pass a local file. E.g. ``"Hothan/OlympiadBench:OE_TO_maths_en_COMP:train"``.
    """
    if str(dataset).lower() == "champ":
        return load_champ()
    path = Path(dataset)
    if not path.exists() and not str(dataset).startswith((".", "/", "~")) and "/" in str(dataset):
        path = _hub_file(str(dataset))
    if not path.is_file():
        return load_math_jsonl(path)  # its error names the expected formats
    rows = _read_rows(path)
    first = rows[0] if rows and isinstance(rows[0], dict) else {}
    return load_olympiadbench(path) if "final_answer" in first else load_math_jsonl(path)


def _hub_file(dataset_id: str) -> Path:
    """Download a hub dataset split to a local JSONL file (cached) and return its path."""
    name, *rest = dataset_id.split(":")
    # 'id', 'id:split' or 'id:config:split'. The default split is 'test': hard-set
    # candidates are evaluation problems (MATH-500, for one, has only a test split).
    config, split = ([None, None] + rest)[-2:]
    split = split or "test"
    cache = cache_dir() / "datasets"
    out = cache / f"{name.replace('/', '__')}__{config or 'default'}__{split}.jsonl"
    if out.is_file():
        return out
    try:
        import datasets

        from soar_env.hub import hub_reachable

        if not hub_reachable():  # fail in ~1 s rather than after the library's retries
            raise ConnectionError("the hub is not reachable (or HF_*_OFFLINE is set)")
        rows = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # ImportError, offline, unknown id: one clear message
        raise FileNotFoundError(
            f"Could not load the dataset {dataset_id!r} from the hub ({type(err).__name__}: "
            f"{str(err)[:160]}; asked for split {split!r}: name another as '{name}:SPLIT' or "
            f"'{name}:CONFIG:SPLIT'). Or pass a local JSONL/JSON/parquet file, e.g. "
            f"`python -c \"import datasets; datasets.load_dataset('{name}', {config!r}, split='{split}')"
            f".to_json('/data/{name.split('/')[-1]}.jsonl')\"` on a machine with network."
        ) from err
    write_atomic(out, lambda tmp: rows.to_json(str(tmp)))  # concurrent loads never share a temp file
    return out
