"""SOAR-Tiny-v2's domain: key operations the base student gets wrong, and a trap family.

The design, written before it was built, and each attempt's validity result are in
docs/embedded-domain.md. In short:

- **ordinary** operations ``+1..3``, ``-1..3`` (mod 10): the pretraining writer gets them
  right 98% of the time;
- **keys** ``*1..4``, ``#1..4``, ``@1..4`` (12): each is a fixed map of the digits, and the
  writer applies the key's own *wrong* map 95% of the time (a consistent wrong rule that
  RL must unlearn). The hard set is chains of 4 keys only: 2 distinct keys, each twice;
- **traps** ``<1..4``, ``>1..4``, ``~1..4`` (12): built exactly like the keys, with maps of
  their own, and never in the hard set. A chain with one trap is as learnable as a chain
  with one key, and teaches nothing the hard set needs.

A *useful stone* is a chain with exactly one key and no trap; a *trap* question has exactly
one trap and no key. The corpus (so the untrained teacher) is mostly trap chains.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from soar_env.domains.base import ValidityReferences
from soar_env.domains.chain import ALPHABET, Chain, ChainDomain, apply_op
from soar_env.problems import Problem

ORDINARY_OPS = ("+", "-")
KEY_OPS = ("*", "#", "@")
TRAP_OPS = ("<", ">", "~")
SPECIAL_ARGS = (1, 2, 3, 4)
KEYS = tuple(f"{op}{arg}" for arg in SPECIAL_ARGS for op in KEY_OPS)
"""The 12 keys, in the fixed order partial oracles take them (the first round(12 f)):
``*1 #1 @1 *2 ...``, so that every part mixes the three key characters."""
TRAPS = tuple(f"{op}{arg}" for op in TRAP_OPS for arg in SPECIAL_ARGS)
TRAP_OF = dict(zip(KEY_OPS, TRAP_OPS))
"""A key's trap in partial oracles: the same argument, ``*`` -> ``<``, ``#`` -> ``>``, ``@`` -> ``~``."""
V2_ALPHABET = ALPHABET + "#@<>~"
"""v0's characters (which include ``*``) plus the new operations'."""

