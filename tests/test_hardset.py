import json
import os
import subprocess
import sys

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
    umask = os.umask(0)
    os.umask(umask)
    (cached,) = tmp_path.glob("hardset-*.json")
    assert cached.stat().st_mode & 0o777 == 0o666 & ~umask  # readable by all, as before

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


@pytest.mark.parametrize("damage", [b"{not json", b"\xff\xfe\x00binary", b"[]", b'{"train": 1}',
                                    b'{"train": [], "test": [], "meta": {"key": "stale"}}'])
def test_corrupted_cache_is_rebuilt(student, domain, candidates, tmp_path, damage):
    """Invalid JSON, non-UTF-8 bytes, a wrong shape or another key: rebuilt with a warning."""
    hard = build_hard_set(student, domain, candidates[4:8], k=8, seed=0, max_new_tokens=44,
                          cache_dir=tmp_path)
    (cached,) = tmp_path.glob("hardset-*.json")
    cached.write_bytes(damage)
    with pytest.warns(UserWarning, match="Ignoring hard-set file"):
        rebuilt = build_hard_set(student, domain, candidates[4:8], k=8, seed=0, max_new_tokens=44,
                                 cache_dir=tmp_path)
    assert rebuilt.train == hard.train and rebuilt.source == "built"
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


def test_unwritable_cache_fails_before_sampling(student, domain, candidates, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SOAR_ENV_CACHE", str(blocker / "cache"))  # a folder under a file: never writable
    monkeypatch.setattr(student, "sample", lambda *a, **k: pytest.fail("sampled before the check"))
    with pytest.raises(OSError, match=r"cache folder .*a-file/cache is not writable.*SOAR_ENV_CACHE") as err:
        build_hard_set(student, domain, candidates[4:8], k=4, max_new_tokens=44, shipped_dirs=())
    assert "\n" not in str(err.value)


CONCURRENT_BUILD = """
import os, sys, time, pathlib
barrier, calls, real_replace = pathlib.Path(sys.argv[1]), [0], os.replace

def replace(src, dst):  # every writer waits at each rename until all three are there
    calls[0] += 1
    (barrier / f"{calls[0]}-{os.getpid()}").touch()
    deadline = time.time() + 60
    while len(list(barrier.glob(f"{calls[0]}-*"))) < 3 and time.time() < deadline:
        time.sleep(0.01)
    real_replace(src, dst)

os.replace = replace
from soar_env.embedded import load_tiny_student, tiny_domain
from soar_env.hardset import build_hard_set
domain = tiny_domain()
hard = build_hard_set(load_tiny_student(), domain, domain.problems(6, [20], seed=0), k=4,
                      max_new_tokens=44, shipped_dirs=())
print("hard", hard.meta["hard"], hard.source)
"""


@pytest.mark.slow
def test_concurrent_builds_all_succeed(tmp_path):
    """Three processes build one hard set at once; their renames are forced to interleave."""
    barrier, cache = tmp_path / "barrier", tmp_path / "cache"
    barrier.mkdir()
    env = {**os.environ, "SOAR_ENV_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_BUILD, str(barrier)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0, err[-2000:]
        assert "hard 6 built" in out
    assert [f.name for f in cache.iterdir()] == [next(cache.glob("hardset-*.json")).name]


@pytest.mark.parametrize("damaged_second_chunk", [False, True])
def test_interrupted_build_resumes_from_saved_chunks(student, domain, candidates, tmp_path, monkeypatch,
                                                     damaged_second_chunk):
    settings = dict(k=8, seed=0, max_new_tokens=44, sequences_per_batch=32, shipped_dirs=())
    whole = build_hard_set(student, domain, candidates, cache_dir=tmp_path / "whole", **settings)

    calls, real_sample = [], student.sample

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the third chunk of four
        return real_sample(*args, **kwargs)

    monkeypatch.setattr(student, "sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_hard_set(student, domain, candidates, cache_dir=tmp_path / "cut", **settings)
    saved = sorted((tmp_path / "cut").glob("hardset-*.chunk*.json"))
    assert len(saved) == 2
    if damaged_second_chunk:  # e.g. a disk error: resume after the first chunk only
        saved[1].write_bytes(b"\xff")

    calls.clear()
    monkeypatch.setattr(student, "sample", lambda *a, **k: calls.append(1) or real_sample(*a, **k))
    resumed = build_hard_set(student, domain, candidates, cache_dir=tmp_path / "cut", **settings)
    assert len(calls) == (3 if damaged_second_chunk else 2)  # the unfinished chunks only
    assert (resumed.train, resumed.test, resumed.meta) == (whole.train, whole.test, whole.meta)
    assert [f.name for f in (tmp_path / "cut").iterdir()] == [f"hardset-{whole.meta['key']}.json"]


def test_shipped_file_is_read_by_key_and_a_mismatch_rebuilt(student, domain, candidates, tmp_path,
                                                            monkeypatch):
    settings = dict(k=4, seed=0, max_new_tokens=44)
    built = build_hard_set(student, domain, candidates[4:8], cache_dir=tmp_path / "a", **settings)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (cached,) = (tmp_path / "a").glob("hardset-*.json")
    (shipped / cached.name).write_text(cached.read_text())
    monkeypatch.setattr(student, "sample", lambda *a, **k: pytest.fail("sampled a shipped set"))
    hit = build_hard_set(student, domain, candidates[4:8], cache_dir=tmp_path / "b",
                         shipped_dirs=[shipped], **settings)
    assert hit.source == "shipped" and hit == built and not (tmp_path / "b").exists()

    monkeypatch.undo()
    stale = json.loads(cached.read_text())
    stale["meta"]["key"] = "0" * 24  # a shipped file whose content is another key's
    (shipped / cached.name).write_text(json.dumps(stale))
    with pytest.warns(UserWarning, match="its key is"):
        rebuilt = build_hard_set(student, domain, candidates[4:8], cache_dir=tmp_path / "c",
                                 shipped_dirs=[shipped], **settings)
    assert rebuilt.source == "built" and rebuilt == built


def test_hub_id_without_split_defaults_to_test_offline(tmp_path, monkeypatch):
    """'org/name' used to fail unpacking before any network call; now split 'test' is asked
    for and the offline error says how to name another split."""
    pytest.importorskip("datasets")
    from soar_env.domains.math import load_problems

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SOAR_ENV_CACHE", str(tmp_path))
    expected = {"org/name": "test", "org/name:train": "train", "org/name:cfg:validation": "validation"}
    for dataset, split in expected.items():
        with pytest.raises(FileNotFoundError, match=r"org/name.*'org/name:SPLIT'") as err:
            load_problems(dataset)
        assert "unpack" not in str(err.value) and f"asked for split {split!r}" in str(err.value)


@pytest.mark.parametrize(("env_id", "folder"), [("SOAR-Tiny-v0", 0), ("SOAR-Tiny-v1", 1)])
def test_tiny_env_first_reset_reads_the_shipped_hard_set(tmp_path, monkeypatch, env_id, folder):
    """Each tiny id's default hard set ships with its model: an empty cache, no sampling."""
    import gymnasium as gym

    import soar_env  # noqa: F401
    from soar_env.hardset import SHIPPED_DIRS

    (shipped,) = SHIPPED_DIRS[folder].glob("hardset-*.json")  # made by scripts/ship_tiny_hardset.py
    monkeypatch.setenv("SOAR_ENV_CACHE", str(tmp_path / "cache"))
    env = gym.make(env_id, disable_env_checker=True)
    monkeypatch.setattr(env.unwrapped.student, "sample",
                        lambda *a, **k: pytest.fail("sampled a hard set that ships"))
    _, info = env.reset(seed=0)
    hard = env.unwrapped.hard_set
    assert hard.source == "shipped" and shipped.name == f"hardset-{info['hard_set']['key']}.json"
    assert (info["hard_set"]["k"], info["hard_set"]["candidates"]) == (128, 256)
    assert len(hard.train) >= 64 and not (tmp_path / "cache").exists()
