"""S copies of one small Llama as one batched model: the lockstep CPU path's student.

A grounded round trains ``g x r`` students from the same baseline on different datasets.
On the tiny CPU models every matrix product of one student is small, so most of a step's
time went to per-call overhead, copies of the KV cache and re-reading each prompt's keys for
each of its samples. Here the S students' weights are stacked along a leading axis and every
layer is one batched product (``torch.bmm``) over all of them, and attention is written for
SOAR's layout:

- a prompt's keys are computed once and read once for all of its ``n`` samples
  (shared-prefix attention);
- the keys of generated tokens go into a preallocated buffer, written in place (no copy per
  token); finished prompt groups leave it in bulk (``GroupCache.compact``).

Rows are laid out ``[S, G, n, ...]``: student, prompt group, sample. Only plain Llama models
are stacked (``stackable`` says why not); everything else keeps the transformers path.
Numbers equal the transformers model's within float rounding (tests), not bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

NEG_INF = torch.finfo(torch.float32).min
"""The score of a masked key. Finite, as in transformers: a left-padding position that may
attend to nothing then averages garbage instead of making NaN, which would leak into real
rows through 0 * NaN in the value product."""


@dataclass(frozen=True)
class LlamaShape:
    """The sizes a stacked Llama needs (read from a transformers ``LlamaConfig``)."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    eps: float
    rope_theta: float
    tied: bool

    @property
    def qkv(self) -> int:
        return (self.heads + 2 * self.kv_heads) * self.head_dim


def stackable(model) -> str | None:
    """Why ``model`` cannot be stacked, or None when it can (a plain ``LlamaForCausalLM``)."""
    config = model.config
    if type(model).__name__ != "LlamaForCausalLM":
        return f"{type(model).__name__} is not a LlamaForCausalLM"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default":
        return f"rope_type {rope.get('rope_type')!r} (only the default rotary embedding is stacked)"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "attention or MLP biases"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"hidden_act {config.hidden_act!r}"
    if next(model.parameters()).dtype != torch.float32:
        return "weights that are not float32"
    return None


def shape_of(model) -> LlamaShape:
    config = model.config
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    heads = config.num_attention_heads
    return LlamaShape(
        vocab=config.vocab_size,
        hidden=config.hidden_size,
        layers=config.num_hidden_layers,
        heads=heads,
        kv_heads=config.num_key_value_heads or heads,
        head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
        intermediate=config.intermediate_size,
        eps=config.rms_norm_eps,
        rope_theta=float(theta),
        tied=bool(config.tie_word_embeddings),
    )


def _pairs(shape: LlamaShape, heads: int) -> Tensor:
    """Row order that puts each rotary pair (i, i + head_dim/2) of every head side by side,
    so the rotation is one complex product. Scores are unchanged: q and k get the same order."""
    half = shape.head_dim // 2
    one = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()
    return torch.cat([one + h * shape.head_dim for h in range(heads)])


def _layer_names(i: int) -> dict[str, str]:
    p = f"model.layers.{i}."
    return {
        "ln1": p + "input_layernorm.weight",
        "ln2": p + "post_attention_layernorm.weight",
        "q": p + "self_attn.q_proj.weight",
        "k": p + "self_attn.k_proj.weight",
        "v": p + "self_attn.v_proj.weight",
        "o": p + "self_attn.o_proj.weight",
        "gate": p + "mlp.gate_proj.weight",
        "up": p + "mlp.up_proj.weight",
        "down": p + "mlp.down_proj.weight",
    }


