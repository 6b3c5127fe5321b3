"""The SOAR teacher: an LLM policy meta-trained with RLOO on the env's dataset rewards.

One round (the paper's outer step):
1. **Generate.** Sample from the env's teacher prompt until ``g * n`` samples are
   well-formed (bounded: a clear error when the model cannot write valid problems).
2. **Partition** the valid problems, in sampling order, into ``g`` datasets of ``n``.
3. The loop steps the env once per dataset and hands back the ``g`` rewards.
4. **Update.** RLOO over the datasets: every sample of dataset k gets the advantage
   ``R_k - mean(R_others)``; KL to the initial teacher; AdamW with linear warmup and cosine
   decay. The RLOO pieces are ``soar_env.rl``'s, the same the student's inner loop uses.

Two choices the paper leaves to us, both options here:
- *Malformed samples.* The paper rejects them (no gradient: ``malformed_penalty=0``). A
  tiny teacher then drifts into malformed text (docs/embedded-domain.md, the learned-teacher prototype: 99% ->
  0.3% well-formed in 24 rounds), so the tiny preset gives them a negative advantage.
- *Who answers.* The paper's teacher writes the answers. On the chain domain the tiny
  model's traces are as noisy as the student's own (a 5-step trace is right ~3% of the
  time) and would teach nothing, so there the domain's solver answers the teacher's
  questions by default (``answers='solver'``); ``answers='teacher'`` keeps the paper's way.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from soar_env.config import domain_preset
from soar_env.files import write_atomic_folder
from soar_env.problems import Problem, validated
from soar_env.rl import PolicyBatch, policy_gradient_update, rloo_advantages

from .protocol import Teacher


@dataclass
class SoarTeacherConfig:
    """Hyperparameters of the SOAR teacher (defaults: the paper's teacher column)."""

    model: str | None = None
    """Teacher weights: a model folder or hub id; None = the env's student model (the
    paper starts teacher and student as copies of one base model)."""
    learning_rate: float = 1e-5
    """AdamW peak learning rate (paper: 1e-5)."""
    warmup_rounds: int = 20
    """Linear warmup, in teacher updates (paper: 20 warmup steps)."""
    total_rounds: int = 200
    """Horizon of the cosine decay, in teacher updates (paper: 200 outer steps). A setting,
    not the run's length: the first 12 rounds of a 12-round run and of a 200-round run are
    the same algorithm (until 0.3.0 the horizon was the run's length, so a short run decayed
    to zero and got only a few full-rate updates)."""
    kl_coef: float = 0.001
    """KL weight to the initial teacher (paper: 0.001); 0 disables it."""
    temperature: float = 1.0
    """Sampling temperature (paper: 1.0)."""
    max_new_tokens: int | None = 512
    """Tokens per teacher sample (paper: 512); None = the domain's question length."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm."""
    normalize_advantages: bool = False
    """Divide advantages by the round's reward spread (tiny preset: rewards are ~1e-6)."""
    malformed_penalty: float = 0.0
    """Advantage of a malformed sample, in units of the round's reward spread; 0 = the
    paper's rule (rejected, no gradient)."""
    answers: str = "auto"
    """'teacher' (the paper's: the teacher writes the answer), 'solver' (the domain solves
    the teacher's question; needs ``domain.solve``) or 'auto' (solver when there is one)."""
    max_sample_batches: int = 40
    """Rejection-sampling budget per round: sampling calls of at most ``sample_batch``."""
    sample_batch: int = 128
    """Most samples drawn in one call (bounds the KV cache of a large teacher)."""
    microbatch: int = 64
    """Samples per forward/backward in the update (gradients are accumulated)."""
    update: bool = True
    """False: never update (the untrained teacher, Base-T)."""
    name: str = field(default="soar", repr=False)

    def __post_init__(self) -> None:
        if self.answers not in ("auto", "teacher", "solver"):
            raise ValueError(f"answers expects 'auto', 'teacher' or 'solver', actual {self.answers!r}")
        if self.learning_rate <= 0 or self.kl_coef < 0 or self.malformed_penalty < 0:
            raise ValueError(
                "learning_rate expects > 0, kl_coef and malformed_penalty >= 0, actual "
                f"{self.learning_rate}, {self.kl_coef}, {self.malformed_penalty}"
            )
        if min(self.max_sample_batches, self.microbatch, self.sample_batch) < 1:
            raise ValueError("max_sample_batches, sample_batch and microbatch expect >= 1")
        if not isinstance(self.total_rounds, int) or self.total_rounds <= self.warmup_rounds:
            raise ValueError(f"total_rounds expects an int above warmup_rounds ({self.warmup_rounds}), "
                             f"actual {self.total_rounds!r}")

    @classmethod
    def tiny(cls, **overrides: Any) -> SoarTeacherConfig:
        """Tuned for SOAR-Tiny-v0 (the learned-teacher prototype of docs/embedded-domain.md,
        plus a small KL)."""
        base = cls(
            learning_rate=3e-4,
            warmup_rounds=3,
            kl_coef=0.01,
            max_new_tokens=None,
            normalize_advantages=True,
            malformed_penalty=1.0,
            sample_batch=512,
        )
        return replace(base, **overrides)

    @classmethod
    def for_env(cls, env: Any, **overrides: Any) -> SoarTeacherConfig:
        """The tiny settings where the domain's preset declares small students
        (``Preset.small_students``: the embedded chain domain), the paper's otherwise.

        ``env``: a ``TeacherContext`` or an env (anything with the ``domain``)."""
        small = domain_preset(env.domain).small_students
        return cls.tiny(**overrides) if small else replace(cls(), **overrides)


def problems_from_texts(domain: Any, texts: list[str], solver: bool = False) -> list[Problem | str]:
    """Each teacher sample as a ``Problem``, or the reason it is malformed.

    The domain parses each sample (``parse_teacher_sample``: the chain domain cuts at the
    first ``=``; math takes the paper's first ``<question>/<answer>`` pair, answer boxed);
    with ``solver`` the domain's solver replaces the teacher's answer. The domain's
    ``validate_batch`` (e.g. Math-Verify parsing) has the last word.
    """
    items: list[tuple[str, str] | str] = []
    for text in texts:
        parsed = domain.parse_teacher_sample(text)
        if isinstance(parsed, str):
            items.append(parsed)
            continue
        question, answer = parsed
        if solver:
            try:
                answer = domain.solver.solve(question)
            except ValueError as err:
                items.append(f"question: {err}")
                continue
        items.append((question, answer))
    candidates = [i for i, item in enumerate(items) if isinstance(item, tuple)]
    for i, item in zip(candidates, validated(domain, [items[i] for i in candidates])):
        items[i] = Problem(item.question.strip(), item.answer) if isinstance(item, Problem) else item
    return items


class TeacherCannotWrite(RuntimeError):
    """The teacher did not produce enough well-formed problems within its sampling budget."""


class SoarTeacher(Teacher):
    """The paper's policy-gradient teacher (see the module docstring).

    Args:
        config: hyperparameters; None picks ``SoarTeacherConfig.for_env`` at ``setup``.
        settings: fields changed on the env's preset (``soar-env train --set teacher.X=V``);
            only with ``config=None``.
    """

    name = "soar"

    def __init__(self, config: SoarTeacherConfig | None = None, settings: dict[str, Any] | None = None):
        if config is not None and settings:
            raise ValueError("Expects config or settings, actual both")
        self.config = config
        self.settings = dict(settings or {})
        self._last: dict[str, Any] = {}

    # ---- setup ------------------------------------------------------------------------
    def setup(self, env: Any, seed: int) -> None:
        super().setup(env, seed)
        cfg = self.config = self.config or SoarTeacherConfig.for_env(self.context, **self.settings)
        if cfg.model is None:
            # A copy of the env's base student: the teacher starts where the student starts.
            self.policy = self.context.base_model()
        else:
            from soar_env.student.hf import HFStudent

            self.policy = HFStudent.from_pretrained(cfg.model)
        has_solver = self.domain.solver is not None
        self.solver = cfg.answers == "solver" or (cfg.answers == "auto" and has_solver)
        if cfg.answers == "solver" and not has_solver:
            raise ValueError(
                f"answers='solver' expects a domain with solve(), actual {type(self.domain).__name__}"
            )
        self.prompt = self.policy.chat_prompt(self.domain.teacher_prompt)
        self.reference = None
        if cfg.update and cfg.kl_coef > 0:
            self.reference = self.policy.copy()
            self.reference.model.requires_grad_(False)
        horizon = cfg.total_rounds
        self.optimizer = torch.optim.AdamW(
            self.policy.model.parameters(), lr=cfg.learning_rate, weight_decay=0.0
        )

        def schedule(update: int) -> float:  # linear warmup, then cosine decay to 0
            if update < cfg.warmup_rounds:
                return (update + 1) / cfg.warmup_rounds
            progress = (update - cfg.warmup_rounds) / max(1, horizon - cfg.warmup_rounds)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.rng = random.Random(seed)
        self.generator = torch.Generator(device=self.policy.device.type).manual_seed(seed)
        self.updates = 0

    @property
    def max_new_tokens(self) -> int:
        budget = self.config.max_new_tokens or self.domain.teacher_max_tokens(not self.solver)
        if budget is None:
            raise ValueError(f"The {self.domain.name} domain sets no teacher token budget: "
                             "set teacher.max_new_tokens")
        return budget

    # ---- generate -----------------------------------------------------------------------
    def problems_from_texts(self, texts: list[str]) -> list[Problem | str]:
        """Each teacher sample as a ``Problem``, or the reason it is malformed."""
        return problems_from_texts(self.domain, texts, self.solver)

    def propose(self, observation: dict, count: int) -> list[list[Problem]]:
        """Sample until ``count * n`` well-formed problems; partition them into datasets."""
        cfg, needed = self.config, count * self.dataset_size
        rows: list[tuple[torch.Tensor, bool, int]] = []  # (completion ids, valid, dataset)
        problems: list[Problem] = []
        prompt_ids = prompt_mask = None
        drawn = 0
        for _ in range(cfg.max_sample_batches):
            batch = min(cfg.sample_batch, max(8, int((needed - len(problems)) * 1.25)))
            rollout = self.policy.sample(
                [self.prompt], batch, self.max_new_tokens, cfg.temperature, self.generator
            )
            prompt_ids, prompt_mask = rollout.prompt_ids[:1], rollout.prompt_mask[:1]
            drawn += batch
            for row, item in enumerate(self.problems_from_texts(rollout.texts)):
                ids = rollout.completion_ids[row][rollout.completion_mask[row].bool()]
                if isinstance(item, Problem):
                    if len(problems) < needed:  # extra valid samples are dropped, not trained on
                        rows.append((ids, True, len(problems) // self.dataset_size))
                        problems.append(item)
                else:
                    rows.append((ids, False, -1))
            if len(problems) >= needed:
                break
        if len(problems) < needed:
            raise TeacherCannotWrite(
                f"The teacher wrote {len(problems)} well-formed problems in {drawn} samples "
                f"({len(problems) / drawn:.1%}); {needed} were needed. Its policy has degenerated: "
                "lower the learning rate, raise malformed_penalty, or restart from a checkpoint."
            )
        self._last = {
            "rows": rows,
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "drawn": drawn,
            "malformed": sum(not valid for _, valid, _ in rows),
        }
        n = self.dataset_size
        return [problems[k * n : (k + 1) * n] for k in range(count)]

    def round_stats(self) -> dict[str, float]:
        if not self._last:
            return {}
        drawn = self._last["drawn"]
        return {
            "samples_drawn": float(drawn),
            "well_formed": 1.0 - self._last["malformed"] / drawn if drawn else 0.0,
        }

    # ---- update -------------------------------------------------------------------------
    def advantages(self, rewards: list[float]) -> tuple[torch.Tensor, float]:
        """Leave-one-out advantage per dataset, and the unit of the malformed penalty."""
        r = torch.tensor(rewards, dtype=torch.float32)
        adv = rloo_advantages(r[None, :])[0] if len(rewards) > 1 else torch.zeros(1)
        spread = float(r.std(unbiased=False)) if len(rewards) > 1 else 0.0
        if self.config.normalize_advantages:
            adv = adv / (spread + 1e-12) if spread > 0 else torch.zeros_like(adv)
            return adv, 1.0
        return adv, spread

    def learn(self, rewards: list[float], infos: list[dict]) -> dict[str, float]:
        cfg = self.config
        stats = {"lr": self.scheduler.get_last_lr()[0], "reward_mean": float(np.mean(rewards))}
        if not cfg.update or not self._last:
            return stats
        adv, unit = self.advantages(rewards)
        rows = [
            (ids, float(adv[k]) if valid else -cfg.malformed_penalty * unit)
            for ids, valid, k in self._last["rows"]
            if valid or cfg.malformed_penalty > 0
        ]
        rows = [(ids, a) for ids, a in rows if a != 0.0]
        if not rows:
            return {**stats, "updated": 0.0}
        batches = []
        for start in range(0, len(rows), cfg.microbatch):
            chunk = rows[start : start + cfg.microbatch]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.full((len(chunk), width), self.policy.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, (row, _) in enumerate(chunk):
                ids[i, : len(row)], mask[i, : len(row)] = row.cpu(), 1
            a = torch.tensor([a for _, a in chunk], dtype=torch.float32)
            # Every row shares the one teacher prompt; each chunk weighs its share of the rows.
            batches.append(PolicyBatch(self._last["prompt_ids"], self._last["prompt_mask"],
                                       ids.to(self.policy.device), mask.to(self.policy.device),
                                       len(chunk), a, len(chunk) / len(rows)))
        totals = policy_gradient_update(self.policy, self.optimizer, batches, cfg.max_grad_norm,
                                        cfg.temperature, self.reference, cfg.kl_coef)
        self.scheduler.step()
        self.updates += 1
        return {
            **stats,
            **totals,
            "updated": 1.0,
            "advantage_spread": float(adv.abs().max()),
        }

    def export_pretrained(self, folder: str | Path) -> bool:
        """The teacher's model and tokenizer via ``save_pretrained`` (safetensors), written
        whole or not at all (``write_atomic_folder``)."""

        def save(tmp: Path) -> None:
            self.policy.model.save_pretrained(tmp)
            self.policy.tokenizer.save_pretrained(tmp)

        write_atomic_folder(folder, save)
        return True

    # ---- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "model": self.policy.snapshot(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng.getstate(),
            "generator": self.generator.get_state(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.restore(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.setstate(state["rng"])
        self.generator.set_state(state["generator"])
        self.updates = state["updates"]


class BaseTeacher(SoarTeacher):
    """The untrained teacher (the paper's Base-T): the SOAR teacher without updates."""

    name = "base"
    learns = False

    def setup(self, env: Any, seed: int) -> None:
        self.config = replace(self.config or SoarTeacherConfig.for_env(env, **self.settings), update=False)
        super().setup(env, seed)
