"""The stacked student and the lockstep trainer: the transformers model's numbers, independent runs."""

import pytest
import torch
from conftest import build_chat_llama

from soar_env.config import tiny_v1
from soar_env.embedded import variant_domain, variant_model_path
from soar_env.lockstep import LockstepRLOO, QuestionOrder, StackedAdamW
from soar_env.rl import PolicyBatch, policy_gradient_loss, rloo_advantages
from soar_env.student.hf import HFStudent
from soar_env.student.stacked import StackedLlama, shape_of, stackable
from soar_env.student.stacked_decode import Decoder, sample


@pytest.fixture(scope="module")
def v1():
    return HFStudent.from_pretrained(variant_model_path("v1"), device="cpu"), variant_domain("v1")


def _perturbed(weights, seed):
    g = torch.Generator().manual_seed(seed)
    out = {k: v + 0.01 * torch.randn(v.shape, generator=g) for k, v in weights.items()}
    out["lm_head.weight"] = out["model.embed_tokens.weight"]  # tied, as in the model
    return out


def _reference_logprobs(student, weights, prompts, answers):
    keep = student.snapshot()
    pid, pmask = student.encode_prompts(prompts)
    cid, cmask = student.encode_completions(answers)
    out = []
    with torch.no_grad():
        for w in weights:
            student.restore(w)
            out.append(student.token_logprobs(pid, pmask, cid, cmask))
    student.restore(keep)
    return torch.stack(out), pid, pmask, cid, cmask


def _stacked_logprobs(model, pid, pmask, cid, cmask):
    S = model.size
    with torch.no_grad():
        lp = model.completion_logprobs(
            pid[None].expand(S, -1, -1),
            pmask[None].expand(S, -1, -1),
            cid[None, :, None, :].expand(S, -1, 1, -1),
        )
    return lp[:, :, 0] * cmask


def _decoded_logprobs(model, pid, pmask, cid, cmask):
    """The same log-probs through the sampler's decoder, feeding the answer token by token."""
    S = model.size
    with torch.no_grad():
        dec = Decoder(model, pid[None].expand(S, -1, -1), pmask[None].expand(S, -1, -1), 1, cid.shape[1])
        out = [torch.log_softmax(dec.first_logits, -1).gather(-1, cid[None, :, :1].expand(S, -1, -1))]
        for t in range(cid.shape[1] - 1):
            logits = dec.step(cid[None, :, None, t].expand(S, -1, 1))[:, :, 0]
            out.append(
                torch.log_softmax(logits, -1).gather(-1, cid[None, :, t + 1 : t + 2].expand(S, -1, -1))
            )
    return torch.cat(out, -1) * cmask


def test_stacked_students_score_as_the_transformers_model_does(v1):
    student, domain = v1
    weights = [student.snapshot(), _perturbed(student.snapshot(), 1)]
    problems = domain.problems(6, range(1, 8), seed=1)
    ref, *encoded = _reference_logprobs(
        student, weights, [domain.student_prompt(p.question) for p in problems], [p.answer for p in problems]
    )
    model = StackedLlama.from_states(shape_of(student.model), weights)
    assert stackable(student.model) is None
    assert torch.allclose(_stacked_logprobs(model, *encoded), ref, atol=1e-5)
    assert torch.allclose(_decoded_logprobs(model, *encoded), ref, atol=1e-5)
    back = model.state(1)  # transformers' names, values as given
    assert all(torch.equal(back[k], weights[1][k]) for k in weights[1])


def test_grouped_query_attention_and_left_padding(tmp_path):
    """A GQA Llama (kv heads < heads) with a chat template: prompts of different lengths."""
    build_chat_llama(tmp_path)
    student = HFStudent.from_pretrained(tmp_path, device="cpu")
    weights = [student.snapshot(), _perturbed(student.snapshot(), 2)]
    weights[1]["lm_head.weight"] = weights[1]["model.embed_tokens.weight"]
    prompts = [student.chat_prompt(q) for q in ("1+1", "what is 12*12?", "x")]
    ref, pid, pmask, cid, cmask = _reference_logprobs(student, weights, prompts, ["2", "144", "y!"])
    assert not bool(pmask.all())  # left padding is exercised
    model = StackedLlama.from_states(shape_of(student.model), weights)
    assert torch.allclose(_stacked_logprobs(model, pid, pmask, cid, cmask), ref, atol=1e-5)
    assert torch.allclose(_decoded_logprobs(model, pid, pmask, cid, cmask), ref, atol=1e-5)


