"""The evaluation protocol, `soar-env train` killed mid-run then resumed, and run folders
that cannot hurt whoever resumes or evaluates them (shared, damaged or mismatched)."""

import itertools
import json
import math
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROUND, as_settings

from soar_env import DEFAULT_ENV
from soar_env.evaluation import EvalConfig, EvalResult, pass_at_k


def brute_pass_at_k(n, c, k):
    """Fraction of k-subsets of n samples (c correct) that hold a correct one."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 2, 1), (5, 2, 2), (6, 3, 4), (8, 1, 8), (7, 6, 2),
                                   (4, 4, 3)])
def test_pass_at_k_matches_enumeration(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))


def test_pass_at_k_known_values_and_errors():
    assert pass_at_k(32, 0, 32) == 0.0 and pass_at_k(32, 1, 32) == 1.0
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4) and pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(4, 1, 8)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="ks expects"):
        EvalConfig(samples=16)


def test_leaderboard_puts_pass1_first_with_seeds_and_pairs_against_base_t():
    from soar_agents.app.runs import leaderboard, paired_differences

    results = {  # Base-T leads at pass@32, Grounded-T at pass@1: pass@1 is the headline
        "Base-T": {"0": {"1": 0.10, "32": 0.9}, "1": {"1": 0.20, "32": 0.8}},
        "Grounded-T": {"0": {"1": 0.30, "32": 0.5}, "1": {"1": 0.25, "32": 0.6}},
        "Hard-Only": {"0": {"1": 0.0, "32": 0.0}},
    }
    rows = leaderboard(results)
    assert [r["variant"] for r in rows] == ["Grounded-T", "Base-T", "Hard-Only"]
    assert rows[0]["pass@1"]["per_seed"] == [0.30, 0.25] and rows[0]["seed_ids"] == [0, 1]
    paired = paired_differences(results)
    assert paired["Grounded-T"]["pass@1"]["per_seed"] == pytest.approx([0.20, 0.05])
    assert paired["Grounded-T"]["pass@1"]["mean"] == pytest.approx(0.125)
    assert paired["Hard-Only"]["seeds"] == [0] and "Base-T" not in paired
    assert paired_differences({"Grounded-T": results["Grounded-T"]}) == {}


def test_eval_summary_interval():
    result = EvalResult("x", [{1: 0.1}, {1: 0.2}, {1: 0.3}])
    s = result.summary()["pass@1"]
    assert s["mean"] == pytest.approx(0.2) and s["sd"] == pytest.approx(0.1)
    assert s["ci95"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3))  # t quantile, 2 degrees of freedom


@pytest.mark.slow
def test_train_killed_mid_run_resumes_to_the_same_rewards(tmp_path, train_process, rewards_of):
    whole = train_process(tmp_path / "whole")
    assert whole.wait() == 0, whole.output()
    killed = train_process(tmp_path / "cut")
    deadline = time.time() + 600
    while time.time() < deadline:  # kill it once two rounds are logged, in the middle of the run
        path = tmp_path / "cut" / "rounds.csv"
        if path.is_file() and len(path.read_text().splitlines()) >= 3:
            break
        assert killed.proc.poll() is None, killed.output()
        time.sleep(0.05)
    killed.proc.send_signal(signal.SIGKILL)
    killed.wait()
    done = len(rewards_of(tmp_path / "cut"))
    assert 2 <= done < 4, "the run must be cut mid-way for this test to mean anything"
    kept = rewards_of(tmp_path / "cut")
    resumed = train_process(tmp_path / "cut", "--resume")
    assert resumed.wait() == 0, resumed.output()
    assert rewards_of(tmp_path / "cut")[:done] == kept  # finished rounds kept
    assert rewards_of(tmp_path / "cut") == rewards_of(tmp_path / "whole")  # and the rest is the same run
    # Starting over into a folder that holds a run is refused.
    again = train_process(tmp_path / "cut")
    assert again.wait() != 0 and "--resume" in again.output()


def test_diversity_measures():
    from soar_env.diagnostics import self_bleu, vendi_score

    assert vendi_score(["a b c"] * 20) == pytest.approx(1.0)
    assert vendi_score(["aaaa", "bbbb", "cccc", "dddd"]) == pytest.approx(4.0)
    assert 1.0 < vendi_score(["7 +1 +2", "7 +1 +3", "5 *2 -1"]) < 3.0
    assert self_bleu(["the same words here"] * 5) == pytest.approx(100.0)
    assert self_bleu(["alpha beta gamma delta", "one two three four", "red green blue black"]) < 5.0


@pytest.mark.slow
def test_bench_writes_a_leaderboard(tmp_path):
    cmd = [sys.executable, "-m", "soar_agents", "bench", "--teachers", "random", "learnability",
           "--seeds", "2", "--rounds", "2", "--eval-steps", "2", "--out", str(tmp_path),
           "--set", *as_settings(ROUND), "teacher.answers=teacher"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    board = (tmp_path / "leaderboard.md").read_text()
    for variant in ("random-T", "Intrinsic-T", "Hard-Only", "base"):  # 2 teacher x 2 student seeds
        assert f"| {variant} | 4 |" in board
    assert (tmp_path / "leaderboard.png").is_file()
    assert "Vendi" in board or "vendi" in board
    summary = json.loads((tmp_path / "leaderboard.json").read_text())
    # Equal budgets by default: every learning teacher trains the same rounds; a fixed
    # teacher (random) proposes the same whatever the rewards, so it spends none.
    assert summary["rounds"] == summary["intrinsic_rounds"] == 2
    assert {t: c["rounds"] for t, c in summary["compute"].items()} == {"random": 0, "learnability": 2}
    assert summary["compute"]["learnability"]["train_seconds"] > 0
    assert summary["compute"]["random"]["train_seconds"] == 0
    # Evaluation seconds are recorded with each result, so a rerun (all cached) still has them.
    first = summary["compute"]["random"]["eval_seconds"]
    assert first > 0
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stderr[-2000:]
    rerun = json.loads((tmp_path / "leaderboard.json").read_text())
    assert rerun["compute"]["random"]["eval_seconds"] == first
    assert summary["compute"]["learnability"]["sampled_tokens"] > 0  # the equal-compute view
    # What reproduces the table: env, teachers, seeds, package version, evaluation settings.
    assert summary["env"] == DEFAULT_ENV == "SOAR-Tiny-v4" and summary["seeds"] == [0, 1]
    assert summary["student_seeds"] == [0, 1000, 1, 1001]  # the protocol: 2 fresh students a teacher seed
    assert summary["teachers"] == ["random", "learnability"] and summary["version"]
    assert summary["eval"]["max_steps"] == 2 and summary["overrides"]["dataset_size"] == 8
    # teacher.* settings reach the LLM teachers only (the paper's answers='teacher' comparison).
    assert summary["teacher_settings"] == {"answers": "teacher"}
    run_spec = json.loads((tmp_path / "learnability_seed0" / "run.json").read_text())
    assert run_spec["teacher_settings"] == {"answers": "teacher"}
    assert "teacher_settings" not in json.loads((tmp_path / "random_seed0" / "run.json").read_text())


# ---- run folders that cannot hurt the user --------------------------------------------------
# A real 2-round run of the tiny model, promoting every round (tau=-1, window 1) so that
# promoted students are in the folder too; each test damages a copy, then resumes it.
FOLDER_SETTINGS = {**ROUND, "tau": -1.0, "ma_window": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from soar_agents.app.runs import train_run

    out = tmp_path_factory.mktemp("trained") / "run"
    train_run(out, rounds=2, seed=1, progress=False, overrides=FOLDER_SETTINGS)
    return out


def _copy(trained, tmp_path):
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _resume(run, **settings):
    from soar_agents.app.runs import train_run

    return train_run(run, **{"rounds": 2, "seed": 1, "progress": False, "overrides": FOLDER_SETTINGS,
                             "resume": True, **settings})


def _checkpoint_files(run):
    """Every file a resume or an evaluation reads (the logs are only ever written)."""
    names = list(json.loads((run / "manifest.json").read_text())["files"])
    assert any(n.startswith("promoted/") for n in names) and any(n.startswith("checkpoints/") for n in names)
    return names + ["manifest.json", "teacher.safetensors"]


def _rehash(run):
    """Rewrite the manifest as a careful forger would, to reach the checks behind it."""
    from soar_agents.app.checkpoints import sha256_file

    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"] = {name: sha256_file(run / name) for name in manifest["files"]}
    (run / "manifest.json").write_text(json.dumps(manifest))


class Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_of_an_untouched_folder_works(trained, tmp_path):
    run = _copy(trained, tmp_path)
    assert len(_resume(run)) == 2


def test_each_promoted_student_is_a_hugging_face_folder_in_the_manifest(trained):
    import torch
    from transformers import AutoModelForCausalLM

    from soar_agents.app.checkpoints import load_state
    from soar_agents.app.runs import promoted_students

    manifest = json.loads((trained / "manifest.json").read_text())
    folders = promoted_students(trained)
    assert folders == [trained / "promoted" / "round_0", trained / "promoted" / "round_1"]  # tau=-1
    listed = {n for n in manifest["files"] if n.startswith("promoted/")}
    assert listed == {f"promoted/{f.name}/{p.name}" for f in folders for p in f.iterdir()}
    assert {"promoted/round_0/config.json", "promoted/round_0/model.safetensors"} <= listed
    assert not list(trained.rglob(".*.tmp"))  # every folder was renamed into place whole
    models = [AutoModelForCausalLM.from_pretrained(f).state_dict() for f in folders]
    # The last promotion set the baseline the final checkpoint holds: its folder holds exactly it.
    baseline = load_state(trained / manifest["checkpoint"])["env"]["baseline"]
    assert set(models[-1]) == set(baseline)
    assert all(torch.equal(v, baseline[k]) for k, v in models[-1].items())
    assert not all(torch.equal(v, baseline[k]) for k, v in models[0].items())  # an earlier student
    # student_pretrained/ is that final baseline too (the last promoted student).
    final = AutoModelForCausalLM.from_pretrained(trained / "student_pretrained").state_dict()
    assert all(torch.equal(v, baseline[k]) for k, v in final.items())


def test_a_damaged_promoted_student_is_refused_by_name(trained, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from soar_agents.app.checkpoints import RunFolderError
    from soar_agents.app.runs import promoted_weights
    from soar_env.student import HFStudent

    run = _copy(trained, tmp_path)
    folder = run / "promoted" / "round_0"
    student = HFStudent.from_pretrained(folder, device="cpu")  # the run's model, whichever tiny id
    file = folder / "model.safetensors"
    weights = load_file(file)
    assert "lm_head.weight" not in weights  # tied to the embedding: save_pretrained leaves it out
    loaded = promoted_weights(student, folder)
    assert torch.equal(loaded["lm_head.weight"], weights["model.embed_tokens.weight"])
    name = re.escape("round_0/model.safetensors")
    save_file({**weights, "model.norm.weight": weights["model.norm.weight"] * float("nan")}, file)
    with pytest.raises(RunFolderError, match=name + " holds NaN or inf values in model.norm.weight"):
        promoted_weights(student, folder)
    save_file({k: v for k, v in weights.items() if k != "model.norm.weight"}, file)
    with pytest.raises(RunFolderError, match=name + " is not a student of this run's model .*norm.weight"):
        promoted_weights(student, folder)
    file.write_bytes(file.read_bytes()[:100])  # cut short
    with pytest.raises(RunFolderError, match=name + " is corrupted"):
        promoted_weights(student, folder)
    file.unlink()
    with pytest.raises(RunFolderError, match=name + " is missing"):
        promoted_weights(student, folder)


def test_promoted_students_of_older_runs_still_evaluate_and_resume(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    from soar_agents.app.checkpoints import RunFolderError, sha256_file
    from soar_agents.app.runs import evaluate_run, promoted_students

    folders = evaluate_run(_copy(trained, tmp_path), [0], variants=["PS"], progress=False)["results"]["PS"]
    # Round 0 as older runs saved it: one bare state dict (the tied lm_head included), no folder.
    run = _copy(trained, tmp_path)
    weights = load_file(run / "promoted" / "round_0" / "model.safetensors")
    weights["lm_head.weight"] = weights["model.embed_tokens.weight"].clone()
    save_file(weights, run / "promoted" / "round_0.safetensors")
    shutil.rmtree(run / "promoted" / "round_0")
    manifest = json.loads((run / "manifest.json").read_text())
    files = {k: v for k, v in manifest["files"].items() if not k.startswith("promoted/round_0/")}
    files["promoted/round_0.safetensors"] = sha256_file(run / "promoted" / "round_0.safetensors")
    (run / "manifest.json").write_text(json.dumps({**manifest, "files": files}))
    assert promoted_students(run) == [run / "promoted" / "round_0.safetensors", run / "promoted" / "round_1"]
    assert len(_resume(run)) == 2
    assert evaluate_run(run, [0], variants=["PS"], progress=False)["results"]["PS"] == folders
    (run / "promoted" / "round_0.safetensors").unlink()
    with pytest.raises(RunFolderError, match=re.escape("round_0.safetensors is missing")):
        _resume(run)


def test_a_pickle_payload_in_any_file_never_runs(trained, tmp_path):
    import torch

    from soar_agents.app.checkpoints import RunFolderError
    from soar_agents.app.runs import evaluate_run

    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))  # the payload does run when unpickled
    assert marker.exists()
    marker.unlink()
    for name in _checkpoint_files(trained):
        for write in (torch.save, lambda obj, path: Path(path).write_bytes(pickle.dumps(obj))):
            run = _copy(trained, tmp_path)
            write(Payload(marker), run / name)
            with pytest.raises(RunFolderError, match=re.escape(str(run / "manifest.json")) + "|"
                               + re.escape(str(run / name))):
                _resume(run)
            with pytest.raises(RunFolderError):
                evaluate_run(run, [0], progress=False)
            assert not marker.exists(), f"a payload in {name} ran"
    run = _copy(trained, tmp_path)
    torch.save(Payload(marker), run / "eval.json")
    with pytest.raises(RunFolderError, match="eval.json"):
        evaluate_run(run, [0], progress=False)
    assert not marker.exists()


def test_a_flipped_byte_in_any_checkpoint_file_is_refused_by_name(trained, tmp_path):
    from soar_agents.app.checkpoints import RunFolderError

    for name in _checkpoint_files(trained):
        for where in (0.5, 0.02, 0.98):  # the tensors, the header, the end
            run = _copy(trained, tmp_path)
            data = bytearray((run / name).read_bytes())
            data[int(len(data) * where)] ^= 0x01
            (run / name).write_bytes(bytes(data))
            with pytest.raises(RunFolderError, match=re.escape(name)):
                _resume(run)


def test_a_resume_with_other_settings_is_refused_with_the_difference(trained, tmp_path):
    from soar_agents import make_teacher
    from soar_agents.app.checkpoints import RunFolderError
    from soar_agents.app.loop import make_teacher_env, train_teacher
    from soar_agents.teachers.soar_teacher import SoarTeacherConfig

    run = _copy(trained, tmp_path)
    with pytest.raises(RunFolderError, match="seed: 1 -> 2"):
        _resume(run, seed=2)
    with pytest.raises(RunFolderError, match="inner_steps: 2 -> 3"):
        _resume(run, overrides={**FOLDER_SETTINGS, "inner_steps": 3})
    # run.json edited to another seed (and the manifest forged): the checkpoint's own record says no.
    spec = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**spec, "seed": 2}))
    with pytest.raises(RunFolderError, match=re.escape("run.json")):
        _resume(run, seed=2)
    _rehash(run)
    with pytest.raises(RunFolderError, match="seed: 1 -> 2"):
        _resume(run, seed=2)
    # The teacher's own settings are part of the record: the run's and the exported teacher's.
    run = _copy(trained, tmp_path)
    other = make_teacher("soar", config=SoarTeacherConfig.tiny(learning_rate=0.5))
    env = make_teacher_env("SOAR-Tiny-v0", other, rounds=2, **FOLDER_SETTINGS)
    with pytest.raises(RunFolderError, match=r"teacher_config.learning_rate: .* -> 0.5"):
        train_teacher(other, env, rounds=2, seed=1, log_dir=run, progress=False, resume=True)
    with pytest.raises(RunFolderError, match=r"learning_rate: .* -> 0.5"):
        other.load(run / "teacher.safetensors")


def test_nan_weights_and_missing_keys_are_refused(trained, tmp_path):
    from soar_agents.app.checkpoints import RunFolderError, load_state, save_state

    run = _copy(trained, tmp_path)
    path = run / json.loads((run / "manifest.json").read_text())["checkpoint"]
    saved = load_state(path)
    weights = saved["teacher"]["state"]["model"]
    next(iter(weights.values())).view(-1)[0] = float("nan")
    save_state(path, saved)
    _rehash(run)
    with pytest.raises(RunFolderError, match="NaN or inf"):
        _resume(run)
    run = _copy(trained, tmp_path)
    saved = load_state(path)
    del saved["env"]["np_random"]
    save_state(path, saved)
    _rehash(run)
    with pytest.raises(RunFolderError, match="does not hold a complete run state.*np_random"):
        _resume(run)
    run = _copy(trained, tmp_path)
    (run / "promoted" / "round_0" / "model.safetensors").unlink()
    with pytest.raises(RunFolderError, match=re.escape("round_0/model.safetensors is missing")):
        _resume(run)


def test_a_corrupt_eval_json_gives_a_clear_error(trained, tmp_path):
    from soar_agents.app.checkpoints import RunFolderError
    from soar_agents.app.runs import evaluate_run

    run = _copy(trained, tmp_path)
    (run / "eval.json").write_text('{"results": {"Grounded-T": {"0": ')  # cut by a full disk
    with pytest.raises(RunFolderError, match=r"eval.json is not valid JSON .*move it away"):
        evaluate_run(run, [0], progress=False)
