"""The vLLM backend's contract, tested where it needs no vLLM (it has not run on a GPU yet).

What runs here: the rollout layout built from sampled token ids equals ``HFStudent``'s, the
end-token rule on vLLM-shaped outputs, the per-sample seeds, the rendezvous port, the
engine's options from ``gym.make`` to Ray actors, the order of sleep, wake and weight push,
the weight-change detector behind the weight sync, copies that never start an engine, and
the clear errors without vLLM or a GPU. The last two tests need vLLM and a CUDA GPU (the
second also Ray) and are skipped elsewhere.
"""

import importlib.util
import os
import socket
from types import SimpleNamespace

import gymnasium as gym
import pytest
import torch

import soar_env  # noqa: F401
from soar_env import embedded
from soar_env.embedded import TINY_CHAIN_PATH
from soar_env.student import BACKENDS, HFStudent, load_student
from soar_env.student.vllm_student import (
    VLLMStudent,
    completions_from_outputs,
    configure_engine,
    end_token_ids,
    launcher_env,
    request_seeds,
    rollout_from_token_ids,
    scoped_environ,
)

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


def _outputs(prompts):
    """vLLM ``RequestOutput``s reduced to the fields the student reads: per prompt, its
    samples' ``token_ids`` and ``finish_reason``."""
    return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=tuple(ids), finish_reason=reason)
                                     for ids, reason in drawn]) for drawn in prompts]


def test_a_completion_ends_with_the_end_token_it_sampled_and_gains_none(student):
    hf = student.copy()
    eos = hf.eos_id
    other = 7 if eos != 7 else 8  # a second end id, as Llama-3 Instruct's generation config has
    hf.model.generation_config.eos_token_id = [eos, other]
    vs = VLLMStudent(hf.model, hf.tokenizer, model_path=TINY_CHAIN_PATH)
    assert vs.end_ids == end_token_ids(vs) == sorted({eos, other})
    # vLLM keeps the stop id it sampled in token_ids (v1/engine/detokenizer.py, update).
    drawn = [[([10, 11, other], "stop"), ([12, eos], "stop")],
             [([13, 14, 15, 16], "length"), ([eos], "stop")]]
    completions = completions_from_outputs(_outputs(drawn))
    assert completions == [[10, 11, other], [12, eos], [13, 14, 15, 16], [eos]]
    ids, mask = vs.encode_prompts(["1,2", "3,4,5"])
    rollout = rollout_from_token_ids(vs, ids, mask, completions, 2, vs.end_ids)
    # Exactly the sampled tokens are scored: none appended after the other end id.
    assert rollout.completion_mask.sum(-1).tolist() == [3, 2, 4, 1]
    last = [int(row[m.bool()][-1]) for row, m in zip(rollout.completion_ids, rollout.completion_mask)]
    assert last == [other, eos, 16, eos]
    assert rollout.num_tokens == 10


def test_no_two_samples_of_a_call_share_a_random_stream():
    # vLLM seeds child j of an n > 1 request as seed + j (vllm/v1/engine/parallel_sampling.py,
    # ParentRequest._get_child_sampling_params).
    for prompts, samples in [(8, 32), (3, 1), (5, 2)]:
        streams = [seed + j for seed in request_seeds(1000, prompts, samples) for j in range(samples)]
        assert streams == list(range(1000, 1000 + prompts * samples))
    # The seeds before issue 25 (prompt i: seed + i) gave 64 samples of two prompts 33 streams.
    assert len({1000 + i + j for i in range(2) for j in range(32)}) == 33


def test_each_engine_gets_a_free_rendezvous_port_and_its_own_device():
    # The driver's engine holds its port (the external launcher binds MASTER_PORT); an actor's
    # engine on the same node, or a second run's, must get another.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        ports = {int(launcher_env(torch.device("cuda", 0))["MASTER_PORT"]) for _ in range(20)}
        assert taken not in ports
        for port in ports:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", port))  # free: binding it succeeds
    values = launcher_env(torch.device("cuda", 3))
    assert (values["RANK"], values["LOCAL_RANK"], values["WORLD_SIZE"]) == ("0", "3", "1")
    before = os.environ.get("MASTER_PORT")
    with scoped_environ(values):  # set for the engine's build only: nothing leaks to actors
        assert os.environ["MASTER_PORT"] == values["MASTER_PORT"]
    assert os.environ.get("MASTER_PORT") == before