class StackedLlama:
    """S Llama students as stacked tensors (``params``: name -> [S, ...], requires_grad).

    Linear weights are stored as ``[S, in, out]`` (``x @ W``); q/k/v and gate/up are fused,
    so a layer is four batched products. ``state(s)`` / ``load(s, state)`` convert one
    student from / to transformers' ``state_dict`` names.
    """

    def __init__(self, shape: LlamaShape, params: dict[str, Tensor]):
        self.shape, self.params = shape, params
        half = torch.arange(0, shape.head_dim, 2, dtype=torch.int64).float() / shape.head_dim
        self.inv_freq = 1.0 / (shape.rope_theta**half)

    @property
    def size(self) -> int:
        return self.params["embed"].shape[0]

    @classmethod
    def from_states(cls, shape: LlamaShape, states: list[dict[str, Tensor]]) -> StackedLlama:
        params: dict[str, Tensor] = {}

        def stack(name: str, tensors: list[Tensor]) -> None:
            params[name] = torch.stack(tensors).contiguous().requires_grad_(True)

        q_order, k_order = _pairs(shape, shape.heads), _pairs(shape, shape.kv_heads)
        stack("embed", [s["model.embed_tokens.weight"] for s in states])
        stack("norm", [s["model.norm.weight"] for s in states])
        if not shape.tied:
            stack("lm_head", [s["lm_head.weight"].t() for s in states])
        for i in range(shape.layers):
            n = _layer_names(i)
            stack(f"{i}.ln1", [s[n["ln1"]] for s in states])
            stack(f"{i}.ln2", [s[n["ln2"]] for s in states])
            stack(
                f"{i}.qkv",
                [torch.cat([s[n["q"]][q_order], s[n["k"]][k_order], s[n["v"]]]).t() for s in states],
            )
            stack(f"{i}.o", [s[n["o"]].t() for s in states])
            stack(f"{i}.gate_up", [torch.cat([s[n["gate"]], s[n["up"]]]).t() for s in states])
            stack(f"{i}.down", [s[n["down"]].t() for s in states])
        return cls(shape, params)

    @torch.no_grad()
    def state(self, s: int) -> dict[str, Tensor]:
        """Student ``s``'s weights under transformers' names (new CPU tensors)."""
        p, sh = self.params, self.shape
        q_rows, kv_rows = sh.heads * sh.head_dim, sh.kv_heads * sh.head_dim
        q_back, k_back = _pairs(sh, sh.heads).argsort(), _pairs(sh, sh.kv_heads).argsort()
        out = {"model.embed_tokens.weight": p["embed"][s].clone(), "model.norm.weight": p["norm"][s].clone()}
        out["lm_head.weight"] = (p["embed"][s] if sh.tied else p["lm_head"][s].t()).clone()
        for i in range(sh.layers):
            n = _layer_names(i)
            qkv = p[f"{i}.qkv"][s].t()
            gate_up = p[f"{i}.gate_up"][s].t()
            out.update(
                {
                    n["ln1"]: p[f"{i}.ln1"][s].clone(),
                    n["ln2"]: p[f"{i}.ln2"][s].clone(),
                    n["q"]: qkv[:q_rows][q_back],
                    n["k"]: qkv[q_rows : q_rows + kv_rows][k_back],
                    n["v"]: qkv[q_rows + kv_rows :].clone(),
                    n["o"]: p[f"{i}.o"][s].t().clone(),
                    n["gate"]: gate_up[: sh.intermediate].clone(),
                    n["up"]: gate_up[sh.intermediate :].clone(),
                    n["down"]: p[f"{i}.down"][s].t().clone(),
                }
            )
        return out

    @torch.no_grad()
    def load(self, s: int, state: dict[str, Tensor]) -> None:
        """Put transformers-named weights into student ``s``, in place."""
        one = StackedLlama.from_states(self.shape, [state])
        for name, tensor in self.params.items():
            tensor[s].copy_(one.params[name][0])

    # ---- building blocks -----------------------------------------------------------------
    def _norm(self, x: Tensor, weight: Tensor) -> Tensor:
        """RMSNorm of x [S, N, H] with per-student weights [S, H]."""
        scale = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.shape.eps)
        return weight[:, None, :] * (x * scale)

    def _rope(self, positions: Tensor) -> Tensor:
        """The rotation of integer ``positions`` as complex numbers [..., head_dim / 2]."""
        freqs = positions.float()[..., None] * self.inv_freq
        return torch.polar(torch.ones_like(freqs), freqs)

    @staticmethod
    def _rotate(x: Tensor, cis: Tensor) -> Tensor:
        """Rotary embedding of x [..., head_dim] (pairs side by side, see ``_pairs``)."""
        pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
        return torch.view_as_real(pairs * cis).flatten(-2)

    def _logits(self, x: Tensor) -> Tensor:
        """Final norm and the output layer: x [S, N, H] -> [S, N, V]."""
        x = self._norm(x, self.params["norm"])
        if self.shape.tied:
            return linear(x, self.params["embed"].transpose(1, 2))
        return linear(x, self.params["lm_head"])

    def _mlp(self, i: int, x: Tensor) -> Tensor:
        h = self._norm(x, self.params[f"{i}.ln2"])
        gate, up = linear(h, self.params[f"{i}.gate_up"]).chunk(2, dim=-1)
        return x + linear(torch.nn.functional.silu(gate) * up, self.params[f"{i}.down"])

    def _qkv(self, i: int, x: Tensor, lead: tuple[int, ...], cis: Tensor):
        """Rotated queries [*lead, heads, hd] and keys, values [*lead, kv_heads, hd]."""
        sh = self.shape
        h = self._norm(x, self.params[f"{i}.ln1"])
        qkv = linear(h, self.params[f"{i}.qkv"]).view(*lead, sh.heads + 2 * sh.kv_heads, sh.head_dim)
        q, k, v = qkv.split([sh.heads, sh.kv_heads, sh.kv_heads], dim=-2)
        return self._rotate(q, cis), self._rotate(k, cis), v

    def _expand_kv(self, t: Tensor, dim: int) -> Tensor:
        """Grouped-query attention: repeat each kv head for its query heads."""
        rep = self.shape.heads // self.shape.kv_heads
        return t if rep == 1 else t.repeat_interleave(rep, dim=dim)

    # ---- prompts ---------------------------------------------------------------------------
    def prompts(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor]], Tensor]:
        """Encode unique prompts ids [S, G, P] (left-padded; ``mask`` 1 on real tokens).

        Returns the last position's hidden state [S, G, H], each layer's keys and values
        [S, G, heads, P, hd] (kv heads repeated for grouped-query attention) and the next
        position of each prompt [S, G]. The last layer runs its queries, output and MLP for
        the last position only: nothing else of it is read.
        """
        S, G, P = ids.shape
        sh = self.shape
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cis = self._rope(positions)[:, :, :, None, :]  # [S, G, P, 1, hd / 2]
        padded = not bool(mask.all())
        keys_ok = mask.bool()[:, :, None, None, :]  # [S, G, 1, 1, P]
        # A left-padding position may attend to nothing real: it attends to itself, so that
        # its (unread) output stays finite; a real position never attends to padding.
        allowed = None
        if padded:
            causal = torch.ones(P, P, dtype=torch.bool).tril()
            allowed = ((causal & keys_ok) | torch.eye(P, dtype=torch.bool)).view(S * G, 1, P, P)
        x = self.params["embed"].gather(1, ids.reshape(S, -1, 1).expand(-1, -1, sh.hidden))
        kv = []
        for i in range(sh.layers):
            q, k, v = self._qkv(i, x, (S, G, P), cis)
            k = self._expand_kv(k.permute(0, 1, 3, 2, 4), 2)  # [S, G, heads, P, hd]
            v = self._expand_kv(v.permute(0, 1, 3, 2, 4), 2)
            kv.append((k, v))
            if i == sh.layers - 1:  # the last position's query only
                q = q[:, :, -1:].permute(0, 1, 3, 2, 4)  # [S, G, heads, 1, hd]
                scores = q @ k.transpose(-1, -2) / math.sqrt(sh.head_dim)
                if padded:
                    scores = scores.masked_fill(~keys_ok, NEG_INF)
                att = _softmax(scores) @ v  # [S, G, heads, 1, hd]
                x = x.view(S, G, P, sh.hidden)[:, :, -1]
                x = x + linear(att.reshape(S, G, sh.heads * sh.head_dim), self.params[f"{i}.o"])
                return self._mlp(i, x), kv, mask.sum(-1)
            q = q.permute(0, 1, 3, 2, 4).reshape(S * G, sh.heads, P, sh.head_dim)
            att = torch.nn.functional.scaled_dot_product_attention(
                q, k.reshape(S * G, sh.heads, P, sh.head_dim), v.reshape(S * G, sh.heads, P, sh.head_dim),
                attn_mask=allowed, is_causal=not padded,
            )  # fused (see ``continue_``)
            att = att.view(S, G, sh.heads, P, sh.head_dim).permute(0, 1, 3, 2, 4).reshape(S, G * P, -1)
            x = x + linear(att, self.params[f"{i}.o"])
            x = self._mlp(i, x)
        raise ValueError("Expects a model with at least one layer")

    # ---- completions -----------------------------------------------------------------------
    def continue_(
        self, tokens: Tensor, positions: Tensor, prompt_kv: list[tuple[Tensor, Tensor]], prompt_keys: Tensor
    ) -> Tensor:
        """Hidden states of completion tokens [S, G, n, C] that follow their group's prompt
        (teacher forcing: the training and scoring path; ``Decoder`` samples).

        Each token attends to its group's prompt (``prompt_keys`` [S, G, P]: True on real
        prompt tokens) and causally to the earlier tokens of its own row. Returns
        [S, G, n, C, H].

        Attention is torch's fused ``scaled_dot_product_attention`` over each row's prompt
        keys (a view shared by the group's n samples until the kernel reads it) followed by
        its own: forward and backward without materialising the scores, 2.5x faster than
        the explicit softmax at an update pass's shapes (docs/scale.md); its sums do not
        depend on the thread count (``tests/test_recorded_rewards.py``).
        """
        S, G, n, C = tokens.shape
        sh = self.shape
        cis = self._rope(positions)[..., None, :]  # [S, G, n, C, 1, hd / 2]
        x = self.params["embed"].gather(1, tokens.reshape(S, -1, 1).expand(-1, -1, sh.hidden))
        P = prompt_keys.shape[-1]
        rows = S * G * n
        causal = torch.ones(C, C, dtype=torch.bool).tril()
        allowed = torch.cat(
            [prompt_keys[:, :, None, None, :].expand(S, G, n, C, P), causal.expand(S, G, n, C, C)], dim=-1
        ).reshape(rows, 1, C, P + C)
        for i in range(sh.layers):
            q, k, v = self._qkv(i, x, (S, G, n, C), cis)  # [S, G, n, C, heads, hd]
            pk, pv = prompt_kv[i]  # [S, G, heads, P, hd]
            keys = torch.cat(
                [pk[:, :, None].expand(S, G, n, sh.heads, P, sh.head_dim),
                 self._expand_kv(k.transpose(3, 4), 3)], dim=-2,
            ).reshape(rows, sh.heads, P + C, sh.head_dim)
            values = torch.cat(
                [pv[:, :, None].expand(S, G, n, sh.heads, P, sh.head_dim),
                 self._expand_kv(v.transpose(3, 4), 3)], dim=-2,
            ).reshape(rows, sh.heads, P + C, sh.head_dim)
            q = q.transpose(3, 4).reshape(rows, sh.heads, C, sh.head_dim)
            att = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)
            att = att.view(S, G, n, sh.heads, C, sh.head_dim).transpose(3, 4)
            x = x + linear(att.reshape(S, G * n * C, sh.heads * sh.head_dim), self.params[f"{i}.o"])
            x = self._mlp(i, x)
        return x.view(S, G, n, C, sh.hidden)

    def logits(self, x: Tensor) -> Tensor:
        """Output logits of hidden states [S, ..., H] -> [S, ..., V]."""
        S, H = x.shape[0], x.shape[-1]
        return self._logits(x.reshape(S, -1, H)).view(*x.shape[:-1], self.shape.vocab)

    def completion_logprobs(self, prompt_ids: Tensor, prompt_mask: Tensor, completions: Tensor) -> Tensor:
        """Log-probs of completion tokens [S, G, n, C] after their group's prompt [S, G, P]:
        [S, G, n, C]. The caller masks positions past each row's end."""
        last, kv, start = self.prompts(prompt_ids, prompt_mask)
        S, G, n, C = completions.shape
        first = self.logits(last)[:, :, None, None, :].expand(S, G, n, 1, self.shape.vocab)
        if C > 1:
            positions = start[:, :, None, None] + torch.arange(C - 1)
            hidden = self.continue_(
                completions[..., :-1], positions.expand(S, G, n, C - 1), kv, prompt_mask.bool()
            )
            logits = torch.cat([first, self.logits(hidden)], dim=3)
        else:
            logits = first
        return _log_softmax(logits).gather(-1, completions[..., None]).squeeze(-1)


