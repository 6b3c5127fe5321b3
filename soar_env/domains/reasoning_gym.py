"""Any reasoning-gym task as a soar-env domain (``pip install 'soar-env[reasoning-gym]'``).

reasoning-gym (https://github.com/open-thought/reasoning-gym) generates problems of ~100
tasks with a checker for each (``score_answer``). ``ReasoningGymDomain(task)`` draws the hard
set's candidates from one task, prompts the student in reasoning-gym's ``<answer>`` format and
grades with the task's own checker. SOAR on a task with a real model::

    import gymnasium as gym

    import soar_env  # noqa: F401 (registers the env ids)
    from soar_env.domains.reasoning_gym import ReasoningGymDomain

    env = gym.make("SOAR-MATH-v0", domain=ReasoningGymDomain("leg_counting", size=2000),
                   student="meta-llama/Llama-3.2-3B-Instruct")
    # Or by name: domain="reasoning-gym", dataset="leg_counting" (the task's seed is then
    # hard_seed, its size hard_candidates).
    obs, info = env.reset(seed=0)
    teacher_text = "<question>How many legs do 2 cats have?</question><answer>\\boxed{8}</answer>"
    obs, reward, terminated, truncated, info = env.step(teacher_text)

Task settings go to the task's config: ``ReasoningGymDomain("basic_arithmetic",
max_terms=4)``. Teacher problems carry no reasoning-gym metadata: they are graded with the
task's checker on an entry without metadata, and an exact match of their answer counts as
solved (many checkers need the metadata).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from soar_env.problems import CHARSET, Problem, last_boxed, parse_paper_sample, strip_boxed, unicode_error

if TYPE_CHECKING:
    from soar_env.config import SoarConfig

INSTALL_HINT = "pip install 'soar-env[reasoning-gym]'"
# The env's observation space holds the teacher prompt: at most 1024 printable-ASCII characters.
PROMPT_CHARS = 1024
TEACHER_PROMPT = (
    "Write a new problem of the reasoning-gym task \"{task}\" for a student to practice on, "
    "together with its final answer. The problem must be self-contained and have a single, "
    "checkable answer.\n"
    "{example}"
    "Use exactly this format:\n"
    "<question>the problem statement</question><answer>\\boxed{{the final answer}}</answer>"
)
EXAMPLE = "An example of this task:\n<question>{question}</question><answer>\\boxed{{{answer}}}</answer>\n"


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError as err:
        raise ImportError(f"The reasoning-gym domain needs reasoning-gym: {INSTALL_HINT}") from err
    return reasoning_gym


# ---- entries as JSON: hard sets are cached as JSON, and checkers compare metadata exactly ----
# Tuples (ARC grids: a list would never equal the parsed board) and dicts with non-string
# keys (graph_color's adjacency) are tagged so that they come back as they were.
_TUPLE, _ITEMS = "__tuple__", "__items__"


def to_json(value: Any) -> Any:
    """``value`` as JSON-safe data that ``from_json`` turns back into it."""
    if isinstance(value, str | bool | int | float) or value is None:
        return value.item() if hasattr(value, "item") else value  # numpy scalars subclass them
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: to_json(v) for k, v in value.items()}
        return {_ITEMS: [[to_json(k), to_json(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [to_json(v) for v in value]}
    if isinstance(value, list | set | frozenset):
        return [to_json(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_json(value.tolist())
    return repr(value)  # nothing a checker can compare with; kept readable


def from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {_TUPLE}:
            return tuple(from_json(v) for v in value[_TUPLE])
        if set(value) == {_ITEMS}:
            return {_hashable(from_json(k)): from_json(v) for k, v in value[_ITEMS]}
        return {k: from_json(v) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


class ReasoningGymDomain:
    """One reasoning-gym task (``Domain`` protocol, ``soar_env.domains.base``).

    - ``hard_candidates``: the first ``count`` entries of ``create_dataset(task, size, seed,
      **task_config)``; each ``Problem`` keeps the entry's answer and metadata under
      ``metadata["reasoning_gym"]`` (JSON-safe, see ``to_json``) for the checker. An entry
      without a single answer (graph_color, rush_hour, ...) has ``answer == ""``. The seed
      argument is unused: the constructor's seed decides (the registered factory passes
      ``hard_seed``).
    - ``student_prompt``: reasoning-gym's default system prompt, then the question; the
      answer is the last ``<answer>...</answer>`` (reasoning-gym's ``extract_answer``).
    - ``reward_batch``: the task's ``score_answer`` (partial credit in [0, 1]; some tasks give
      0.01 for any answer); ``grade_batch``: 1.0 when it is at least 1.0, else 0.0. A checker
      that raises scores that completion 0.
    - Teacher problems (no ``metadata["reasoning_gym"]``): the checker on an entry of their
      question and answer with empty metadata, or 1.0 for an exact match after strip (many
      checkers need the metadata: they raise or score the right answer 0).
    - ``text_error``, ``teacher_max_tokens``: as the math domain's (printable Unicode; the
      teacher config's budget).
    """

    preset = "paper"
    max_text = 4096
    max_answer_tokens = None  # the RL config's max_new_tokens
    default_student = None
    exact_answers = False
    generator = solver = profiler = validity = None
    text_error = staticmethod(unicode_error)

    def __init__(self, task: str, size: int = 1000, seed: int = 0, **task_config: Any):
        rg = _reasoning_gym()
        from reasoning_gym.factory import DATASETS
        from reasoning_gym.utils import SYSTEM_PROMPTS, extract_answer

        if task not in DATASETS:
            raise ValueError(f"reasoning-gym has no task {task!r}; its tasks: {', '.join(sorted(DATASETS))}")
        self.task, self.size, self.seed = task, size, seed
        self.name = f"reasoning-gym:{task}"
        self.dataset = rg.create_dataset(task, size=size, seed=seed, **task_config)
        self._system_prompt = SYSTEM_PROMPTS["default"]
        self._extract_answer = extract_answer
        self.teacher_prompt = self._teacher_prompt()

    # ---- problems ------------------------------------------------------------------------
    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        return [self._problem(self.dataset[i]) for i in range(min(count, self.size))]

    def _problem(self, entry: dict[str, Any]) -> Problem:
        answer = entry["answer"]
        saved = {"task": self.task, "answer": to_json(answer), "metadata": to_json(entry["metadata"])}
        return Problem(entry["question"], "" if answer is None else str(answer), {"reasoning_gym": saved})

    def _teacher_prompt(self) -> str:
        """The teacher prompt, with an example that fits the observation space if one comes.

        The example is drawn past the candidates (indices from ``size`` on): a teacher shown a
        hard-set question could copy it into the student's training data.
        """
        bare = TEACHER_PROMPT.format(task=self.task, example="")
        for i in range(self.size, self.size + 32):
            try:
                entry = self.dataset[i]
            except IndexError:  # a task whose data ends at its size (gsm_symbolic, word_ladder)
                break
            question, answer = entry["question"].strip(), entry["answer"]
            if answer is None or last_boxed(f"\\boxed{{{answer}}}") != answer.strip():
                continue  # no single answer, or braces a box cannot hold
            prompt = TEACHER_PROMPT.format(task=self.task, example=EXAMPLE.format(question=question,
                                                                                 answer=answer.strip()))
            if len(prompt) <= PROMPT_CHARS and set(prompt) <= CHARSET:
                return prompt
        return bare

    # ---- prompts and teacher text ----------------------------------------------------------
    def student_prompt(self, question: str) -> str:
        return f"{self._system_prompt}\n{question.strip()}"

    @staticmethod
    def teacher_max_tokens(with_answer: bool) -> None:
        return None  # the teacher config's max_new_tokens

    parse_teacher_sample = staticmethod(parse_paper_sample)

    def validate(self, question: str, answer: str) -> str | None:
        answer = strip_boxed(answer)
        for field, text in (("question", question), ("answer", answer)):
            if not text.strip():
                return f"{field}: empty"
            if len(text) > self.max_text or "\x00" in text:
                return f"{field}: expects at most {self.max_text} characters without NUL bytes"
        return None

    def validate_batch(self, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        return [self.validate(q, a) for q, a in pairs]

    # ---- grading ---------------------------------------------------------------------------
    def grade_batch(self, completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        # Partial credit is not "solved": the fail@k filter and accuracy count full marks only.
        return [1.0 if score >= 1.0 else 0.0 for score in self.reward_batch(completions, problems)]

    def reward_batch(self, completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        return [self.score(c, p) for c, p in zip(completions, problems, strict=True)]

    def score(self, completion: str, problem: Problem) -> float:
        """The task checker's score in [0, 1] of the completion's last ``<answer>``."""
        answer = self._extract_answer(completion)
        saved = problem.metadata.get("reasoning_gym")
        if saved is not None:
            entry = {"question": problem.question, "answer": from_json(saved["answer"]),
                     "metadata": from_json(saved["metadata"])}
            try:
                return _clip(self.dataset.score_answer(answer, entry))
            except Exception:  # a checker bug must not end the run: this completion failed
                return 0.0
        exact = float(answer is not None and answer.strip() == problem.answer.strip())
        try:
            checked = self.dataset.score_answer(answer, {"question": problem.question,
                                                         "answer": problem.answer, "metadata": {}})
        except Exception:  # the checker needs the metadata a teacher problem has not
            return exact
        return max(_clip(checked), exact)


def _clip(score: Any) -> float:
    score = float(score)
    return 0.0 if math.isnan(score) else min(1.0, max(0.0, score))


def domain_from_config(config: SoarConfig) -> ReasoningGymDomain:
    """The registered ``"reasoning-gym"`` domain: task ``config.dataset``, seeded by ``hard_seed``."""
    if not config.dataset:
        raise ValueError("The reasoning-gym domain expects dataset= a reasoning-gym task name, "
                         "e.g. dataset='basic_arithmetic'")
    return ReasoningGymDomain(config.dataset, size=config.hard_candidates, seed=config.hard_seed)
