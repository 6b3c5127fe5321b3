"""The embedded domain: noisy multi-skill digit chains.

A problem is a start digit followed by a chain of operations mod 10, for example
``5+3*7-2`` (5 -> 8 -> 6 -> 4). The answer is the whole trace of states, ``8,6,4``.

Why this domain (see docs/embedded-domain.md for the measurements):
- success on a chain is the product of per-step reliabilities, so long chains are truly
  hard (pass@1 ~ 1e-6 at length 18-20) while short and medium chains give RL a strong
  signal, and sharpening a step on short chains transfers to long ones: stepping stones;
- the three skills (``+``, ``-``, ``*``) start with different reliabilities, so a dataset
  that drills one skill helps far less than a diverse one (the toy analogue of the paper's
  diversity collapse);
- the answer is graded on the whole trace: a final-state check succeeds ~10% by chance.

Fixed-width questions. Every question has ``max_len`` two-character operation slots;
unused slots are written ``..``. With one answer character and one separator per step,
the token that predicts state i then always sits at the same distance from operation i,
so a 2-layer RoPE transformer learns the step once instead of learning to align slots
(a variable-length format stayed at chance in the prototype). No custom position ids are
needed, so the model is a plain ``LlamaForCausalLM`` that any HF tool (TRL included) can use.

Text formats (the tokenizer is character level):
- student prompt   ``Q:<question>=``, completion ``<answer><eos>``;
- teacher prompt   ``Q:``; the teacher's question is its text up to the first ``=``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from soar_env.domains.base import ValidityReferences
from soar_env.grading import exact_match, exact_match_scores
from soar_env.problems import Problem, ascii_error

SKILLS: tuple[str, ...] = ("+", "-", "*")
HARD_LENGTHS = range(18, 21)
"""Chain lengths of hard-set candidates: inside the pretrained lengths, base pass@1 ~1e-6."""
ARGUMENTS: dict[str, tuple[int, ...]] = {"+": (1, 2, 3), "-": (1, 2, 3), "*": (2, 3, 7)}
GOOD_LENGTHS = range(4, 7)
"""Medium chains, all skills: the best stepping stones measured on v0 and v1 (their oracle)."""
EMPTY_SLOT = ".."
TEACHER_PROMPT = "Q:"
# Everything the tokenizer knows besides its two special tokens.
ALPHABET = "0123456789+-*.=,Q:"
# SOAR-Tiny-v1's off-target family (see ``v1_domain``): min, max and xor, all mod 10. New
# characters, so the v1 tokenizer appends them to ALPHABET (v0's token ids are unchanged).
OFF_TARGET_SKILLS: tuple[str, ...] = ("<", ">", "^")
OFF_TARGET_ARGUMENTS: dict[str, tuple[int, ...]] = {"<": (3, 5, 7), ">": (2, 4, 6), "^": (1, 2, 3)}
V1_ALPHABET = ALPHABET + "<>^"
# The grammar's digits. Not str.isdigit: it takes '٣' and '³' (and int takes '٣'), which the
# tokenizer maps to <pad>: the student would train on padding and is_correct would count it.
DIGITS = "0123456789"


def apply_op(state: int, op: str, arg: int) -> int:
    """One step of a chain: ``state op arg`` mod 10."""
    if op == "+":
        return (state + arg) % 10
    if op == "-":
        return (state - arg) % 10
    if op == "*":
        return (state * arg) % 10
    if op == "<":
        return min(state, arg)
    if op == ">":
        return max(state, arg)
    if op == "^":
        return (state ^ arg) % 10
    raise ValueError(f"Expects an operation in {SKILLS + OFF_TARGET_SKILLS}, actual {op!r}")


@dataclass(frozen=True)
class Chain:
    """A parsed question: start digit and the list of (op, arg) steps."""

    start: int
    steps: tuple[tuple[str, int], ...]

    @property
    def length(self) -> int:
        return len(self.steps)

    def states(self) -> list[int]:
        states, state = [], self.start
        for op, arg in self.steps:
            state = apply_op(state, op, arg)
            states.append(state)
        return states


@dataclass(frozen=True)
class ChainDomain:
    """Problem source, text format, grader and noisy writer of the chain domain.

    Args:
        max_len: operation slots in every question (the longest chain).
        writer_accuracy: per-skill probability that the noisy pretraining writer gets a
            step right; a wrong step writes one of the 9 other digits uniformly. The tiny
            model learns these reliabilities, which is what RL later sharpens.
        arguments: the arguments each operation takes; its keys are the grammar's operations.
        off_target: operations of the off-target family (SOAR-Tiny-v1): learnable, but the
            hard set (on-target chains of ``SKILLS``) never uses them. Empty in v0.
        off_target_share: probability that a pretraining line is an off-target chain (a
            chain is written from one family only).
        alphabet: the characters the tokenizer knows besides its special tokens.
        default_student: the shipped model folder pretrained on this domain (set by
            ``soar_env.embedded.variant_domain``).
        hard_lengths: chain lengths of hard-set candidates.

    It implements the ``Domain`` protocol (``soar_env.domains.base``) with every optional
    capability: it is its own generator, solver and profiler.
    """

    max_len: int = 20
    writer_accuracy: dict[str, float] = field(
        default_factory=lambda: {"+": 0.6, "-": 0.5, "*": 0.4}
    )
    name: str = "chain"
    arguments: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(ARGUMENTS))
    off_target: tuple[str, ...] = ()
    off_target_share: float = 0.0
    alphabet: str = ALPHABET
    default_student: str | None = field(default=None, compare=False)
    hard_lengths: range = HARD_LENGTHS
    # Domain protocol: small-model settings, short texts, one exact answer per question.
    preset = "tiny"
    max_text = 64
    exact_answers = True
    # Action texts are printable ASCII (the env's CHARSET); the grammar below is narrower.
    text_error = staticmethod(ascii_error)

    def __post_init__(self) -> None:
        if not 1 <= self.max_len <= 40:
            raise ValueError(f"max_len expects 1..40 slots, actual {self.max_len}")
        if set(self.writer_accuracy) != set(self.arguments):
            raise ValueError(
                f"writer_accuracy expects one entry per skill {tuple(self.arguments)}, "
                f"actual {sorted(self.writer_accuracy)}"
            )
        if not set(SKILLS) | set(self.off_target) <= set(self.arguments):
            raise ValueError(f"arguments expects an entry per operation, actual {self.arguments}")
        if not 0.0 <= self.off_target_share <= 1.0 or (self.off_target_share and not self.off_target):
            raise ValueError(f"off_target_share expects 0..1 with off_target ops, actual "
                             f"{self.off_target_share}")

    # ---- declared capabilities (soar_env.domains.base) --------------------------------
    @property
    def generator(self) -> ChainDomain:
        return self

    @property
    def solver(self) -> ChainDomain:
        return self

    @property
    def profiler(self) -> ChainDomain:
        return self

    @property
    def validity(self) -> ValidityReferences:
        """``soar-env validate``'s references. v0 and v1: the oracle is medium on-target chains
        (the measured best stepping stones, the curriculum teacher's). v1 adds its off-target
        region (medium off-target chains) and labels by family: every on-target chain drills
        the hard set's skills ("useful"), every off-target chain is a "trap"."""
        def oracle(count: int, seed: int) -> list[Problem]:
            return self.problems(count, GOOD_LENGTHS, seed=seed)

        if not self.off_target:
            return ValidityReferences(oracle=oracle)

        def off_target(count: int, seed: int) -> list[Problem]:
            return self.problems(count, GOOD_LENGTHS, seed=seed, skills=self.off_target)

        return ValidityReferences(oracle=oracle, off_target=off_target, label=self.family_label)

    def family_label(self, question: str) -> str:
        """v1: "trap" for a chain with an off-target op, "useful" for an on-target chain,
        "other" for text that is not a chain."""
        try:
            chain = self.parse_question(question)
        except ValueError:
            return "other"
        return "trap" if any(op in self.off_target for op, _ in chain.steps) else "useful"

    @property
    def skills(self) -> tuple[str, ...]:
        """On-target operations (the hard set's); the off-target family is ``off_target``."""
        return SKILLS

    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        return self.problems(count, self.hard_lengths, seed=seed)

    # ---- text formats -------------------------------------------------------------
    @property
    def teacher_prompt(self) -> str:
        return TEACHER_PROMPT

    @property
    def question_chars(self) -> int:
        """Characters in every question: start digit plus the fixed slots."""
        return 1 + 2 * self.max_len

    @property
    def max_answer_tokens(self) -> int:
        """Answer characters of the longest chain plus the end-of-sequence token."""
        return 2 * self.max_len

    def student_prompt(self, question: str) -> str:
        return f"Q:{question}="

    def teacher_max_tokens(self, with_answer: bool) -> int:
        """The question and its '=' (one token per character), plus the trace when answered."""
        return self.question_chars + 1 + (self.max_answer_tokens if with_answer else 0)

    def format_question(self, chain: Chain) -> str:
        if not 1 <= chain.length <= self.max_len:
            raise ValueError(
                f"Expects a chain of 1..{self.max_len} steps, actual {chain.length}"
            )
        body = "".join(f"{op}{arg}" for op, arg in chain.steps)
        return f"{chain.start}{body}{EMPTY_SLOT * (self.max_len - chain.length)}"

    def parse_question(self, question: str) -> Chain:
        """Parse a question; raises ``ValueError`` saying what is malformed."""
        if len(question) != self.question_chars:
            raise ValueError(
                f"Expects {self.question_chars} characters (start digit and "
                f"{self.max_len} slots), actual {len(question)}"
            )
        if question[0] not in DIGITS:
            raise ValueError(f"Expects a start digit, actual {question[0]!r}")
        steps: list[tuple[str, int]] = []
        for i in range(self.max_len):
            slot = question[1 + 2 * i : 3 + 2 * i]
            if slot == EMPTY_SLOT:
                rest = question[3 + 2 * i :]
                if rest != EMPTY_SLOT * (len(rest) // 2):
                    raise ValueError(f"Expects only empty slots after slot {i}, actual {rest!r}")
                break
            op, arg = slot[0], slot[1]
            args = self.arguments.get(op, ())
            if arg not in DIGITS or int(arg) not in args:
                raise ValueError(f"Expects an operation like '+3' in slot {i}, actual {slot!r}")
            steps.append((op, int(arg)))
        if not steps:
            raise ValueError("Expects at least one operation, actual none")
        return Chain(int(question[0]), tuple(steps))

    def apply(self, state: int, op: str, arg: int) -> int:
        """One step of this domain's chains (v2 replaces the key and trap operations)."""
        return apply_op(state, op, arg)

    def states(self, chain: Chain) -> list[int]:
        states, state = [], chain.start
        for op, arg in chain.steps:
            state = self.apply(state, op, arg)
            states.append(state)
        return states

    def answer(self, chain: Chain) -> str:
        return ",".join(str(s) for s in self.states(chain))

    def solve(self, question: str) -> str:
        """The correct answer (whole trace) of a question."""
        return self.answer(self.parse_question(question))

    def parse_teacher_sample(self, text: str) -> tuple[str, str] | str:
        """A teacher sample (text after the teacher prompt) as (question, trace), cut at '='."""
        if "=" not in text:
            return "no '=' after the question"
        question, trace = text.split("=", 1)
        return question, trace.strip()

    def validate(self, question: str, answer: str) -> str | None:
        """Why a teacher-written problem cannot be used (None when it can).

        The answer must be a trace with one digit per operation; it may be wrong (the
        student is then trained toward the teacher's answer, as in the paper).
        """
        try:
            chain = self.parse_question(question)
        except ValueError as err:
            return f"question: {err}"
        states = answer.strip().split(",")
        if len(states) != chain.length or not all(len(s) == 1 and s in DIGITS for s in states):
            return f"answer: expects {chain.length} comma-separated digits, actual {answer[:50]!r}"
        return None

    def validate_batch(self, pairs: Sequence[tuple[str, str]]) -> list[str | None]:
        return [self.validate(q, a) for q, a in pairs]

    def diversity_text(self, question: str) -> str:
        """A question as words for diversity measures: ``7 -1 -3`` for ``7-1-3....``."""
        body = question.rstrip(".")
        return " ".join([body[:1]] + [body[i : i + 2] for i in range(1, len(body), 2)])

    def profile(self, questions: Sequence[str]) -> dict[str, float]:
        """What a teacher proposes, as fractions: chain-length buckets and skills.

        Keys: ``length_1_3``, ``length_4_6``, ``length_7_12``, ``length_13_20`` (of the
        parseable questions), ``mean_length``, ``length_entropy`` and ``skill_entropy``
        (bits; the maxima are log2(20) = 4.32 and log2(3) = 1.585), ``skill_+`` etc.; with
        an off-target family (v1) also ``off_target_fraction``: questions using any of its ops.
        """
        import math
        from collections import Counter

        chains = []
        for question in questions:
            try:
                chains.append(self.parse_question(question))
            except ValueError:
                continue
        if not chains:
            return {}
        lengths = Counter(c.length for c in chains)
        skills = Counter(op for c in chains for op, _ in c.steps)

        def entropy(counts: Counter) -> float:
            total = sum(counts.values())
            return -sum(v / total * math.log2(v / total) for v in counts.values() if v)

        def share(lo: int, hi: int) -> float:
            return sum(v for k, v in lengths.items() if lo <= k <= hi) / len(chains)

        out = {"length_1_3": share(1, 3), "length_4_6": share(4, 6), "length_7_12": share(7, 12),
               "length_13_20": share(13, self.max_len),
               "mean_length": sum(c.length for c in chains) / len(chains),
               "length_entropy": entropy(lengths), "skill_entropy": entropy(skills)}
        out.update({f"skill_{op}": skills[op] / max(1, sum(skills.values()))
                    for op in self.arguments})
        if self.off_target:
            off = set(self.off_target)
            out["off_target_fraction"] = sum(
                any(op in off for op, _ in c.steps) for c in chains) / len(chains)
        return out

    def is_correct(self, question: str, answer: str) -> bool:
        """Whether a valid problem's answer is the true trace."""
        return self.solve(question) == answer.strip()

    # ---- grading ------------------------------------------------------------------
    @staticmethod
    def grade(completion: str, reference: str) -> float:
        """Exact match of the whole trace: 1.0 or 0.0 (surrounding whitespace ignored)."""
        return exact_match(completion, reference)

    def grade_batch(self, completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        return exact_match_scores(list(completions), [p.answer for p in problems])

    def reward_batch(self, completions: Sequence[str], problems: Sequence[Problem]) -> list[float]:
        """The student's RL reward: the grade itself (whole-trace exact match)."""
        return self.grade_batch(completions, problems)

    # ---- problem sources ----------------------------------------------------------
    def random_chain(
        self, rng: random.Random, length: int, skills: Sequence[str] | None = None
    ) -> Chain:
        skills = self.skills if skills is None else skills
        steps = []
        for _ in range(length):
            op = rng.choice(tuple(skills))
            steps.append((op, rng.choice(self.arguments[op])))
        return Chain(rng.randrange(10), tuple(steps))

    def problems(
        self,
        n: int,
        lengths: Sequence[int],
        seed: int,
        skills: Sequence[str] | None = None,
    ) -> list[Problem]:
        """n random problems, lengths drawn uniformly from ``lengths`` (operations from
        ``skills``, default the hard set's: ``self.skills``); correct answers."""
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            chain = self.random_chain(rng, rng.choice(tuple(lengths)), skills)
            out.append(
                Problem(
                    question=self.format_question(chain),
                    answer=self.answer(chain),
                    metadata={"length": chain.length, "skills": "".join(o for o, _ in chain.steps)},
                )
            )
        return out

    def noisy_trace(self, rng: random.Random, chain: Chain) -> str:
        """The pretraining writer: each step right with its skill's probability."""
        states, state = [], chain.start
        for op, arg in chain.steps:
            right = apply_op(state, op, arg)
            if rng.random() < self.writer_accuracy[op]:
                state = right
            else:
                state = rng.choice([d for d in range(10) if d != right])
            states.append(state)
        return ",".join(str(s) for s in states)

    def pretraining_line(self, rng: random.Random) -> str:
        """One corpus line: a uniform-length chain and a noisy trace (no end token).

        With an off-target family, the chain is off-target with ``off_target_share``
        probability (v0 draws nothing extra, so its corpus is unchanged).
        """
        skills = SKILLS
        if self.off_target and rng.random() < self.off_target_share:
            skills = self.off_target
        chain = self.random_chain(rng, rng.randint(1, self.max_len), skills)
        question = self.format_question(chain)
        return f"{self.student_prompt(question)}{self.noisy_trace(rng, chain)}"


def v1_domain() -> ChainDomain:
    """SOAR-Tiny-v1's domain: v0's chains plus an off-target family of min, max and xor.

    The off-target writer is about as reliable as v0's (0.6-0.7 a step), so short off-target
    chains are solved sometimes but not always: what an intrinsic (learnability) reward pays
    for. The hard set uses ``SKILLS`` only: long RL on off-target chains moves it 3% as much
    as good stones (``soar-env stones --variant v1``), though it does sharpen the on-target
    steps, most of all ``+`` (``benchmarks/off_target_transfer.py``; README).
    """
    return ChainDomain(
        writer_accuracy={"+": 0.6, "-": 0.5, "*": 0.4, "<": 0.7, ">": 0.6, "^": 0.6},
        name="chain-v1", arguments={**ARGUMENTS, **OFF_TARGET_ARGUMENTS},
        off_target=OFF_TARGET_SKILLS, off_target_share=0.5, alphabet=V1_ALPHABET,
    )
