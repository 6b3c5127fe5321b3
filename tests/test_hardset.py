import json

import pytest

from soar_env.hardset import HardSet, build_hard_set, success_counts


@pytest.fixture()
def candidates(domain):
    return domain.problems(6, [1], seed=0) + domain.problems(10, [20], seed=0)


def test_success_counts_separate_easy_from_hard(student, domain, candidates):
    counts = success_counts(student, domain, candidates, k=16, max_new_tokens=44)
    assert all(c > 0 for c in counts[:6])  # one-step chains: p ~ 0.4-0.6 per sample
    assert all(c == 0 for c in counts[6:])  # twenty steps: p ~ 1e-6


def test_fail_at_k_split_and_cache(student, domain, candidates, tmp_path, monkeypatch):
    hard = build_hard_set(student, domain, candidates, k=16, seed=0, max_new_tokens=44,
                          cache_dir=tmp_path)
    assert len(hard.train) == len(hard.test) == 5
    kept = {p.question for p in hard.train + hard.test}
    assert kept == {p.question for p in candidates[6:]}
    assert not {p.question for p in hard.train} & {p.question for p in hard.test}
    assert hard.meta["solved_at_least_once"] == 6

    calls = []
    real_sample = student.sample
    monkeypatch.setattr(student, "sample", lambda *a, **k: calls.append(1) or real_sample(*a, **k))
    again = build_hard_set(student, domain, candidates, k=16, seed=0, max_new_tokens=44,
                           cache_dir=tmp_path)
    assert calls == [] and again.train == hard.train and again.test == hard.test

    other_split = build_hard_set(student, domain, candidates, k=16, seed=1, max_new_tokens=44,
                                 cache_dir=tmp_path)
    assert calls  # a new key samples again
    assert {p.question for p in other_split.train} != {p.question for p in hard.train}


def test_corrupted_cache_is_rebuilt(student, domain, candidates, tmp_path):
    hard = build_hard_set(student, domain, candidates[4:8], k=8, seed=0, max_new_tokens=44,
                          cache_dir=tmp_path)
    (cached,) = tmp_path.glob("hardset-*.json")
    cached.write_text("{not json")
    rebuilt = build_hard_set(student, domain, candidates[4:8], k=8, seed=0, max_new_tokens=44,
                             cache_dir=tmp_path)
    assert rebuilt.train == hard.train
    assert json.loads(cached.read_text())["meta"]["k"] == 8


def test_hard_set_json_roundtrip(domain):
    problems = domain.problems(4, [3], seed=0)
    hard = HardSet(problems[:2], problems[2:], {"k": 4})
    assert HardSet.from_json(hard.to_json()).test == problems[2:]


def test_bad_arguments(student, domain):
    with pytest.raises(ValueError, match="candidate"):
        build_hard_set(student, domain, [], k=4)
    with pytest.raises(ValueError, match="k expects"):
        build_hard_set(student, domain, domain.problems(1, [1], seed=0), k=0)


def test_cache_key_follows_the_prompt_format(student, domain, candidates, tmp_path):
    """A changed prompt format (or chat template) is a different hard set, not a cache hit."""
    from types import SimpleNamespace

    first = build_hard_set(student, domain, candidates[4:8], k=4, seed=0, max_new_tokens=44,
                           cache_dir=tmp_path)
    reformatted = SimpleNamespace(student_prompt=lambda q: " " + domain.student_prompt(q),
                                  grade_batch=domain.grade_batch)
    second = build_hard_set(student, reformatted, candidates[4:8], k=4, seed=0, max_new_tokens=44,
                            cache_dir=tmp_path)
    assert len(list(tmp_path.glob("hardset-*.json"))) == 2
    assert first.meta["key"] != second.meta["key"]
