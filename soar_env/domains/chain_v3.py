"""SOAR-Tiny-v3's domain: SOAR-Tiny-v2's model, keys, traps and references, with a hard set
in which each problem needs one key, three times.

Why a new id (docs/embedded-domain.md, "SOAR-Tiny-v3"): v2 failed P1 because its oracle's
held-out pass@1 varied between fresh students (coefficient of variation 0.5-0.7), and
across four hard-set designs screened on student seeds that ``soar-env validate`` does not
use, that spread followed the level it was measured at, about 0.2 x (-ln pass@1)
(``benchmarks/hardset_screen.py``, ``benchmarks/oracle_spread.py``). A problem that needs
several distinct keys multiplies their skills and keeps the level low; one key three times
keeps the base student's success near q^3 (about 1e-4, so D_train alone still cannot
bootstrap) while a drilled key lifts it far higher. Registered before it ran; its validity
result (``docs/results/validity/SOAR-Tiny-v3.*``): the spread fell, but at q^3 trap questions
alone lift students as far as the untrained teacher's do, and P1 fails again.

- **hard set**: ``o k o k o k``: one key ``k`` three times, each after an ordinary step
  ``o``, from a seeded start digit (25,920 such chains exist);
- everything else is v2's: the shipped model and corpus, the untrained teacher, useful
  stones and traps, the oracle, partial oracles (keys outside coverage swapped for their
  traps), off-target, labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from soar_env.domains.chain_v2 import KEYS, ChainV2Domain
from soar_env.problems import Problem

HARD_KEY_REPEATS = 3
"""Each hard problem applies its one key this many times (v2's attempt 4: 2 keys, twice each)."""
HARD_LENGTH = 2 * HARD_KEY_REPEATS
"""An ordinary step before each key step."""
HARD_CHAINS = len(KEYS) * 10 * 6 ** HARD_KEY_REPEATS
"""How many distinct hard chains exist (keys x start digits x ordinary steps): 25,920."""


@dataclass(frozen=True)
class ChainV3Domain(ChainV2Domain):
    """v2's domain with v3's hard set (see the module docstring)."""

    name: str = "chain-v3"
    hard_lengths: range = range(HARD_LENGTH, HARD_LENGTH + 1)

    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        """``count`` distinct chains ``o k o k o k`` (one key, an ordinary step before each
        use; ``repeated_key_chains``)."""
        return self.repeated_key_chains(count, seed, HARD_KEY_REPEATS)


def v3_domain() -> ChainV3Domain:
    """SOAR-Tiny-v3's domain (its shipped model, v2's, is set by ``variant_domain``)."""
    return ChainV3Domain()