def test_engine_options_derive_from_the_config_and_yield_to_the_given(student, domain):
    def prompt(question):
        return student.chat_prompt(domain.student_prompt(question))

    template = len(student.tokenizer(prompt(""))["input_ids"])
    context = student.model.config.max_position_embeddings
    options = configure_engine(student, prompt, 10, 20)  # a plain HF student: nothing to set
    assert template + 4 * 10 + 20 <= context
    assert options == {"max_model_len": template + 60, "sleep": True, "max_num_batched_tokens": 4096,
                       "gpu_memory_utilization": 0.3}
    assert configure_engine(student, prompt, 4096, 1024)["max_model_len"] == context  # capped
    vs = _vllm_student(student)
    given = configure_engine(vs, prompt, 10, 20, {"max_model_len": 999, "sleep": False,
                                                  "gpu_memory_utilization": 0.5, "enforce_eager": True})
    assert given["max_model_len"] == 999 and given["enforce_eager"] is True
    assert (vs.sleep, vs.gpu_memory_utilization) == (False, 0.5)
    assert vs.engine_args == {"max_model_len": 999, "max_num_batched_tokens": 4096, "enforce_eager": True}
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        vs.configure(gpu_memory_utilization=1.0)
    with pytest.raises(ValueError, match="vllm_options= is for student_backend='vllm'"):
        gym.make("SOAR-Tiny-v0", vllm_options={"max_model_len": 99})


class _RecordingEngine:
    """The ``vllm.LLM`` methods the student calls, recorded (vLLM 0.32 cannot run here). Its
    ``generate`` returns each sample's seed and index, then an end id, as vLLM lays them out."""

    def __init__(self, calls, max_model_len=4096):
        self.calls, self.pushed = calls, {}
        self.model_config = SimpleNamespace(max_model_len=max_model_len)

    def wake_up(self, tags):
        self.calls.append(("wake_up", tuple(tags)))

    def sleep(self, level):
        self.calls.append(("sleep", level))

    def apply_model(self, fn):
        self.calls.append("apply_model")
        return [fn(SimpleNamespace(load_weights=lambda weights: self.pushed.update(weights)))]

    def reset_prefix_cache(self):
        self.calls.append("reset_prefix_cache")

    def generate(self, prompts, sampling_params, use_tqdm):
        self.calls.append("generate")
        self.params = sampling_params
        return _outputs([[([3 + p.seed % 50, 3 + j, p.stop_token_ids[-1]], "stop") for j in range(p.n)]
                         for p in sampling_params])


