"""Math-Verify grading (``soar_env.grading``) and the math domain's data (``soar_env.domains.math``)."""

import json
import logging
import threading
import time

import pytest

from soar_env.domains.math import (
    TEACHER_PROMPT,
    MathDomain,
    load_champ,
    load_math_jsonl,
    load_olympiadbench,
    load_problems,
    math_student_prompt,
)
from soar_env.grading import (
    graded_reward,
    graded_rewards,
    is_correct,
    is_correct_batch,
    last_boxed,
    parses_batch,
)
from soar_env.problems import parse_tagged

# A verdict's 2 s budget is CPU time: its wall time grows with machine load (a bomb took 4.1 s
# at load average 4 on 2 cores), so this is a hang guard, not a measurement.
SLOW_S = 12.0


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    """Start the workers once, so that timings below measure verdicts, not start-up."""
    assert is_correct("\\boxed{1}", "2") is False


def test_last_boxed():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{\\frac{1}{2}") is None  # unbalanced


@pytest.mark.parametrize(
    "answer, reference",
    [
        ("0.5", "\\frac{1}{2}"),
        ("\\frac{1}{2}", "0.5"),
        ("\\sqrt{8}", "2\\sqrt{2}"),
        ("\\{2,1\\}", "\\{1,2\\}"),
        ("[0, 1)", "[0,1)"),
        ("(x+1)^2", "x^2+2x+1"),
        ("17", "17"),
        ("17", "\\boxed{17}"),  # a boxed reference is graded by its content
    ],
)
def test_equivalent_answers_are_correct(answer, reference):
    # fast_path=False: Math-Verify itself must accept these, not the string comparison.
    assert is_correct(f"So the answer is $\\boxed{{{answer}}}$.", reference, fast_path=False)


@pytest.mark.parametrize(
    "completion, reference",
    [
        ("\\boxed{0.33}", "\\frac{1}{3}"),
        ("\\boxed{6}", "5"),
        ("\\boxed{[0,1]}", "[0,1)"),
        ("\\boxed{x^2+1}", "(x+1)^2"),
        ("\\boxed{\\{1,2,3\\}}", "\\{1,2\\}"),
        ("The answer is 5.", "5"),  # no box
        ("\\boxed{5", "5"),  # unbalanced box
        ("\\boxed{5} on second thought \\boxed{6}", "5"),  # the last box counts
    ],
)
def test_wrong_answers_are_not_correct(completion, reference):
    assert not is_correct(completion, reference)


def test_fast_path_and_last_box():
    assert is_correct("first \\boxed{6}, finally \\boxed{ 5 }", "5")
    assert is_correct("\\boxed{The limit does not exist}", "The limit does not exist")


ADVERSARIAL = [
    ("\\boxed{9^{9^{9^{9}}}}", "5"),  # hangs sympy: must be killed at the timeout
    ("\\boxed{10^{10^{10^{10}}}}", "\\boxed{9^{9^{9^{9}}}}"),
    ("\\boxed{(x+1)^{100000}}", "x"),
    ("\\boxed{" + "1" * 100_000 + "}", "1"),
    ("x" * 100_000, "1"),
    ("x" * 100_000 + "\\boxed{2}", "1"),
    ("\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}", "1"),
    ("\\boxed{" + "{" * 900 + "1" + "}" * 900 + "}", "2"),  # under the length limit: parsed
    ("\\boxed{" + "{" * 10_000, "1"),
    ("<question>\\boxed{1</answer>}}}", "1"),
    ("}}}\\boxed{", "1"),
    ("\\boxed{1\x002}", "12"),
    ("\\boxed{12}", "1\x002"),
    ("", ""),
    ("\\boxed{}", ""),
    ("\\boxed{}", "0"),
    ("\\boxed{\\frac{1}{0}}", "1"),
    ("\\boxed{\\left(\\right.}", "\\sqrt{}"),
]


@pytest.mark.parametrize("completion, reference", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_answers_return_in_time(completion, reference):
    start = time.monotonic()
    verdict = is_correct(completion, reference, timeout=2.0)
    elapsed = time.monotonic() - start
    assert verdict is False
    assert elapsed < SLOW_S, f"took {elapsed:.1f} s"


def test_pool_recovers_after_a_timeout():
    assert not is_correct("\\boxed{9^{9^{9^{9}}}}", "7", timeout=0.5)
    assert is_correct("\\boxed{\\sqrt{8}}", "2\\sqrt{2}", fast_path=False)


def test_works_off_the_main_thread():
    # Math-Verify's own signal-based timeout raises off the main thread; ours must not.
    out = []
    worker = threading.Thread(target=lambda: out.append(is_correct("\\boxed{0.5}", "\\frac12")))
    worker.start()
    worker.join(30)
    assert out == [True]


def test_batch_agrees_with_single_calls():
    cases = [
        ("\\boxed{0.5}", "\\frac{1}{2}"),
        ("\\boxed{9^{9^{9^{9}}}}", "3"),
        ("\\boxed{\\{2,1\\}}", "\\{1,2\\}"),
        ("\\boxed{0.33}", "\\frac{1}{3}"),
        ("no box", "1"),
        ("\\boxed{(x+1)^2}", "x^2+2x+1"),
        ("\\boxed{4}", "5"),
        ("\\boxed{1\x00}", "1"),
    ] * 3
    completions, references = zip(*cases)
    batch = is_correct_batch(completions, references)
    assert batch == [is_correct(c, r) for c, r in cases[:8]] * 3
    assert batch[:8] == [True, False, True, False, False, True, False, False]
    with pytest.raises(ValueError, match="one reference per completion"):
        is_correct_batch(["\\boxed{1}"], [])


def test_graded_reward_cases():
    reference = "\\frac{1}{2}"
    assert graded_reward("so \\boxed{0.5}", reference) == 1.0
    assert graded_reward("maybe \\frac{1}{2}? no: \\boxed{0.3}", reference) == 0.2
    assert graded_reward("\\boxed{0.3}", reference) == 0.1
    assert graded_reward("it is 0.5", reference) == 0.0
    scores = (5.0, 3.0, 2.0, -1.0)
    assert graded_rewards(
        ["\\boxed{0.5}", "\\frac{1}{2} \\boxed{1}", "\\boxed{1}", "0.5"], [reference] * 4, scores
    ) == [5.0, 3.0, 2.0, -1.0]
    with pytest.raises(ValueError, match="Expects 4 scores"):
        graded_reward("\\boxed{1}", "1", scores=(1.0, 0.0))


def test_champ_loads_and_grades_itself():
    pytest.importorskip("champ_dataset", reason="pip install champ-dataset")
    problems = load_champ()
    assert len(problems) == 270
    assert len({p.metadata["unique_id"] for p in problems}) == 270
    assert all(p.question and p.answer for p in problems)
    completions = [f"Therefore the answer is \\boxed{{{p.answer}}}." for p in problems]
    references = [p.answer for p in problems]
    verified = is_correct_batch(completions, references, fast_path=False)
    assert sum(verified) >= 0.95 * len(problems)
    assert all(is_correct_batch(completions, references))


ROWS = [
    {
        "problem": "What is $1/2 + 0$?",
        "solution": "Clearly $\\boxed{\\frac{1}{2}}$.",
        "level": "Level 1",
        "type": "Algebra",
    },
    {"problem": "What is 2+3?", "solution": "It is 5.", "answer": "5", "unique_id": "test/1.json"},
    {"problem": "No answer here.", "solution": "We cannot say."},
    {"problem": "Box in the answer field?", "answer": "\\boxed{7}", "subject": "Prealgebra"},
]


def _expect_rows(problems):
    assert [(p.question, p.answer) for p in problems] == [
        ("What is $1/2 + 0$?", "\\frac{1}{2}"),
        ("What is 2+3?", "5"),
        ("Box in the answer field?", "7"),
    ]
    assert problems[0].metadata == {"level": "Level 1", "type": "Algebra"}
    assert problems[1].metadata == {"unique_id": "test/1.json"}


def test_load_math_jsonl_and_json_list(tmp_path, caplog):
    jsonl, listed = tmp_path / "test.jsonl", tmp_path / "test.json"
    jsonl.write_text("\n".join(json.dumps(row) for row in ROWS) + "\n")
    listed.write_text(json.dumps(ROWS, indent=1))
    for path in (jsonl, listed):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="soar_env.domains.math"):
            _expect_rows(load_math_jsonl(path))
        assert "Skipped 1 of 4 rows" in caplog.text


def test_load_math_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    path = tmp_path / "test.parquet"
    pd.DataFrame(ROWS).to_parquet(path)
    problems = load_math_jsonl(path)
    assert [p.answer for p in problems] == ["\\frac{1}{2}", "5", "7"]


def test_load_math_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found: .*missing.jsonl"):
        load_math_jsonl(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "x", "answer": "1"}\nnot json\n')
    with pytest.raises(ValueError, match="one JSON object per line"):
        load_math_jsonl(bad)
    bad.write_text('{"question": "x", "answer": "1"}\n')
    with pytest.raises(ValueError, match="'problem' string"):
        load_math_jsonl(bad)
    bad.write_text('{"problem": "x", "solution": "no box"}\n')
    with pytest.raises(ValueError, match="none among the 1 rows"):
        load_math_jsonl(bad)


def test_prompts():
    prompt = math_student_prompt("  What is 1+1? ")
    assert prompt.startswith("What is 1+1?\n") and "\\boxed{}" in prompt
    assert "<question>" in TEACHER_PROMPT and "<answer>\\boxed{" in TEACHER_PROMPT
    # The format line is the only tagged pair: the prompt carries no example problem.
    pairs, _ = parse_tagged(TEACHER_PROMPT)
    assert pairs == [("the problem statement", "\\boxed{the final answer}")]


def test_parses_batch_needs_a_math_object():
    answers = ["3", "\\frac{1}{2}", "\\boxed{x^2+1}", "[0, 1)", "\\frac{1}{", "\\sqrt", "???", "", "1\x00"]
    assert parses_batch(answers) == [True] * 4 + [False] * 5


def test_math_domain_validate_batch():
    reasons = MathDomain.validate_batch([("Q?", "\\boxed{5}"), ("Q?", "\\frac{1}{"), ("", "5")])
    assert reasons[0] is None
    assert reasons[1] == "answer: Math-Verify cannot parse it"
    assert reasons[2] == "question: empty"


OLYMPIAD_ROWS = [
    {"id": 1, "question": "Find $x$ with $2x=1$.", "final_answer": ["$\\frac{1}{2}$"], "language": "English",
     "modality": "Text-only", "subject": "Math", "question_type": "Open-ended", "subfield": "Algebra"},
    {"id": 2, "question": "Find all $a, b$.", "final_answer": ["$1$", "$2$"], "language": "English",
     "modality": "Text-only", "subject": "Math", "question_type": "Open-ended",
     "context": "Let $a<b$ be positive integers."},
    {"id": 3, "question": "Chinese row", "final_answer": ["$3$"], "language": "Chinese",
     "modality": "Text-only", "subject": "Math", "question_type": "Open-ended"},
    {"id": 4, "question": "See the figure.", "final_answer": ["$4$"], "language": "English",
     "modality": "Multimodal", "subject": "Math", "question_type": "Open-ended", "image_1": "<img>"},
    {"id": 5, "question": "Prove it.", "final_answer": None, "language": "English",
     "modality": "Text-only", "subject": "Math", "question_type": "Theorem proof"},
    {"id": 6, "question": "A ball falls.", "final_answer": ["$9.8$"], "language": "English",
     "modality": "Text-only", "subject": "Physics", "question_type": "Open-ended"},
]


def test_load_olympiadbench_keeps_english_text_only_math(tmp_path):
    path = tmp_path / "olympiad.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in OLYMPIAD_ROWS))
    problems = load_olympiadbench(path)
    assert [p.metadata["unique_id"] for p in problems] == [1, 2]
    assert problems[0].answer == "\\frac{1}{2}" and problems[1].answer == "1, 2"
    assert problems[1].question == "Let $a<b$ be positive integers.\nFind all $a, b$."
    assert problems[0].metadata["source"] == "olympiadbench"
    # load_problems recognises the format by its final_answer field.
    assert [p.answer for p in load_problems(path)] == ["\\frac{1}{2}", "1, 2"]
    path.write_text(json.dumps(OLYMPIAD_ROWS[2:]))
    with pytest.raises(ValueError, match="none of 4"):
        load_olympiadbench(path)


def test_load_problems_hub_id_offline_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SOAR_ENV_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="pass a local JSONL"):
        load_problems("nobody/no-such-dataset:test")
    # A cached copy is used without the hub.
    cached = tmp_path / "datasets" / "nobody__no-such-dataset__default__test.jsonl"
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    assert [p.answer for p in load_problems("nobody/no-such-dataset:test")] == ["2"]