def test_stacked_gradients_do_not_depend_on_the_thread_count(tmp_path):
    """The fused attention's forward and backward sum in the same order at 1 and 2 threads
    (left-padded prompts, grouped-query attention, several samples per prompt), so
    ``soar_env.threads`` may change the count under load without changing a result."""
    build_chat_llama(tmp_path)
    student = HFStudent.from_pretrained(tmp_path, device="cpu")
    weights = [_perturbed(student.snapshot(), s) for s in (3, 4, 5)]
    for w in weights:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    prompts = [student.chat_prompt(q) for q in ("1+1", "what is 12*12?", "x", "7-2")]
    pid, pmask = student.encode_prompts(prompts)
    cid, _ = student.encode_completions(["2", "144 it is", "y!", "5"])
    completions = torch.stack([cid, cid.roll(1, dims=0)], dim=1)  # 2 samples per prompt
    assert not bool(pmask.all())

    def gradients(threads: int) -> list[torch.Tensor]:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            model = StackedLlama.from_states(shape_of(student.model), weights)
            lp = model.completion_logprobs(pid[None].expand(3, -1, -1), pmask[None].expand(3, -1, -1),
                                           completions[None].expand(3, -1, -1, -1))
            (lp * torch.linspace(-1, 1, lp.numel()).view(lp.shape)).sum().backward()
            return [lp.detach()] + [p.grad for p in model.params.values()]
        finally:
            torch.set_num_threads(before)

    one, two = gradients(1), gradients(2)
    assert all(torch.isfinite(t).all() for t in one)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


def test_models_the_stack_cannot_hold_are_named(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=20))
    assert "GPT2LMHeadModel" in stackable(gpt2)


def _uniforms(S, G, n, T, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.rand((G, n, T), generator=g) for _ in range(S)])


def test_a_rows_samples_depend_on_its_own_random_numbers_only(v1):
    """Finished groups leave the batch at different times with different thresholds; the
    samples stay the same (a few may flip where float rounding moves a token boundary)."""
    student, domain = v1
    problems = domain.problems(16, range(1, 21), seed=3)
    ids, mask = student.encode_prompts([domain.student_prompt(p.question) for p in problems])
    model = StackedLlama.from_states(shape_of(student.model), [student.snapshot()] * 2)
    args = (
        ids[None].expand(2, -1, -1),
        mask[None].expand(2, -1, -1),
        4,
        40,
        _uniforms(1, 16, 4, 40, 0).expand(2, -1, -1, -1),
        student.eos_id,
        student.pad_id,
    )
    runs = [sample(model, *args, compact_below=c) for c in (0.0, 0.75, 1.0)]
    for other in runs[1:]:
        same = (other.tokens == runs[0].tokens).all(-1).float().mean()
        assert same >= 0.95
    assert bool(runs[0].finite.all())
    # Both students have the same weights and numbers: the same samples.
    assert torch.equal(runs[0].tokens[0], runs[0].tokens[1])


def test_stacked_adamw_is_torch_adamw_per_student_with_its_own_clipping_and_skipped_steps():
    torch.manual_seed(0)
    w = torch.randn(3, 4, 5)
    params = {"w": w.clone().requires_grad_(True)}
    ours = StackedAdamW(params, lr=1e-2, weight_decay=0.1, max_grad_norm=0.5)
    theirs = [torch.nn.Parameter(w[s].clone()) for s in range(3)]
    optims = [torch.optim.AdamW([p], lr=1e-2, weight_decay=0.1) for p in theirs]
    for step in range(4):
        grads = torch.randn(3, 4, 5) * (step + 1)
        updated = torch.tensor([True, step % 2 == 0, step != 1])  # student 1 and 2 skip some steps
        params["w"].grad = grads.clone()
        ours.step(updated)
        for s in range(3):
            if updated[s]:
                theirs[s].grad = grads[s].clone()
                torch.nn.utils.clip_grad_norm_([theirs[s]], 0.5)
                optims[s].step()
    for s in range(3):
        assert torch.allclose(params["w"][s], theirs[s], atol=1e-6)


