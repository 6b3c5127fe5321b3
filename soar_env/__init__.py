"""soar-env: SOAR ("Teaching Models to Teach Themselves", arXiv 2601.18778) as a Gymnasium env.

``import soar_env`` registers the environment ids and stays light: torch and
transformers load only when an environment or a student is built.

    >>> import gymnasium as gym
    >>> import soar_env
    >>> "SOAR-Tiny-v0" in gym.registry
    True
"""

import warnings

from gymnasium.envs.registration import register

__version__ = "0.6.0"

DEFAULT_ENV = "SOAR-Tiny-v4"
"""The embedded default of the CLI, the bench and the examples: the one tiny id that passes
``soar-env validate`` (P1-P7, docs/results/validity/SOAR-Tiny-v4.json), so a benchmark on it
can tell a good curriculum from the untrained teacher's. v0-v3 stay registered as they were."""

# The tiny versions are different domains side by side, not one domain's revisions, so
# gymnasium's "out of date, consider upgrading" would mislead.
warnings.filterwarnings("ignore", message=r".*The environment SOAR-Tiny-v[0123] is out of date",
                        category=DeprecationWarning)

# One flat list with string entry points, as in gymnasium/envs/__init__.py: imports stay lazy.
register(id="SOAR-Tiny-v0", entry_point="soar_env.env:SoarEnv", kwargs={"preset": "tiny"})
# v1: the same machinery plus off-target chains (learnable, never in the hard set).
register(id="SOAR-Tiny-v1", entry_point="soar_env.env:SoarEnv", kwargs={"preset": "tiny_v1"})
# v2: keys the base student gets wrong and an equally learnable trap family (docs/embedded-domain.md).
register(id="SOAR-Tiny-v2", entry_point="soar_env.env:SoarEnv", kwargs={"preset": "tiny_v2"})
# v3: v2's model and references, hard problems that need one key three times (a candidate id).
register(id="SOAR-Tiny-v3", entry_point="soar_env.env:SoarEnv", kwargs={"preset": "tiny_v3"})
# v4: v2's model and traps, hard problems on 6 of the 12 keys, one key four times (a candidate id).
register(id="SOAR-Tiny-v4", entry_point="soar_env.env:SoarEnv", kwargs={"preset": "tiny_v4"})
register(id="SOAR-MATH-v0", entry_point="soar_env.env:SoarEnv", kwargs={"preset": "paper"})
# HARP differs from MATH in its evaluation: the paper trains fresh students in mixed mode.
register(id="SOAR-HARP-v0", entry_point="soar_env.env:SoarEnv",
         kwargs={"preset": "paper", "eval_mode": "mixed"})
register(id="SOAR-CHAMP-v0", entry_point="soar_env.env:SoarEnv",
         kwargs={"preset": "paper", "dataset": "champ"})