def test_sampling_wakes_pushes_samples_and_sleeps_in_order(student, monkeypatch):
    import sys

    calls = []
    fake_vllm = SimpleNamespace(SamplingParams=lambda **kw: SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    vs = _vllm_student(student)
    vs.llm, vs._asleep = _RecordingEngine(calls), {"weights", "kv_cache"}  # as after a level-2 sleep
    rollout = vs.sample(["1,2", "3,4,5"], 4, 8, 1.0, torch.Generator().manual_seed(0))
    # TRL's order (trl/generation/vllm_generation.py): empty the cache, wake the weights, push,
    # reset the prefix cache; empty the cache, wake the KV cache, generate, sleep.
    assert calls == ["empty_cache", ("wake_up", ("weights",)), "apply_model", "reset_prefix_cache",
                     "empty_cache", ("wake_up", ("kv_cache",)), "generate", ("sleep", 2)]
    state = vs.model.state_dict()
    assert vs.llm.pushed.keys() == state.keys()  # the live tensors, not copies
    assert all(vs.llm.pushed[k].data_ptr() == state[k].data_ptr() for k in state)
    params = vs.llm.params
    assert params[1].seed == params[0].seed + 4
    assert all(p.n == 4 and p.stop_token_ids == vs.end_ids for p in params)
    assert rollout.completion_mask.sum(-1).tolist() == [3] * 8  # as drawn, end id included
    # Level 2 dropped the weights: the next call pushes them again.
    calls.clear()
    vs.sample(["1,2"], 2, 8, 1.0, torch.Generator().manual_seed(0))
    assert calls[:3] == ["empty_cache", ("wake_up", ("weights",)), "apply_model"] and vs.weight_pushes == 2
    vs.llm.model_config.max_model_len = 4
    with pytest.raises(ValueError, match="max_model_len"):
        vs.sample(["1,2,3,4,5,6"], 2, 8)


@pytest.mark.slow
def test_vllm_options_reach_the_ray_actors_and_the_driver_stays_on_the_cpu(tmp_path):
    import json

    from conftest import build_chat_llama

    ray = pytest.importorskip("ray")
    data = tmp_path / "math.jsonl"
    data.write_text(json.dumps({"problem": "What is $1+1$?", "solution": "$\\boxed{2}$"}) + "\n")
    ray.init(num_cpus=2, log_to_driver=False)
    try:
        env = gym.make("SOAR-MATH-v0", student=str(build_chat_llama(tmp_path / "llama")), dataset=str(data),
                       student_backend="vllm", executor="ray", num_workers=1,
                       vllm_options={"gpu_memory_utilization": 0.5, "enforce_eager": True})
        unwrapped = env.unwrapped
        options = unwrapped.vllm_options
        assert options["gpu_memory_utilization"] == 0.5 and options["enforce_eager"] is True
        # A 4096-character question and 1024 new tokens outgrow the small Llama's context: capped.
        assert options["sleep"] is True and options["max_model_len"] == 1024
        # The driver measures on the CPU with transformers, with no KL reference copy: the actors train.
        assert unwrapped.student.device.type == "cpu" and type(unwrapped.student) is HFStudent
        assert unwrapped.reference is None
        placement = ray.get(unwrapped._executor._actors[0].placement.remote())
        assert placement["vllm_options"] == options
        assert placement["device"] == "cpu" and placement["backend"] == "hf"  # no GPU here
        env.close()
    finally:
        ray.shutdown()


def test_the_baseline_stays_in_cpu_memory_on_a_gpu_actor(student):
    from soar_env.ray_executor import actor_gpus, host_weights

    baseline = student.snapshot()
    kept = host_weights(baseline, torch.device("cuda", 0))  # what a GPU actor keeps
    assert all(v.device.type == "cpu" for v in kept.values())
    assert all(torch.equal(kept[k], baseline[k]) for k in baseline)
    # A local Ray leaves the env's own GPU out of the actors'.
    assert actor_gpus(["0", "1", "2", "3"], 0) == ["1", "2", "3"]
    assert actor_gpus(["4", "6"], 1) == ["4"] and actor_gpus(["0", "1"], None) == ["0", "1"]


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="this machine has a cuda:1")
def test_the_gpu_smoke_test_refuses_a_device_it_cannot_use(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_smoke.py"
    for device in ("cuda:1", "tpu"):
        done = subprocess.run([sys.executable, str(script), "--device", device, "--work", str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 1 and f"--device {device}:" in done.stderr, done.stderr[-500:]
        assert not (tmp_path / "student").exists()  # refused before any work


@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available()), reason="needs vLLM and a CUDA GPU")
@pytest.mark.parametrize("sleep", [False, True])
def test_vllm_sampling_is_seeded_and_follows_the_live_weights(domain, sleep):
    vs = load_student(TINY_CHAIN_PATH, "vllm", device="cuda", gpu_memory_utilization=0.2, sleep=sleep)
    prompts = [domain.student_prompt(p.question) for p in embedded.good_stones(4, seed=0)]
    a = vs.sample(prompts, 8, 44, 1.0, torch.Generator(device="cuda").manual_seed(1))
    b = vs.sample(prompts, 8, 44, 1.0, torch.Generator(device="cuda").manual_seed(1))
    # Asleep between calls (level 2), the engine gets the weights again each time.
    assert a.texts == b.texts and vs.weight_pushes == (2 if sleep else 1)
    assert len(set(a.texts)) > 8  # 32 samples, each with its own random stream
    greedy_before = vs.greedy(prompts, 44)
    pushes = vs.weight_pushes
    with torch.no_grad():
        for p in vs.model.parameters():
            p.mul_(0.0)  # a student with no knowledge left: its greedy answers must change
    assert vs.greedy(prompts, 44) != greedy_before and vs.weight_pushes == pushes + 1


@pytest.mark.skipif(not (HAS_VLLM and torch.cuda.is_available() and importlib.util.find_spec("ray")),
                    reason="needs vLLM, Ray and a CUDA GPU")
def test_a_math_round_on_ray_actors_sampling_with_vllm(tmp_path):
    """The paper's layout on one GPU: the env measures on the CPU, one Ray actor trains on the
    GPU with a vLLM engine built from the env's options (the round's rewards are finite)."""
    import json
    import math

    import ray
    from conftest import CHAT_TEMPLATE

    from soar_env.domains.math import load_problems
    from soar_env.rl import RLOOConfig
    from soar_env.student.scratch import build_char_llama

    # Head size 64: vLLM's attention kernels take it (the CPU tests' 8 may not be).
    student = build_char_llama(tmp_path / "llama", 256, 2, heads=4, kv_heads=1, chat_template=CHAT_TEMPLATE,
                               intermediate_size=512, max_positions=2048)

    data = tmp_path / "math.jsonl"
    rows = [{"problem": f"What is ${a} + {a}$?", "solution": f"$\\boxed{{{2 * a}}}$"} for a in range(12)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))

    env = gym.make("SOAR-MATH-v0", student=str(student), dataset=str(data),
                   student_backend="vllm", executor="ray", num_workers=1, hard_candidates=8, hard_k=2,
                   reward_questions=2, dataset_size=2, group_size=1, inner_runs=1, inner_steps=1, rounds=1,
                   rl=RLOOConfig(questions_per_step=2, samples_per_question=4, max_new_tokens=16),
                   vllm_options={"gpu_memory_utilization": 0.2})
    try:
        unwrapped = env.unwrapped
        placement = ray.get(unwrapped._executor._actors[0].placement.remote())
        assert placement["device"].startswith("cuda") and placement["backend"] == "vllm"
        assert unwrapped.student.device.type == "cpu"
        env.reset(seed=0)
        (_, reward, *_), = unwrapped.step_round([load_problems(str(data))[:2]])
        assert math.isfinite(reward)
    finally:
        env.close()
        ray.shutdown()
