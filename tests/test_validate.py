"""`soar-env validate`: the criteria P1-P7 decide what they claim, and a bad env fails."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from conftest import as_settings

import soar_env  # noqa: F401  (registers the ids)
from soar_agents.app import validate, validity_report
from soar_agents.app.cli import main
from soar_env.domains.base import ValidityReferences, register_domain
from soar_env.domains.chain import ChainDomain
from soar_env.embedded import TINY_CHAIN_PATH
from soar_env.evaluation import EvalConfig, evaluate_curricula, evaluate_curriculum

SMALL = {"hard_candidates": 32, "hard_k": 16, "reward_questions": 8, "dataset_size": 8, "inner_steps": 1}
POOL = 16


def _row(name, p1, p32=None, ci=0.0):
    p32 = p1 if p32 is None else p32
    return {"name": name, "pass@1": {"mean": p1, "ci95": ci}, "pass@32": {"mean": p32, "ci95": ci}}


def test_p1_needs_apart_intervals_and_room_above_the_oracle():
    apart = [_row("oracle", 0.5, 0.8, ci=0.05), _row("Base-T", 0.1, 0.3, ci=0.05)]
    assert validity_report.p1(apart)["pass"] is True
    overlapping = [_row("oracle", 0.5, 0.8, ci=0.2), _row("Base-T", 0.2, 0.3, ci=0.15)]
    assert validity_report.p1(overlapping)["pass"] is False
    ceiling = [_row("oracle", 0.5, 0.95, ci=0.01), _row("Base-T", 0.1, 0.3, ci=0.01)]
    result = validity_report.p1(ceiling)
    assert result["pass"] is False and "0.95 (> 0.9)" in result["figure"]
    assert validity_report.p1([_row("Base-T", 0.1)])["pass"] is None  # no oracle: not applicable
    spread = [_row("oracle", 0.1, ci=0.2), _row("Base-T", 0.001, ci=0.001)]
    spread[0]["pass@1"]["per_seed"], spread[1]["pass@1"]["per_seed"] = [0.05, 0.3, 0.04], [1e-3, 2e-3, 4e-4]
    result = validity_report.p1(spread)  # every seed agrees, the intervals do not: still a fail
    assert result["pass"] is False and result["figure"].endswith("above Base-T in 3 of 3, 50x to 150x")


def _pool(useful, trap, other, top_useful, top, l_useful, l_trap):
    return {"pool_useful": useful, "pool_trap": trap, "pool_other": other, "top_useful": top_useful,
            "top_size": top, "useful_count": useful, "useful_learnability": l_useful,
            "trap_count": trap, "trap_learnability": l_trap}


def test_p2_and_p4_read_the_labels():
    blind = [_pool(80, 800, 144, 12, 128, 0.30, 0.28)]  # share 7.8% vs 9.4%: ratio 1.2
    assert validity_report.p2(blind)["pass"] is True and validity_report.p4(blind)["pass"] is True
    seen = [_pool(80, 800, 144, 40, 128, 0.30, 0.28)]  # learnability-top is 31% stones: ratio 4
    assert validity_report.p2(seen)["pass"] is False
    unequal = [_pool(80, 800, 144, 12, 128, 0.40, 0.28)]  # 30% apart
    assert validity_report.p2(unequal)["pass"] is False
    crowded = [_pool(500, 400, 124, 60, 128, 0.3, 0.3)]
    assert validity_report.p4(crowded)["pass"] is False and "48.8%" in validity_report.p4(crowded)["figure"]
    assert validity_report.p2([{"learnability_mean": 0.1}])["pass"] is None


def test_p3_p5_compare_gains_and_order():
    rows = [_row("oracle", 0.5), _row("Hard-Only", 0.01), _row("partial-25%", 0.1),
            _row("partial-50%", 0.2), _row("partial-75%", 0.3)]
    assert validity_report.p3(rows, base=0.0)["pass"] is True
    assert validity_report.p3(rows, base=0.0)["figure"].endswith("(ratio 0.02, needs <= 0.1)")
    assert validity_report.p3([_row("oracle", 0.5), _row("Hard-Only", 0.1)], base=0.0)["pass"] is False
    assert validity_report.p5(rows)["pass"] is True
    rows[3] = _row("partial-50%", 0.05)
    assert validity_report.p5(rows)["pass"] is False
    assert validity_report.p5(rows[:2])["pass"] is None


def test_p6_correlates_within_rounds_and_p7_weighs_the_gap_against_repeat_noise():
    stones = [0, 5, 10, 15] * 3
    rounds = [i // 4 for i in range(12)]
    # Each round has its own scale (other reward questions); within a round the reward rises with k.
    reward = [(r + 1) * (1 + k) for k, r in zip(stones, rounds)]
    assert validity_report.p6({"P6": {"stones": stones, "reward": reward, "round": rounds}})["pass"] is True
    flat = [(r + 1) * (1 + (i * 7) % 5) for i, r in enumerate(rounds)]
    assert validity_report.p6({"P6": {"stones": stones, "reward": flat, "round": rounds}})["pass"] is False
    clear = {"P7": {"reward": [3.0, 3.2, 1.0, 1.2] * 4, "inner_runs": 1}}
    assert validity_report.p7(clear)["pass"] is True
    noisy = {"P7": {"reward": [3.0, 0.0, 1.0, 1.6] * 4, "inner_runs": 1}}
    result = validity_report.p7(noisy)
    assert result["pass"] is False and "at r = 1" in result["figure"]
    assert validity_report.p6({})["pass"] is None and validity_report.p7({})["pass"] is None


def test_evaluate_curricula_is_evaluate_curriculum_per_curriculum():
    env = gym.make("SOAR-Tiny-v0", **SMALL).unwrapped
    env.reset(seed=0)
    config = EvalConfig.for_env(env, max_steps=2)
    curricula = {"stones": env.domain.problems(8, range(4, 7), seed=1), "Hard-Only": []}
    together = evaluate_curricula(env, curricula, [0, 1], config)
    for name, curriculum in curricula.items():
        alone = evaluate_curriculum(env, curriculum, [0, 1], config, name)
        assert together[name].name == name
        # The lockstep executor stacks runs: a run's float sums depend on its stack's shapes,
        # so the curricula trained together agree with each alone within rounding.
        for got, expected in zip(together[name].per_seed, alone.per_seed):
            assert got == pytest.approx(expected, rel=1e-4)


def test_fresh_students_report_each_step_with_the_weights_they_end_with():
    from soar_env.fresh_students import FreshRun, train_fresh_students

    env = gym.make("SOAR-Tiny-v0", **SMALL).unwrapped
    env.reset(seed=0)
    config = EvalConfig.for_env(env, max_steps=3, early_stop=False)
    runs = [FreshRun(env.domain.problems(8, range(4, 7), seed=1), 0), FreshRun([], 1)]
    seen, last = [], {}

    def on_step(run, done, weights):
        seen.append((runs.index(run), done))
        if done == 3:
            last[runs.index(run)] = weights()

    train_fresh_students(env, runs, config, on_step=on_step)
    assert sorted(seen) == [(r, d) for r in (0, 1) for d in (1, 2, 3)]
    for i, run in enumerate(runs):
        assert all(torch.equal(last[i][k], run.weights[k]) for k in run.weights)
    assert not all(torch.equal(last[0][k], last[1][k]) for k in last[0])  # each run its own


def test_the_eval_horizon_is_where_every_seed_stops_reordering():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "eval_horizon", Path(__file__).parents[1] / "benchmarks" / "eval_horizon.py")
    horizon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(horizon)

    def curves(b_after: int, ties: bool = False) -> dict:
        steps = range(100, 501, 100)
        return {"a": [{"seed": s, "pass@1": [(t, 0.5) for t in steps]} for s in (0, 1)],
                "b": [{"seed": s, "pass@1": [(t, 0.6 if t >= b_after or s == 0 else 0.4) for t in steps]}
                      for s in (0, 1)],
                "c": [{"seed": s, "pass@1": [(t, 0.5 if ties else 0.1) for t in steps]} for s in (0, 1)]}

    assert horizon.horizon(curves(300), 500)["horizon"] == 300  # seed 1's b overtakes a at 300
    assert horizon.horizon(curves(100), 500)["horizon"] == 200  # never before 200
    assert horizon.horizon(curves(500), 500)["horizon"] is None  # reorders at the last checkpoint
    found = horizon.horizon(curves(300, ties=True), 500)  # exact ties group, they do not reorder
    assert found["horizon"] == 300 and found["final_ranking_per_seed"]["1"] == [["b"], ["a", "c"]]


@dataclass(frozen=True)
class OracleIsBaseT(ChainDomain):
    """v0, except that its "oracle" is the untrained teacher's own questions."""

    @property
    def validity(self):
        def oracle(count, seed):
            env = gym.make("SOAR-Tiny-v0", **SMALL, group_size=4).unwrapped
            env.reset(seed=0)
            return validate.untrained_teacher_pool(env, POOL, seed)[:count]

        return ValidityReferences(oracle=oracle)


