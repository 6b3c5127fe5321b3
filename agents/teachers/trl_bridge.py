"""Train the LLM teacher with TRL's RLOO or GRPO trainer (for TRL's vLLM machinery on GPU).

One TRL step is one SOAR round. Every training prompt is the env's teacher prompt, with
``num_generations = g * n`` completions: ``DatasetReward`` splits them, in order, into ``g``
datasets of ``n``, steps the env once per dataset and gives every completion its dataset's
reward. TRL's group baseline then does the rest: with RLOO the advantage of a completion is
its reward minus the mean of the other ``g*n - 1`` completions (close to the paper's
``R_k - mean(R_others)``); GRPO also divides by the group's spread.

Malformed completions get the round's lowest reward minus ``malformed_penalty`` times the
spread of the dataset rewards (the tiny preset's rule; 0 = no extra push down). A dataset
with fewer than ``n`` valid problems is filled up by repeating its valid ones; one with none
is stepped as all-invalid and gets the env's floor reward.

    from soar_agents.teachers.trl_bridge import train_with_trl
    model, history = train_with_trl("SOAR-Tiny-v0", trainer="rloo", rounds=20, output_dir="runs/trl")
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np

from soar_env.config import domain_preset
from soar_env.problems import Problem

from .soar_teacher import problems_from_texts


class DatasetReward:
    """A TRL reward function that scores a round of teacher completions through the env.

    Args:
        env: the (wrapped or unwrapped) env, already reset.
        malformed_penalty: see the module docstring.
        solver: let the domain answer the teacher's questions (chain domain default).
        scale: multiplies the rewards handed to TRL. GRPO divides by the group's spread
            plus 1e-4, which flattens SOAR-Tiny-v0's 1e-6-scale rewards; ``train_with_trl``
            passes 1e6 there. ``history`` keeps the unscaled rewards.
    """

    __name__ = "soar_dataset_reward"  # TRL names the logged reward after it

    def __init__(
        self, env: gym.Env, malformed_penalty: float = 1.0, solver: bool | None = None, scale: float = 1.0
    ):
        self.env = env
        self.scale = scale
        self.unwrapped = env.unwrapped
        self.domain = self.unwrapped.domain
        self.malformed_penalty = malformed_penalty
        self.solver = self.domain.solver is not None if solver is None else solver
        self.history: list[dict[str, Any]] = []

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list[float]:
        cfg = self.unwrapped.config
        g, n = cfg.group_size, cfg.dataset_size
        if len(completions) % (g * n):
            raise ValueError(
                f"Expects a multiple of g*n = {g * n} completions per call (set num_generations and the "
                f"batch size to g*n), actual {len(completions)}"
            )
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        rewards: list[float] = []
        for start in range(0, len(texts), g * n):
            rewards += self._round(texts[start : start + g * n], g, n)
        return rewards

    def _round(self, texts: list[str], g: int, n: int) -> list[float]:
        items = problems_from_texts(self.domain, texts, self.solver)
        dataset_rewards, infos = [], []
        for k in range(g):
            valid = [p for p in items[k * n : (k + 1) * n] if isinstance(p, Problem)]
            action = [valid[i % len(valid)] for i in range(n)] if valid else [("", "")] * n
            _, reward, _, _, info = self.env.step(action)
            dataset_rewards.append(reward)
            infos.append(info)
        spread = float(np.std(dataset_rewards))
        low = min(dataset_rewards) - self.malformed_penalty * spread
        out = [
            self.scale * (dataset_rewards[i // n] if isinstance(item, Problem) else low)
            for i, item in enumerate(items)
        ]
        self.history.append(
            {
                "rewards": dataset_rewards,
                "well_formed": float(np.mean([isinstance(i, Problem) for i in items])),
                "promotions": infos[-1].get("promotions", 0),
            }
        )
        return out


def train_with_trl(
    env_id: str = "SOAR-Tiny-v0",
    trainer: str = "rloo",
    rounds: int = 20,
    seed: int = 0,
    output_dir: str = "runs/trl_teacher",
    learning_rate: float = 3e-4,
    beta: float = 0.01,
    malformed_penalty: float = 1.0,
    max_completion_length: int | None = None,
    **env_overrides: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train a teacher (a copy of the env's base student) with TRL for ``rounds`` rounds.

    Returns the trained teacher model and ``DatasetReward.history``: per round, the g
    dataset rewards, the well-formed rate and the promotions so far. TRL writes its own
    logs (TensorBoard) to ``output_dir``.
    """
    import soar_env  # noqa: F401  (registers the ids)

    try:
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer
    except ImportError as err:  # a clear message, not a deep import error
        raise ImportError("The TRL bridge needs trl and datasets: pip install 'soar-env[trl]'") from err
    if trainer not in ("rloo", "grpo"):
        raise ValueError(f"trainer expects 'rloo' or 'grpo', actual {trainer!r}")
    env = gym.make(env_id, **env_overrides)
    env.reset(seed=seed)
    unwrapped = env.unwrapped
    g, n = unwrapped.config.group_size, unwrapped.config.dataset_size
    model = copy.deepcopy(unwrapped.student.model)  # a teacher copy of the base student
    model.load_state_dict(unwrapped.base_weights)
    tokenizer = unwrapped.student.tokenizer
    domain = unwrapped.domain
    # The domain's preset declares the scale of its rewards (the chain's are ~1e-6): TRL's is ~1.
    reward = DatasetReward(env, malformed_penalty, scale=domain_preset(domain).reward_scale)
    if max_completion_length is None:
        max_completion_length = domain.teacher_max_tokens(with_answer=not reward.solver) or 512
    prompt = unwrapped.student.chat_prompt(domain.teacher_prompt)
    common = dict(
        output_dir=output_dir,
        learning_rate=learning_rate,
        beta=beta,
        seed=seed,
        data_seed=seed,
        per_device_train_batch_size=g * n,
        num_generations=g * n,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_iterations=1,
        max_steps=rounds,
        max_completion_length=max_completion_length,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        logging_steps=1,
        report_to=["tensorboard"],
        save_strategy="no",
        disable_tqdm=False,
        log_completions=False,
        use_cpu=not _cuda(),
        bf16=_cuda(),
        mask_truncated_completions=False,
        lr_scheduler_type="cosine",
        warmup_steps=min(3, rounds),
    )
    Config, Trainer = (RLOOConfig, RLOOTrainer) if trainer == "rloo" else (GRPOConfig, GRPOTrainer)
    if trainer == "rloo":
        common["normalize_advantages"] = True
    run = Trainer(
        model=model,
        reward_funcs=reward,
        args=Config(**common),
        train_dataset=Dataset.from_dict({"prompt": [prompt] * rounds}),
        processing_class=tokenizer,
    )
    run.train()
    return run.model, reward.history


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
