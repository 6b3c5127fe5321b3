import pytest
import torch

from soar_env.rl import RLOOConfig, RLOOTrainer, policy_gradient_loss, rloo_advantages


def test_leave_one_out_advantages():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    adv = rloo_advantages(rewards)
    assert torch.allclose(adv[0], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))
    assert torch.all(adv[1] == 0)  # no signal in a uniform group
    assert torch.allclose(adv.sum(1), torch.zeros(2), atol=1e-6)
    with pytest.raises(ValueError, match="groups"):
        rloo_advantages(torch.ones(4))


def test_policy_gradient_loss_and_kl():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0]])
    loss, stats = policy_gradient_loss(logprobs, mask, torch.tensor([1.0, -1.0]))
    assert loss.item() == pytest.approx(-(1 * -3.0 + -1 * -0.5) / 2)
    loss.backward()
    assert torch.allclose(logprobs.grad, torch.tensor([[-0.5, -0.5], [0.5, 0.0]]))
    same, stats = policy_gradient_loss(logprobs, mask, torch.zeros(2), logprobs.detach(), 0.1)
    assert stats["kl"] == pytest.approx(0.0)
    _, stats = policy_gradient_loss(logprobs, mask, torch.zeros(2), logprobs.detach() - 1, 0.1)
    assert stats["kl"] > 0


def test_config_validation_says_what_to_change():
    with pytest.raises(ValueError, match="samples_per_question"):
        RLOOConfig(samples_per_question=1)
    with pytest.raises(ValueError, match="temperature"):
        RLOOConfig(temperature=0)


def test_kl_needs_a_reference(student, domain):
    with pytest.raises(ValueError, match="reference"):
        RLOOTrainer(student, domain.grade_batch, domain.student_prompt, RLOOConfig(kl_coef=0.1))


def _easy_run(student, domain, seed, kl=0.0, reference=None, steps=25):
    problems = domain.problems(32, [2, 3], seed=0)
    cfg = RLOOConfig(questions_per_step=16, samples_per_question=8, learning_rate=3e-4,
                     kl_coef=kl, max_new_tokens=12)
    trainer = RLOOTrainer(student, domain.grade_batch, domain.student_prompt, cfg,
                          reference=reference, seed=seed)
    return trainer.train(problems, steps)


def test_training_reward_rises_on_an_easy_set(student, domain):
    problems = domain.problems(32, [2, 3], seed=0)
    prompts = [domain.student_prompt(p.question) for p in problems]
    before = student.exact_pass_at_1(prompts, [p.answer for p in problems]).mean()
    stats = _easy_run(student, domain, seed=0)
    after = student.exact_pass_at_1(prompts, [p.answer for p in problems]).mean()
    first = sum(s["reward"] for s in stats[:5]) / 5
    last = sum(s["reward"] for s in stats[-5:]) / 5
    assert last > first + 0.1, (first, last)
    assert after > before + 0.1
    assert all(s["updated"] == 1.0 for s in stats)


def test_inner_run_is_deterministic_and_kl_runs(student, domain, tiny_student):
    base = student.snapshot()
    a = [s["reward"] for s in _easy_run(student, domain, seed=3, steps=4)]
    hash_a = student.weights_hash()
    student.restore(base)
    b = [s["reward"] for s in _easy_run(student, domain, seed=3, steps=4)]
    assert a == b and student.weights_hash() == hash_a
    student.restore(base)
    from soar_env.embedded import load_tiny_student

    stats = _easy_run(student, domain, seed=3, kl=0.1, reference=load_tiny_student(), steps=3)
    assert stats[-1]["kl"] > 0  # the policy has moved away from the reference


def test_no_signal_no_update(student, domain):
    # Chains of length 20 are never solved: every group is uniform, nothing is trained.
    base_hash = student.weights_hash()
    problems = domain.problems(8, [20], seed=0)
    cfg = RLOOConfig(questions_per_step=8, samples_per_question=4, learning_rate=1e-3,
                     kl_coef=0.0, max_new_tokens=44)
    stats = RLOOTrainer(student, domain.grade_batch, domain.student_prompt, cfg).train(problems, 2)
    assert [s["live_groups"] for s in stats] == [0, 0]
    assert student.weights_hash() == base_hash
