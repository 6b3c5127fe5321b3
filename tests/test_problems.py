"""Teacher text cannot crash or hang a run: the raw parser, the caps, and one rule per domain."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import FAST

import soar_env  # noqa: F401  (registers the ids)
from soar_env import embedded
from soar_env.domains.math import MathDomain
from soar_env.problems import (
    CHARSET,
    ascii_error,
    parse_tagged,
    problems_from_action,
    raw_text_cap,
    strip_boxed,
    unicode_error,
)

MB = 1 << 20
# Small enough for CI, as in test_env.py; inner_steps=1 keeps a training step short.
SMALL = {**FAST, "reward_questions": 8, "inner_steps": 1}


def _raw(problems):
    return "".join(f"<question>{p.question}</question>\n<answer>\\boxed{{{p.answer}}}</answer>\n"
                   for p in problems)


# ---- the raw parser ---------------------------------------------------------------------------
def test_parse_tagged_keeps_the_paper_format():
    text = ("<question> What is 1+1? </question>\n <answer>\\boxed{2}</answer> chatter"
            "<question>Two?</question><answer>\\boxed{\\frac{1}{2}}</answer><question>cut off")
    assert parse_tagged(text) == ([("What is 1+1?", "\\boxed{2}"), ("Two?", "\\boxed{\\frac{1}{2}}")], 1)
    assert parse_tagged("") == ([], 0) and parse_tagged("no tags") == ([], 0)


def test_a_broken_sample_does_not_swallow_the_next():
    # The old lazy regex made the first question "a</question>x<question>b" (and scanned
    # the rest of the text from every opening: quadratic). A sample ends at the next opening.
    text = "<question>a</question>x<question>b</question><answer>\\boxed{1}</answer>"
    assert parse_tagged(text) == ([("b", "\\boxed{1}")], 1)
    text = "<question>a</question><answer>no close<question>b</question><answer>2</answer>"
    assert parse_tagged(text) == ([("b", "2")], 1)


@pytest.mark.parametrize("text, pairs, broken", ids=["openings", "one-close", "open-answers", "no-tags",
                                                     "pairs"], argvalues=[
    ("<question>" * 100_000, 0, 100_000),  # 1 MB of openings (the regex took 27 s on 160 KB)
    ("<question>" * 100_000 + "</question><answer>1</answer>", 1, 99_999),
    ("<question>a</question><answer>b" * 30_000 + "</answer>", 1, 29_999),  # no answer closes
    ("x" * MB, 0, 0),
    ("<question>a</question> <answer>\\boxed{1}</answer>" * 20_000, 20_000, 0),
])
def test_parse_tagged_on_megabytes(text, pairs, broken):
    # One left-to-right scan: these return in milliseconds (the figures are in the report,
    # not asserted); the regex took minutes to hours on them.
    found, bad = parse_tagged(text)
    assert (len(found), bad) == (pairs, broken)


def test_raw_text_is_capped_before_parsing_and_pairs_beyond_n_are_not_used(domain):
    cap = raw_text_cap(8, 64)
    assert cap == 8 * 2 * (64 + 64)
    problems, errors = problems_from_action("<question>" * 100_000, domain, 8, 64)
    assert problems == []
    assert errors[0] == f"raw text: {1_000_000 - cap} characters past the {cap}-character cap not read"
    assert len(errors) == 1 + cap // len("<question>")  # the openings read, each one invalid
    good = embedded.good_stones(12, seed=0)
    problems, errors = problems_from_action(_raw(good), domain, 8, 64)
    assert problems == good[:8] and errors == [f"raw text: pair {i} beyond the dataset size 8"
                                                for i in range(8, 12)]
    # A teacher that rambles after its dataset still gets it trained.
    problems, errors = problems_from_action(_raw(good[:8]) + "<question>" * (MB // 10), domain, 8, 64)
    assert problems == good[:8] and len(errors) == 1 + (cap - len(_raw(good[:8]))) // 10


# ---- characters: chain ----------------------------------------------------------------------
ARABIC_THREE, ARABIC_SIX = "\u0663", "\u0666"


def test_chain_takes_only_ascii_digits(domain):
    q = "5+3" + ".." * 19
    assert domain.validate(q, "8") is None
    assert "start digit" in domain.validate(ARABIC_THREE + q[1:], "6")
    assert "slot 0" in domain.validate("5+" + ARABIC_THREE + q[3:], "8")
    assert "answer" in domain.validate(q, "\u0668")  # Arabic-indic eight
    assert "question" in domain.validate("5+\u00b3" + q[3:], "8")  # superscript three


def test_chain_rules_are_the_same_for_list_and_raw_actions(domain):
    good = embedded.good_stones(4, seed=0)
    q = good[0].question
    bad = [(ARABIC_THREE + q[1:], good[0].answer), (q, ARABIC_SIX + good[0].answer[1:]),
           ("3 \u00d7 4" + q[5:], "2"), (q + "x" * 30, good[0].answer), (q, "\x1b[31m")]
    mixed = [(p.question, p.answer) for p in good] + bad
    listed, list_errors = problems_from_action(mixed, domain, len(mixed), 64)
    raw, raw_errors = problems_from_action(_raw(good) + "".join(
        f"<question>{a}</question><answer>\\boxed{{{b}}}</answer>" for a, b in bad), domain, len(mixed), 64)
    assert listed == raw == good
    assert len(list_errors) == len(raw_errors) == len(bad)
    assert [e.split(": ", 1)[1] for e in list_errors] == [e.split(": ", 1)[1] for e in raw_errors]
    assert "outside printable ASCII" in list_errors[0] and "over 64 characters" in list_errors[3]


def test_chain_action_space_members_are_accepted():
    # Gymnasium's contract: action_space.contains(x) implies the env takes x without error.
    env = gym.make("SOAR-Tiny-v0", dataset_size=8).unwrapped
    env.action_space.seed(0)
    domain = env.domain
    for _ in range(50):
        action = env.action_space.sample()
        assert env.action_space.contains(action)
        problems, errors = problems_from_action(action, domain, 8, 64)
        assert len(problems) + len(errors) == 8
    good = [{"question": p.question, "answer": p.answer} for p in embedded.good_stones(8, seed=0)]
    for action in (good, np.array(good, dtype=object)):
        assert env.action_space.contains(action)
        assert len(problems_from_action(action, domain, 8, 64)[0]) == 8


# ---- characters: math -----------------------------------------------------------------------
def test_unicode_rule_accepts_what_a_math_teacher_writes():
    assert unicode_error("Let x ≤ π, y = 3 × 4, ∑ αβγ, café, \U0001f600\n\tdone") is None
    for bad in ("\x00", "\x1b[31m", "\r", "\x7f", "\ud800", "\ue000", "\u0378"):
        assert unicode_error(f"a{bad}b") is not None, repr(bad)
    assert ascii_error("".join(sorted(CHARSET))) is None and ascii_error("π") is not None


INVISIBLE = ["\u200d", "\u202e", "\u200b", "\u2066", "\u200f", "\ufeff", "\u00ad"]  # Unicode's Cf


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_and_bidi_characters_are_refused_alike_on_both_paths(char, domain):
    """U+200D (zero-width joiner) and U+202E (right-to-left override) are both format characters
    (Cf): a question or answer holding one is invalid, in a list action and in raw text alike."""
    stone = embedded.good_stones(1, seed=0)[0]
    for rules, limit, (question, answer) in ((MathDomain(), 4096, ("What is 1 + 2?", "3")),
                                             (domain, 64, (stone.question, stone.answer))):
        pairs = [(question, answer), (question + char, answer), (question, answer + char),
                 (char + question, answer)]
        listed, list_errors = problems_from_action(pairs, rules, 4, limit)
        raw = "".join(f"<question>{q}</question><answer>\\boxed{{{a}}}</answer>" for q, a in pairs)
        parsed, raw_errors = problems_from_action(raw, rules, 4, limit)
        assert [(p.question, p.answer) for p in listed] == [(question, answer)]
        assert [(p.question, p.answer) for p in parsed] == [(question, answer)]
        assert [e.split(": ", 1)[1] for e in list_errors] == [e.split(": ", 1)[1] for e in raw_errors]
        assert len(list_errors) == 3 and all(repr(char)[1:-1] in e for e in list_errors), list_errors
    assert unicode_error(f"x = 1{char}") is not None and ascii_error(f"x = 1{char}") is not None


def test_math_rules_are_the_same_for_list_and_raw_actions():
    domain = MathDomain()
    ok = [("What is 3 × 4?", "\\boxed{12}"), ("Is π ≤ 4? Give 1 for yes.", "\\boxed{1}")]
    bad = [("Ring\x07 the bell: 1+1?", "\\boxed{2}"), ("Escape?", "\\boxed{\x1b[31m1}"),
           ("Long " + "x" * 4096, "\\boxed{1}"), ("Private \ue000?", "\\boxed{1}")]
    listed, list_errors = problems_from_action(ok + bad, domain, 6, 4096)
    raw, raw_errors = problems_from_action("".join(
        f"<question>{q}</question><answer>{a}</answer>" for q, a in ok + bad), domain, 6, 4096)
    # A list action's answer is stored as written (boxed here), raw text's as its box content.
    assert [(p.question, strip_boxed(p.answer)) for p in listed] == [(p.question, p.answer) for p in raw]
    assert [p.answer for p in raw] == ["12", "1"]
    assert [e.split(": ", 1)[1] for e in list_errors] == [e.split(": ", 1)[1] for e in raw_errors]
    assert len(list_errors) == 4 and "over 4096 characters" in list_errors[2]


# ---- the env: nothing a teacher writes crashes or hangs a step -------------------------------
def test_a_megabyte_of_raw_text_is_a_bounded_step():
    env = gym.make("SOAR-Tiny-v0", **SMALL)
    env.reset(seed=0)
    good = embedded.good_stones(8, seed=0)
    _, reward, _, _, info = env.step("<question>" * (MB // 10))
    assert info["valid_problems"] == 0 and reward == 0.0
    assert info["invalid_problems"] == 1 + raw_text_cap(8, 64) // 10
    _, reward, _, _, info = env.step(_raw(good) + "\u0663<question>x" * (MB // 12))
    assert info["valid_problems"] == 8 and np.isfinite(reward) and len(info["run_rewards"]) == 1
    env.close()


def test_a_hostile_64_problem_list_action_trains_on_its_valid_problems():
    env = gym.make("SOAR-Tiny-v0", **{**SMALL, "dataset_size": 64})
    env.reset(seed=0)
    good = embedded.good_stones(16, seed=0)
    junk = ["3 × 4", "π ≤ 4", "∑ αβγ", "\U0001f600", "x" * 10_000, "\x00\x1b", good[0].question]
    action = [(p.question, p.answer) for p in good]
    action += [(junk[i % 7], junk[(i + 1) % 7]) for i in range(48)]  # none of them valid
    _, reward, _, _, info = env.step(action)
    assert np.isfinite(reward) and len(info["run_rewards"]) == 1
    assert info["valid_problems"] == 16 and info["invalid_problems"] == 48
    env.close()
