"""Sampling from S stacked students in lockstep (``soar_env.student.stacked``'s decoder).

Rows are laid out ``[S, G, n]``: student, prompt group, sample. Each row draws its tokens
from its own random numbers, so a row's sample does not depend on when other rows finish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from soar_env.student.stacked import NEG_INF, StackedLlama, linear, take_groups


class Decoder:
    """Samples completions of S students' prompt groups one token at a time.

    - The prompts' keys (transposed for the product) and values are kept per group and read
      once for the group's n samples.
    - Each row's own keys and values go into a preallocated buffer laid out step-major,
      [T, S, G, n, kv_heads, hd]: a step writes one contiguous slab, and ``compact`` copies
      the filled slabs of the kept groups in one ``index_select`` each.
    - Norm weights and the attention scale are folded into the weights once per call (no
      grad flows here), which saves elementwise passes over every row at every step.
    """

    def __init__(
        self, model: StackedLlama, prompt_ids: Tensor, prompt_mask: Tensor, samples: int, capacity: int
    ):
        sh, p = model.shape, model.params
        self.model, self.samples = model, samples
        last, kv, self.start = model.prompts(prompt_ids, prompt_mask)
        S, G = prompt_ids.shape[:2]
        rep = sh.heads // sh.kv_heads
        # ``prompts`` repeats kv heads for its own attention; keep one copy per kv head here.
        self.keys_t = [k[:, :, ::rep].transpose(-1, -2).contiguous() for k, _ in kv]  # [S,G,kv,hd,P]
        self.values = [v[:, :, ::rep].contiguous() for _, v in kv]  # [S, G, kv, P, hd]
        padded = not bool(prompt_mask.all())
        self.bias = torch.zeros(prompt_mask.shape).masked_fill_(prompt_mask == 0, NEG_INF) if padded else None
        self.own_keys = [torch.empty(capacity, S, G, samples, sh.kv_heads, sh.head_dim) for _ in kv]
        self.own_values = [torch.empty(capacity, S, G, samples, sh.kv_heads, sh.head_dim) for _ in kv]
        self.length = 0
        self.first_logits = model.logits(last)  # [S, G, V]: the first token's distribution
        q_cols = sh.heads * sh.head_dim
        scale = torch.ones(sh.qkv)
        scale[:q_cols] = 1.0 / math.sqrt(sh.head_dim)
        self.w_qkv = [p[f"{i}.ln1"][:, :, None] * p[f"{i}.qkv"] * scale for i in range(sh.layers)]
        self.w_gate_up = [p[f"{i}.ln2"][:, :, None] * p[f"{i}.gate_up"] for i in range(sh.layers)]
        head = p["embed"].transpose(1, 2) if sh.tied else p["lm_head"]
        self.w_head = (p["norm"][:, :, None] * head).contiguous()

    def compact(self, order: Tensor) -> None:
        """Keep groups ``order`` [S, G'] of every student (their filled part, one copy each)."""
        S, G = self.start.shape
        self.start = self.start.gather(1, order)
        self.bias = None if self.bias is None else take_groups(self.bias, order)
        self.keys_t = [take_groups(k, order) for k in self.keys_t]
        self.values = [take_groups(v, order) for v in self.values]
        flat = (order + torch.arange(S)[:, None] * G).flatten()
        for store in (self.own_keys, self.own_values):
            for i, t in enumerate(store):
                kept = t.new_empty((t.shape[0], *order.shape, *t.shape[3:]))
                rows = t[: self.length].flatten(1, 2).index_select(1, flat)
                kept[: self.length] = rows.view(self.length, *order.shape, *t.shape[3:])
                store[i] = kept

    def _norm(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.model.shape.eps)

    def step(self, token: Tensor) -> Tensor:
        """Feed one token per row [S, G, n]; returns the next-token logits [S, G, n, V]."""
        model, sh = self.model, self.model.shape
        S, G, n = token.shape
        kv, rep, hd, t = sh.kv_heads, sh.heads // sh.kv_heads, sh.head_dim, self.length
        cis = model._rope(self.start + t)[:, :, None, None, :]  # [S, G, 1, 1, hd / 2]
        x = model.params["embed"].gather(1, token.reshape(S, -1, 1).expand(-1, -1, sh.hidden))
        for i in range(sh.layers):
            qkv = linear(self._norm(x), self.w_qkv[i]).view(S, G, n, sh.heads + 2 * kv, hd)
            qk = model._rotate(qkv[..., : sh.heads + kv, :], cis)  # queries and keys in one product
            q = qk[..., : sh.heads, :].reshape(S * G * n * kv, rep, hd)
            self.own_keys[i][t] = qk[..., sh.heads :, :]
            self.own_values[i][t] = qkv[..., sh.heads + kv :, :]
            # Step-major buffers: row r's keys are the matrix [t + 1, hd] with leading dim B*hd.
            keys = self.own_keys[i][: t + 1].view(t + 1, -1, hd).transpose(0, 1)
            values = self.own_values[i][: t + 1].view(t + 1, -1, hd).transpose(0, 1)
            own = (q @ keys.transpose(-1, -2)).view(S, G, n, kv, rep, t + 1)
            qp = q.view(S, G, n, kv, rep, hd).permute(0, 1, 3, 4, 2, 5).reshape(S, G, kv, rep * n, hd)
            shared = qp @ self.keys_t[i]  # [S, G, kv, rep * n, P]
            if self.bias is not None:
                shared = shared + self.bias[:, :, None, None, :]
            shared = shared.view(S, G, kv, rep, n, -1).permute(0, 1, 4, 2, 3, 5)  # [S,G,n,kv,rep,P]
            # One softmax over prompt and own keys, without concatenating them.
            top = torch.maximum(shared.amax(-1), own.amax(-1))[..., None]
            e_shared, e_own = torch.exp(shared - top), torch.exp(own - top)
            total = e_shared.sum(-1) + e_own.sum(-1)  # [S, G, n, kv, rep]
            e_shared = e_shared.permute(0, 1, 3, 4, 2, 5).reshape(S, G, kv, rep * n, -1)
            out = (e_shared @ self.values[i]).view(S, G, kv, rep, n, hd).permute(0, 1, 4, 2, 3, 5)
            mine = (e_own.view(-1, rep, t + 1) @ values).view(S, G, n, kv, rep, hd)
            out = (out + mine) / total[..., None]
            x = x + linear(out.reshape(S, G * n, sh.heads * hd), model.params[f"{i}.o"])
            gate, up = linear(self._norm(x), self.w_gate_up[i]).chunk(2, dim=-1)
            x = x + linear(torch.nn.functional.silu(gate) * up, model.params[f"{i}.down"])
        self.length = t + 1
        return linear(self._norm(x), self.w_head).view(S, G, n, sh.vocab)


@dataclass
class StackedRollout:
    """Sampled completions of S students: tokens [S, G, n, W] (end token included, pad after),
    lengths [S, G, n] (tokens up to and including the end token), and per student whether
    its logits stayed finite."""

    tokens: Tensor
    lengths: Tensor
    finite: Tensor
    cut: Tensor | None = None
    """[S, G]: groups stopped early because none of their samples could still be right."""


def concat_rollouts(parts: list[StackedRollout], pad_id: int) -> StackedRollout:
    """One rollout from rollouts of consecutive slices of the questions (dim 1), their
    tokens padded to the widest."""
    width = max(p.tokens.shape[-1] for p in parts)
    tokens = torch.cat([torch.nn.functional.pad(p.tokens, (0, width - p.tokens.shape[-1]), value=pad_id)
                        for p in parts], dim=1)
    finite = torch.stack([p.finite for p in parts]).all(0)
    cut = None if parts[0].cut is None else torch.cat([p.cut for p in parts], dim=1)
    return StackedRollout(tokens, torch.cat([p.lengths for p in parts], dim=1), finite, cut)


@torch.no_grad()
def sample(
    model: StackedLlama,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    samples: int,
    max_new_tokens: int,
    uniforms: Tensor | None,
    eos_id: int,
    pad_id: int,
    temperature: float = 1.0,
    compact_below: float = 0.75,
    answers: Tensor | None = None,
) -> StackedRollout:
    """``samples`` completions per prompt of each student, decoded in lockstep.

    ``uniforms`` [S, G, n, T] are the random numbers of every (row, step), drawn by the
    caller from each student's own generator: token = inverse CDF of the softmax (at
    ``temperature``) at that number, so a row's tokens depend on its own numbers only,
    whatever other rows do. None decodes greedily. A prompt group whose samples have all
    ended leaves the batch once the live groups fall below ``compact_below`` of the batch.

    ``answers`` [S, G, A] (token ids of each group's answer and end token, -1 after) are for
    domains whose completions are right exactly when they are those tokens: a sample that
    leaves its answer can no longer be right, and a group none of whose samples can is cut
    (``StackedRollout.cut``). Every sample of a cut group is wrong whatever it would have
    written, so its grade, its RLOO advantage (0: no sample right) and the update are what
    they would have been; only the tokens nobody needs are not sampled.
    """
    from soar_env.allocator import keep_freed_memory

    keep_freed_memory()  # decoding steps reuse freed blocks instead of page-faulting new ones
    S, G, P = prompt_ids.shape
    n, T = samples, max_new_tokens
    decoder = Decoder(model, prompt_ids, prompt_mask, n, T)
    logits = decoder.first_logits[:, :, None, :].expand(S, G, n, model.shape.vocab)
    tokens = torch.full((S, G, n, T), pad_id, dtype=torch.long)
    lengths = torch.zeros((S, G, n), dtype=torch.long)
    finite = torch.ones(S, dtype=torch.bool)
    index = torch.arange(G).expand(S, G).contiguous()  # live slot -> original group
    done = torch.zeros((S, G, n), dtype=torch.bool)
    on_track = torch.ones((S, G, n), dtype=torch.bool)  # still equal to the answer so far
    cut = torch.zeros((S, G), dtype=torch.bool)
    width = 0
    for t in range(T):
        if uniforms is None:
            token = logits.argmax(-1)
            total = logits.amax(-1)  # not finite when a logit is NaN or infinite
        else:
            cdf = torch.softmax(logits if temperature == 1.0 else logits / temperature, dim=-1).cumsum(-1)
            total = cdf[..., -1]  # NaN when a logit is NaN or +inf: one number per row to check
            u = uniforms[..., t].gather(1, index[..., None].expand(-1, -1, n)) * cdf[..., -1]
            token = (cdf < u[..., None]).sum(-1).clamp_(max=model.shape.vocab - 1)
        finite &= torch.isfinite(total).flatten(1).all(-1)
        token = token.masked_fill(done, pad_id)
        slot = index[..., None].expand(-1, -1, n)
        tokens[..., t].scatter_(1, slot, token)
        lengths.scatter_add_(1, slot, (~done).long())
        if answers is not None:
            expected = answers[..., t] if t < answers.shape[-1] else torch.full_like(answers[..., 0], -1)
            on_track &= done | (token == expected.gather(1, index)[..., None])
            hopeless = ~on_track.any(-1)  # [S, Gc]
            cut.scatter_(1, index, hopeless | cut.gather(1, index))
            done |= hopeless[..., None]
        done |= token == eos_id
        width = t + 1
        if bool(done.all()) or t + 1 == T:
            break
        alive = ~done.all(-1)  # [S, Gc]
        keep = int(alive.sum(-1).max())
        if keep < compact_below * index.shape[1]:
            order = torch.sort((~alive).to(torch.int8), dim=1, stable=True).indices[:, :keep]
            index, done, token = index.gather(1, order), take_groups(done, order), take_groups(token, order)
            on_track = take_groups(on_track, order)
            decoder.compact(order)
        logits = decoder.step(token)
    return StackedRollout(tokens[..., :width], lengths, finite, cut if answers is not None else None)
