import atexit
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Tests never write into the user's cache: hard sets and hub files go to a temporary folder
# (subprocesses inherit it), removed when the session ends. CI may set its own.
if "SOAR_ENV_TEST_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="soar-env-test-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["SOAR_ENV_CACHE"] = _cache
else:
    os.environ["SOAR_ENV_CACHE"] = os.environ["SOAR_ENV_TEST_CACHE"]

# Under pytest-xdist (`-n 2`, the README's command) each worker runs torch on one thread:
# two workers whose OpenMP threads spin for the same 2 cores slow each other severalfold
# (soar_env/threads.py). Tests that are about threads set their own counts.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:  # a plugin imported it before this file: set it directly
        sys.modules["torch"].set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_student():
    """The shipped tiny chain model (loaded once; tests restore its weights after use)."""
    from soar_env.embedded import load_tiny_student

    return load_tiny_student()


@pytest.fixture()
def student(tiny_student):
    snapshot = tiny_student.snapshot()
    yield tiny_student
    tiny_student.restore(snapshot)


@pytest.fixture()
def domain():
    from soar_env.embedded import tiny_domain

    return tiny_domain()


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>"
    "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
)


def build_chat_llama(out):
    """A small random Llama (GQA) with a char tokenizer and a chat template, saved to ``out``."""
    from soar_env.student.scratch import build_char_llama

    return build_char_llama(out, hidden_size=32, layers=2, heads=4, kv_heads=2, chat_template=CHAT_TEMPLATE,
                            intermediate_size=64, max_positions=1024)


# ---- shared settings: every test env is built from these, plus what its test is about ----

ROUND = dict(dataset_size=8, group_size=2, inner_steps=2, reward_questions=16)
"""A grounded round at test size: 2 datasets of 8 problems, 2 RL steps, 16 reward questions."""

FAST = {**ROUND, "hard_candidates": 32, "hard_k": 16, "rounds": 2}
"""``ROUND`` on a 16-problem hard set from 32 candidates (built in seconds), 2 rounds."""

TEACHER_RL = dict(questions_per_step=4, samples_per_question=4, learning_rate=1e-4, kl_coef=0.0,
                  max_new_tokens=40)
"""``RLOOConfig`` settings of the inner loop when a test trains a teacher through the env."""


def as_settings(settings: dict) -> list[str]:
    """``settings`` as ``soar-env train --set KEY=VALUE`` arguments."""
    return [f"{key}={value}" for key, value in settings.items()]


# ---- `soar-env train` in a subprocess (tests of runs, the CLI and the run lock) ----

def _as_in_a_terminal() -> None:
    """Ctrl-C as a user's terminal delivers it: a test suite started in the background (``cmd &``)
    inherits an ignored SIGINT, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class TrainProcess:
    """`soar-env train` in a subprocess (1 thread: every run does the same arithmetic), its
    output in a log file next to the run folder."""

    SETTINGS = as_settings(ROUND)

    def __init__(self, out: Path, *extra: str):
        cmd = [sys.executable, "-m", "soar_agents", "train", "--rounds", "4", "--seed", "1",
               "--eval-seeds", "0", "--out", str(out), "--set", *self.SETTINGS, *extra]
        self.log = out.parent / f"{out.name}-{len(list(out.parent.glob(out.name + '-*.log')))}.log"
        # The command decides its own progress bars (an in-process main() may have set this).
        env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
        with self.log.open("w") as f:  # a file, not a pipe: a full pipe would block the child
            self.proc = subprocess.Popen(cmd, env={**env, "OMP_NUM_THREADS": "1"},
                                         stdout=f, stderr=subprocess.STDOUT, preexec_fn=_as_in_a_terminal)

    def wait(self, timeout: float = 600) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text()[-2000:]


@pytest.fixture(scope="session")
def train_process():
    """``train_process(out, *extra_args)`` starts `soar-env train` (see ``TrainProcess``)."""
    return TrainProcess


def round_rewards(out: Path) -> list[str]:
    """The reward column of a run folder's rounds.csv, as written."""
    return [row["charts/reward_mean"] for row in csv.DictReader((out / "rounds.csv").open())]


@pytest.fixture(scope="session")
def rewards_of():
    """``rewards_of(run_folder)``: its rounds' rewards as written (``round_rewards``)."""
    return round_rewards


@pytest.fixture(scope="session")
def fresh_python():
    """``fresh_python(code)``: what ``code`` prints in a new interpreter that sees this checkout."""
    def run(code: str) -> str:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                              check=True).stdout.strip()

    return run
