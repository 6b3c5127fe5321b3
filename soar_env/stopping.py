"""When a fresh student of the evaluation protocol stops training: the paper's rule."""

from __future__ import annotations


class SlopeStopper:
    """The paper's stopping rule, made robust to per-step noise.

    The paper stops "when the smoothed training-reward slope falls below 15% of its
    maximum". How it smooths is not said; here:

    - the reward is smoothed by a moving average over the last ``window`` steps;
    - the slope at step t is ``smooth[t] - smooth[t - window]``: two disjoint windows, so
      one noisy step moves it by at most ``1 / window`` of its size;
    - no decision before ``min_steps`` (default ``2 * window``, the first full slope);
    - it stops once the slope has stayed below ``fraction`` times the largest slope seen
      for ``patience`` consecutive steps (default ``window // 2``).

    On a plateau it therefore stops within ``2 * window + patience`` steps of the plateau's
    start. ``reset`` starts afresh (the evaluation calls it at the curriculum -> D_train
    switch, where the training data and so the reward scale change).
    """

    def __init__(self, window: int = 100, fraction: float = 0.15, min_steps: int | None = None,
                 patience: int | None = None):
        if window < 1 or not 0 < fraction < 1:
            raise ValueError(f"Expects window >= 1 and 0 < fraction < 1, actual {window}, {fraction}")
        self.window, self.fraction = window, fraction
        self.min_steps = max(2 * window, min_steps or 0)
        self.patience = patience if patience is not None else max(1, window // 2)
        self.reset()

    def reset(self) -> None:
        self.rewards: list[float] = []
        self._sums = [0.0]  # running sums: each update is O(1), even over 1500 steps
        self.best_slope = 0.0
        self.below = 0

    def slope(self) -> float | None:
        """The current smoothed slope, or None before two full windows."""
        w, s = self.window, self._sums
        if len(self.rewards) < 2 * w:
            return None
        return ((s[-1] - s[-1 - w]) - (s[-1 - w] - s[-1 - 2 * w])) / w

    def update(self, reward: float) -> bool:
        """Record one step's training reward; True when training should stop."""
        self.rewards.append(float(reward))
        self._sums.append(self._sums[-1] + float(reward))
        slope = self.slope()
        if slope is None:
            return False
        self.best_slope = max(self.best_slope, slope)
        flat = self.best_slope > 0 and slope < self.fraction * self.best_slope
        self.below = self.below + 1 if flat and len(self.rewards) >= self.min_steps else 0
        return self.below >= self.patience
