"""The vLLM backend's contract, tested where it needs no vLLM (it has not run on a GPU yet).

What runs here: the rollout layout built from sampled token ids equals ``HFStudent``'s, the
weight-change detector behind the weight sync, copies that never start an engine, and the
clear errors without vLLM or a GPU. The last test needs vLLM and a CUDA GPU and is skipped
elsewhere.
"""

import importlib.util

import gymnasium as gym
import pytest
import torch

import soar_env  # noqa: F401
from soar_env import embedded
from soar_env.embedded import TINY_CHAIN_PATH
from soar_env.student import BACKENDS, HFStudent, load_student
from soar_env.student.vllm_student import VLLMStudent, rollout_from_token_ids

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _vllm_student(hf: HFStudent) -> VLLMStudent:
    return VLLMStudent(hf.model, hf.tokenizer, model_path=TINY_CHAIN_PATH)


def _token_lists(rollout, end_id: int, extra_after_end: bool = False) -> list[list[int]]:
    """Each row's sampled ids as vLLM returns them (unpadded; optionally with tokens after
    the end token, which the layout must cut)."""
    rows = []
    for ids, mask in zip(rollout.completion_ids.tolist(), rollout.completion_mask.tolist()):
        row = [t for t, m in zip(ids, mask) if m]
        rows.append(row + [5, 6] if extra_after_end and row[-1] == end_id else row)
    return rows


@pytest.mark.parametrize("extra_after_end", [False, True])
def test_rollout_from_token_ids_lays_out_samples_as_the_hf_sampler(student, domain, extra_after_end):
    # Prompts of different lengths (left padding) and a token limit some samples reach.
    problems = domain.problems(2, [1, 6], seed=4)
    prompts = [domain.student_prompt(p.question) for p in problems] + ["3,1", "12,4,5"]
    hf = student.sample(prompts, 3, 6, 1.0, torch.Generator().manual_seed(0))
    assert not bool(hf.prompt_mask.all())  # the case needs padded prompts
    reached_limit = (hf.completion_mask.sum(-1) == 6) & (hf.completion_ids[:, -1] != student.eos_id)
    assert bool(reached_limit.any()) and not bool(reached_limit.all())
    unique_ids, unique_mask = student.encode_prompts(prompts)
    drawn = _token_lists(hf, student.eos_id, extra_after_end)
    built = rollout_from_token_ids(student, unique_ids, unique_mask, drawn, 3)
    for name in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask"):
        assert torch.equal(getattr(built, name), getattr(hf, name)), name
    assert built.texts == hf.texts and built.samples == 3 and built.num_tokens == hf.num_tokens


def test_rollout_from_token_ids_refuses_a_wrong_count(student):
    ids, mask = student.encode_prompts(["1+2="])
    with pytest.raises(ValueError, match="Expects 2 completions"):
        rollout_from_token_ids(student, ids, mask, [[1]], 2)


def test_weights_version_changes_on_every_update_and_restore_only(student, domain):
    vs = _vllm_student(student)
    problems = domain.problems(4, [2], seed=5)
    prompts = [domain.student_prompt(p.question) for p in problems]
    answers = [p.answer for p in problems]
    start = vs.weights_version()
    snap = vs.snapshot()
    vs.answer_logprobs(prompts, answers)  # reading the weights is no change
    assert vs.weights_version() == start
    # One optimizer step, as the RLOO update takes it.
    optimizer = torch.optim.AdamW(vs.model.parameters(), lr=1e-3)
    p_ids, p_mask = vs.encode_prompts(prompts)
    c_ids, c_mask = vs.encode_completions(answers)
    (-vs.token_logprobs(p_ids, p_mask, c_ids, c_mask).sum()).backward()
    optimizer.step()
    stepped = vs.weights_version()
    assert stepped != start
    vs.restore(snap)  # the env's baseline loads and the lab's restores
    assert vs.weights_version() not in (start, stepped)
    assert torch.equal(vs.answer_logprobs(prompts, answers), student.answer_logprobs(prompts, answers))


def test_copies_score_with_transformers_and_never_start_an_engine(student):
    copy = _vllm_student(student).copy()
    assert type(copy) is HFStudent
    assert copy.model is not student.model


def test_the_backend_is_refused_clearly_where_it_cannot_sample(student, tmp_path):
    assert BACKENDS == ("hf", "vllm")
    with pytest.raises(ValueError, match="student_backend expects one of"):
        load_student(TINY_CHAIN_PATH, "tgi")
    with pytest.raises(ValueError, match="student_backend='vllm' samples on a GPU"):
        gym.make("SOAR-Tiny-v0", student_backend="vllm")
    with pytest.raises((ImportError, RuntimeError), match=r"soar-env\[vllm\]"):
        load_student(TINY_CHAIN_PATH, "vllm", device="cpu")
    with pytest.raises((ImportError, RuntimeError), match=r"soar-env\[vllm\]"):
        _vllm_student(student).sample(["1+2="], 2, 4)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        VLLMStudent(student.model, student.tokenizer, model_path=TINY_CHAIN_PATH, gpu_memory_utilization=1.5)


@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()), reason="needs vLLM and a CUDA GPU")
def test_vllm_sampling_is_seeded_and_follows_the_live_weights(domain):
    vs = load_student(TINY_CHAIN_PATH, "vllm", device="cuda", gpu_memory_utilization=0.2)
    prompts = [domain.student_prompt(p.question) for p in embedded.good_stones(4, seed=0)]
    a = vs.sample(prompts, 8, 44, 1.0, torch.Generator(device="cuda").manual_seed(1))
    b = vs.sample(prompts, 8, 44, 1.0, torch.Generator(device="cuda").manual_seed(1))
    assert a.texts == b.texts and vs.weight_pushes == 1
    greedy_before = vs.greedy(prompts, 44)
    with torch.no_grad():
        for p in vs.model.parameters():
            p.mul_(0.0)  # a student with no knowledge left: its greedy answers must change
    assert vs.greedy(prompts, 44) != greedy_before and vs.weight_pushes == 2
