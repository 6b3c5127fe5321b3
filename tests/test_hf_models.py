"""Any HF causal LM as a student: a small Llama built locally from a config, chat template on."""

import os
import subprocess
import sys

import pytest
import torch
from conftest import build_chat_llama

from soar_env.student.hf import HFStudent


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    return build_chat_llama(tmp_path_factory.mktemp("chat-llama"))


def test_chat_template_is_applied_and_sampling_works(chat_model_dir):
    student = HFStudent.from_pretrained(str(chat_model_dir), device="cpu")
    prompt = student.chat_prompt("What is $1+1$? Put the answer in \\boxed{}.")
    assert prompt == "<s><user>What is $1+1$? Put the answer in \\boxed{}.</user><assistant>"
    ids, _ = student.encode_prompts([prompt])
    assert (ids[0] == student.tokenizer.bos_token_id).sum() == 1  # no second BOS
    rollout = student.sample([prompt, prompt[:-3]], 3, 16, 1.0, torch.Generator().manual_seed(0))
    assert len(rollout.texts) == 6 and rollout.completion_ids.shape[1] <= 16
    lp = student.token_logprobs(rollout.prompt_ids, rollout.prompt_mask,
                                rollout.completion_ids, rollout.completion_mask)
    shared = student.token_logprobs(rollout.prompt_ids[::3], rollout.prompt_mask[::3],
                                    rollout.completion_ids, rollout.completion_mask, samples=3)
    assert torch.allclose(lp, shared, atol=1e-4)  # left padding and GQA included


@pytest.mark.slow
def test_uncached_hub_id_offline_gives_one_clear_error():
    code = ("from soar_env.student.hf import HFStudent\n"
            "try:\n    HFStudent.from_pretrained('meta-llama/Llama-3.2-3B-Instruct')\n"
            "except FileNotFoundError as e:\n    print(e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "Pass a local folder instead" in out.stdout, out.stderr[-1000:]
    assert "hf download" in out.stdout  # huggingface-cli is gone from current huggingface_hub


@pytest.mark.slow
def test_unreachable_hub_is_probed_once_and_skipped():
    # No offline flag, but the endpoint refuses connections: the probe says so and the
    # loader goes straight to its error instead of the hub library's retries.
    code = ("import time\nfrom soar_env.hub import hub_reachable\n"
            "from soar_env.student.hf import HFStudent\n"
            "print('reachable', hub_reachable())\n"
            "try:\n    HFStudent.from_pretrained('org/not-cached-model')\n"
            "except FileNotFoundError as e:\n    print(e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert "reachable False" in out.stdout and "hf download" in out.stdout, out.stderr[-1000:]


def test_missing_local_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        HFStudent.from_pretrained(str(tmp_path / "nope"))