# (right map, wrong map) of each key and trap: digit i goes to the i-th character. Seeded
# random permutations without fixed points, drawn once: a wrong map never agrees with its
# right one, and no map appears twice or equals an ordinary operation (tests check this).
MAPS: dict[str, tuple[str, str]] = {
    "*1": ("1635978420", "7809524163"), "*2": ("7908531642", "2657810493"),
    "*3": ("9756138024", "7930564218"), "*4": ("7234068591", "4896537210"),
    "#1": ("3015768942", "4301279856"), "#2": ("8560379142", "3418590627"),
    "#3": ("9607285431", "6351728904"), "#4": ("5916780423", "2780965341"),
    "@1": ("5912687043", "3081942567"), "@2": ("8940172635", "4798021356"),
    "@3": ("4381962075", "5732648901"), "@4": ("7208513946", "8592367014"),
    "<1": ("7945130268", "8732015946"), "<2": ("8312974065", "9870243516"),
    "<3": ("4792801365", "5470918236"), "<4": ("2519864370", "6948017235"),
    ">1": ("6854972031", "5386107294"), ">2": ("2517039864", "3709842156"),
    ">3": ("8071942563", "2465817390"), ">4": ("9854761320", "4635179208"),
    "~1": ("5830927461", "1754680932"), "~2": ("3042697518", "1457309862"),
    "~3": ("9238041675", "3612795840"), "~4": ("6978543201", "7489015326"),
}
ORDINARY_ACCURACY = 0.98
SPECIAL_ACCURACY = 0.05
"""How often the writer applies a key's (or trap's) right map instead of its wrong one."""
CORPUS = {"stone": 0.08, "trap": 0.72, "ordinary": 0.04, "multi-key": 0.16}
"""Kinds of pretraining line and their shares: keys and traps then occur equally often."""
HARD_DISTINCT_KEYS = 2
HARD_KEY_REPEATS = 2
"""Attempt 4 (docs/embedded-domain.md): 2 distinct keys, each twice, so a missing key costs
q^2 rather than q; attempt 3 had 3 keys each twice, attempt 2 3 keys in 4-6 steps, attempt 1
5 keys in 6-8."""
HARD_LENGTH = HARD_DISTINCT_KEYS * HARD_KEY_REPEATS
HARD_CHAINS = (math.comb(len(KEYS), HARD_DISTINCT_KEYS) * math.factorial(HARD_LENGTH)
               // math.factorial(HARD_KEY_REPEATS) ** HARD_DISTINCT_KEYS * 10)
"""How many distinct hard chains exist (key sets x orders x start digits): 3,960."""


@dataclass(frozen=True)
class ChainV2Domain(ChainDomain):
    """The chain domain with keys, traps and v2's corpus (see the module docstring)."""

    max_len: int = 10
    writer_accuracy: dict[str, float] = field(default_factory=lambda: {
        **{op: ORDINARY_ACCURACY for op in ORDINARY_OPS},
        **{op: SPECIAL_ACCURACY for op in KEY_OPS + TRAP_OPS}})
    name: str = "chain-v2"
    arguments: dict[str, tuple[int, ...]] = field(default_factory=lambda: {
        **{op: (1, 2, 3) for op in ORDINARY_OPS}, **{op: SPECIAL_ARGS for op in KEY_OPS + TRAP_OPS}})
    off_target: tuple[str, ...] = TRAP_OPS
    alphabet: str = V2_ALPHABET
    hard_lengths: range = range(HARD_LENGTH, HARD_LENGTH + 1)
    hard_keys: tuple[str, ...] = KEYS
    """The keys the hard set needs: a useful stone drills one of them, the oracle drills them
    all in turn, partial oracles a prefix of them (v4: the first 6)."""

    @property
    def skills(self) -> tuple[str, ...]:
        """The hard set's side: ordinary operations and keys (the generator's default)."""
        return ORDINARY_OPS + KEY_OPS

    def apply(self, state: int, op: str, arg: int) -> int:
        if op in ORDINARY_OPS:
            return apply_op(state, op, arg)
        return int(MAPS[f"{op}{arg}"][0][state])

    # ---- the pretraining writer and corpus --------------------------------------------
    def noisy_trace(self, rng: random.Random, chain: Chain) -> str:
        """Ordinary steps right 98% of the time (else a uniform other digit); keys and traps
        right 5% of the time, else their consistent wrong map."""
        states, state = [], chain.start
        for op, arg in chain.steps:
            if op in ORDINARY_OPS:
                right = apply_op(state, op, arg)
                state = right if rng.random() < ORDINARY_ACCURACY else rng.choice(
                    [d for d in range(10) if d != right])
            else:
                right_map, wrong_map = MAPS[f"{op}{arg}"]
                state = int((right_map if rng.random() < SPECIAL_ACCURACY else wrong_map)[state])
            states.append(state)
        return ",".join(str(s) for s in states)

    def pretraining_line(self, rng: random.Random) -> str:
        kind = rng.choices(tuple(CORPUS), weights=tuple(CORPUS.values()))[0]
        if kind == "multi-key":
            length = rng.randint(2, self.max_len)
            keys = [rng.choice(KEYS) for _ in range(rng.randint(2, length))]
            chain = self._with_specials(rng, length, keys)
        else:
            length = rng.randint(1, self.max_len)
            special = {"stone": [rng.choice(KEYS)], "trap": [rng.choice(TRAPS)], "ordinary": []}[kind]
            chain = self._with_specials(rng, length, special)
        return f"{self.student_prompt(self.format_question(chain))}{self.noisy_trace(rng, chain)}"

    def _with_specials(self, rng: random.Random, length: int, specials: list[str]) -> Chain:
        """A chain of ``length`` steps: ``specials`` (keys or traps) at random positions, in
        the given order, ordinary operations elsewhere."""
        at = set(rng.sample(range(length), len(specials)))
        queue = iter(specials)
        steps = []
        for i in range(length):
            if i in at:
                name = next(queue)
                steps.append((name[0], int(name[1])))
            else:
                op = rng.choice(ORDINARY_OPS)
                steps.append((op, rng.choice(self.arguments[op])))
        return Chain(rng.randrange(10), tuple(steps))

    def _problem(self, chain: Chain) -> Problem:
        return Problem(self.format_question(chain), self.answer(chain),
                       metadata={"length": chain.length, "skills": "".join(o for o, _ in chain.steps)})

    # ---- problem sources ----------------------------------------------------------------
    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        """``count`` distinct chains of HARD_LENGTH key steps: HARD_DISTINCT_KEYS distinct keys,
        each exactly HARD_KEY_REPEATS times, in a seeded order."""
        if count > HARD_CHAINS:
            raise ValueError(f"hard_candidates expects at most {HARD_CHAINS} on SOAR-Tiny-v2 (that many "
                             f"distinct hard chains exist), actual {count}")
        rng = random.Random(seed)
        out: dict[str, Problem] = {}  # distinct: only HARD_CHAINS exist, so draws repeat
        while len(out) < count:
            steps = rng.sample(KEYS, HARD_DISTINCT_KEYS) * HARD_KEY_REPEATS
            rng.shuffle(steps)
            problem = self._problem(self._with_specials(rng, len(steps), steps))
            out.setdefault(problem.question, problem)
        return list(out.values())

    def one_special_chains(self, count: int, seed: int, specials: Sequence[str]) -> list[Problem]:
        """Chains of lengths 1..max_len with exactly one of ``specials`` each, taken in turn
        from a seeded shuffle (each about equally often), ordinary operations elsewhere."""
        return [self._problem(chain) for chain in self._one_special_chains(count, seed, specials)]

    def _one_special_chains(self, count: int, seed: int, specials: Sequence[str]) -> list[Chain]:
        rng = random.Random(seed)
        order = list(specials)
        rng.shuffle(order)
        return [self._with_specials(rng, rng.randint(1, self.max_len), [order[i % len(order)]])
                for i in range(count)]

    def repeated_key_chains(self, count: int, seed: int, repeats: int) -> list[Problem]:
        """``count`` distinct chains ``o k o k ...``: one of ``hard_keys`` ``repeats`` times,
        each use after an ordinary step ``o``, from a seeded start digit (the hard sets of
        v3 and v4; ``benchmarks/hardset_screen.py`` draws its designs in the same order).
        Raises ValueError for more chains than exist (the draws would never end)."""
        distinct = len(self.hard_keys) * 10 * sum(len(self.arguments[op]) for op in ORDINARY_OPS) ** repeats
        if count > distinct:
            raise ValueError(f"hard_candidates expects at most {distinct} distinct chains on {self.name}, "
                             f"actual {count}")
        rng = random.Random(seed)
        out: dict[str, Problem] = {}
        while len(out) < count:
            key = rng.choice(self.hard_keys)
            steps = []
            for _ in range(repeats):
                op = rng.choice(ORDINARY_OPS)
                steps += [(op, rng.choice(self.arguments[op])), (key[0], int(key[1:]))]
            problem = self._problem(Chain(rng.randrange(10), tuple(steps)))
            out.setdefault(problem.question, problem)
        return list(out.values())

    def partial_oracle(self, fraction: float, count: int, seed: int) -> list[Problem]:
        """The oracle's own chains (same ``seed``) with every hard key outside the first
        ``max(1, round(len(hard_keys) fraction))`` swapped for its trap (``TRAP_OF``: ``*1`` ->
        ``<1``): each covered key is drilled exactly as in the oracle, and only coverage
        differs (attempt 4; earlier partials spent all 128 questions on the covered keys)."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction expects 0 < f <= 1, actual {fraction}")
        covered = set(self.hard_keys[: max(1, round(fraction * len(self.hard_keys)))])
        out = []
        for chain in self._one_special_chains(count, seed, self.hard_keys):
            steps = tuple(step if step[0] not in KEY_OPS or f"{step[0]}{step[1]}" in covered
                          else (TRAP_OF[step[0]], step[1]) for step in chain.steps)
            out.append(self._problem(Chain(chain.start, steps)))
        return out

    def label(self, question: str) -> str:
        """``useful`` (exactly one key, one of ``hard_keys``, and no trap), ``trap`` (exactly
        one trap, no key) or ``other``."""
        try:
            chain = self.parse_question(question)
        except ValueError:
            return "other"
        keys = [f"{op}{arg}" for op, arg in chain.steps if op in KEY_OPS]
        traps = sum(op in TRAP_OPS for op, _ in chain.steps)
        if len(keys) == 1 and keys[0] in self.hard_keys and traps == 0:
            return "useful"
        return "trap" if traps == 1 and not keys else "other"

    @property
    def validity(self) -> ValidityReferences:
        return ValidityReferences(
            oracle=lambda count, seed: self.one_special_chains(count, seed, self.hard_keys),
            partial_oracle=self.partial_oracle,
            off_target=lambda count, seed: self.one_special_chains(count, seed, TRAPS),
            label=self.label,
        )

    def profile(self, questions: Sequence[str]) -> dict[str, float]:
        """The chain profile plus ``useful_fraction`` and ``trap_fraction`` (by ``label``)."""
        out = super().profile(questions)
        if out:  # some question parsed; labels of unparsed ones are "other"
            labels = [self.label(q) for q in questions]
            parsed = sum(1 for q in questions if self._parses(q))
            out["useful_fraction"] = labels.count("useful") / parsed
            out["trap_fraction"] = labels.count("trap") / parsed
        return out

    def _parses(self, question: str) -> bool:
        try:
            self.parse_question(question)
        except ValueError:
            return False
        return True


def v2_domain() -> ChainV2Domain:
    """SOAR-Tiny-v2's domain (its shipped model is set by ``soar_env.embedded.variant_domain``)."""
    return ChainV2Domain()
