"""Teacher algorithms (``soar_agents.teachers``): each implements ``Teacher``.

``protocol`` (the ``Teacher`` base), the LLM teachers (``soar_teacher``: SOAR's RLOO teacher
and the untrained base; ``intrinsic_teacher``), the non-LLM references (``random_teacher``,
``curriculum_teacher``, ``hard_only``, ``bandit_teacher``) and the bridges to other RL
libraries (``sb3_teacher``, ``trl_bridge``). ``soar_agents.make_teacher`` builds one by name.
"""

from .protocol import Teacher

__all__ = ["Teacher"]
