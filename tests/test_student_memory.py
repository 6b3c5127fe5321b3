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


# ---- the update's passes under a token budget (issue 25) ----------------------------------
S, NEW_TOKENS, BUDGET = 32, 1024, 4096  # the paper's group and completion budget


def _long_rollout(student, generator):
    """Two groups of 32 completions of 1 to 1024 tokens (the longest exactly 1024) behind
    prompts of different lengths: the paper's shapes, drawn without sampling 64k tokens."""
    prompt_ids, prompt_mask = student.encode_prompts(["What is 1 + 1?", "Add 12 and 30, then halve it."])
    lengths = torch.randint(1, NEW_TOKENS + 1, (2 * S,), generator=generator)
    lengths[5], lengths[40] = NEW_TOKENS, 3
    ids = torch.randint(3, 90, (2 * S, NEW_TOKENS), generator=generator)
    mask = (torch.arange(NEW_TOKENS)[None, :] < lengths[:, None]).long()
    return prompt_ids, prompt_mask, ids * mask, mask, torch.randn(2 * S, generator=generator)


def _count_pass_tokens(student, passes=None):
    """Tokens of each ``token_logprobs`` call (one update pass), summed over its forwards."""
    passes = [] if passes is None else passes
    forward, scorer, scoring = student.model.forward, student.token_logprobs, [False]

    def counting_forward(*args, **kwargs):
        if scoring[0]:  # sampling's forwards are not update passes
            passes[-1] += kwargs["input_ids"].numel()
        return forward(*args, **kwargs)

    def counting_scorer(*args, **kwargs):
        passes.append(0)
        scoring[0] = True
        try:
            return scorer(*args, **kwargs)
        finally:
            scoring[0] = False

    student.model.forward, student.token_logprobs = counting_forward, counting_scorer
    return passes


def _gradient(path, batches):
    """The update's gradient (SGD at lr 1, no clipping: the weights move by it)."""
    from soar_env.rl import policy_gradient_update

    student = HFStudent.from_pretrained(path, device="cpu")
    reference = student.copy()
    before = student.snapshot()
    passes = _count_pass_tokens(reference, _count_pass_tokens(student))
    optimizer = torch.optim.SGD(student.model.parameters(), lr=1.0)
    stats = policy_gradient_update(student, optimizer, batches, max_grad_norm=float("inf"),
                                   reference=reference, kl_coef=0.1)
    return {k: before[k] - v for k, v in student.snapshot().items()}, stats, passes


def test_update_passes_stay_under_the_budget_and_equal_one_untrimmed_pass(tmp_path):
    from soar_env.rl import PolicyBatch, micro_batches
    from soar_env.student.scratch import build_char_llama

    path = build_char_llama(tmp_path / "m", 32, 2, heads=4, kv_heads=2, chat_template="{{ messages }}",
                            intermediate_size=64, max_positions=2048)
    student = HFStudent.from_pretrained(path, device="cpu")
    p_ids, p_mask, c_ids, c_mask, adv = _long_rollout(student, torch.Generator().manual_seed(0))
    # Before issue 25: one pass of whole groups at the rollout's full width, whatever the budget.
    untrimmed = [PolicyBatch(p_ids, p_mask, c_ids, c_mask, S, adv)]
    whole = micro_batches(p_ids, p_mask, c_ids, c_mask, adv, S, None)
    split = micro_batches(p_ids, p_mask, c_ids, c_mask, adv, S, BUDGET)
    assert len(whole) == 1 and whole[0].completion_ids.shape[1] == NEW_TOKENS
    assert len(split) > 2 * S * NEW_TOKENS // (2 * BUDGET)  # groups were split into row slices
    assert sum(b.completion_ids.shape[0] for b in split) == 2 * S
    assert abs(sum(b.weight for b in split) - 1.0) < 1e-9

    grads, stats, passes = {}, {}, {}
    for name, batches in (("untrimmed", untrimmed), ("whole", whole), ("split", split)):
        grads[name], stats[name], passes[name] = _gradient(path, batches)
    # The largest pass (policy and reference alike) holds at most the budget's tokens.
    assert max(passes["split"]) <= BUDGET < max(passes["whole"])
    assert len(passes["split"]) == 2 * len(split)  # the policy's pass and the reference's
    for name in ("whole", "split"):
        for key, value in grads["untrimmed"].items():
            scale = float(value.abs().max()) + 1e-12
            torch.testing.assert_close(grads[name][key], value, rtol=1e-4, atol=1e-5 * scale,
                                       msg=f"{name}: {key}")
        for key in ("pg_loss", "kl", "grad_norm"):
            assert abs(stats[name][key] - stats["untrimmed"][key]) <= 1e-4 * abs(stats["untrimmed"][key])


def test_the_trainer_updates_in_passes_under_the_budget(tmp_path):
    from soar_env.student.scratch import build_char_llama

    path = build_char_llama(tmp_path / "m", 32, 2, heads=4, kv_heads=2, chat_template="{{ messages }}",
                            intermediate_size=64, max_positions=512)
    student = HFStudent.from_pretrained(path, device="cpu", max_batch_tokens=600)
    passes = _count_pass_tokens(student)
    rl = RLOOConfig(questions_per_step=2, samples_per_question=8, learning_rate=1e-3, kl_coef=0.0,
                    max_new_tokens=200)
    reward = lambda texts, problems: [float(len(t) % 3) for t in texts]  # noqa: E731
    problems = embedded.good_stones(2, seed=0)
    stats = RLOOTrainer(student, reward, lambda q: q, rl, seed=0).step(problems)
    assert stats["updated"] == 1.0 and len(passes) > 1
    assert max(passes) <= 600


def test_under_bf16_mixed_the_samplers_cached_keys_are_fp32_and_values_bf16(tmp_path):
    """Rotary embeddings multiply the bf16 keys by fp32 cos/sin (not an autocast op), so the
    HF sampler's cache holds 4 + 2 bytes per key-value element: benchmarks/memory_plan.py
    counts 1.5x a bf16 cache."""
    from soar_env.student.scratch import build_char_llama

    path = build_char_llama(tmp_path / "m", 64, 2, heads=4, kv_heads=2, chat_template="{{ messages }}")
    student = HFStudent.from_pretrained(path, device="cpu", precision="bf16-mixed")
    ids, _ = student.encode_prompts(["What is 1 + 1?"])
    with student.autocast():
        out = student.model(input_ids=ids, use_cache=True)
    layer = (getattr(out, "cache", None) or out.past_key_values).layers[0]
    assert (layer.keys.dtype, layer.values.dtype) == (torch.float32, torch.bfloat16)


def test_the_kl_reference_is_frozen_so_autocast_keeps_no_copy_of_it(student, domain):
    from soar_env.lab import StudentLab

    lab = StudentLab(student, domain, kl_reference=True)
    assert not any(p.requires_grad for p in lab.reference.model.parameters())
    assert all(p.requires_grad for p in student.model.parameters())  # the student still trains
