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
    # The gradients are spent: free them now rather than at the next update, so sampling
    # (and a colocated vLLM engine waking up) never shares the GPU with them (4 bytes a
    # parameter: 12.9 GB at 3B).
    optimizer.zero_grad(set_to_none=True)
    policy.model.eval()
    # One pass over the weights per update: a non-finite weight would otherwise only
    # surface in the next sampling call, deep inside torch.multinomial.
    if not all(torch.isfinite(p).all() for p in policy.model.parameters()):
        raise NonFiniteUpdate("RLOO update produced non-finite weights (check learning_rate and kl_coef)")
    return {**totals, "grad_norm": float(grad_norm)}


def _pass_tokens(prompt_mask: Tensor, completion_mask: Tensor) -> int:
    """Tokens one update pass holds: its prompts and its rows, each trimmed to the longest."""
    prompt = int(prompt_mask.sum(-1).max()) if prompt_mask.numel() else 0
    completion = max(1, int(completion_mask.sum(-1).max()))
    return prompt_mask.shape[0] * prompt + completion_mask.shape[0] * completion


def micro_batches(prompt_ids: Tensor, prompt_mask: Tensor, completion_ids: Tensor, completion_mask: Tensor,
                  advantages: Tensor, samples: int, max_tokens: int | None) -> list[PolicyBatch]:
    """The rows of ``G`` groups as passes of at most ``max_tokens`` tokens (None: one pass).

    ``prompt_ids``/``prompt_mask``: the groups' unique prompts [G, P], left-padded;
    ``completion_*``: their ``G * samples`` rows [G * samples, C], group ``g``'s at rows
    ``g * samples ...``; ``advantages``: one per row. Whole groups go together while they
    fit; a group that does not fit alone is split into slices of its rows (each slice
    encodes the prompt once). A pass's tokens are its prompts and rows, each trimmed to
    the longest real prompt and completion in the pass (``_pass_tokens``), so the padding
    up to the rollout's width is never computed. Each pass weighs its share of the rows, so
    the accumulated gradient is the one of a single pass over all rows (up to float order).
    Only a single prompt and completion longer than ``max_tokens`` exceed it: a row is not
    split.
    """
    total = completion_ids.shape[0]
    if total != prompt_ids.shape[0] * samples:
        raise ValueError(f"Expects {prompt_ids.shape[0] * samples} rows ({prompt_ids.shape[0]} groups x "
                         f"{samples}), actual {total}")
    limit = max_tokens if max_tokens is not None else float("inf")

    def cost(groups: list[int], rows: range | None = None) -> int:
        rows = rows if rows is not None else [g * samples + j for g in groups for j in range(samples)]
        return _pass_tokens(prompt_mask[groups], completion_mask[list(rows)])

    plan: list[tuple[list[int], range]] = []  # (groups, rows) per pass
    current: list[int] = []
    for g in range(prompt_ids.shape[0]):
        if cost(current + [g]) <= limit:
            current.append(g)
            continue
        if current:
            plan.append((current, range(current[0] * samples, (current[-1] + 1) * samples)))
            current = []
        if cost([g]) <= limit:
            current = [g]
            continue
        start = g * samples  # the group alone is over the budget: slices of its rows
        for end in range(g * samples + 1, (g + 1) * samples + 1):
            if end - start > 1 and cost([g], range(start, end)) > limit:
                plan.append(([g], range(start, end - 1)))
                start = end - 1
        plan.append(([g], range(start, (g + 1) * samples)))
    if current:
        plan.append((current, range(current[0] * samples, (current[-1] + 1) * samples)))

    batches = []
    for groups, rows in plan:
        p_mask, c_mask = prompt_mask[groups], completion_mask[rows.start : rows.stop]
        cut = prompt_ids.shape[1] - int(p_mask.sum(-1).max())  # left-padded: trim from the left
        width = max(1, int(c_mask.sum(-1).max()))  # right-padded: trim from the right
        per_prompt = samples if len(groups) > 1 or len(rows) == samples else len(rows)
        batches.append(PolicyBatch(
            prompt_ids[groups][:, cut:], p_mask[:, cut:],
            completion_ids[rows.start : rows.stop, :width], c_mask[:, :width], per_prompt,
            advantages[rows.start : rows.stop], 1.0 if len(rows) == total else len(rows) / total))
    return batches


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
            device = self.policy.device
            groups = live.view(len(batch), s)[:, 0].nonzero().squeeze(-1).to(device)
            rows = live.nonzero().squeeze(-1).to(device)
            # Unique prompts of the live groups: each is encoded once for its samples.
            batches = micro_batches(rollout.prompt_ids[::s][groups], rollout.prompt_mask[::s][groups],
                                    rollout.completion_ids[rows], rollout.completion_mask[rows],
                                    advantages.flatten().to(device)[rows], s, self.policy.max_batch_tokens)
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
