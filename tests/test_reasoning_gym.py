"""reasoning-gym tasks as soar-env domains: candidates, prompts, grading, registration, the env."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("reasoning_gym")

from soar_env.config import PRESETS  # noqa: E402
from soar_env.domains.base import make_domain, registered_domains  # noqa: E402
from soar_env.domains.reasoning_gym import ReasoningGymDomain, from_json, to_json  # noqa: E402
from soar_env.problems import CHARSET, Problem  # noqa: E402


@pytest.fixture(scope="module")
def arithmetic():
    return ReasoningGymDomain("basic_arithmetic", size=32)


def _through_json(problems):
    return [Problem.from_dict(json.loads(json.dumps(p.to_dict()))) for p in problems]


def _answered(answer):
    return f"Let me think.\n<answer>{answer}</answer>"


# ---- candidates ------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["basic_arithmetic", "leg_counting"])
def test_candidates_are_seeded_problems_that_survive_json(task):
    domain = ReasoningGymDomain(task, size=20, seed=3)
    problems = domain.hard_candidates(12, seed=0)
    assert len(problems) == 12
    assert all(isinstance(p, Problem) and p.question and isinstance(p.answer, str) and p.answer
               for p in problems)
    assert all(p.metadata["reasoning_gym"]["task"] == task for p in problems)
    restored = _through_json(problems)
    assert [p.to_dict() for p in restored] == [p.to_dict() for p in problems]
    assert ReasoningGymDomain(task, size=20, seed=3).hard_candidates(12, seed=0) == problems
    assert ReasoningGymDomain(task, size=20, seed=4).hard_candidates(12, seed=0) != problems
    # At most the dataset's size.
    assert len(domain.hard_candidates(100, seed=0)) == 20


def test_task_config_reaches_the_dataset():
    domain = ReasoningGymDomain("basic_arithmetic", size=8, min_terms=2, max_terms=2, min_digits=1,
                                max_digits=1)
    metadata = [p.metadata["reasoning_gym"]["metadata"] for p in domain.hard_candidates(8, 0)]
    assert {m["num_terms"] for m in metadata} == {2} and {m["num_digits"] for m in metadata} == {1}


def test_json_form_keeps_tuples_and_non_string_keys():
    value = {"grid": ((1, 2), (3, 4)), "colors": {0: [1, 2], 7: None}, "x": np.float64(0.5),
             "arr": np.arange(3), "flag": True}
    data = json.loads(json.dumps(to_json(value)))
    assert from_json(data) == {"grid": ((1, 2), (3, 4)), "colors": {0: [1, 2], 7: None}, "x": 0.5,
                               "arr": [0, 1, 2], "flag": True}


def test_arc_grading_survives_the_json_cache():
    # ARC's checker compares the parsed board (tuples) with the metadata's: a list would fail.
    domain = ReasoningGymDomain("arc_agi", size=2)
    problems = _through_json(domain.hard_candidates(2, 0))
    assert domain.grade_batch([_answered(p.answer) for p in problems], problems) == [1.0, 1.0]


def test_tasks_without_a_single_answer_give_empty_answers():
    domain = ReasoningGymDomain("graph_color", size=2)
    problems = _through_json(domain.hard_candidates(2, 0))
    assert [p.answer for p in problems] == ["", ""]
    assert domain.grade_batch([_answered(""), "garbage"], problems) == [0.0, 0.0]


# ---- prompts and teacher text ----------------------------------------------------------------
def test_prompts(arithmetic):
    question = arithmetic.hard_candidates(1, 0)[0].question
    prompt = arithmetic.student_prompt(question)
    assert question in prompt and "<answer>" in prompt and "</answer>" in prompt
    teacher = arithmetic.teacher_prompt
    assert "basic_arithmetic" in teacher and "An example of this task:\n<question>Calculate" in teacher
    assert "<question>" in teacher and "\\boxed{" in teacher
    # The example is no candidate: a teacher must not see (and copy) a hard-set question.
    assert not any(p.question in teacher for p in arithmetic.hard_candidates(32, 0))
    # It is the env's observation: at most 1024 printable-ASCII characters.
    assert len(teacher) <= 1024 and set(teacher) <= CHARSET
    assert arithmetic.name == "reasoning-gym:basic_arithmetic"


def test_teacher_prompt_without_a_fitting_example_still_names_the_task():
    teacher = ReasoningGymDomain("graph_color", size=4).teacher_prompt  # no single answers
    assert "graph_color" in teacher and "<question>" in teacher and "example" not in teacher


def test_parse_teacher_sample(arithmetic):
    good = "Sure.\n<question>Calculate 2 + 3.</question>\n<answer>\\boxed{5}</answer>"
    assert arithmetic.parse_teacher_sample(good) == ("Calculate 2 + 3.", "5")
    unboxed = "<question>Calculate 2 + 3.</question><answer>5</answer>"
    assert arithmetic.parse_teacher_sample(unboxed) == "answer without \\boxed{}"
    for malformed in ("Calculate 2 + 3. The answer is 5.", "<question>Calculate 2 + 3."):
        assert arithmetic.parse_teacher_sample(malformed) == "no <question>/<answer> pair"


def test_validate_batch(arithmetic):
    long = "1" * (arithmetic.max_text + 1)
    reasons = arithmetic.validate_batch([
        ("Calculate 2 + 3.", "5"), ("Calculate 2 + 3.", "\\boxed{5}"), ("  ", "5"), ("Q?", ""),
        ("Q?", "\\boxed{}"), ("Q?", long), (long, "5"), ("Q\x00?", "5"), ("Q?", "5\x00"),
    ])
    assert reasons[:2] == [None, None]
    assert reasons[2] == "question: empty" and reasons[3] == reasons[4] == "answer: empty"
    assert reasons[5].startswith("answer: expects at most") and reasons[6].startswith("question:")
    assert reasons[7].startswith("question:") and reasons[8].startswith("answer:")


# ---- grading ---------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["basic_arithmetic", "leg_counting"])
def test_grading_candidates(task):
    domain = ReasoningGymDomain(task, size=8)
    problems = _through_json(domain.hard_candidates(4, 0))
    right = [_answered(p.answer) for p in problems]
    wrong = [_answered(str(int(p.answer) + 1)) for p in problems]
    garbage = ["", "no tags at all", "<answer></answer>", "<answer>\x00\ufffd"]
    completions, targets = right + wrong + garbage, problems * 3
    grades = domain.grade_batch(completions, targets)
    assert grades == [1.0] * 4 + [0.0] * 8
    rewards = domain.reward_batch(completions, targets)
    assert all(0.0 <= r <= 1.0 for r in rewards)
    assert rewards[:8] == grades[:8]


def test_partial_credit_is_a_reward_not_a_grade(arithmetic):
    # reasoning-gym's default checker credits an answer that contains the reference.
    problem = arithmetic.hard_candidates(1, 0)[0]
    completion = _answered(f"{problem.answer} (final)")
    [reward] = arithmetic.reward_batch([completion], [problem])
    assert 0.0 < reward < 1.0
    assert arithmetic.grade_batch([completion], [problem]) == [0.0]


def test_grading_a_teacher_problem_without_metadata(arithmetic):
    problem = Problem("Calculate 2 + 3.", "5")
    completions = [_answered("5"), _answered(" 5 "), _answered("6"), "five", ""]
    assert arithmetic.grade_batch(completions, [problem] * 5) == [1.0, 1.0, 0.0, 0.0, 0.0]
    rewards = arithmetic.reward_batch(completions, [problem] * 5)
    assert rewards[:3] == [1.0, 1.0, 0.0] and all(0.0 <= r <= 1.0 for r in rewards)


@pytest.mark.parametrize("task", ["word_sorting", "number_sorting"])
def test_teacher_problems_of_checkers_that_need_metadata_match_exactly(task):
    # word_sorting's checker raises without metadata; number_sorting's scores everything 0.
    domain = ReasoningGymDomain(task, size=2)
    reference = domain.hard_candidates(1, 0)[0]
    problem = Problem(reference.question, reference.answer)  # as a teacher would write it
    completions = [_answered(problem.answer), _answered("something else"), "garbage"]
    assert domain.grade_batch(completions, [problem] * 3) == [1.0, 0.0, 0.0]


def test_a_checker_that_raises_scores_that_completion_zero():
    domain = ReasoningGymDomain("word_sorting", size=2)
    good = domain.hard_candidates(1, 0)[0]
    broken = Problem(good.question, good.answer,
                     {"reasoning_gym": {"task": "word_sorting", "answer": good.answer, "metadata": {}}})
    completions = [_answered(good.answer)] * 2
    assert domain.grade_batch(completions, [broken, good]) == [0.0, 1.0]
    assert domain.reward_batch(completions, [broken, good]) == [0.0, 1.0]


# ---- the Domain protocol and the registry ----------------------------------------------------
def test_domain_protocol_and_registry(arithmetic):
    config = PRESETS["paper"](dataset="basic_arithmetic", hard_candidates=8, hard_seed=5)
    assert make_domain(arithmetic, config) is arithmetic
    assert "reasoning-gym" in registered_domains()
    built = make_domain("reasoning-gym", config)
    assert isinstance(built, ReasoningGymDomain) and built.name == "reasoning-gym:basic_arithmetic"
    assert (built.size, built.seed) == (8, 5)
    assert built.hard_candidates(8, 5) == ReasoningGymDomain("basic_arithmetic", 8, 5).hard_candidates(8, 5)
    assert (built.preset, built.exact_answers, built.default_student) == ("paper", False, None)
    assert built.generator is None and built.solver is None and built.profiler is None
    with pytest.raises(ValueError, match="dataset="):
        make_domain("reasoning-gym", PRESETS["paper"]())


def test_unknown_task_and_missing_package(monkeypatch):
    with pytest.raises(ValueError, match="no task 'no_such_task'"):
        ReasoningGymDomain("no_such_task")
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'soar-env\[reasoning-gym\]'"):
        ReasoningGymDomain("basic_arithmetic")


# ---- the env (needs the env that takes domain=; small random Llama as the student) ----------
@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    from conftest import build_chat_llama

    return str(build_chat_llama(tmp_path_factory.mktemp("rg-llama")))


def _make_env(student, **extra):
    import gymnasium as gym

    import soar_env  # noqa: F401 (registers the ids)
    from soar_env.rl import RLOOConfig

    settings = dict(student=student, hard_candidates=16, hard_k=2, reward_questions=4, dataset_size=4,
                    group_size=2, inner_runs=1, inner_steps=1, accuracy="greedy",
                    rl=RLOOConfig(questions_per_step=2, samples_per_question=2, max_new_tokens=16))
    return gym.make("SOAR-MATH-v0", **{**settings, **extra})


def test_env_step_with_a_reasoning_gym_domain(llama):
    env = _make_env(llama, domain=ReasoningGymDomain("basic_arithmetic", size=64))
    obs, info = env.reset(seed=0)
    assert "basic_arithmetic" in obs["prompt"]
    assert env.unwrapped.config.domain == "reasoning-gym:basic_arithmetic"
    # A random student solves nothing: every candidate is hard.
    assert info["hard_set"]["candidates"] == 16
    raw = ("<question>Calculate 2 + 3.</question><answer>\\boxed{5}</answer>"
           "<question>Calculate 4 * 2.</question><answer>\\boxed{8}</answer>"
           "<question>Calculate 9 - 1.</question><answer>\\boxed{8}</answer>"
           "<question>Unboxed?</question><answer>7</answer>")
    obs, reward, terminated, truncated, info = env.step(raw)
    assert info["valid_problems"] == 3 and info["invalid_problems"] == 1
    assert np.isfinite(reward) and not terminated and not truncated


def test_env_by_registered_name_passes_check_env(llama):
    from gymnasium.utils.env_checker import check_env

    env = _make_env(llama, domain="reasoning-gym", dataset="leg_counting")
    assert isinstance(env.unwrapped.domain, ReasoningGymDomain)
    check_env(env.unwrapped)
