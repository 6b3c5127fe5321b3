import random

import pytest

from soar_env.domains.chain import Chain, ChainDomain, apply_op
from soar_env.problems import Problem


def test_format_parse_roundtrip_and_solution(domain):
    chain = Chain(5, (("+", 3), ("*", 7), ("-", 2)))
    question = domain.format_question(chain)
    assert question == "5+3*7-2" + ".." * 17
    assert domain.parse_question(question) == chain
    assert domain.solve(question) == "8,6,4"
    assert domain.student_prompt(question) == f"Q:{question}="


@pytest.mark.parametrize(
    "bad",
    ["", "5+3", "x" + ".." * 20, "5+4" + ".." * 19, "5" + ".." * 20, "5+3..*2" + ".." * 17,
     "5+3" + ".." * 18 + "...", "5/3" + ".." * 19],
)
def test_malformed_questions_raise_value_error(domain, bad):
    with pytest.raises(ValueError, match="Expects"):
        domain.parse_question(bad)


def test_teacher_text_is_cut_at_equals(domain):
    question = domain.format_question(Chain(1, (("+", 1),)))
    assert domain.parse_teacher_sample(question + "=2<junk> ") == (question, "2<junk>")
    assert domain.parse_teacher_sample(question) == "no '=' after the question"
    # The question's grammar is the validator's job, with the answer's.
    assert domain.validate_batch([("1+1", "2")])[0].startswith("question:")


def test_grading_needs_the_whole_trace(domain):
    assert domain.grade("8,6,4", "8,6,4") == 1.0
    assert domain.grade(" 8,6,4\n", "8,6,4") == 1.0
    assert domain.grade("8,6", "8,6,4") == 0.0
    assert domain.grade("9,6,4", "8,6,4") == 0.0  # right final state, wrong trace
    problem = Problem("..", "1")
    assert domain.grade_batch(["1", "2"], [problem, problem]) == [1.0, 0.0]


def test_noisy_writer_matches_its_per_skill_accuracy():
    domain = ChainDomain(writer_accuracy={"+": 0.9, "-": 0.5, "*": 0.2})
    rng = random.Random(0)
    right = {s: [0, 0] for s in "+-*"}
    for _ in range(3000):
        chain = domain.random_chain(rng, 5)
        states = [int(s) for s in domain.noisy_trace(rng, chain).split(",")]
        prev = chain.start
        for (op, arg), state in zip(chain.steps, states):
            right[op][0] += state == apply_op(prev, op, arg)
            right[op][1] += 1
            prev = state
    rates = {s: a / b for s, (a, b) in right.items()}
    assert rates["+"] == pytest.approx(0.9, abs=0.02)
    assert rates["-"] == pytest.approx(0.5, abs=0.02)
    assert rates["*"] == pytest.approx(0.2, abs=0.02)


def test_problem_sources_are_seeded_and_respect_skills(domain):
    a = domain.problems(20, range(4, 7), seed=3, skills=("+",))
    assert a == domain.problems(20, range(4, 7), seed=3, skills=("+",))
    assert a != domain.problems(20, range(4, 7), seed=4, skills=("+",))
    for p in a:
        chain = domain.parse_question(p.question)
        assert 4 <= chain.length <= 6 and {op for op, _ in chain.steps} == {"+"}
        assert domain.solve(p.question) == p.answer


def test_bad_domain_config_says_what_to_change():
    with pytest.raises(ValueError, match="writer_accuracy"):
        ChainDomain(writer_accuracy={"+": 0.5})
    with pytest.raises(ValueError, match="max_len"):
        ChainDomain(max_len=0)
