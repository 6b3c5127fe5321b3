"""The teacher protocol: propose datasets from an observation, learn from a round's rewards.

Every teacher in this package implements it, and ``soar_agents.train_teacher`` runs
any of them on any registered env. A round is the env's ``g`` steps: the teacher proposes
``g`` datasets of ``n`` problems at once (the SOAR teacher samples all ``g * n`` problems
together), the loop steps the env once per dataset, and the teacher learns from the ``g``
rewards and infos.
"""

from __future__ import annotations

import random
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from soar_env.context import TeacherContext
from soar_env.problems import Problem


class Teacher:
    """Base class of all teachers (subclass it, override ``propose`` and maybe ``learn``).

    Attributes:
        name: the teacher's registry name.
        env_overrides: env settings this teacher needs (an intrinsic teacher sets
            ``reward_mode``); ``make_teacher_env`` applies them.
        learns: False for a fixed teacher (its proposals never depend on rewards): the
            bench then evaluates it without spending training rounds on it.
    """

    name: str = "teacher"
    env_overrides: dict[str, Any] = {}
    learns: bool = True

    def setup(self, env: Any, seed: int) -> None:
        """Called once after ``env.reset``: read what the teacher needs.

        Args:
            env: a ``soar_env.context.TeacherContext`` (what ``train_teacher`` passes), or
                the unwrapped env, whose ``teacher_context()`` is then taken.
            seed: seeds the teacher's own randomness.

        Sets ``self.context`` and, from it, ``self.domain``, ``self.dataset_size`` and
        ``self.group_size``.
        """
        context = env if isinstance(env, TeacherContext) else env.teacher_context()
        self.context = context
        self.domain = context.domain
        self.dataset_size = context.dataset_size
        self.group_size = context.group_size

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

    def config_record(self) -> dict[str, Any]:
        """The teacher's own settings, as saved with its state: a state saved under other
        settings is refused rather than silently mixed with these."""
        config = getattr(self, "config", None)
        from ..app.checkpoints import jsonable

        return jsonable(asdict(config)) if is_dataclass(config) else {}

    def save(self, path: str | Path) -> None:
        """Write the teacher's state to ``path`` (safetensors + JSON, atomically)."""
        saved = {"teacher": self.name, "config": self.config_record(), "state": self.state_dict()}
        from ..app.checkpoints import save_state

        save_state(Path(path), saved)

    def export_pretrained(self, folder: str | Path) -> bool:
        """Save the teacher's model as a Hugging Face folder when it has one (LLM teachers);
        returns whether it did. Other teachers have no model: False."""
        return False

    def load(self, path: str | Path) -> None:
        """Read a state written by ``save``; one clear error when it is missing, damaged,
        of another teacher or of other settings (nothing in it is ever executed)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Expects a teacher checkpoint at {path}, actual none")
        from ..app.checkpoints import load_state

        saved = load_state(path)
        self.load_saved(saved, path)

    def load_saved(self, saved: dict[str, Any], path: Path) -> None:
        """Restore ``{"teacher", "config", "state"}`` read from ``path`` (named in errors)."""
        from ..app.checkpoints import RunFolderError, differences

        found = saved.get("teacher")
        if found != self.name:
            expected = f"a checkpoint of the {self.name!r} teacher"
            raise RunFolderError(f"{path}: expects {expected}, actual {found!r}")
        diff = differences(saved.get("config"), self.config_record())
        if diff:
            raise RunFolderError(f"{path} was saved under other teacher settings ({'; '.join(diff)})")
        try:
            self.load_state_dict(saved["state"])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
            raise RunFolderError(
                f"{path} does not hold a complete {self.name!r} teacher state ({type(err).__name__}: {err})"
            ) from err
