"""The script that produced the shipped model, run on a tiny budget."""

import json
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
def test_pretrain_script_is_deterministic_and_loadable(tmp_path):
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from soar_env.student.hf import HFStudent

    hashes = []
    for name in ("a", "b"):
        out = tmp_path / name
        subprocess.run(
            [sys.executable, "-m", "soar_env.domains.chain_pretrain", "--out", str(out),
             "--steps", "30", "--batch-size", "16", "--hidden", "32", "--seed", "7"],
            check=True, capture_output=True, text=True,
        )
        summary = json.loads((out / "pretrain.json").read_text())
        assert summary["steps"] == 30 and summary["final_loss"] < 3.0  # below uniform ln(20)
        AutoModelForCausalLM.from_pretrained(out)
        PreTrainedTokenizerFast.from_pretrained(out)
        hashes.append(HFStudent.from_pretrained(out, device="cpu").weights_hash())
    assert hashes[0] == hashes[1]


def test_pretraining_learns_the_format(tmp_path):
    """A short run already writes well-formed traces for one-step chains."""
    from soar_env.domains.chain import ChainDomain
    from soar_env.domains.chain_pretrain import pretrain
    from soar_env.student.hf import HFStudent

    domain = ChainDomain(max_len=3)
    pretrain(tmp_path, steps=150, batch_size=64, hidden=64, seed=0, domain=domain, progress=False)
    student = HFStudent.from_pretrained(tmp_path, device="cpu")
    problems = domain.problems(32, [1, 2, 3], seed=0)
    texts = student.sample([domain.student_prompt(p.question) for p in problems], 1, 8, 1.0,
                           torch.Generator().manual_seed(0)).texts
    lengths_right = [len(t.split(",")) == len(p.answer.split(",")) for t, p in zip(texts, problems)]
    assert sum(lengths_right) / len(texts) > 0.8
