"""A KV cache layer for the sampler in ``hf.py``: finished rows leave in the append's copy.

transformers' ``DynamicLayer`` appends each token with ``torch.cat`` (a copy of the whole
cache) and drops finished rows with advanced indexing (a second, slower copy). When sampling,
rows finish at most steps, so a step paid for both. ``CompactingLayer`` defers the drop to
the next append and does both in one ``index_select`` into the new tensor. The result is the
same contiguous tensor, so attention sees the same shapes, strides and values as before:
samples are equal bit for bit.

Why not a preallocated (static) cache: on CPU, attention over *views* of a larger buffer
took 1.8x as long as over contiguous keys of the same shape, more than the saved copies
(``benchmarks/kv_layout.py``; ``docs/scale.md``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from transformers.cache_utils import DynamicLayer


def _select_append(cache: Tensor, rows: Tensor, new: Tensor) -> Tensor:
    """``cat([cache[rows], new], dim=-2)`` in one copy."""
    length = cache.shape[-2]
    out = cache.new_empty((rows.numel(), cache.shape[1], length + new.shape[-2], cache.shape[-1]))
    torch.index_select(cache, 0, rows, out=out[:, :, :length])
    out[:, :, length:].copy_(new)
    return out


class CompactingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose row drops wait for the next append (one copy, not two).

    Made for one sampling call (``compacting``), where only drops and appends happen.
    """

    pending: Tensor | None = None

    @classmethod
    def adopt(cls, layer: DynamicLayer) -> CompactingLayer:
        new = cls()
        new.__dict__.update(layer.__dict__)
        new.pending = None
        return new

    def batch_select_indices(self, indices: Tensor) -> None:
        # Successive drops before an append compose: rows of rows.
        self.pending = indices if self.pending is None else self.pending[indices]

    def update(self, key_states: Tensor, value_states: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        if self.pending is None:
            return super().update(key_states, value_states, *args, **kwargs)
        self.keys = _select_append(self.keys, self.pending, key_states)
        self.values = _select_append(self.values, self.pending, value_states)
        self.pending = None
        return self.keys, self.values


def compacting(cache) -> bool:
    """Swap the plain dynamic layers of ``cache`` for ``CompactingLayer``s, in place.

    Returns False, leaving the cache as it was, unless every layer is a plain, filled
    ``DynamicLayer`` (sliding windows, quantized or linear-attention layers keep their own
    behaviour).
    """
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not DynamicLayer or not layer.is_initialized for layer in layers):
        return False
    cache.layers = [CompactingLayer.adopt(layer) for layer in layers]
    return True
