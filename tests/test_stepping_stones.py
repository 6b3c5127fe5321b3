"""The stepping-stone experiment (the current main job) at a tiny budget."""

import json

from soar_env.cli import main


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
