"""Large-student safety on the tiny model: token budgets, micro-batches, mixed precision."""

import dataclasses

import torch

from soar_env import embedded
from soar_env.config import RLOOConfig
from soar_env.rl import RLOOTrainer
from soar_env.student.hf import HFStudent

RL = RLOOConfig(questions_per_step=8, samples_per_question=4, learning_rate=1e-3, kl_coef=0.0,
                max_new_tokens=40)


def _load(**kwargs):
    return HFStudent.from_pretrained(embedded.TINY_CHAIN_PATH, device="cpu", **kwargs)


def test_a_token_budget_chunks_sampling_and_log_probs_without_changing_them():
    free, budget = _load(), _load(max_batch_tokens=300)
    problems = embedded.good_stones(12, seed=0)
    prompts = [free.chat_prompt(embedded.tiny_domain().student_prompt(p.question)) for p in problems]
    # Greedy decoding draws no randomness: prompt chunks give the same completions.
    assert budget.rows_per_pass(60) == 5
    assert budget.sample(prompts, 1, 40, temperature=0.0).texts == free.sample(prompts, 1, 40, 0.0).texts
    sampled = budget.sample(prompts, 4, 40, 1.0, torch.Generator().manual_seed(0))
    again = budget.sample(prompts, 4, 40, 1.0, torch.Generator().manual_seed(0))
    assert len(sampled.texts) == 48 and sampled.texts == again.texts
    assert sampled.completion_ids.shape[0] == sampled.prompt_ids.shape[0] == 48
    answers = [p.answer for p in problems]
    torch.testing.assert_close(budget.exact_pass_at_1(prompts, answers),
                               free.exact_pass_at_1(prompts, answers))


def test_micro_batched_updates_match_one_batch():
    """Gradient accumulation over micro-batches is the same update, up to float order."""
    from soar_env.rl import PolicyBatch, policy_gradient_update

    students = [_load(), _load()]
    domain = embedded.tiny_domain()
    problems = embedded.good_stones(4, seed=1)
    rollout = students[0].sample([domain.student_prompt(p.question) for p in problems], 4, 40, 1.0,
                                 torch.Generator().manual_seed(0))
    advantages = torch.linspace(-1.0, 1.0, 16)
    whole = [PolicyBatch(rollout.prompt_ids[::4], rollout.prompt_mask[::4], rollout.completion_ids,
                         rollout.completion_mask, 4, advantages)]
    halves = [PolicyBatch(rollout.prompt_ids[::4][i : i + 2], rollout.prompt_mask[::4][i : i + 2],
                          rollout.completion_ids[4 * i : 4 * i + 8],
                          rollout.completion_mask[4 * i : 4 * i + 8], 4, advantages[4 * i : 4 * i + 8], 0.5)
              for i in (0, 2)]
    for student, batches in zip(students, (whole, halves)):
        optimizer = torch.optim.AdamW(student.model.parameters(), lr=1e-3, weight_decay=0.0)
        policy_gradient_update(student, optimizer, batches, max_grad_norm=1.0)
    for (k, a), b in zip(students[0].snapshot().items(), students[1].snapshot().values()):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-4, msg=k)
    # The trainer splits its live groups under the student's budget and still updates.
    budget = _load(max_batch_tokens=400)  # about one group of 4 rows per micro-batch
    trainer = RLOOTrainer(budget, domain.grade_batch, domain.student_prompt, RL, seed=3)
    stats = trainer.train(domain.problems(16, range(1, 3), seed=1), 4)  # short: many live groups
    assert any(s["updated"] == 1.0 and s["live_groups"] > 1 for s in stats)


def test_mixed_precision_keeps_small_updates_that_pure_bf16_rounds_away():
    """bf16 compute on fp32 master weights: AdamW's 1e-5 steps land; in pure bf16 most vanish."""
    problems = embedded.good_stones(16, seed=2)
    prompt = embedded.tiny_domain().student_prompt
    rl = dataclasses.replace(RL, learning_rate=1e-5)
    changed = {}
    for precision in ("bf16-mixed", "bf16"):
        student = _load(precision=precision)
        before = student.snapshot()
        RLOOTrainer(student, embedded.tiny_domain().grade_batch, prompt, rl, seed=0).train(problems, 5)
        after = student.snapshot()
        moved = sum(int((after[k] != before[k]).sum()) for k in before)
        changed[precision] = moved / sum(v.numel() for v in before.values())
    assert next(iter(_load(precision="bf16-mixed").model.parameters())).dtype == torch.float32
    assert changed["bf16-mixed"] > 0.5 > changed["bf16"], changed


def test_snapshots_live_in_cpu_memory_and_share_nothing():
    student = _load()
    snap = student.snapshot()
    live = dict(student.model.state_dict())
    assert all(v.device.type == "cpu" and v.data_ptr() != live[k].data_ptr() for k, v in snap.items())


def test_the_kl_reference_is_frozen_so_autocast_keeps_no_copy_of_it(student, domain):
    from soar_env.lab import StudentLab

    lab = StudentLab(student, domain, kl_reference=True)
    assert not any(p.requires_grad for p in lab.reference.model.parameters())
    assert all(p.requires_grad for p in student.model.parameters())  # the student still trains