def linear(x: Tensor, w: Tensor) -> Tensor:
    """``torch.bmm(x, w)`` for stacked students: x [S, M, in], w [S, in, out].

    One student and one row is a matrix-vector product, which MKL may split along ``in``
    across threads, so its sum would depend on the thread count; that case is run as two
    equal rows (a matrix product, whose sums do not split) and the first is kept."""
    if x.shape[0] == 1 and x.shape[1] == 1:
        return torch.bmm(x.expand(1, 2, x.shape[2]), w)[:, :1]
    return torch.bmm(x, w)


def _log_softmax(x: Tensor) -> Tensor:
    """``log_softmax`` over the last dim as ``x - logsumexp(x)``.

    torch's fused CPU kernels sum in an order that depends on the thread count in their
    backward: softmax's for a dim that is not a multiple of 16, log_softmax's for some
    layouts of its incoming gradient (a gather's). The gradient of this form is made of
    elementwise ops and a last-dim sum, so gradients, and the runs, are equal at 1 and 2
    threads (``tests/test_recorded_rewards.py``), and ``soar_env.threads`` may change the
    thread count under load without changing a result."""
    return x - torch.logsumexp(x, dim=-1, keepdim=True)


def _softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim, as ``exp`` of ``_log_softmax`` (see there)."""
    return _log_softmax(scores).exp()


def take_groups(t: Tensor, order: Tensor) -> Tensor:
    """Groups ``order`` [S, G'] of a tensor laid out [S, G, ...]: one ``index_select`` of
    whole groups (a ``gather`` with an index as large as the output was several times slower)."""
    S, G = t.shape[:2]
    flat = (order + torch.arange(S, device=order.device)[:, None] * G).flatten()
    return t.flatten(0, 1).index_select(0, flat).view(*order.shape, *t.shape[2:])
