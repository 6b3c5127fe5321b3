"""The stepping-stone experiment (``soar_env.experiments.stepping_stones``) at a tiny budget."""

import json

import pytest

from soar_env.cli import main


@pytest.mark.slow
def test_stones_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "stones"
    main(["stones", "--seeds", "1", "--long-steps", "2", "--inner-repeats", "1",
          "--hard-candidates", "16", "-k", "8", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "stepping_stones.png").stat().st_size > 10_000
    assert set(summary["long"]) == set(summary["inner"]) == {"hard", "good", "narrow"}
    assert summary["hard_set"]["candidates"] == 16
    # RL on never-solved problems has no signal: the student is unchanged.
    assert summary["long"]["hard"]["gain_points"] == [0.0]
    assert summary["inner"]["hard"]["gains"] == [0.0]
    printed = capsys.readouterr().out
    assert "Stepping stones" in printed and printed.strip().splitlines()[-1].startswith("{")


def test_hardset_command_writes_a_split(tmp_path, capsys):
    from soar_env.hardset import HardSet

    out = tmp_path / "hard.json"
    main(["hardset", "--env", "SOAR-Tiny-v0", "-k", "8", "--hard-candidates", "12", "--out", str(out)])
    hard = HardSet.from_json(out.read_text())
    assert hard.meta["k"] == 8 and hard.meta["candidates"] == 12
    assert len(hard.train) + len(hard.test) == hard.meta["hard"] > 0
    assert "failed all 8 tries" in capsys.readouterr().out


def test_stones_v1_adds_the_off_target_condition(tmp_path):
    out = tmp_path / "stones_v1"
    main(["stones", "--variant", "v1", "--seeds", "1", "--long-steps", "1", "--inner-repeats", "1",
          "--hard-candidates", "8", "-k", "4", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["long"]) == {"hard", "good", "narrow", "off-target"}
    assert set(summary["short"]) == {"on-target", "off-target"}
    assert "off_target_rl_below_quarter_of_good" in summary["acceptance"]
    assert "short off-target chains" in (out / "report.md").read_text()

