"""Bridges to other toolkits, each an optional extra that ``import soar_env`` never loads.

- ``soar_env.integrations.verifiers``: a verifiers taskset whose reward is the env's grounded
  reward (``pip install 'soar-env[verifiers]'``; score any LLM behind an OpenAI-compatible
  endpoint with ``vf-eval soar-teacher``);
- ``soar_env.integrations.gem``: the env ids in GEM's registry, ``gem.make("soar:SOAR-Tiny-v1")``
  with string actions (``pip install 'soar-env[gem]'``);
- ``soar_env.integrations.prompts``: the chat prompt both give an LLM teacher, and a dataset
  written as the raw text the env reads.
"""
