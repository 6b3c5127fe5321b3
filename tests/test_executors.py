"""A round at once (step_round), here or in worker processes, equals stepping one by one.

serial, process and ray run each inner run alone and agree bit for bit. lockstep stacks a
round's runs into one model, so a run's float sums depend on the shapes of its stack: a
round at once agrees with stepping one by one within float rounding (and with serial in
distribution: ``benchmarks/equivalence.py``).
"""

import gymnasium as gym
import pytest
from conftest import ROUND

import soar_env  # noqa: F401

# Three inner runs, promotion every round (the median run's weights reach the workers).
SETTINGS = {**ROUND, "inner_runs": 3, "tau": -1.0, "ma_window": 1}


def _actions(env, rounds):
    generator = env.unwrapped.domain.generator
    return [[generator.problems(8, range(3, 7), seed=20 + 2 * r + i) for i in range(2)]
            for r in range(rounds)]


def _one_by_one(rounds, executor="serial"):
    env = gym.make("SOAR-Tiny-v1", executor=executor, **SETTINGS)
    env.reset(seed=5)
    out = [env.step(a)[1:] for actions in _actions(env, rounds) for a in actions]
    env.close()
    return out


@pytest.mark.parametrize("executor", ["serial", "process", pytest.param("ray", marks=pytest.mark.slow)])
def test_step_round_equals_steps(executor):
    if executor == "ray":
        # In the dev extra (so CI runs it); a plain install has it as the extra '.[ray]'.
        ray = pytest.importorskip("ray")
        ray.init(num_cpus=2, log_to_driver=False)  # the setting: two CPUs, no GPU
    expected = _one_by_one(2)
    env = gym.make("SOAR-Tiny-v1", executor=executor, num_workers=2, **SETTINGS)
    try:
        env.reset(seed=5)
        got = [step[1:] for actions in _actions(env, 2) for step in env.unwrapped.step_round(actions)]
    finally:
        env.close()
        if executor == "ray":
            ray.shutdown()
    assert got == expected  # rewards, flags and infos (promotions, usage counters), bit for bit
    assert [info["promotions"] for *_, info in got] == [0, 1, 1, 2]


def test_lockstep_round_equals_steps_within_rounding():
    expected = _one_by_one(2, "lockstep")
    env = gym.make("SOAR-Tiny-v1", executor="lockstep", **SETTINGS)
    env.reset(seed=5)
    got = [step[1:] for actions in _actions(env, 2) for step in env.unwrapped.step_round(actions)]
    env.close()
    assert [g[0] for g in got] == pytest.approx([e[0] for e in expected], rel=1e-4)
    assert [info["promotions"] for *_, info in got] == [info["promotions"] for *_, info in expected]
    assert [info["compute"] for *_, info in got] == [info["compute"] for *_, info in expected]
    print("bit for bit here:", [g[0] for g in got] == [e[0] for e in expected])


def test_step_round_refuses_a_mid_round_start_and_a_wrong_count():
    env = gym.make("SOAR-Tiny-v1", **SETTINGS)
    env.reset(seed=0)
    actions = _actions(env, 1)[0]
    with pytest.raises(ValueError, match="2 actions"):
        env.unwrapped.step_round(actions[:1])
    env.step(actions[0])
    with pytest.raises(ValueError, match="round boundary"):
        env.unwrapped.step_round(actions)
    with pytest.raises(ValueError, match="executor expects one of"):
        gym.make("SOAR-Tiny-v1", executor="threads")


WORKERS_THEN_WAIT = """
import os, sys, time, psutil, gymnasium as gym, soar_env
if __name__ == "__main__":
    env = gym.make("SOAR-Tiny-v1", executor="lockstep", num_workers=2, **{settings!r})
    env.reset(seed=0)
    env.step(env.unwrapped.domain.generator.problems(8, range(3, 7), seed=1))
    print(*[p.pid for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())], flush=True)
    time.sleep(600)
"""


def test_workers_die_with_a_killed_owner(tmp_path):
    """A SIGKILLed run cannot close its pool: its workers notice and exit on their own."""
    import signal
    import subprocess
    import sys
    import time

    import psutil

    script = tmp_path / "owner.py"
    script.write_text(WORKERS_THEN_WAIT.format(settings=ROUND))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in owner.stdout.readline().split()]
        assert workers and all(psutil.pid_exists(p) for p in workers)  # spawned as jobs need them
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                              for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
