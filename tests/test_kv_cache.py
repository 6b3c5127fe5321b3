"""The sampler's KV cache: finished rows leave in the append's copy, samples unchanged."""

from types import SimpleNamespace

import torch
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from soar_env import embedded
from soar_env.student import kv_cache
from soar_env.student.hf import HFStudent


def _filled(layer, rows=5, length=3):
    keys = torch.randn(rows, 2, length, 4)
    layer.update(keys, keys + 1)
    return layer


def test_drops_compose_and_the_next_append_equals_cat_of_the_kept_rows():
    cache = SimpleNamespace(layers=[_filled(DynamicLayer())])
    keys, values = cache.layers[0].keys.clone(), cache.layers[0].values.clone()
    assert kv_cache.compacting(cache)
    layer = cache.layers[0]
    first, second = torch.tensor([0, 2, 3, 4]), torch.tensor([1, 3])  # rows 2 and 4 stay
    layer.batch_select_indices(first)
    layer.batch_select_indices(second)
    assert layer.get_seq_length() == 3
    new_keys = torch.randn(2, 2, 1, 4)
    got_keys, got_values = layer.update(new_keys, new_keys * 2)
    assert torch.equal(got_keys, torch.cat([keys[[2, 4]], new_keys], dim=-2))
    assert torch.equal(got_values, torch.cat([values[[2, 4]], new_keys * 2], dim=-2))
    assert got_keys.is_contiguous()  # attention is about twice as slow on strided keys on CPU
    appended, _ = layer.update(new_keys, new_keys)  # no drop pending: a plain append
    assert appended.shape == (2, 2, 5, 4)


def test_other_cache_layers_keep_their_own_behaviour():
    sliding = SimpleNamespace(layers=[_filled(DynamicLayer()), _filled(DynamicSlidingWindowLayer(8))])
    before = list(sliding.layers)
    assert not kv_cache.compacting(sliding)
    assert sliding.layers == before
    assert not kv_cache.compacting(SimpleNamespace(layers=[DynamicLayer()]))  # nothing cached yet
    assert not kv_cache.compacting(SimpleNamespace())  # a cache without layers


def test_samples_equal_those_of_transformers_own_cache(monkeypatch):
    """Seeded sampling of padded prompts, rows finishing at different steps: bit for bit."""
    student = HFStudent.from_pretrained(embedded.TINY_CHAIN_PATH, device="cpu")
    domain = embedded.tiny_domain()
    problems = domain.problems(16, range(1, 21), seed=1)
    prompts = [student.chat_prompt(domain.student_prompt(p.question)) for p in problems]
    prompts = [p[: len(p) - i % 4] for i, p in enumerate(prompts)]  # lengths differ: left padding
    calls = []
    real = kv_cache.compacting
    monkeypatch.setattr(kv_cache, "compacting", lambda cache: calls.append(real(cache)) or calls[-1])
    ours = student.sample(prompts, 4, 40, 1.0, torch.Generator().manual_seed(7))
    assert calls == [True]
    monkeypatch.setattr(kv_cache, "compacting", lambda cache: False)
    theirs = student.sample(prompts, 4, 40, 1.0, torch.Generator().manual_seed(7))
    lengths = ours.completion_mask.sum(1)
    assert lengths.min() < lengths.max()  # rows left the batch at different steps
    assert not bool(ours.prompt_mask.all())  # and prompts were padded
    assert torch.equal(ours.completion_ids, theirs.completion_ids)
    assert torch.equal(ours.completion_mask, theirs.completion_mask)
    assert ours.texts == theirs.texts
