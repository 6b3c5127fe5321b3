"""SOAR-Tiny-v4's domain: SOAR-Tiny-v2's model, corpus and traps, with a hard set that needs
six of the twelve keys, one key four times per problem.

Why (docs/embedded-domain.md, "SOAR-Tiny-v4"): on v2 the oracle's held-out pass@1 spread
too widely between fresh students for P1 at 3 seeds, a spread that followed the level
(about 0.2 x (-ln pass@1)); v3 raised the level with q^3 problems, but at q^3 the lift that
any special-operation training gives every key (traps included) opened D_train to every
curriculum. v4 keeps q^4 problems (the level at which traps stayed harmless on v2) and
raises the oracle's level another way: the hard set uses 6 keys, so the oracle drills each
about twice as often as on v2.

- **hard set**: ``o k o k o k o k``: one of the first 6 keys of ``KEYS`` (``HARD_KEYS``)
  four times, each use after an ordinary step;
- **useful stone**: a chain with exactly one hard key and no trap; a chain with one of the
  other 6 keys is "other" (learnable, and needed by no hard problem);
- **oracle**: one-key chains over the 6 hard keys, in turn; **partial oracles**: the
  oracle's own chains with the hard keys outside the first ``max(1, round(6 f))`` swapped
  for their traps (25%: 2 keys, 50%: 3, 75%: 4 of 6);
- everything else is v2's (model, corpus, untrained teacher, traps, off-target).
"""

from __future__ import annotations

from dataclasses import dataclass

from soar_env.domains.chain_v2 import KEYS, ChainV2Domain
from soar_env.problems import Problem

HARD_KEYS = KEYS[:6]
"""The keys the hard set needs: ``*1 #1 @1 *2 #2 @2`` (the first 6 of v2's fixed order)."""
HARD_KEY_REPEATS = 4
HARD_LENGTH = 2 * HARD_KEY_REPEATS
HARD_CHAINS = len(HARD_KEYS) * 10 * 6 ** HARD_KEY_REPEATS
"""How many distinct hard chains exist (keys x start digits x ordinary steps): 77,760."""


@dataclass(frozen=True)
class ChainV4Domain(ChainV2Domain):
    """v2's domain with v4's hard set; its references and labels follow ``hard_keys``."""

    name: str = "chain-v4"
    hard_lengths: range = range(HARD_LENGTH, HARD_LENGTH + 1)
    hard_keys: tuple[str, ...] = HARD_KEYS

    def hard_candidates(self, count: int, seed: int) -> list[Problem]:
        """``count`` distinct chains ``o k o k o k o k`` with ``k`` one of ``HARD_KEYS``
        (``repeated_key_chains``)."""
        return self.repeated_key_chains(count, seed, HARD_KEY_REPEATS)


def v4_domain() -> ChainV4Domain:
    """SOAR-Tiny-v4's domain (its shipped model, v2's, is set by ``variant_domain``)."""
    return ChainV4Domain()