def test_an_env_whose_oracle_is_base_t_fails_p1(tmp_path, capsys):
    register_domain("oracle-is-base-t", lambda config: OracleIsBaseT(default_student=str(TINY_CHAIN_PATH)))
    settings = as_settings(SMALL) + ["domain=oracle-is-base-t"]
    code = main(["validate", "--env", "SOAR-Tiny-v0", "--seeds", "2", "--questions", "8", "--pool", str(POOL),
                 "--eval-steps", "3", "--noise-rounds", "1", "--out", str(tmp_path), "--set", *settings])
    assert code == 1  # a criterion failed
    summary = json.loads((tmp_path / "SOAR-Tiny-v0.json").read_text())
    assert {"env", "version", "seeds", "curricula", "criteria"} <= set(summary) and summary["seeds"] == [0, 1]
    rows = {r["name"]: r for r in summary["curricula"]}
    assert list(rows) == ["oracle", "Base-T", "learnability-top", "random", "Hard-Only"]
    for row in rows.values():
        assert set(row["pass@1"]) >= {"mean", "ci95", "per_seed"} and len(row["pass@32"]["per_seed"]) == 2
    # The same questions, the same student seeds: the same students, so the intervals overlap.
    assert rows["oracle"]["pass@1"]["per_seed"] == rows["Base-T"]["pass@1"]["per_seed"]
    criteria = summary["criteria"]
    assert criteria["P1"]["pass"] is False and "overlapping" in criteria["P1"]["figure"]
    # Without labels or partial oracles those criteria are not applicable, never passed.
    assert [criteria[p]["pass"] for p in ("P2", "P4", "P5", "P6")] == [None] * 4
    assert math.isfinite(rows["Hard-Only"]["pass@1"]["mean"])
    assert (tmp_path / "SOAR-Tiny-v0.md").read_text().count("**P1 FAIL**") == 1
    assert (tmp_path / "SOAR-Tiny-v0.png").stat().st_size > 10_000
    assert "P1 FAIL" in capsys.readouterr().out


