"""One writer per run folder, a clear error on a full disk, SIGTERM handled like Ctrl-C.

Real `soar-env train` processes on tiny settings (3 rounds of a few seconds): two at once on
one folder, one SIGKILLed then resumed, one sent SIGTERM, one that fills a real small
filesystem (a tmpfs in a private mount namespace, where the machine allows one; otherwise
the checkpoint's write call fails with the error safetensors raises on a full disk).
"""

import csv
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import TrainProcess, round_rewards

ROUNDS = ("--rounds", "3")


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted run: what every refused, stopped or resumed run must equal."""
    out = tmp_path_factory.mktemp("whole") / "run"
    run = TrainProcess(out, *ROUNDS)
    assert run.wait() == 0, run.output()
    return out


def _folder(out: Path):
    """What a run folder holds: its files, its rounds (less their wall-clock seconds), its manifest."""
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    rows = [{k: v for k, v in row.items() if k != "time/round_seconds"}
            for row in csv.DictReader((out / "rounds.csv").open())]
    manifest = json.loads((out / "manifest.json").read_text())
    return files, rows, manifest["checkpoint"], sorted(manifest["files"])


def _snapshot(out: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(out).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in out.rglob("*") if p.is_file()}


def _holder(out: Path) -> int | None:
    try:
        return json.loads((out / ".lock").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _wait_for(condition, run: TrainProcess, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline and run.proc.poll() is None, run.output()
        time.sleep(0.02)


def _leftovers(out: Path) -> list[Path]:
    return list(out.rglob(".*.tmp"))


# ---- one writer per run folder ---------------------------------------------------------------
@pytest.mark.slow
def test_a_second_train_on_one_folder_is_refused_at_once_and_the_folder_is_a_single_runs(whole, tmp_path):
    out = tmp_path / "run"
    first = TrainProcess(out, *ROUNDS)
    _wait_for(lambda: _holder(out) == first.proc.pid, first)  # the first holds the folder
    started = time.time()
    second = TrainProcess(out, *ROUNDS)
    assert second.wait(timeout=120) != 0
    seconds = time.time() - started
    assert first.proc.poll() is None, "the second must be refused while the first still trains"
    lines = second.output().strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"{out} is being written by another process (pid {first.proc.pid} on host " \
           f"{socket.gethostname()} since " in lines[0]
    assert seconds < 30, seconds  # a second or so: the lock is taken before torch loads
    assert first.wait() == 0, first.output()
    assert _folder(out) == _folder(whole)  # nothing of the second run, nothing lost of the first
    assert not (out / ".lock").exists()  # a run that ends removes its lock


def test_a_refused_train_writes_nothing(tmp_path):
    from soar_agents.app.runlock import run_lock

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "rounds.csv").write_text("round\n")
    with run_lock(out):  # this process holds the folder, as a running train would
        before = _snapshot(out)
        for extra in ((), ("--resume",)):
            refused = subprocess.run([sys.executable, "-m", "soar_agents", "train", "--out", str(out),
                                      *ROUNDS, *extra], capture_output=True, text=True, timeout=120)
            assert refused.returncode == 2 and refused.stdout == ""
            assert refused.stderr.count("\n") == 1 and f"pid {os.getpid()}" in refused.stderr
            assert _snapshot(out) == before
        evaluated = subprocess.run([sys.executable, "-m", "soar_agents", "eval", str(out)],
                                   capture_output=True, text=True, timeout=120)
        assert evaluated.returncode == 2 and "being written by another process" in evaluated.stderr
        assert _snapshot(out) == before
    assert not (out / ".lock").exists()


def test_the_lock_is_reentrant_in_a_process_and_released_by_an_error(tmp_path):
    from soar_agents.app.runlock import RunFolderBusy, run_lock

    out = tmp_path / "run"
    with run_lock(out), run_lock(out):  # the command, then train_run inside it
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()
    with pytest.raises(ValueError), run_lock(out):
        raise ValueError("a failed run")
    assert not (out / ".lock").exists()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from soar_agents.app.runlock import run_lock\n"
                               f"with run_lock({str(out)!r}):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunFolderBusy, match=f"pid {holder.pid} on host"), run_lock(out):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(out):  # the kernel dropped the killed holder's lock; its file is still there
        assert _holder(out) == os.getpid()


@pytest.mark.slow
def test_a_lock_left_by_a_killed_run_does_not_block_its_resume(whole, tmp_path):
    out = tmp_path / "run"
    killed = TrainProcess(out, *ROUNDS)
    _wait_for(lambda: (out / "rounds.csv").is_file() and len(round_rewards(out)) >= 1, killed)
    killed.proc.send_signal(signal.SIGKILL)
    killed.wait()
    assert len(round_rewards(out)) < 3, "the run must be cut mid-way for this test to mean anything"
    assert _holder(out) == killed.proc.pid  # the lock file stays, its lock went with the process
    resumed = TrainProcess(out, *ROUNDS, "--resume")
    assert resumed.wait() == 0, resumed.output()
    assert round_rewards(out) == round_rewards(whole)


# ---- SIGTERM -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_in_the_first_round_exits_143_with_the_resume_command(whole, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    cut = TrainProcess(out, *ROUNDS)
    _wait_for(lambda: "env steps" in cut.log.read_text(errors="replace"), cut)  # inside round 1
    cut.proc.send_signal(signal.SIGTERM)
    assert cut.wait(timeout=60) == 143, cut.output()
    text = cut.output()
    assert "Traceback" not in text and "terminated (SIGTERM): every finished round is saved" in text
    assert not _leftovers(out) and not (out / ".lock").exists()
    command = shlex.split(text.split("Continue with:")[1].strip().splitlines()[0])
    assert command[:2] == ["soar-env", "train"] and command[-1] == "--resume"
    resumed = subprocess.run([sys.executable, "-m", "soar_agents", *command[1:]], capture_output=True,
                             text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert round_rewards(out) == round_rewards(whole)
    # One TensorBoard event file, holding each round once: exactly the CSV's rows.
    assert [p.name for p in (out / "tensorboard").iterdir()] == ["events.out.tfevents.soar-env"]
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    logged = events.Scalars("charts/reward_mean")
    assert [e.step for e in logged] == [0, 1, 2]
    assert [e.value for e in logged] == pytest.approx([float(r) for r in round_rewards(whole)], rel=1e-6)


# ---- a full disk -------------------------------------------------------------------------------
def _can_mount_a_tmpfs() -> bool:
    with tempfile.TemporaryDirectory() as folder:
        try:
            return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                                   f"mount -t tmpfs -o size=1m tmpfs {folder}"],
                                  capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


def _train_args(out: Path) -> list[str]:
    return ["train", "--rounds", "3", "--seed", "1", "--eval-seeds", "0", "--out", str(out),
            "--set", *TrainProcess.SETTINGS]


def _on_a_small_tmpfs(whole: Path, tmp_path: Path) -> tuple[int, str, Path]:
    """Train on a tmpfs that fills up in round 2, copy the folder out, free space, resume."""
    checkpoint = (whole / "checkpoints" / "round_3.safetensors").stat().st_size
    teacher = (whole / "teacher.safetensors").stat().st_size
    filler = checkpoint + teacher  # what a resume will need, freed after the failure
    # Round 1 leaves a checkpoint and the teacher; round 2's checkpoint needs room for another.
    size = checkpoint + teacher + checkpoint // 2 + filler
    mount, logs = tmp_path / "disk", tmp_path / "logs"
    mount.mkdir()
    logs.mkdir()
    run = mount / "run"
    train = shlex.join([sys.executable, "-m", "soar_agents", *_train_args(run)])
    m, log = shlex.quote(str(mount)), shlex.quote(str(logs))
    script = f"""
        mount -t tmpfs -o size={size} tmpfs {m}
        head -c {filler} /dev/zero > {m}/filler
        {train} > {log}/full.log 2>&1
        echo $? > {log}/full.rc
        cp -a {m}/run {log}/after
        rm {m}/filler
        {train} --resume > {log}/resume.log 2>&1
        echo $? > {log}/resume.rc
        cp -a {m}/run {log}/resumed
    """
    subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script],
                   timeout=900, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (logs / "resume.rc").read_text().strip() == "0", (logs / "resume.log").read_text()[-2000:]
    assert round_rewards(logs / "resumed") == round_rewards(whole)  # freed space: the uninterrupted run
    return int((logs / "full.rc").read_text()), (logs / "full.log").read_text(), logs / "after"


# safetensors' own error on a full disk, raised by the write call of round 2's checkpoint once it
# has written part of the file, as a filling disk leaves it.
FULL_DISK = """
import sys
import safetensors.torch
from safetensors import SafetensorError

