"""`soar-env train`'s summary says whether the teacher learned: its questions against the
untrained teacher's (Base-T) on the same student seeds, its reward against Base-T's band."""

import json

import pytest
from conftest import ROUND, as_settings

from soar_agents.app.cli import main
from soar_agents.app.report import round_leaving_band, untrained_band


def _history(rewards, promoted_at=()):
    return [{"charts/reward_mean": r, "charts/reward_min": r - 1, "charts/reward_max": r + 1,
             "env/promoted": float(i in promoted_at)} for i, r in enumerate(rewards)]


def test_the_band_is_round_0_and_the_moving_mean_must_clear_it():
    history = _history([10, 10, 12, 13, 14, 15])  # round 0: 9 to 11
    assert untrained_band(history) == (9, 11)
    # means of rounds 0-2, 1-3, 2-4: 10.7, 11.7 -> first above 11 ends at round 3
    assert round_leaving_band(history, (9, 11)) == 3
    assert round_leaving_band(history, (9, 20)) is None
    # After a promotion the reward has another baseline: those rounds do not count.
    assert round_leaving_band(_history([10, 10, 10, 30, 30, 30], promoted_at=(2,)), (9, 11)) is None


@pytest.mark.slow
def test_train_puts_the_teacher_beside_base_t(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--rounds", "2", "--eval-seeds", "2", "--eval-steps", "3", "--out", str(out),
                 "--set", *as_settings(ROUND)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "eval.json").read_text())["results"]
    assert sorted(results["Base-T"]) == ["0", "1"] and sorted(results["Grounded-T"]) == ["0", "1"]
    assert "Grounded-T - Base-T, pass@1 on the same 2 student seeds" in printed
    assert "untrained teacher's reward band" in printed
    assert (out / "run.png").stat().st_size > 10_000
