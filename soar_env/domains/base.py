"""What the env needs of a problem domain, and the registry that names domains.

A domain says how a student is prompted, how teacher text becomes problems, which
teacher problems are usable, how completions are graded, and where the hard set's
candidates come from. Everything else is an optional capability that a domain declares
as an attribute (``None`` when it lacks it), so callers test ``domain.solver is None``
instead of probing for methods:

- ``generator`` (``Generator``): fresh problems by length and skills (random, curriculum,
  bandit and SB3 teachers, the parametric wrapper);
- ``solver`` (``Solver``): the correct answer of any question (``answers='solver'``, the
  ``answers_correct`` diagnostic);
- ``profiler`` (``Profiler``): per-batch structure statistics for diagnostics;
- ``validity`` (``ValidityReferences``): reference curricula and question labels for
  ``soar-env validate`` (docs/domains.md), each piece itself optional.

A new domain needs no edit to the env: pass an object, ``gym.make(id, domain=MyDomain())``,
or register a factory, ``register_domain("mine", lambda config: MyDomain())`` (importable
from ``soar_env.domains``) and ``gym.make(id, domain="mine")``. ``docs/env.md`` has a
complete example.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from soar_env.problems import Problem

if TYPE_CHECKING:
    from soar_env.config import SoarConfig


class Generator(Protocol):
    """Fresh problems of chosen lengths and skills (a procedural domain)."""

    max_len: int
    skills: tuple[str, ...]

    def problems(self, count: int, lengths: Sequence[int] | range, seed: int,
                 skills: Sequence[str] | None = None) -> list[Problem]: ...


class Solver(Protocol):
    """The correct answer of a question, and whether an answer is it."""

    def solve(self, question: str) -> str: ...

    def is_correct(self, question: str, answer: str) -> bool: ...


class Profiler(Protocol):
    """Structure statistics of a batch of questions, and each question as words."""

    def profile(self, questions: Sequence[str]) -> dict[str, float]: ...

    def diversity_text(self, question: str) -> str: ...


LABELS = ("useful", "trap", "other")
"""What ``ValidityReferences.label`` may call a question."""


@dataclass(frozen=True)
class ValidityReferences:
    """What ``soar-env validate`` can know of a domain beyond its problems.

    Every piece is optional (None when the domain has none); the validity criteria that
    need a missing piece are reported as not applicable.

    Attributes:
        oracle: ``(count, seed) -> problems``: the domain's declared best curriculum.
        partial_oracle: ``(fraction, count, seed) -> problems``: the oracle restricted to
            that fraction of the compositions the hard set needs (1.0: the oracle itself).
        off_target: ``(count, seed) -> problems``: learnable problems the hard set never uses.
        label: ``question -> "useful" | "trap" | "other"``: a useful stepping stone, a
            learnable question that does not transfer, or neither.
    """

    oracle: Callable[[int, int], list[Problem]] | None = None
    partial_oracle: Callable[[float, int, int], list[Problem]] | None = None
    off_target: Callable[[int, int], list[Problem]] | None = None
    label: Callable[[str], str] | None = None


class Domain(Protocol):
    """A problem domain (see the module docstring).

    Attributes:
        name: the domain's name (recorded in ``SoarConfig.domain``).
        preset: which default settings suit it: ``"tiny"`` (small models on CPU, the
            embedded domain) or ``"paper"`` (the paper's evaluation and teacher settings).
        teacher_prompt: what the LLM teacher is prompted with to write one problem.
        max_text: the most characters a question or answer of an action may have.
        max_answer_tokens: the student's completion budget when answering (None: the RL
            config's ``max_new_tokens``).
        default_student: the model used when ``SoarConfig.student`` is None (None: the
            user must name one).
        exact_answers: answers are one exact string: a completion is right, and
            ``grade_batch`` and ``reward_batch`` pay it (1.0, else 0.0), exactly when its tokens
            are the reference's tokens followed by the end token. Then ``accuracy='exact'``
            (the likelihood of the reference) measures correctness, and the lockstep sampler
            stops a prompt group once none of its samples can still be right (nothing it
            would have written could change a reward or an update; a reward paid to a
            stopped group raises).
        generator, solver, profiler, validity: optional capabilities, or None.
    """

    name: str
    preset: str
    teacher_prompt: str
    max_text: int
    max_answer_tokens: int | None
    default_student: str | None
    exact_answers: bool
    generator: Generator | None
    solver: Solver | None
    profiler: Profiler | None
    validity: ValidityReferences | None

    def student_prompt(self, question: str) -> str:
        """The student's prompt for a question (before any chat template)."""
        ...

    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        """At most ``count`` problems from which the fail@k filter builds the hard set."""
        ...

    def text_error(self, text: str) -> str | None:
        """Why an action's question or answer text has characters the domain refuses, or None
        (``soar_env.problems.ascii_error`` and ``unicode_error`` are ready-made rules)."""
        ...

    def teacher_max_tokens(self, with_answer: bool) -> int | None:
        """Tokens an LLM teacher samples for one problem (question only, or with its answer);
        None: the teacher's own config decides."""
        ...

    def parse_teacher_sample(self, text: str) -> tuple[str, str] | str:
        """One LLM-teacher completion as (question, answer), or the reason it is malformed."""
        ...

    def validate_batch(self, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        """Per (question, answer): why it cannot be used, or None when it can."""
        ...

    def grade_batch(self, completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        """1.0 / 0.0 per completion, each against its problem (accuracy, the hard-set filter)."""
        ...

    def reward_batch(self, completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        """The student's RL reward per completion (may be graded, e.g. format credit)."""
        ...


_MISSING = object()
DomainFactory = Callable[["SoarConfig"], Domain]
_REGISTRY: dict[str, DomainFactory | str] = {}


def register_domain(name: str, factory: DomainFactory | str) -> None:
    """Name a domain: ``gym.make(id, domain=name)`` then builds it with ``factory(config)``.

    ``factory`` is a callable, or its ``"module:function"`` path, imported when the domain is
    first built (the built-in domains register so in ``soar_env.domains``: naming one imports
    none of them).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"register_domain expects a non-empty name, actual {name!r}")
    if not (callable(factory) or (isinstance(factory, str) and factory.count(":") == 1)):
        raise TypeError("register_domain expects a factory callable(config) -> Domain or its "
                        f"'module:function' path, actual {factory!r}")
    _REGISTRY[name] = factory


def registered_domains() -> list[str]:
    return sorted(_REGISTRY)


def make_domain(domain: str | Any, config: SoarConfig) -> Domain:
    """The domain named ``domain`` (built by its factory from ``config``), or ``domain`` itself."""
    if isinstance(domain, str):
        if domain not in _REGISTRY:
            raise ValueError(f"domain expects a registered name ({', '.join(registered_domains())}) "
                             f"or a Domain object, actual {domain!r}")
        domain = _factory(domain)(config)
    missing = [name for name in _required() if getattr(domain, name, _MISSING) is _MISSING]
    if missing:
        raise TypeError(f"{type(domain).__name__} is not a Domain: it lacks {', '.join(missing)} "
                        "(soar_env.domains.base.Domain lists what a domain needs)")
    return domain


def _factory(name: str) -> DomainFactory:
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    return factory


def _required() -> list[str]:
    return [n for n in (*Domain.__annotations__, *(k for k, v in vars(Domain).items() if callable(v)))
            if not n.startswith("_")]
