import pytest
import torch

from soar_env import embedded
from soar_env.student.hf import HFStudent


def test_shipped_model_loads_with_plain_transformers_calls():
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = AutoModelForCausalLM.from_pretrained(embedded.TINY_CHAIN_PATH)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(embedded.TINY_CHAIN_PATH)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    assert tokenizer.decode(tokenizer("Q:5+3=")["input_ids"]) == "Q:5+3="
    weights = embedded.TINY_CHAIN_PATH / "model.safetensors"
    assert weights.stat().st_size < 5 * 2**20


def test_missing_model_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        HFStudent.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="chain_pretrain"):
        embedded.load_tiny_student(tmp_path)


def test_sampling_is_seeded(student, domain):
    prompts = [domain.student_prompt(p.question) for p in embedded.good_stones(4, seed=0)]
    a = student.sample(prompts, 8, 44, 1.0, torch.Generator().manual_seed(1)).texts
    b = student.sample(prompts, 8, 44, 1.0, torch.Generator().manual_seed(1)).texts
    c = student.sample(prompts, 8, 44, 1.0, torch.Generator().manual_seed(2)).texts
    assert a == b and a != c
    assert len(a) == 32


def test_greedy_solves_short_chains(student, domain):
    problems = domain.problems(64, range(1, 3), seed=0)
    outputs = student.greedy([domain.student_prompt(p.question) for p in problems], 44)
    accuracy = sum(domain.grade(o, p.answer) for o, p in zip(outputs, problems)) / len(problems)
    assert accuracy > 0.8  # the writer's most likely step is the right one


def test_exact_pass_at_1_matches_sampling(student, domain):
    problems = domain.problems(8, [1, 2], seed=1)
    prompts = [domain.student_prompt(p.question) for p in problems]
    exact = student.exact_pass_at_1(prompts, [p.answer for p in problems])
    rollout = student.sample(prompts, 400, 44, 1.0, torch.Generator().manual_seed(0))
    scores = torch.tensor(domain.grade_batch(rollout.texts, [p for p in problems for _ in range(400)]))
    sampled = scores.view(8, 400).mean(1)
    # binomial standard error at 400 samples is <= 0.025
    assert torch.allclose(sampled, exact, atol=0.08), (sampled, exact)
    assert float((sampled - exact).abs().mean()) < 0.03


def test_token_logprobs_respect_masks(student, domain):
    prompts = [domain.student_prompt(p.question) for p in domain.problems(3, [1, 3], seed=2)]
    rollout = student.sample(prompts, 2, 44, 1.0, torch.Generator().manual_seed(0))
    lp = student.token_logprobs(rollout.prompt_ids, rollout.prompt_mask,
                                rollout.completion_ids, rollout.completion_mask)
    assert lp.shape == rollout.completion_ids.shape
    assert torch.all(lp[rollout.completion_mask == 0] == 0)
    assert torch.all(lp[rollout.completion_mask == 1] <= 0)
    assert torch.all(lp.sum(-1) < 0)  # every sampled digit had competitors


def test_snapshot_restore_roundtrip(student, domain):
    problems = domain.problems(16, [4], seed=3)
    prompts, answers = [domain.student_prompt(p.question) for p in problems], [p.answer for p in problems]
    before = student.answer_logprobs(prompts, answers)
    snap = student.snapshot()
    with torch.no_grad():
        for p in student.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert not torch.allclose(student.answer_logprobs(prompts, answers), before)
    student.restore(snap)
    assert torch.equal(student.answer_logprobs(prompts, answers), before)
    assert student.weights_hash() == student.weights_hash()


@pytest.mark.parametrize("cut", [False, True])
def test_shared_prompt_logprobs_equal_the_plain_ones(student, domain, cut):
    """Encoding each prompt once for its samples changes nothing but the cost."""
    prompts = [domain.student_prompt(p.question) for p in domain.problems(6, range(1, 21), seed=4)]
    if cut:  # prompts of different lengths: left padding in play
        prompts = [p[: 12 + 3 * i] for i, p in enumerate(prompts)]
    r = student.sample(prompts, 4, 40, 1.0, torch.Generator().manual_seed(0))
    plain = student.token_logprobs(r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
    shared = student.token_logprobs(r.prompt_ids[::4], r.prompt_mask[::4], r.completion_ids,
                                    r.completion_mask, samples=4)
    assert torch.allclose(plain, shared, atol=1e-4)
    weight = student.model.get_input_embeddings().weight
    grads = []
    for args, samples in (((r.prompt_ids, r.prompt_mask), 1), ((r.prompt_ids[::4], r.prompt_mask[::4]), 4)):
        student.model.zero_grad()
        student.token_logprobs(*args, r.completion_ids, r.completion_mask, samples=samples).sum().backward()
        grads.append(weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-3)
    student.model.zero_grad()


def test_corrupted_checkpoint_gets_a_clear_error(tmp_path):
    import shutil

    shutil.copytree(embedded.TINY_CHAIN_PATH, tmp_path / "model")
    (tmp_path / "model" / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(RuntimeError, match="corrupted"):
        HFStudent.from_pretrained(tmp_path / "model", device="cpu")
    (tmp_path / "model" / "model.safetensors").unlink()
    with pytest.raises((FileNotFoundError, RuntimeError), match="model.safetensors|corrupted"):
        HFStudent.from_pretrained(tmp_path / "model", device="cpu")
