"""Each example runs as a user would run it, at a tiny budget."""

import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each test here runs for tens of seconds

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_one_round():
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py"), "--rounds", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert sum(line.startswith("round 0 step") for line in lines) == 4
    assert lines[-1].startswith("value per length:")


def _run(name, *args, cwd):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                            timeout=900, cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_compare_rewards_runs_at_a_tiny_budget(tmp_path):
    out = _run("compare_rewards.py", "--seeds", "1", "--rounds", "2", "--eval-steps", "3", "--out", "cmp",
               "--set", "dataset_size=8", "inner_steps=2", "reward_questions=16", cwd=tmp_path)
    assert "Grounded-T" in out and "Intrinsic-T" in out and "Hard-Only" in out
    assert "Vendi" in out and (tmp_path / "cmp" / "compare_rewards.png").is_file()
    # It reads the run against the committed leaderboard of its id (the default's).
    import json

    from soar_env import DEFAULT_ENV

    assert DEFAULT_ENV == "SOAR-Tiny-v4"
    board = json.loads((EXAMPLES.parent / "docs/results/tiny-v4/leaderboard.json").read_text())
    grounded = next(row for row in board["leaderboard"] if row["variant"] == "Grounded-T")["pass@1"]
    assert "committed leaderboard (docs/results/tiny-v4/leaderboard.json" in out
    assert f"{grounded['mean']:.3g} ± {grounded['ci95']:.2g}" in out


def test_new_teacher_runs_at_a_tiny_budget(tmp_path):
    out = _run("new_teacher.py", "--rounds", "1", "--seeds", "1", "--eval-steps", "2", cwd=tmp_path)
    assert "best length after 1 rounds" in out and "hill-climb-T" in out and "Hard-Only" in out


def test_sb3_teacher_example_runs_at_a_tiny_budget(tmp_path):
    out = _run("sb3_teacher.py", "--timesteps", "64", "--dataset-size", "4", "--inner-steps", "1",
               "--out", "sb3", cwd=tmp_path)
    assert "PPO trained for 64 env steps" in out and "round 1: reward" in out
