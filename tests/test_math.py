"""SOAR-MATH-v0 end to end on CPU: a small Llama built locally, a MATH-format file, Math-Verify."""

import json

import gymnasium as gym
import pytest
from conftest import build_chat_llama
from gymnasium.utils.env_checker import check_env

import soar_env  # noqa: F401
from soar_env.rl import RLOOConfig

PROBLEMS = [
    ("What is $1+1$?", "The sum is $\\boxed{2}$."),
    ("Compute $\\frac{1}{2}+\\frac{1}{4}$.", "It is $\\boxed{\\frac{3}{4}}$."),
    ("Solve $x^2=9$ for $x>0$.", "$\\boxed{3}$"),
    ("What is $2^{10}$?", "$\\boxed{1024}$"),
    ("Simplify $\\sqrt{8}$.", "$\\boxed{2\\sqrt{2}}$"),
    ("What is $7 \\cdot 6$?", "$\\boxed{42}$"),
]


@pytest.fixture(scope="module")
def math_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("math")
    data = root / "math_test.jsonl"
    data.write_text("".join(json.dumps({"problem": q, "solution": s, "level": "Level 5"}) + "\n"
                            for q, s in PROBLEMS))
    return str(build_chat_llama(root / "llama")), str(data)


def _make(student, dataset, env_id="SOAR-MATH-v0", **extra):
    fast = dict(student=student, dataset=dataset, hard_k=2, reward_questions=2, dataset_size=2,
                inner_steps=1, group_size=2, rounds=2, accuracy="greedy", hard_candidates=6,
                rl=RLOOConfig(questions_per_step=2, samples_per_question=2, max_new_tokens=6))
    return gym.make(env_id, **{**fast, **extra})


def test_math_env_reset_and_step(math_setup):
    env = _make(*math_setup)
    obs, info = env.reset(seed=0)
    assert "<question>" in obs["prompt"] and "\\boxed" in obs["prompt"]
    assert info["hard_set"]["candidates"] == 6  # a random model solves nothing: all hard
    raw = ("<question>What is $3+4$?</question><answer>\\boxed{7}</answer>"
           "<question>Half of $10$?</question><answer>\\boxed{5}</answer><question>broken")
    obs, reward, terminated, truncated, info = env.step(raw)
    assert info["valid_problems"] == 2 and info["invalid_problems"] == 1
    assert reward == pytest.approx(info["run_rewards"][0]) and not terminated
    _, reward, _, _, info = env.step([("Empty answer?", "\\boxed{}"), ("", "1")])
    assert info["valid_problems"] == 0 and reward == 0.0
    # The paper's rejections: no \boxed in the raw format, an answer Math-Verify cannot parse.
    raw = ("<question>Unboxed?</question><answer>7</answer>"
           "<question>Broken LaTeX?</question><answer>\\boxed{\\sqrt}</answer>"
           "<question>Fine?</question><answer>\\boxed{\\frac{1}{2}}</answer>")
    _, _, _, _, info = env.step(raw)
    # dataset_size is 2: the third pair is counted, not used (raw text holds at most n problems).
    assert info["valid_problems"] == 0 and info["invalid_problems"] == 3
    assert any("boxed" in e for e in info["parse_errors"])
    assert any("Math-Verify cannot parse" in e for e in info["parse_errors"])
    assert any("beyond the dataset size 2" in e for e in info["parse_errors"])
    # Unicode a math teacher writes is fine; control characters make only that problem invalid.
    action = [("What is $3 × 4$, with π ≤ 4?", "\\boxed{12}"), ("Bell\x07?", "\\boxed{1}")]
    _, _, _, _, info = env.step(action)
    assert info["valid_problems"] == 1 and info["invalid_problems"] == 1
    assert "unprintable characters" in info["parse_errors"][0]


@pytest.mark.parametrize("env_id", ["SOAR-MATH-v0", "SOAR-HARP-v0", "SOAR-CHAMP-v0"])
def test_math_ids_pass_check_env(math_setup, env_id):
    # Offline, every math id needs a local student; CHAMP ships its data (the first 6 here).
    student, dataset = math_setup
    check_env(_make(student, "champ" if env_id == "SOAR-CHAMP-v0" else dataset, env_id).unwrapped)


def test_every_registered_id_is_covered_by_check_env():
    # The embedded ids are checked by tests/test_env.py (read from the registry); the data-backed ids here.
    ids = {k for k in gym.registry if k.startswith("SOAR-") and not k.startswith("SOAR-Tiny-")}
    assert ids == {"SOAR-MATH-v0", "SOAR-HARP-v0", "SOAR-CHAMP-v0"}


def test_math_config_errors(math_setup):
    with pytest.raises(ValueError, match="accuracy='exact'"):
        _make(*math_setup, accuracy="exact")
    with pytest.raises(FileNotFoundError):
        gym.make("SOAR-MATH-v0", student=math_setup[0], dataset="/nonexistent/math.jsonl").reset(seed=0)


def test_math_id_without_arguments_names_what_is_missing():
    with pytest.raises(ValueError, match=r"expects dataset= .*none was given") as err:
        gym.make("SOAR-MATH-v0")
    assert "student" not in str(err.value)  # the preset has a student default
