"""Teachers see a TeacherContext, not the env: sizes, domain, D_train for Hard-Only, a base model."""

import gymnasium as gym
import pytest
import torch
from conftest import ROUND

import soar_env  # noqa: F401
from soar_env.context import TeacherContext

SMALL = {**ROUND, "inner_steps": 1, "reward_questions": 8}


def test_the_context_holds_what_a_teacher_needs_and_a_private_copy_of_the_base_model():
    env = gym.make("SOAR-Tiny-v0", **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.teacher_context()
    env.reset(seed=0)
    unwrapped = env.unwrapped
    context = unwrapped.teacher_context()
    assert isinstance(context, TeacherContext)
    assert (context.dataset_size, context.group_size, context.rounds) == (8, 2, unwrapped.config.rounds)
    assert context.domain is unwrapped.domain and context.teacher_prompt == unwrapped.domain.teacher_prompt
    assert list(context.hard_train) == list(unwrapped.hard_set.train)
    model = context.base_model()
    base = unwrapped.base_weights
    assert all(torch.equal(v, base[k]) for k, v in model.snapshot().items())
    # Training the copy leaves the env's student alone (no shared tensors).
    with torch.no_grad():
        next(model.model.parameters()).add_(1.0)
    assert all(torch.equal(v, base[k]) for k, v in unwrapped.student.snapshot().items())
    env.close()


def test_train_teacher_sets_teachers_up_with_the_context():
    from soar_agents import make_teacher, train_teacher

    teacher = make_teacher("hard-only")
    train_teacher(teacher, "SOAR-Tiny-v0", rounds=1, seed=0, progress=False, **SMALL)
    assert isinstance(teacher.context, TeacherContext) and not hasattr(teacher, "env")
