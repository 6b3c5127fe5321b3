"""The teacher protocol: propose datasets from an observation, learn from a round's rewards.

Every teacher in this package implements it, and ``soar_agents.loop.train_teacher`` runs
any of them on any registered env. A round is the env's ``g`` steps: the teacher proposes
``g`` datasets of ``n`` problems at once (the SOAR teacher samples all ``g * n`` problems
together), the loop steps the env once per dataset, and the teacher learns from the ``g``
rewards and infos.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from soar_env.problems import Problem


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file: a crash leaves the previous file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class Teacher:
    """Base class of all teachers (subclass it, override ``propose`` and maybe ``learn``).

    Attributes:
        name: the teacher's registry name.
        env_overrides: env settings this teacher needs (an intrinsic teacher sets
            ``reward_mode``); ``make_teacher_env`` applies them.
    """

    name: str = "teacher"
    env_overrides: dict[str, Any] = {}

    def setup(self, env: Any, seed: int) -> None:
        """Called once after ``env.reset``: read what the teacher needs from the env.

        Args:
            env: the *unwrapped* ``SoarEnv`` (domain, config, hard set).
            seed: seeds the teacher's own randomness.
        """
        self.env = env
        self.domain = env.domain
        self.dataset_size = env.config.dataset_size
        self.group_size = env.config.group_size

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        """``count`` datasets of ``dataset_size`` problems for the next round."""
        raise NotImplementedError

    def learn(self, rewards: list[float], infos: list[dict]) -> dict[str, float]:
        """Update from the round's rewards (one per proposed dataset); returns statistics."""
        return {}

    def round_stats(self) -> dict[str, float]:
        """Statistics of the last ``propose`` (e.g. samples drawn), for the logs."""
        return {}

    # ---- state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The teacher's state; by default its ``random.Random`` ``rng`` when it has one."""
        rng = getattr(self, "rng", None)
        return {"rng": rng.getstate()} if isinstance(rng, random.Random) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "rng" in state:
            self.rng.setstate(state["rng"])

    def save(self, path: str | Path) -> None:
        """Write the teacher's state to ``path`` (atomically: a crash leaves the old file)."""
        save_atomic({"teacher": self.name, "state": self.state_dict()}, Path(path))

    def load(self, path: str | Path) -> None:
        """Read a state written by ``save``; a clear error when it is missing or corrupted."""
        import torch

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Expects a teacher checkpoint at {path}, actual none")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:
            raise RuntimeError(
                f"The teacher checkpoint {path} is corrupted ({type(err).__name__}); "
                "delete it and train again"
            ) from err
        if not isinstance(saved, dict) or saved.get("teacher") != self.name:
            raise ValueError(
                f"Expects a checkpoint of the {self.name!r} teacher, actual "
                f"{saved.get('teacher') if isinstance(saved, dict) else type(saved).__name__!r}"
            )
        self.load_state_dict(saved["state"])
