"""The evaluation protocol, and `soar-env train` killed mid-run then resumed."""

import csv
import itertools
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soar_env.evaluation import EvalConfig, EvalResult, pass_at_k

SMALL = ["dataset_size=8", "group_size=2", "inner_steps=2", "reward_questions=16"]


def brute_pass_at_k(n, c, k):
    """Fraction of k-subsets of n samples (c correct) that hold a correct one."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 3, 4), (8, 1, 8), (7, 6, 2),
                                   (4, 4, 3)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))


def test_pass_at_k_known_values_and_errors():
    assert pass_at_k(32, 0, 32) == 0.0 and pass_at_k(32, 1, 32) == 1.0
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4) and pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(4, 1, 8)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="ks expects"):
        EvalConfig(samples=16)


def test_eval_summary_interval():
    result = EvalResult("x", [{1: 0.1}, {1: 0.2}, {1: 0.3}])
    s = result.summary()["pass@1"]
    assert s["mean"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1)
    assert s["ci95"] == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=1e-4)  # t(0.975, 2 dof)


class Run:
    """`soar-env train` in a subprocess (1 thread: both runs do the same arithmetic)."""

    def __init__(self, out: Path, *extra: str):
        cmd = [sys.executable, "-m", "soar_agents.cli", "train", "--rounds", "4", "--seed", "1",
               "--eval-seeds", "0", "--out", str(out), "--set", *SMALL, *extra]
        self.log = out.parent / f"{out.name}-{len(list(out.parent.glob(out.name + '-*.log')))}.log"
        with self.log.open("w") as f:  # a file, not a pipe: a full pipe would block the child
            self.proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                         stdout=f, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 600) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text()[-2000:]


def _rewards(out: Path) -> list[str]:
    return [row["charts/reward_mean"] for row in csv.DictReader((out / "rounds.csv").open())]


def test_train_killed_mid_run_resumes_to_the_same_rewards(tmp_path):
    whole = Run(tmp_path / "whole")
    assert whole.wait() == 0, whole.output()
    killed = Run(tmp_path / "cut")
    deadline = time.time() + 600
    while time.time() < deadline:  # kill it once two rounds are logged, in the middle of the run
        path = tmp_path / "cut" / "rounds.csv"
        if path.is_file() and len(path.read_text().splitlines()) >= 3:
            break
        assert killed.proc.poll() is None, killed.output()
        time.sleep(0.05)
    killed.proc.send_signal(signal.SIGKILL)
    killed.wait()
    done = len(_rewards(tmp_path / "cut"))
    assert 2 <= done < 4, "the run must be cut mid-way for this test to mean anything"
    kept = _rewards(tmp_path / "cut")
    resumed = Run(tmp_path / "cut", "--resume")
    assert resumed.wait() == 0, resumed.output()
    assert _rewards(tmp_path / "cut")[:done] == kept  # finished rounds kept
    assert _rewards(tmp_path / "cut") == _rewards(tmp_path / "whole")  # and the rest is the same run
    # Starting over into a folder that holds a run is refused.
    again = Run(tmp_path / "cut")
    assert again.wait() != 0 and "--resume" in again.output()


def test_diversity_measures():
    from soar_env.diagnostics import self_bleu, vendi_score

    assert vendi_score(["a b c"] * 20) == pytest.approx(1.0)
    assert vendi_score(["aaaa", "bbbb", "cccc", "dddd"]) == pytest.approx(4.0)
    assert 1.0 < vendi_score(["7 +1 +2", "7 +1 +3", "5 *2 -1"]) < 3.0
    assert self_bleu(["the same words here"] * 5) == pytest.approx(100.0)
    assert self_bleu(["alpha beta gamma delta", "one two three four", "red green blue black"]) < 5.0


def test_bench_writes_a_leaderboard(tmp_path):
    cmd = [sys.executable, "-m", "soar_agents.cli", "bench", "--teachers", "random", "bandit", "--seeds", "2",
           "--rounds", "1", "--eval-steps", "2", "--out", str(tmp_path), "--set", *SMALL]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    board = (tmp_path / "leaderboard.md").read_text()
    for variant in ("random-T", "bandit-T", "Hard-Only", "base"):
        assert f"| {variant} | 2 |" in board
    assert (tmp_path / "leaderboard.png").is_file()
    assert "Vendi" in board or "vendi" in board
