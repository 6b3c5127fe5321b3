"""The verifiers taskset ``soar-teacher``: ``vf-eval soar-teacher -m MODEL ...``.

verifiers imports a taskset by its id as a top-level module; this one re-exports
``soar_env.integrations.verifiers`` (read its docstring). Needs ``pip install 'soar-env[verifiers]'``.
"""

from soar_env.integrations.verifiers import SoarChatHarness, SoarTaskset, load_environment

__all__ = ["SoarTaskset", "SoarChatHarness", "load_environment"]
