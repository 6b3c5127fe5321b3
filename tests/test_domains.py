"""A domain written outside the package runs through gym.make, with no change to soar_env."""

import math
import random

import gymnasium as gym
import pytest

import soar_env  # noqa: F401
from soar_env.domains import make_domain, register_domain, registered_domains
from soar_env.embedded import TINY_CHAIN_PATH
from soar_env.problems import Problem, ascii_error


class DigitSumDomain:
    """Sum of digits mod 10, written in the tiny model's alphabet: ``3+4+9`` -> ``6``."""

    name = "digit-sum"
    preset = "tiny"
    teacher_prompt = "Q:"
    max_text = 32
    max_answer_tokens = 4
    default_student = str(TINY_CHAIN_PATH)
    exact_answers = True
    generator = solver = profiler = validity = None
    text_error = staticmethod(ascii_error)

    def student_prompt(self, question):
        return f"Q:{question}="

    def hard_candidates(self, count, seed):
        rng = random.Random(seed)
        out = []
        for _ in range(count):
            digits = [rng.randrange(10) for _ in range(rng.randint(6, 9))]
            out.append(Problem("+".join(map(str, digits)), str(sum(digits) % 10)))
        return out

    def teacher_max_tokens(self, with_answer):
        return None

    def parse_teacher_sample(self, text):
        question, sep, answer = text.partition("=")
        return (question, answer.strip()) if sep else "no '='"

    def validate_batch(self, pairs):
        def why(q, a):
            terms = q.split("+")
            if not all(len(t) == 1 and t.isdigit() for t in terms):
                return "question: expects digits joined by '+'"
            return None if a == str(sum(map(int, terms)) % 10) else "answer: not the digit sum"

        return [why(q, a) for q, a in pairs]

    def grade_batch(self, completions, problems):
        return [float(c.strip() == p.answer) for c, p in zip(completions, problems)]

    def reward_batch(self, completions, problems):
        return self.grade_batch(completions, problems)


SMALL = dict(hard_candidates=48, hard_k=4, reward_questions=8, dataset_size=4, group_size=2,
             inner_runs=1, inner_steps=1)


def _step_once(env):
    env.reset(seed=0)
    action = [("1+2", "3"), ("9+9+1", "9"), ("1+x", "2"), ("4+4", "7")]
    _, reward, _, _, info = env.step(action)
    return reward, info


def test_a_domain_object_runs_through_gym_make():
    env = gym.make("SOAR-Tiny-v0", domain=DigitSumDomain(), **SMALL)
    reward, info = _step_once(env)
    unwrapped = env.unwrapped
    assert unwrapped.config.domain == "digit-sum" and isinstance(unwrapped.domain, DigitSumDomain)
    assert math.isfinite(reward)
    # The domain's own validator judged the action: two good problems, two refused with its reasons.
    assert (info["valid_problems"], info["invalid_problems"]) == (2, 2)
    assert any("digits joined by '+'" in e for e in info["parse_errors"])
    assert any("not the digit sum" in e for e in info["parse_errors"])
    # The hard set came from its candidates (questions of digits and '+').
    assert all(set(p.question) <= set("0123456789+") for p in unwrapped.hard_set.train)
    env.close()


def test_a_registered_domain_is_made_by_name():
    register_domain("digit-sum", lambda config: DigitSumDomain())
    assert "digit-sum" in registered_domains() and {"chain", "math"} <= set(registered_domains())
    env = gym.make("SOAR-Tiny-v0", domain="digit-sum", **SMALL)
    reward, info = _step_once(env)
    assert isinstance(env.unwrapped.domain, DigitSumDomain) and math.isfinite(reward)
    env.close()


def test_bad_domains_are_refused_with_what_is_missing():
    config = soar_env.config.tiny()
    with pytest.raises(ValueError, match="registered name .*chain.*'no-such'"):
        make_domain("no-such", config)

    class Half:
        name = "half"

        def student_prompt(self, question):
            return question

    with pytest.raises(TypeError, match="Half is not a Domain: it lacks .*grade_batch"):
        make_domain(Half(), config)
    class Graded(DigitSumDomain):
        exact_answers = False  # e.g. answers checked by equivalence, not one exact string

    with pytest.raises(ValueError, match="exact string"):
        gym.make("SOAR-Tiny-v0", domain=Graded(), accuracy="exact", **SMALL)
    # The embedded domain declares every capability; math declares none.
    chain = make_domain("chain", config)
    assert chain.generator is chain.solver is chain.profiler is chain
    math_domain = make_domain("math", config.replace(dataset="champ"))
    assert (math_domain.generator, math_domain.solver, math_domain.profiler) == (None, None, None)


def test_teachers_that_need_a_generator_say_so():
    from soar_agents import make_teacher

    env = gym.make("SOAR-Tiny-v0", domain=DigitSumDomain(), **SMALL)
    env.reset(seed=0)
    for name in ("random", "curriculum", "bandit"):
        with pytest.raises(ValueError, match="generator"):
            make_teacher(name).setup(env.unwrapped, 0)
    with pytest.raises(ValueError, match="declares an oracle"):
        make_teacher("oracle").setup(env.unwrapped, 0)
    env.close()


def test_a_domain_made_by_name_keeps_the_name_in_the_config():
    """Run folders record the config: v1's stays 'chain' (its variant is chain_variant)."""
    env = gym.make("SOAR-Tiny-v1", **SMALL)
    assert env.unwrapped.config.domain == "chain" and env.unwrapped.domain.name == "chain-v1"
    env.close()


def test_the_built_in_domains_are_named_without_importing_them(fresh_python):
    code = ("import sys; from soar_env.domains import registered_domains; print(*registered_domains()); "
            "print(*sorted(m for m in sys.modules if m.startswith('soar_env.domains.')))")
    assert fresh_python(code).splitlines() == ["chain math reasoning-gym", "soar_env.domains.base"]
