"""The paper's promotion rule and the promoted-question bank.

At the end of each round (outer step) the round's mean reward joins a moving average over
the last ``window`` rounds. When it exceeds ``tau`` the baseline student becomes the
median-reward student trained on the round's best dataset, and that dataset joins the bank.
The paper does not say whether the average restarts after a promotion; ``reset_after``
chooses (default True: rewards after a promotion are measured against a new baseline, so
older rounds no longer say anything about it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from soar_env.problems import Problem


@dataclass
class PromotionRule:
    tau: float = 0.01
    window: int = 3
    reset_after: bool = True
    history: deque = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"ma_window expects >= 1, actual {self.window}")
        self.history = deque(maxlen=self.window)

    @property
    def moving_average(self) -> float:
        return sum(self.history) / len(self.history) if self.history else 0.0

    def end_round(self, round_mean: float) -> bool:
        """Record a round's mean reward; True when the baseline should be promoted.

        The average is taken over a full window only, as in the paper's 'last 3 steps'.
        """
        self.history.append(round_mean)
        promote = len(self.history) == self.window and self.moving_average > self.tau
        if promote and self.reset_after:
            self.history.clear()
        return promote

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = deque(state["history"], maxlen=self.window)


@dataclass
class PromotedBank:
    """Datasets promoted so far (the paper's PQ), with the round each came from."""

    problems: list[Problem] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)

    def add(self, dataset: list[Problem], round_index: int) -> None:
        self.problems.extend(dataset)
        self.rounds.extend([round_index] * len(dataset))

    def __len__(self) -> int:
        return len(self.problems)
