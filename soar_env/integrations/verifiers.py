"""Score any LLM as a SOAR teacher with verifiers (``pip install 'soar-env[verifiers]'``).

A single-turn verifiers environment (verifiers >= 0.4, its ``verifiers.v1`` API): each task's
prompt is the env's teacher prompt, asking for one dataset (``chat_teacher_prompt``); the
model's reply, raw teacher text, is one env step, and the task's reward ``grounded_reward`` is
what the env pays for it: the base student trains on the reply's problems and the reward is
its accuracy gain on the round's hard reward questions, with promotion off (``tau=inf``), so
every reply is scored against the same base student. Replies are scored one at a time, in
the order they finish, on one env per process; a reply with no valid problem pays
``floor_reward``, and each trace's ``metrics`` say how many problems were valid.

In Python, offline (no endpoint), as the tests do:

    import asyncio
    from soar_env.integrations.verifiers import load_environment, score_reply

    env = load_environment("SOAR-Tiny-v1", settings={"dataset_size": 8, "inner_steps": 2})
    task = next(iter(env.taskset))
    print(asyncio.run(score_reply(task, "<question>...</question><answer>\\boxed{...}</answer>")))

Against any OpenAI-compatible endpoint, with verifiers' own command (the taskset id
``soar-teacher`` is the top-level module ``soar_teacher``, which re-exports this one; verifiers
imports tasksets by id):

    vf-eval soar-teacher -m MODEL --client.base-url http://localhost:8000/v1 \\
        --client.api-key-var OPENAI_API_KEY --env.agent.runtime.type subprocess -n 8 --no-push \\
        --env.taskset.task.soar-id SOAR-Tiny-v1

(``subprocess`` runs verifiers' chat program on this machine; its default runtime, ``prime``, is
a hosted sandbox.) One reply costs one env step: docs/ecosystem.md has the figures.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Iterator
from typing import Any

import verifiers.v1 as vf
from verifiers.v1.graph import MessageNode
from verifiers.v1.harnesses.null.harness import NullHarness
from verifiers.v1.trace import AgentInfo

import soar_env
from soar_env.integrations.prompts import chat_teacher_prompt

PLUGIN_ID = "soar-teacher"
"""The taskset id verifiers imports (module ``soar_teacher``)."""


class SoarTaskConfig(vf.TaskConfig):
    """The env a reply is scored on (``--env.taskset.task.*``)."""

    soar_id: str = soar_env.DEFAULT_ENV
    """A registered SOAR id."""
    settings: dict[str, Any] = {}
    """Env settings (``SoarConfig`` fields, e.g. ``{"dataset_size": 8}``); promotion is off."""
    seed: int = 0
    """Seed of the env's episode (its reward questions and inner-run seeds)."""


class SoarTasksetConfig(vf.TasksetConfig):
    """How many prompts a run asks (``--env.taskset.*``)."""

    task: SoarTaskConfig = SoarTaskConfig()
    num_tasks: int = 8
    """Tasks (each one prompt, one dataset to write); all share the prompt."""
    prompt: str | None = None
    """Replaces ``chat_teacher_prompt`` (e.g. with more instructions for a chat model)."""


class SoarTask(vf.Task[vf.TaskData, vf.State, SoarTaskConfig]):
    """One request for a dataset; its reward is the env's grounded reward for the reply."""

    @vf.reward
    async def grounded_reward(self, trace: vf.Trace) -> float:
        scorer = scorer_for(self.config)
        reward, info = await asyncio.to_thread(scorer.score, trace.last_reply)
        trace.record_metrics({"valid_problems": info["valid_problems"],
                              "invalid_problems": info["invalid_problems"]})
        trace.info["parse_errors"] = list(info.get("parse_errors", []))
        return reward


