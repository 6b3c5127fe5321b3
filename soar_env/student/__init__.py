"""Student backends: sample completions, score log-probs, train, snapshot and restore."""

from soar_env.student.hf import HFStudent, Rollout

__all__ = ["HFStudent", "Rollout"]
