"""Machine settings in one object, presets with explicit fields, and spawn's needs explained."""

import os
import subprocess
import sys
from dataclasses import dataclass

import gymnasium as gym
import pytest

import soar_env  # noqa: F401  (registers the ids)
from soar_env.config import PRESETS, Preset, domain_preset, paper, tiny
from soar_env.evaluation import EvalConfig
from soar_env.machine import Machine


@pytest.mark.parametrize("settings, match", [
    ({"executor": "threads"}, "executor expects one of"),
    ({"student_backend": "onnx"}, "student_backend expects one of"),
    ({"num_workers": 0}, "num_workers expects an int >= 1"),
    ({"max_batch_tokens": 1.5}, "max_batch_tokens expects an int >= 1"),
    ({"threads": True}, "threads expects an int >= 1"),
    ({"vllm_options": {"enforce_eager": True}}, "vllm_options= is for student_backend='vllm'"),
])
def test_bad_machine_settings_name_the_setting(settings, match):
    with pytest.raises(ValueError, match=match):
        Machine(**settings)


def test_keywords_and_the_object_make_the_same_machine():
    keywords = {"executor": "serial", "num_workers": 2, "rounds": 3}
    machine = Machine.from_keywords(None, keywords)
    assert machine == Machine(executor="serial", num_workers=2) and keywords == {"rounds": 3}
    # Keywords change a given machine; the algorithm's settings are left for SoarConfig.
    assert Machine.from_keywords(machine, {"num_workers": 1}) == Machine(executor="serial", num_workers=1)
    by_keywords = gym.make("SOAR-Tiny-v1", executor="serial", rounds=3).unwrapped
    by_object = gym.make("SOAR-Tiny-v1", machine=Machine(executor="serial"), rounds=3).unwrapped
    assert by_keywords.machine == by_object.machine == Machine(device="cpu", executor="serial")
    assert by_keywords.config == by_object.config and by_keywords.config.rounds == 3
    assert by_keywords.executor == "serial"


def test_the_domain_preset_places_the_student():
    assert Machine().place("cpu", "chain").device == "cpu"  # small students: the CPU
    assert Machine().place(None, "math").device is None  # CUDA when available
    assert Machine(executor="ray").place(None, "math").device == "cpu"  # the actors train
    assert Machine(device="cuda:1").place("cpu", "chain").device == "cuda:1"  # given wins
    with pytest.raises(ValueError, match="student_backend='vllm' samples on a GPU"):
        Machine(student_backend="vllm").place("cpu", "chain")


def test_presets_declare_what_the_student_size_decides():
    assert PRESETS["paper"]() == paper() and PRESETS["tiny_v1"](rounds=2).rounds == 2
    small, large = PRESETS["tiny"], PRESETS["paper"]
    assert (small.student_device, small.small_students, small.reward_scale) == ("cpu", True, 1e6)
    assert (large.student_device, large.small_students, large.reward_scale) == (None, False, 1.0)
    assert all(isinstance(p, Preset) for p in PRESETS.values())


@dataclass
class _Named:
    preset: str
    name: str = "mine"


def test_a_domain_names_its_preset_and_an_unknown_one_is_refused():
    assert domain_preset(_Named("paper")) is PRESETS["paper"]
    with pytest.raises(ValueError, match=r"The mine domain's preset expects one of \('tiny'"):
        domain_preset(_Named("small"))


def test_the_evaluation_protocol_follows_the_domain_preset():
    @dataclass
    class Env:
        domain: _Named
        config: object

    assert EvalConfig.for_env(Env(_Named("tiny"), tiny())) == EvalConfig.tiny()
    assert EvalConfig.for_env(Env(_Named("paper"), paper(eval_mode="mixed"))) == EvalConfig(mode="mixed")


def _run(script, *args, cwd=None):
    return subprocess.run([sys.executable, *args], input=script, capture_output=True, text=True, timeout=300,
                          cwd=cwd)


STDIN_SCRIPT = """
import gymnasium as gym
import soar_env
env = gym.make("SOAR-Tiny-v1", {machine})
"""


@pytest.mark.parametrize("machine", ["executor='process'", "executor='lockstep', num_workers=2"])
def test_a_script_on_stdin_gets_what_spawn_needs_in_one_line(machine):
    result = _run(STDIN_SCRIPT.format(machine=machine), "-")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: executor=") and "cannot start" in last
    assert "not a file (a script read from stdin?)" in last and "if __name__ == '__main__':" in last
    assert "BrokenProcessPool" not in result.stderr


def test_spawn_can_run_a_script_file_a_command_and_a_module_again(tmp_path):
    check = "from soar_env.machine import main_script_error\nprint(main_script_error())\n"
    (tmp_path / "script.py").write_text(check)
    assert _run("", str(tmp_path / "script.py")).stdout.strip() == "None"
    assert _run("", "-c", check).stdout.strip() == "None"
    assert _run("", "-m", "script", cwd=tmp_path).stdout.strip() == "None"
    assert "is not a file" in _run(check, "-").stdout


UNGUARDED_SCRIPT = """
import gymnasium as gym
import soar_env
from soar_env.embedded import good_stones
env = gym.make("SOAR-Tiny-v1", executor="process", num_workers=1, dataset_size=8, inner_steps=2,
               reward_questions=16, group_size=2)
env.reset(seed=0)
env.step(good_stones(8, seed=0))
"""


@pytest.mark.slow
def test_a_script_file_without_the_main_guard_gets_spawns_needs_when_its_worker_dies(tmp_path):
    # The worker runs the script again, whose step starts a process while it is still
    # starting up: the worker dies, and the owner says why in one line.
    (tmp_path / "unguarded.py").write_text(UNGUARDED_SCRIPT)
    result = _run("", str(tmp_path / "unguarded.py"))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: A worker process of executor='process' died")
    assert "if __name__ == '__main__':" in last


THREADS_SCRIPT = """
import gymnasium as gym, soar_env, torch
from soar_env import threads
torch.set_num_threads(2)
env = gym.make("SOAR-Tiny-v1", threads=1)
print(torch.get_num_threads(), threads.adapt(), env.unwrapped.machine.threads)
"""


def test_threads_fix_the_count_whatever_the_load():
    environ = {k: v for k, v in os.environ.items() if k not in ("SOAR_ENV_THREADS", "OMP_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True,
                            timeout=300, env=environ)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.split() == ["1", "None", "1"]  # adapt() leaves a fixed count alone
