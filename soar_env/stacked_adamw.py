"""AdamW for S stacked students: one optimizer over ``StackedLlama`` weights [S, ...] that
steps each student as its own ``torch.optim.AdamW`` would (``soar_env.lockstep``)."""

from __future__ import annotations

import torch
from torch import Tensor


def _sum_of_squares(g: Tensor) -> Tensor:
    """Per student [S], the sum of squares of g [S, ...], in an order that does not depend
    on the thread count: blocks of 1024 are summed each by one thread, then the few block
    sums (one reduction of a whole student splits across threads and so does its sum)."""
    flat = g.flatten(1).pow(2)
    pad = (-flat.shape[1]) % 1024
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    return flat.view(flat.shape[0], -1, 1024).sum(-1).sum(-1)


class StackedAdamW:
    """``torch.optim.AdamW`` (its defaults and update order) for S stacked students.

    Each student has its own step count and clips its own gradient norm; ``step(updated)``
    changes only the students marked True, so a student with no live group this step keeps
    its weights and moments, as a run that skips ``optimizer.step`` does.
    """

    def __init__(
        self,
        params: dict[str, Tensor],
        lr: float,
        weight_decay: float,
        max_grad_norm: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.max_grad_norm, self.betas, self.eps = max_grad_norm, betas, eps
        size = next(iter(params.values())).shape[0]
        self.steps = torch.zeros(size, dtype=torch.float64)
        self.m = {k: torch.zeros_like(p) for k, p in params.items()}
        self.v = {k: torch.zeros_like(p) for k, p in params.items()}

    def select(self, keep: Tensor) -> None:
        self.steps = self.steps[keep]
        self.m = {k: t[keep] for k, t in self.m.items()}
        self.v = {k: t[keep] for k, t in self.v.items()}

    @torch.no_grad()
    def step(self, updated: Tensor) -> Tensor:
        """One update of the students marked in ``updated`` [S]; returns each one's gradient
        norm before clipping (``clip_grad_norm_``'s)."""
        grads = {k: (p.grad if p.grad is not None else torch.zeros_like(p)) for k, p in self.params.items()}
        norms = torch.stack([_sum_of_squares(g) for g in grads.values()]).sum(0).sqrt()
        clip = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        self.steps += updated.double()
        beta1, beta2 = self.betas
        bias1 = (1 - beta1**self.steps).float().clamp(min=1e-30)
        bias2 = (1 - beta2**self.steps).float().clamp(min=1e-30)
        for k, p in self.params.items():
            view = (-1,) + (1,) * (p.dim() - 1)
            on = updated.view(view)
            g = grads[k] * clip.view(view)
            m = torch.where(on, self.m[k] * beta1 + g * (1 - beta1), self.m[k])
            v = torch.where(on, self.v[k] * beta2 + g * g * (1 - beta2), self.v[k])
            self.m[k], self.v[k] = m, v
            decayed = p * (1 - self.lr * self.weight_decay)
            denom = (v.sqrt() / bias2.sqrt().view(view)) + self.eps
            stepped = decayed - (self.lr / bias1).view(view) * m / denom
            p.copy_(torch.where(on, stepped, p))
            p.grad = None
        return norms
