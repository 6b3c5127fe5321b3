"""Teacher agents for soar-env, installed as ``soar_agents``.

Agents import ``soar_env``; ``soar_env`` never imports agents. The teachers (SOAR
meta-learner, intrinsic-reward teachers, baselines, SB3) land with the agents issue.
"""
