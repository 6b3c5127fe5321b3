"""RLOO: REINFORCE with a leave-one-out baseline, KL to a reference, AdamW.

One implementation serves both levels of SOAR:
- the student's inner loop (``RLOOTrainer``): a group is the samples of one question;
- the teacher's update (agents): a group is the g datasets of one round, and every
  sample of dataset k carries the advantage ``R_k - mean(R_others)``.

Both use ``rloo_advantages`` and ``policy_gradient_loss``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from soar_env.config import RLOOConfig  # noqa: F401  (lives with the other configs: no torch)
from soar_env.problems import Problem
from soar_env.student.hf import HFStudent

RewardFn = Callable[[list[str], list[Problem]], list[float]]
"""``reward_fn(completions, problems) -> one score per completion``, each completion with its
problem (a domain's ``reward_batch`` or ``grade_batch``)."""


class NonFiniteUpdate(RuntimeError):
    """An update produced a non-finite loss or weights (e.g. learning_rate=inf).

    Raised before the bad weights can reach sampling; the caller restores a snapshot.
    """


def rloo_advantages(rewards: Tensor) -> Tensor:
    """Leave-one-out advantages of rewards grouped as [groups, samples].

    ``A_i = r_i - mean_{j != i} r_j``; a group whose rewards are all equal gets zeros.
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"Expects rewards of shape [groups, >=2 samples], actual {tuple(rewards.shape)}")
    n = rewards.shape[1]
    others_mean = (rewards.sum(dim=1, keepdim=True) - rewards) / (n - 1)
    return rewards - others_mean


def policy_gradient_loss(
    logprobs: Tensor,
    mask: Tensor,
    advantages: Tensor,
    ref_logprobs: Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """REINFORCE loss on whole sequences, plus a KL penalty.

    Args:
        logprobs: [B, T] token log-probs under the policy (with gradients).
        mask: [B, T] 1 for completion tokens.
        advantages: [B] one advantage per sequence.
        ref_logprobs: [B, T] token log-probs under the reference (no gradients).
        kl_coef: weight of the KL term (the k3 estimator, per token, summed per sequence).

    The policy-gradient term is ``-A * log p(sequence)`` averaged over the sequences given:
    with a whole-sequence reward this is the unbiased estimator (no per-token length bias).
    The RLOO trainer passes only groups with a non-zero advantage, so its average is over
    the live groups (a per-batch step-size factor that AdamW largely absorbs).
    """
    seq_logp = (logprobs * mask).sum(-1)
    pg = -(advantages.detach() * seq_logp).mean()
    stats = {"pg_loss": pg.item()}
    loss = pg
    if ref_logprobs is not None and kl_coef > 0:
        delta = (ref_logprobs.detach() - logprobs) * mask
        kl = ((torch.exp(delta) - delta - 1) * mask).sum(-1).mean()
        loss = loss + kl_coef * kl
        stats["kl"] = kl.item()
    return loss, stats


@dataclass
class PolicyBatch:
    """Sequences to push up or down: prompts (each repeated ``samples`` times), completions,
    one advantage per completion, and the batch's share of the update's mean loss."""

    prompt_ids: Tensor
    prompt_mask: Tensor
    completion_ids: Tensor
    completion_mask: Tensor
    samples: int
    advantages: Tensor
    weight: float = 1.0


def policy_gradient_update(
    policy: HFStudent,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[PolicyBatch],
    max_grad_norm: float,
    temperature: float = 1.0,
    reference: HFStudent | None = None,
    kl_coef: float = 0.0,
) -> dict[str, float]:
    """One optimizer step of the REINFORCE/RLOO loss, accumulated over ``batches``.

    The one update loop of the package: the student's inner loop (one batch) and the SOAR
    teacher (micro-batches weighted by their share of the rows) both call it. A non-finite
    loss or weights raise ``NonFiniteUpdate`` before the weights can reach sampling.
    Returns the weighted loss statistics and the gradient norm before clipping.
    """
    optimizer.zero_grad(set_to_none=True)
    policy.model.train()
    totals: dict[str, float] = {}
    for batch in batches:
        args = (batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.completion_mask)
        logprobs = policy.token_logprobs(*args, temperature=temperature, samples=batch.samples)
        ref = None
        if reference is not None and kl_coef > 0:
            with torch.no_grad():
                ref = reference.token_logprobs(*args, temperature=temperature, samples=batch.samples)
        loss, parts = policy_gradient_loss(logprobs, batch.completion_mask,
                                           batch.advantages.to(logprobs.device), ref, kl_coef)
        if not torch.isfinite(loss):
            raise NonFiniteUpdate(f"RLOO loss is {loss.item()} (check learning_rate and kl_coef)")
        (loss if batch.weight == 1.0 else loss * batch.weight).backward()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value * batch.weight
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.model.parameters(), max_grad_norm)
    optimizer.step()
    policy.model.eval()
    # One pass over the weights per update: a non-finite weight would otherwise only
    # surface in the next sampling call, deep inside torch.multinomial.
    if not all(torch.isfinite(p).all() for p in policy.model.parameters()):
        raise NonFiniteUpdate("RLOO update produced non-finite weights (check learning_rate and kl_coef)")
    return {**totals, "grad_norm": float(grad_norm)}


class RLOOTrainer:
    """Trains a policy with RLOO on a fixed problem set (the SOAR inner loop).

    Args:
        policy: the student being trained (its weights change in place).
        reward_fn: scores completions, each against its problem.
        prompt_fn: turns a question into the student prompt.
        config: hyperparameters.
        reference: frozen model for the KL term; required when ``config.kl_coef > 0``.
        seed: seeds question order and sampling.
    """

    def __init__(self, policy: HFStudent, reward_fn: RewardFn, prompt_fn: Callable[[str], str],
                 config: RLOOConfig, reference: HFStudent | None = None, seed: int = 0):
        if config.kl_coef > 0 and reference is None:
            raise ValueError("kl_coef > 0 expects a reference model; pass reference= or set kl_coef=0")
        self.policy, self.reward_fn, self.prompt_fn = policy, reward_fn, prompt_fn
        self.config, self.reference = config, reference
        self.rng = random.Random(seed)
        self.generator = torch.Generator(device=policy.device.type).manual_seed(seed)
        # A fresh optimizer per trainer: every inner run starts from the baseline's weights
        # with no optimizer state, as the paper's independent runs do.
        self.optimizer = torch.optim.AdamW(
            policy.model.parameters(), lr=config.learning_rate,
            weight_decay=config.weight_decay,
        )
        self._order: list[int] = []  # indices into _source still to visit this epoch
        self._source: Sequence[Problem] | None = None

    def _next_batch(self, problems: Sequence[Problem]) -> list[Problem]:
        if problems is not self._source:  # a new problem list: restart the shuffled order
            self._source, self._order = problems, []
        batch = []
        while len(batch) < min(self.config.questions_per_step, len(problems)):
            if not self._order:
                self._order = list(range(len(problems)))
                self.rng.shuffle(self._order)
            batch.append(problems[self._order.pop()])
        return batch

    def step(self, problems: Sequence[Problem]) -> dict[str, float]:
        """One RLOO update on the next batch of questions; returns its statistics."""
        cfg = self.config
        start = time.perf_counter()
        batch = self._next_batch(problems)
        try:
            rollout = self.policy.sample(
                [self.prompt_fn(p.question) for p in batch], cfg.samples_per_question,
                cfg.max_new_tokens, cfg.temperature, self.generator,
            )
        except RuntimeError as error:
            # Finite but huge weights (a diverged update) overflow the logits; torch then
            # fails in multinomial with "probability tensor contains either inf, nan ...".
            if "inf" in str(error) or "nan" in str(error):
                raise NonFiniteUpdate(f"sampling failed on diverged weights: {error}") from error
            raise
        graded = [p for p in batch for _ in range(cfg.samples_per_question)]
        rewards = torch.tensor(self.reward_fn(rollout.texts, graded), dtype=torch.float32)
        grouped = rewards.view(len(batch), cfg.samples_per_question)
        advantages = rloo_advantages(grouped)
        # Groups whose samples all scored the same carry no signal: skip their compute.
        live = (grouped.max(1).values > grouped.min(1).values).repeat_interleave(cfg.samples_per_question)
        stats = {
            "reward": float(rewards.mean()),
            "live_groups": int(live.sum()) // cfg.samples_per_question,
            "sampled_tokens": rollout.num_tokens,
            "updated": 0.0,
        }
        if live.any():
            s = cfg.samples_per_question
            groups = live.view(len(batch), s)[:, 0].nonzero().squeeze(-1).to(self.policy.device)
            rows = live.nonzero().squeeze(-1).to(self.policy.device)
            # Unique prompts of the live groups: each is encoded once for its s samples. Under
            # the student's token budget the groups go in micro-batches (gradient accumulation).
            width = rollout.prompt_ids.shape[1] + rollout.completion_ids.shape[1]
            per_pass = self.policy.rows_per_pass(width)
            step = len(groups) if per_pass is None else max(1, per_pass // s)
            flat = advantages.flatten().to(self.policy.device)
            batches = []
            for g in range(0, len(groups), step):
                chunk = groups[g : g + step]
                chunk_rows = rows[g * s : (g + len(chunk)) * s]
                batches.append(PolicyBatch(
                    rollout.prompt_ids[::s][chunk], rollout.prompt_mask[::s][chunk],
                    rollout.completion_ids[chunk_rows], rollout.completion_mask[chunk_rows], s,
                    flat[chunk_rows], 1.0 if len(batches) == 0 and step >= len(groups)
                    else len(chunk) / len(groups)))
            update = policy_gradient_update(self.policy, self.optimizer, batches, cfg.max_grad_norm,
                                            cfg.temperature, self.reference, cfg.kl_coef)
            update.pop("grad_norm")
            stats.update(update, updated=1.0)
        stats["seconds"] = time.perf_counter() - start
        return stats

    def train(self, problems: Sequence[Problem], steps: int) -> list[dict[str, float]]:
        """``steps`` updates on ``problems``; returns the per-step statistics."""
        if not problems:
            raise ValueError("Expects at least one problem to train on, actual none")
        return [self.step(problems) for _ in range(steps)]