real = safetensors.torch.save_file

def save_file(tensors, filename, metadata=None):
    if "round_2.safetensors" in str(filename):
        with open(filename, "wb") as f:
            f.write(bytes(4096))
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    return real(tensors, filename, metadata=metadata)

safetensors.torch.save_file = save_file
from soar_agents.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _simulated(whole: Path, tmp_path: Path) -> tuple[int, str, Path]:
    run = tmp_path / "run"
    full = subprocess.run([sys.executable, "-c", FULL_DISK, *_train_args(run)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = tmp_path / "after"
    subprocess.run(["cp", "-a", str(run), str(after)], check=True)
    resumed = TrainProcess(run, *ROUNDS, "--resume")
    assert resumed.wait() == 0, resumed.output()
    assert round_rewards(run) == round_rewards(whole)
    return full.returncode, full.stdout + full.stderr, after


@pytest.mark.slow
@pytest.mark.parametrize("disk", ["tmpfs", "simulated"])
def test_a_full_disk_in_round_2_is_one_line_and_the_resume_is_the_uninterrupted_run(whole, tmp_path, disk):
    from soar_agents.app.checkpoints import verify_manifest

    if disk == "tmpfs" and not _can_mount_a_tmpfs():
        pytest.skip("this machine mounts no tmpfs in a user namespace (the simulated case runs)")
    status, text, after = (_on_a_small_tmpfs if disk == "tmpfs" else _simulated)(whole, tmp_path)
    assert status == 1 and "Traceback" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, errors
    assert errors[0].startswith("soar-env train: error: cannot write ")
    assert "checkpoints/round_2.safetensors (No space left on device); the run is intact up to round 1 " \
           "of 3 in " in errors[0]
    assert errors[0].endswith(" --resume")
    assert "free some space, then continue with: soar-env train " in errors[0]
    # Nothing half-written under a final name: round 1's files, whole, and no temporary file.
    assert not _leftovers(after)
    manifest = verify_manifest(after)
    assert manifest["checkpoint"] == "checkpoints/round_1.safetensors"
    assert sorted(p.name for p in (after / "checkpoints").iterdir()) == ["round_1.safetensors"]
    assert round_rewards(after) == round_rewards(whole)[:1]


# ---- logs ----------------------------------------------------------------------------------------
def test_the_event_file_holds_each_round_once_and_replaces_older_ones(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from soar_agents.app.logger import EVENTS_NAME, RunLogger

    older = tmp_path / "tensorboard" / "events.out.tfevents.1700000000.host.812.0"  # a SummaryWriter's
    older.parent.mkdir()
    older.write_bytes(b"")
    logger = RunLogger(tmp_path, rows=[{"charts/reward_mean": 0.5}])  # a resume: round 0 restored
    logger.log(1, {"charts/reward_mean": 0.25, "proposals/skills": "+-*"})
    logger.close()
    assert [p.name for p in older.parent.iterdir()] == [EVENTS_NAME]
    events = EventAccumulator(str(older.parent))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("charts/reward_mean")] == [(0, 0.5), (1, 0.25)]
    rows = csv.DictReader((tmp_path / "rounds.csv").open())
    assert [r["charts/reward_mean"] for r in rows] == ["0.5", "0.25"]
