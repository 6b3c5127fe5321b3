"""`soar-env`: mistakes are caught before any work, Ctrl-C keeps what finished."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from soar_agents.app.cli import UsageError, main, parse_settings


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "soar_agents", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("args", [
    ("--rounds", "0"),
    ("--set", "nonsense=1"),
    ("--set", "rl.learning_rate=abc"),
    ("--set", "rl={}"),
    ("--set", "inner_steps=30"),  # past max_inner_steps: a cross-field rule
    ("--env", "SOAR-Nope-v0"),
    ("--eval-steps", "0"),
])
def test_mistakes_fail_in_one_line_and_write_nothing(tmp_path, args):
    out = tmp_path / "run"
    result = _cli("train", "--out", str(out), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert not out.exists()


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid: .*rl\.learning_rate"):
        parse_settings("SOAR-Tiny-v0", "soar", ["nonsense=1"])


def test_nested_and_teacher_settings_are_typed():
    env, teacher = parse_settings("SOAR-Tiny-v0", "soar",
                                  ["rl.learning_rate=1e-5", "dataset_size=16", "teacher.answers=teacher",
                                   "teacher.learning_rate=3e-4"])
    assert env == {"rl.learning_rate": 1e-5, "dataset_size": 16}
    assert teacher == {"answers": "teacher", "learning_rate": 3e-4}
    from soar_env.config import tiny

    config = tiny().replace(**env)
    assert config.rl.learning_rate == 1e-5 and config.rl.samples_per_question == 8  # rest kept
    with pytest.raises(UsageError, match="no settings"):
        parse_settings("SOAR-Tiny-v0", "random", ["teacher.answers=teacher"])


def test_help_shows_defaults():
    result = _cli("train", "--help")
    assert result.returncode == 0
    assert "(default: 12)" in result.stdout and "(default: SOAR-Tiny-v4)" in result.stdout


@pytest.mark.slow
def test_ctrl_c_in_the_first_round_then_resume_gives_the_same_rewards(tmp_path, train_process, rewards_of):
    whole = train_process(tmp_path / "whole", "--rounds", "2")
    assert whole.wait() == 0, whole.output()
    # Our round bar ends full (the env truncates in the last round), and transformers' own
    # bars (loading the student, exporting the teacher) stay out of it.
    log = whole.log.read_text()
    assert re.search(r"soar on SOAR-Tiny-v\d: 100%\|[^\r\n]*\| 2/2 ", log), log[-2000:]
    assert "Loading weights" not in log and "Writing model shards" not in log
    cut = train_process(tmp_path / "cut", "--rounds", "2")
    deadline = time.time() + 600
    # Inside the first round: the progress bar says its env steps have started (a round
    # takes under a second at these settings, so the signal follows at once).
    while "env steps" not in cut.log.read_text(errors="replace"):
        assert time.time() < deadline and cut.proc.poll() is None, cut.output()
        time.sleep(0.02)
    cut.proc.send_signal(signal.SIGINT)
    started = time.time()
    assert cut.wait(timeout=60) == 130, cut.output()
    assert time.time() - started < 30  # exits promptly
    assert "--resume" in cut.output() and "Traceback" not in cut.output()
    resumed = train_process(tmp_path / "cut", "--rounds", "2", "--resume")
    assert resumed.wait() == 0, resumed.output()
    assert rewards_of(tmp_path / "cut") == rewards_of(tmp_path / "whole")


@pytest.mark.slow
def test_ctrl_c_in_the_evaluation_keeps_the_run_and_says_how_to_finish(tmp_path, train_process):
    run = train_process(tmp_path / "run", "--rounds", "1", "--eval-seeds", "1", "--eval-steps", "400")
    deadline = time.time() + 300
    while "student seed" not in run.log.read_text(errors="replace"):  # an evaluation bar is up
        assert time.time() < deadline and run.proc.poll() is None, run.output()
        time.sleep(0.02)
    run.proc.send_signal(signal.SIGINT)
    assert run.wait(timeout=60) == 130, run.output()
    out = run.output()
    assert "Traceback" not in out and "interrupted during the evaluation" in out
    command = out.split("Finish it with:")[1].split()
    assert command[:3] == ["soar-env", "eval", str(tmp_path / "run")]
    assert command[3:] == ["--seeds", "0", "--eval-steps", "400"]
    assert (tmp_path / "run" / "rounds.csv").is_file()  # the trained round is kept
    finished = _cli(*command[1:], "--variants", "base")  # the base model's pass@k: no training
    assert finished.returncode == 0, finished.stderr
    assert "base" in json.loads((tmp_path / "run" / "eval.json").read_text())["results"]


def test_one_command_lists_every_subcommand_once():
    result = _cli("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: soar-env ")
    listed = re.findall(r"^    (\w+)", result.stdout, flags=re.MULTILINE)  # not wrapped help lines
    assert listed == ["train", "eval", "bench", "validate", "stones", "hardset"], result.stdout


def test_soar_env_cli_alone_offers_only_its_commands():
    result = subprocess.run([sys.executable, "-m", "soar_env.cli", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^    (\w+)", result.stdout, flags=re.MULTILINE)  # not wrapped help lines
    assert listed == ["stones", "hardset"], result.stdout
    assert "usage: soar-env" not in result.stdout  # that name is the full command's


def test_console_script_is_the_one_parser():
    import importlib
    import pathlib
    import tomllib

    pyproject = pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml"
    target = tomllib.loads(pyproject.read_text())["project"]["scripts"]["soar-env"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is main


def test_a_refused_write_is_one_line_and_other_os_errors_go_on_up(capsys):
    import errno

    from soar_agents.app.cli import _write_refused

    full = OSError(errno.ENOSPC, "No space left on device", "runs/x/eval.json")
    assert _write_refused("eval", full, "each finished evaluation is kept in runs/x/eval.json") == 1
    assert capsys.readouterr().err == (
        "soar-env eval: error: cannot write runs/x/eval.json (No space left on device); each finished "
        "evaluation is kept in runs/x/eval.json: free some space, then run the same command again\n")
    with pytest.raises(PermissionError):  # not the disk's doing: not ours to explain
        _write_refused("eval", PermissionError(errno.EACCES, "Permission denied", "f"), "kept")