def test_teacher_settings_are_refused_in_one_line(capsys):
    assert main(["validate", "--set", "teacher.learning_rate=1e-3"]) == 2
    assert "validate trains no teacher" in capsys.readouterr().err


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_v2_partial_oracle_checks_its_fraction(fraction):
    from soar_env.embedded import variant_domain

    with pytest.raises(ValueError, match="fraction"):
        variant_domain("v2").validity.partial_oracle(fraction, 4, 0)


def test_a_killed_validate_goes_on_from_the_next_seed(tmp_path, monkeypatch, capsys):
    """Seeds are kept as they finish: a run stopped in seed 1 keeps seed 0, and the rerun
    trains only seed 1 and reports seed 0's figures as they were."""
    args = ["validate", "--env", "SOAR-Tiny-v0", "--seeds", "2", "--questions", "8", "--pool", str(POOL),
            "--eval-steps", "2", "--noise-rounds", "1", "--out", str(tmp_path),
            "--set", *as_settings(SMALL)]
    real, trained = validate.evaluate_curricula, []

    def stopped_in_seed_1(env, curricula, seeds, *rest):
        if seeds == [1]:
            raise KeyboardInterrupt
        trained.append(seeds[0])
        return real(env, curricula, seeds, *rest)

    monkeypatch.setattr(validate, "evaluate_curricula", stopped_in_seed_1)
    assert main(args) == 130
    assert "the same command goes on from the next seed" in capsys.readouterr().err
    log = tmp_path / "SOAR-Tiny-v0.seeds.json"
    kept = json.loads(log.read_text())["seeds"]
    assert list(kept) == ["0"] and not (tmp_path / "SOAR-Tiny-v0.json").exists()

    def counted(env, curricula, seeds, *rest):
        trained.append(seeds[0])
        return real(env, curricula, seeds, *rest)

    monkeypatch.setattr(validate, "evaluate_curricula", counted)
    main(args)
    assert trained == [0, 1] and "seed 0: kept from" in capsys.readouterr().out
    rows = {r["name"]: r for r in json.loads((tmp_path / "SOAR-Tiny-v0.json").read_text())["curricula"]}
    assert rows["oracle"]["pass@1"]["per_seed"][0] == kept["0"]["results"]["oracle"]["1"]
    assert not log.exists()  # the run's own files hold it all now


def test_fresh_students_in_worker_processes_are_their_shares_trained_here():
    """With lockstep workers the runs are split into contiguous shares, one stack per worker:
    each run ends exactly as the same share trained in this process does."""
    from soar_env.fresh_students import FreshRun, train_fresh_students, train_stacks

    env = gym.make("SOAR-Tiny-v0", **SMALL, executor="lockstep", num_workers=2).unwrapped
    try:
        env.reset(seed=0)
        config = EvalConfig.for_env(env, max_steps=3, early_stop=False)
        curricula = [env.domain.problems(8, range(3, 7), seed=s) for s in range(3)] + [[]]

        def runs():
            return [FreshRun(list(c), 0) for c in curricula]

        in_workers = runs()
        train_fresh_students(env, in_workers, config)
        here = runs()
        for share in (here[:2], here[2:]):
            train_stacks(env.lab, list(env.hard_set.train), config.rl, share, config)
    finally:
        env.close()
    for a, b in zip(in_workers, here):
        assert a.steps == b.steps == 3 and a.failed is None
        assert a.rewards == b.rewards
        assert all(torch.equal(a.weights[k], b.weights[k]) for k in b.weights)
    assert not all(torch.equal(in_workers[0].weights[k], in_workers[2].weights[k]) for k in here[0].weights)
