"""`soar-env train --report-to`: the run folder's CSV and TensorBoard, and trackio runs."""

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import FAST, as_settings

from soar_agents.app.trackers import parse_report_to, trackio_run_name

SMALL = as_settings({k: v for k, v in FAST.items() if k != "rounds"})


def _train(out, *args, env=None):
    command = [sys.executable, "-m", "soar_agents", "train", "--teacher", "random", "--eval-seeds", "0",
               "--out", str(out), *args, "--set", *SMALL]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def test_report_to_is_checked_before_any_work(tmp_path):
    assert parse_report_to("csv, trackio,csv") == ("csv", "trackio") and parse_report_to("none") == ()
    with pytest.raises(ValueError, match="--report-to expects"):
        parse_report_to("csv,wandb")
    result = _train(tmp_path / "run", "--report-to", "tensorboard,mlflow")
    assert result.returncode == 2 and "--report-to expects" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_tensorboard_only_writes_no_csv(tmp_path):
    result = _train(tmp_path / "run", "--rounds", "1", "--report-to", "tensorboard")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "run" / "rounds.csv").exists()
    assert (tmp_path / "run" / "tensorboard" / "events.out.tfevents.soar-env").is_file()


def test_trackio_run_reads_back_with_trackios_api(tmp_path):
    pytest.importorskip("trackio")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio")}  # trackio's local store, here
    out = tmp_path / "run"
    result = _train(out, "--rounds", "2", "--report-to", "csv,trackio", env=env)
    assert result.returncode == 0, result.stderr
    assert "trackio show --project soar-env" in result.stdout
    read = ("import json, trackio; from trackio.sqlite_storage import SQLiteStorage\n"
            "runs = list(trackio.Api().runs('soar-env'))\n"
            "print(json.dumps([{'name': r.name, 'config': r.config,\n"
            "                   'logs': SQLiteStorage.get_logs('soar-env', r.name)} for r in runs],\n"
            "                 default=str))")
    runs = json.loads(subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, env=env,
                                     check=True, timeout=120).stdout.strip().splitlines()[-1])
    assert [r["name"] for r in runs] == [trackio_run_name(out)]
    logs, config = runs[0]["logs"], runs[0]["config"]
    assert config["teacher"] == "random" and config["env"] == "SOAR-Tiny-v4"
    with (out / "rounds.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [log["step"] for log in logs] == [0, 1]
    for log, row in zip(logs, rows):
        assert log["charts/reward_mean"] == pytest.approx(float(row["charts/reward_mean"]))
