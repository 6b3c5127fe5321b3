"""Teachers (soar_agents) through their real entry points on SOAR-Tiny-v0, at test size."""

import csv
import math

import gymnasium as gym
import pytest
import torch
from conftest import ROUND, TEACHER_RL

import soar_env  # noqa: F401
from soar_agents import TEACHERS, make_teacher, make_teacher_env, train_teacher
from soar_agents.teachers.soar_teacher import (
    SoarTeacher,
    SoarTeacherConfig,
    TeacherCannotWrite,
    problems_from_texts,
)
from soar_env.domains.math import MathDomain
from soar_env.embedded import TINY_CHAIN_PATH, tiny_domain
from soar_env.rl import RLOOConfig

SMALL = {**ROUND, "inner_runs": 1, "intrinsic_samples": 4, "rl": RLOOConfig(**TEACHER_RL)}


def small_env(teacher, **extra):
    return make_teacher_env("SOAR-Tiny-v0", teacher, **{**SMALL, **extra})


@pytest.mark.slow
@pytest.mark.parametrize("name", [t for t in TEACHERS if t != "sb3-ppo"])
def test_every_teacher_runs_two_rounds(name, tmp_path):
    if name in ("plr", "learning-progress"):
        pytest.importorskip("syllabus")  # an optional extra (soar-env[syllabus])
    # The prompted teacher needs a model: the shipped tiny one is a local folder.
    settings = {"settings": {"model": str(TINY_CHAIN_PATH)}} if name == "prompted" else {}
    teacher = make_teacher(name, **settings)
    history = train_teacher(teacher, small_env(teacher), rounds=2, seed=0, log_dir=tmp_path, progress=False)
    assert len(history) == 2
    for row in history:
        assert math.isfinite(row["charts/reward_mean"])
        assert row["proposals/proposals"] == 2 * SMALL["dataset_size"]
        assert row["env/invalid_problems"] == 0  # every teacher hands the env valid problems
    rows = list(csv.DictReader((tmp_path / "rounds.csv").open()))
    assert [r["round"] for r in rows] == ["0", "1"]
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tensorboard").iterdir())
    assert (tmp_path / "teacher.safetensors").is_file()


def test_intrinsic_teacher_sets_the_reward_mode():
    teacher = make_teacher("rzero")
    env = small_env(teacher)
    assert env.unwrapped.config.reward_mode == "rzero"
    with pytest.raises(ValueError, match="Expects a teacher name"):
        make_teacher("no-such-teacher")


def test_soar_teacher_learns_and_its_state_round_trips(tmp_path):
    teacher = SoarTeacher()
    env = small_env(teacher)
    train_teacher(teacher, env, rounds=1, seed=3, log_dir=tmp_path, progress=False)
    assert teacher.updates == 1
    start = env.unwrapped.base_weights
    moved = any(not torch.equal(v, start[k]) for k, v in teacher.policy.snapshot().items())
    assert moved, "a teacher update must change the teacher's weights"
    assert all(torch.equal(v, start[k]) for k, v in env.unwrapped.student.snapshot().items()), (
        "the teacher trains a copy: the env's student is untouched"
    )
    # The trained teacher is also a Hugging Face folder that transformers (vLLM, TRL) loads.
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "teacher_pretrained")
    assert all(torch.equal(v, teacher.policy.model.state_dict()[k]) for k, v in exported.state_dict().items())
    assert not (tmp_path / "student_pretrained").exists()  # no promotion, no new student
    # A reloaded teacher proposes exactly what the saved one would.
    other = SoarTeacher()
    other.setup(env.unwrapped, seed=99)
    other.load(tmp_path / "teacher.safetensors")
    obs = {"prompt": env.unwrapped.domain.teacher_prompt}
    assert [p.question for d in teacher.propose(obs, 2) for p in d] == [
        p.question for d in other.propose(obs, 2) for p in d
    ]


