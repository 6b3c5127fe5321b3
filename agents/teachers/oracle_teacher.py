"""The domain's declared best curriculum, as a fixed teacher (the benchmark's upper reference).

A domain may declare its oracle through ``Domain.validity`` (``ValidityReferences.oracle``:
on SOAR-Tiny-v2, useful stones, each of the 12 keys in turn). This teacher proposes fresh
draws of it, so the benchmark can put the oracle beside the teachers under the same
evaluation; ``soar-env validate`` trains fresh students on the same references. On v0 and v1
the declared oracle is the curriculum teacher's medium chains (the measured best stones).
"""

from __future__ import annotations

import random
from typing import Any

from soar_env.problems import Problem

from .protocol import Teacher


class OracleTeacher(Teacher):
    name = "oracle"
    learns = False

    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        refs = getattr(self.domain, "validity", None)
        if refs is None or refs.oracle is None:
            raise ValueError(f"The oracle teacher expects a domain that declares an oracle "
                             f"(Domain.validity.oracle, e.g. SOAR-Tiny-v2), actual "
                             f"{type(self.domain).__name__} without one")
        self.oracle = refs.oracle
        self.rng = random.Random(seed)

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        return [self.oracle(self.dataset_size, self.rng.randrange(2**31)) for _ in range(count)]