class SoarTaskset(vf.Taskset[SoarTask, SoarTasksetConfig]):
    """``num_tasks`` copies of the env's chat teacher prompt."""

    def load(self) -> Iterator[SoarTask]:
        task_config = self.config.task
        prompt = self.config.prompt or default_prompt(task_config)
        for i in range(self.config.num_tasks):
            data = vf.TaskData(id=f"{task_config.soar_id}/{i}", name=f"{task_config.soar_id} dataset {i}",
                               prompt=prompt)
            yield SoarTask(data, task_config)


class SoarChatHarness(NullHarness):
    """verifiers' tool-less chat harness: the model replies once, and nothing is executed."""


def default_prompt(config: SoarTaskConfig) -> str:
    """``chat_teacher_prompt`` of the configured env, from its config alone (no model loads)."""
    import gymnasium as gym

    from soar_env.config import PRESETS
    from soar_env.domains.base import make_domain

    if config.soar_id not in gym.registry:
        raise ValueError(f"soar_id expects a registered SOAR id, actual {config.soar_id!r}")
    kwargs = dict(gym.spec(config.soar_id).kwargs)
    preset = kwargs.pop("preset", "tiny")
    env_config = PRESETS[preset](**{**kwargs, **config.settings})
    domain = make_domain(env_config.domain, env_config)
    return chat_teacher_prompt(domain, env_config.dataset_size)


class Scorer:
    """One env with promotion off; replies are scored one at a time (a lock), each one step."""

    def __init__(self, config: SoarTaskConfig):
        import gymnasium as gym

        self.seed = config.seed
        self.env = gym.make(config.soar_id, **{**config.settings, "tau": math.inf})
        self.env.reset(seed=config.seed)
        self.lock = threading.Lock()

    def score(self, reply: str) -> tuple[float, dict[str, Any]]:
        with self.lock:
            _, reward, _, truncated, info = self.env.step(reply)
            if truncated:  # the episode's rounds are spent: go on with a new one
                self.env.reset()
        return float(reward), info


_SCORERS: dict[str, Scorer] = {}
_SCORERS_LOCK = threading.Lock()


def scorer_for(config: SoarTaskConfig) -> Scorer:
    """The process's scorer for this env (built once: building loads the student, the hard set)."""
    key = json.dumps([config.soar_id, config.settings, config.seed], sort_keys=True, default=str)
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            _SCORERS[key] = Scorer(config)
        return _SCORERS[key]


def load_environment(env_id: str = soar_env.DEFAULT_ENV, settings: dict[str, Any] | None = None,
                     seed: int = 0, num_tasks: int = 8, prompt: str | None = None) -> vf.Env:
    """The single-turn verifiers environment of ``env_id`` (see the module docstring).

    Args:
        env_id: a registered SOAR id.
        settings: env settings (``SoarConfig`` fields); promotion is always off.
        seed: the scoring env's seed.
        num_tasks: prompts in the taskset.
        prompt: replaces the default chat teacher prompt.
    """
    task = SoarTaskConfig(soar_id=env_id, settings=dict(settings or {}), seed=seed)
    taskset = SoarTasksetConfig(id=PLUGIN_ID, task=task, num_tasks=num_tasks, prompt=prompt)
    return vf.load_environment(vf.SingleAgentEnvConfig(taskset=taskset))


def reply_trace(task: SoarTask, reply: str) -> vf.Trace:
    """A finished single-turn trace: the task's prompt, then ``reply`` as the model's turn."""
    nodes = [MessageNode(message=vf.UserMessage(content=task.data.prompt_text)),
             MessageNode(parent=0, message=vf.AssistantMessage(content=reply), sampled=True)]
    return vf.Trace(task=vf.TraceTask(type=type(task).__name__, data=task.data),
                    agent=AgentInfo(config=vf.AgentConfig()), nodes=nodes, is_completed=True, ok=True)


async def score_reply(task: SoarTask, reply: str) -> float:
    """Score ``reply`` through the task's own scoring (``Task.score``): its weighted reward."""
    trace = reply_trace(task, reply)
    await task.score(trace)
    return trace.reward