def test_checkpoint_errors(tmp_path):
    teacher = SoarTeacher()
    env = _reset(small_env(teacher))
    teacher.setup(env, seed=0)
    with pytest.raises(FileNotFoundError, match="Expects a teacher checkpoint"):
        teacher.load(tmp_path / "missing.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="corrupted"):
        teacher.load(broken)
    other = make_teacher("random")
    other.setup(env, seed=0)
    other.save(tmp_path / "random.pt")
    with pytest.raises(ValueError, match="'soar' teacher"):
        teacher.load(tmp_path / "random.pt")


def _reset(env):
    env.reset(seed=0)
    return env.unwrapped


def test_same_seed_same_teacher_run():
    runs = []
    for _ in range(2):
        teacher = make_teacher("soar")
        history = train_teacher(teacher, small_env(teacher), rounds=1, seed=5, progress=False)
        # Wall-clock seconds are the one thing a seed cannot fix.
        runs.append([{k: v for k, v in row.items() if not k.startswith("time/")} for row in history])
    assert runs[0] == runs[1] and runs[0][0]["charts/reward_mean"] != 0


def test_dataset_advantages_are_leave_one_out():
    teacher = SoarTeacher(SoarTeacherConfig())  # paper rule: no normalisation
    adv, unit = teacher.advantages([1.0, 2.0, 3.0, 6.0])
    assert adv.tolist() == pytest.approx([1 - 11 / 3, 2 - 10 / 3, 3 - 3.0, 6 - 2.0])
    assert unit == pytest.approx(math.sqrt(3.5))  # the malformed penalty's unit: the reward spread
    teacher = SoarTeacher(SoarTeacherConfig.tiny())  # normalised by the round's spread
    adv, unit = teacher.advantages([1.0, 2.0, 3.0, 6.0])
    assert unit == 1.0
    assert adv.tolist() == pytest.approx([x / math.sqrt(3.5) for x in (1 - 11 / 3, 2 - 10 / 3, 0.0, 4.0)])
    assert teacher.advantages([2.0, 2.0])[0].tolist() == [0.0, 0.0]  # no spread, no signal


def test_samples_are_parsed_and_malformed_ones_named():
    domain = tiny_domain()
    good = domain.problems(1, [3], seed=0)[0].question
    items = problems_from_texts(domain, [good + "=", good, "7+1..=", good + "=1,2,3"], solver=True)
    assert items[0].answer == domain.solve(good)
    assert items[1] == "no '=' after the question"
    assert items[2].startswith("question:")
    assert items[3].answer == domain.solve(good)  # the solver answers, whatever the teacher wrote
    math_items = problems_from_texts(
        MathDomain(),
        [
            "<question>What is 2+2?</question><answer>\\boxed{4}</answer>",
            "<question>No box?</question><answer>4</answer>",
            "no tags at all",
            "<question>Bad?</question><answer>\\boxed{\\sqrt}</answer>",
        ],
    )
    assert math_items[0].question == "What is 2+2?" and math_items[0].answer == "4"
    assert math_items[1] == "answer without \\boxed{}"
    assert math_items[2] == "no <question>/<answer> pair"
    assert math_items[3] == "answer: Math-Verify cannot parse it"


def test_a_teacher_that_cannot_write_gets_a_clear_error():
    # 3 tokens can never hold a question and its '=': every sample is malformed.
    teacher = SoarTeacher(SoarTeacherConfig.tiny(max_new_tokens=3, max_sample_batches=2))
    env = small_env(teacher)
    with pytest.raises(TeacherCannotWrite, match="well-formed problems in"):
        train_teacher(teacher, env, rounds=1, progress=False)


class FirstSampleMalformed(SoarTeacher):
    """A teacher whose first sample of each batch counts as malformed (its text kept)."""

    def problems_from_texts(self, texts):
        self.malformed = texts[0]
        return ["pretend it is malformed", *super().problems_from_texts(texts[1:])]


def test_malformed_samples_are_pushed_down():
    teacher = FirstSampleMalformed(SoarTeacherConfig.tiny(max_new_tokens=None))
    env = small_env(teacher)
    env.reset(seed=0)
    teacher.setup(env.unwrapped, seed=0)
    teacher.propose({"prompt": env.unwrapped.domain.teacher_prompt}, 2)
    prompt = teacher.policy.encode_prompts([teacher.prompt])
    sample = teacher.policy.encode_completions([teacher.malformed])
    before = teacher.policy.token_logprobs(*prompt, *sample).sum().item()
    # Equal rewards: no dataset has an advantage, so only the malformed rows are updated.
    assert teacher.learn([1.0, 1.0], [{}, {}])["updated"] == 1.0
    after = teacher.policy.token_logprobs(*prompt, *sample).sum().item()
    assert after < before


def test_bandit_prefers_the_arm_that_pays():
    teacher = make_teacher("bandit", epsilon=0.0)
    env = small_env(teacher)
    env.reset(seed=0)
    teacher.setup(env.unwrapped, seed=0)
    for _ in range(len(teacher.arms)):
        teacher.propose({}, 1)
        arm = teacher.chosen[0]
        teacher.learn([1.0 if arm == 5 else 0.0], [{}])
    for _ in range(3):
        teacher.propose({}, 1)
        assert teacher.chosen == [5]


def test_soar_teacher_on_a_math_env_says_when_its_model_cannot_write(tmp_path):
    from conftest import build_chat_llama

    data = tmp_path / "math.jsonl"
    data.write_text('{"problem": "What is 1+1?", "answer": "2"}\n{"problem": "2+2?", "answer": "4"}\n')
    env = gym.make(
        "SOAR-MATH-v0",
        student=str(build_chat_llama(tmp_path / "llama")),
        dataset=str(data),
        hard_k=2,
        reward_questions=2,
        dataset_size=2,
        inner_steps=1,
        group_size=2,
        rounds=1,
        accuracy="greedy",
        rl=RLOOConfig(questions_per_step=2, samples_per_question=2, max_new_tokens=4),
    )
    teacher = SoarTeacher(SoarTeacherConfig(max_new_tokens=8, max_sample_batches=1))
    with pytest.raises(TeacherCannotWrite, match="0 well-formed"):
        train_teacher(teacher, env, rounds=1, progress=False)
    assert teacher.config.answers == "auto" and not teacher.solver  # math: the teacher answers