@pytest.mark.parametrize("kl_coef", [0.0, 0.5])
def test_one_lockstep_update_is_the_transformers_update(v1, kl_coef):
    """Same samples, same advantages: the stacked loss has the transformers loss's gradient
    (with a KL term to a reference that differs from the start, that term's too)."""
    from dataclasses import replace

    student, domain = v1
    rl = replace(tiny_v1().rl, kl_coef=kl_coef)
    base = student.snapshot()
    reference = _perturbed(base, 5) if kl_coef else None
    problems = domain.problems(64, range(1, 8), seed=1)
    trainer = LockstepRLOO(
        student,
        domain.reward_batch,
        domain.student_prompt,
        rl,
        [base, base],
        [1, 2],
        reference=reference,
        max_pass_tokens=5000,
    )  # several passes: gradient accumulation
    batches = [trainer.orders[r].next(problems) for r in trainer.runs]
    done = trainer.complete(batches, 8, 40, 1.0, [trainer.generators[r] for r in trainer.runs])
    S, G, n = done.lengths.shape
    texts = [t for per in done.texts for t in per]
    rewards = torch.tensor(domain.reward_batch(texts, [p for b in batches for p in b for _ in range(n)]))
    rewards = rewards.view(S, G, n)
    advantages = rloo_advantages(rewards.view(S * G, n)).view(S, G, n)
    live = rewards.amax(-1) > rewards.amin(-1)
    assert bool(live.any(-1).all())
    trainer._update(done, advantages, live)
    grads = StackedLlama(trainer.shape, {k: v.grad for k, v in trainer.model.params.items()}).state(1)
    trainer.optimizer.step(live.any(-1))
    keep = student.snapshot()
    try:
        pid, pmask = student.encode_prompts([domain.student_prompt(p.question) for p in batches[1]])
        groups = live[1].nonzero().flatten()
        width = done.tokens.shape[-1]
        tokens = done.tokens[1][groups].reshape(-1, width)
        cmask = (torch.arange(width) < done.lengths[1][groups].reshape(-1, 1)).long()
        batch = PolicyBatch(
            pid[groups],
            pmask[groups],
            tokens * cmask + student.pad_id * (1 - cmask),
            cmask,
            n,
            advantages[1][groups].reshape(-1),
        )
        ref_student = None
        if kl_coef:
            ref_student = student.copy()
            ref_student.restore(reference)
        # The transformers update's loss (soar_env.rl), backpropagated here to read its gradient.
        student.model.zero_grad(set_to_none=True)
        logprobs = student.token_logprobs(
            batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.completion_mask, samples=n
        )
        ref_logprobs = None
        if ref_student is not None:
            with torch.no_grad():
                ref_logprobs = ref_student.token_logprobs(
                    batch.prompt_ids,
                    batch.prompt_mask,
                    batch.completion_ids,
                    batch.completion_mask,
                    samples=n,
                )
        loss, _ = policy_gradient_loss(
            logprobs, batch.completion_mask, batch.advantages, ref_logprobs, kl_coef
        )
        loss.backward()
        expected_grads = {k: p.grad.clone() for k, p in student.model.named_parameters()}
    finally:
        student.restore(keep)
    scale = max(g.abs().max() for g in expected_grads.values())
    assert max((expected_grads[k] - grads[k]).abs().max() for k in expected_grads) < 1e-4 * scale
    moved = max((trainer.weights(1)[k] - base[k]).abs().max() for k in base)
    assert moved > 5e-5  # the step did something. Its weights are not compared with the
    # transformers step's: AdamW's first step is lr * g / (|g| + eps), about lr * sign(g), so
    # the rounding of a near-zero gradient decides its sign. StackedAdamW is checked against
    # torch's AdamW on equal gradients in its own test.


def test_runs_are_independent_of_their_stack_and_reproducible(v1):
    student, domain = v1
    rl = tiny_v1().rl.__class__(**{**vars(tiny_v1().rl), "questions_per_step": 16})
    base = student.snapshot()
    data = [domain.problems(16, range(1, 9), seed=s) for s in range(3)]

    def train(seeds, datasets, steps=3):
        trainer = LockstepRLOO(
            student, domain.reward_batch, domain.student_prompt, rl, [base] * len(seeds), seeds
        )
        rewards = [trainer.step(datasets) for _ in range(steps)]
        return [[r[i]["reward"] for r in rewards] for i in range(len(seeds))], trainer

    stacked, trainer = train([7, 8, 9], data)
    again, _ = train([7, 8, 9], data)
    alone, solo = train([8], data[1:2])
    assert stacked == again  # one machine, same calls: identical
    assert stacked[1] == pytest.approx(alone[0], rel=1e-4)  # alone or stacked: the same run
    assert stacked[0] != stacked[2]  # own data and seeds
    first = trainer.weights(1)  # runs are numbered by their place in ``starts``
    assert max((first[k] - solo.weights(0)[k]).abs().max() for k in first) < 1e-5


def test_a_diverged_run_is_stopped_and_the_others_go_on(v1):
    student, domain = v1
    rl = tiny_v1().rl
    base = student.snapshot()
    broken = {k: v * 1e30 for k, v in base.items()}  # logits overflow: not finite
    data = domain.problems(8, range(1, 5), seed=0)
    trainer = LockstepRLOO(student, domain.reward_batch, domain.student_prompt, rl, [base, broken], [1, 2])
    trainer.step([data, data])
    assert set(trainer.failed) == {1} and "not finite" in trainer.failed[1]
    trainer.drop([1])
    assert trainer.runs == [0]
    stats = trainer.step([data])
    assert len(stats) == 1 and all(torch.isfinite(v).all() for v in trainer.model.params.values())


def test_runs_with_fewer_questions_are_padded_not_trained_on_padding(v1):
    student, domain = v1
    rl = tiny_v1().rl
    base = student.snapshot()
    full, short = domain.problems(8, range(1, 4), seed=0), domain.problems(3, range(1, 4), seed=1)
    trainer = LockstepRLOO(student, domain.reward_batch, domain.student_prompt, rl, [base, base], [1, 1])
    stats = trainer.step([full, short])
    assert stats[1]["live_groups"] <= 3
    assert stats[1]["sampled_tokens"] <= 3 * rl.samples_per_question * rl.max_new_tokens


def test_question_order_is_a_shuffled_pass():
    order = QuestionOrder(seed=0, per_step=3)
    problems = list(range(7))
    seen = order.next(problems) + order.next(problems)
    assert len(set(seen)) == 6  # no repeat before the pass is used up


def test_groups_that_cannot_be_right_stop_and_nothing_else_changes(v1):
    """Exact-answer domains: a group none of whose samples still follows its answer stops
    sampling. Every right sample, every reward and the update stay what they were."""
    student, domain = v1
    rl = tiny_v1().rl
    base = student.snapshot()
    data = domain.problems(64, range(1, 21), seed=4)
    trainers = [
        LockstepRLOO(
            student, domain.reward_batch, domain.student_prompt, rl, [base], [3], exact_answers=exact
        )
        for exact in (False, True)
    ]
    stats = [t.step([data]) for t in trainers]
    assert (
        stats[0][0]["reward"] == stats[1][0]["reward"]
        and stats[0][0]["live_groups"] == stats[1][0]["live_groups"]
    )
    assert stats[1][0]["sampled_tokens"] < 0.6 * stats[0][0]["sampled_tokens"]  # most groups stop early
    assert all(
        torch.equal(a, b)
        for a, b in zip(trainers[0].model.params.values(), trainers[1].model.params.values())
    )


def test_a_domain_that_pays_a_wrong_completion_cannot_claim_exact_answers(v1):
    student, domain = v1
    rl = tiny_v1().rl
    generous = lambda texts, problems: [0.5 + 0.5 * (t == p.answer) for t, p in zip(texts, problems)]  # noqa: E731
    trainer = LockstepRLOO(
        student, generous, domain.student_prompt, rl, [student.snapshot()], [0], exact_answers=True
    )
    with pytest.raises(ValueError, match="exact_answers"):
        trainer.step([domain.problems(64, range(12, 21), seed=0)])


def test_decoding_in_slices_gives_the_completions_of_one_call(v1):
    """``max_decode_rows`` bounds sampling memory; a row's tokens depend on its own random
    numbers only, so slices of the questions decode what one call does."""
    student, domain = v1
    base = student.snapshot()
    problems = domain.problems(20, range(1, 8), seed=3)
    rollouts = []
    for rows in (1 << 20, 7 * 8 * 2):  # one call; slices of 7 questions (the last has 6)
        trainer = LockstepRLOO(student, domain.reward_batch, domain.student_prompt, tiny_v1().rl,
                               [_perturbed(base, 1), base], [1, 2], exact_answers=True, max_decode_rows=rows)
        batches = [problems, problems[::-1]]
        rollouts.append(trainer.complete(batches, 8, 40, 1.0, [trainer.generators[r] for r in trainer.runs]))
    whole, sliced = rollouts
    assert sliced.lengths.shape == whole.lengths.shape == (2, 20, 8)
    assert torch.equal(sliced.lengths, whole.lengths) and torch.equal(sliced.cut, whole.cut)
    width = int(whole.lengths.max())
    assert torch.equal(sliced.tokens[..., :width], whole.tokens[..., :width])
    assert sliced.texts == whole.texts
    assert bool(whole.cut.any()) and not bool(whole.cut.all())  # both kinds of group were sliced
