"""Config values are type- and range-checked at construction, naming the field; the CLI's
``--set key=value`` parser applies the same checks."""

import math

import numpy as np
import pytest

from soar_env.config import SoarConfig, coerce_field, tiny
from soar_env.rl import RLOOConfig


def test_string_for_an_int_field_names_the_field():
    with pytest.raises(ValueError, match=r"dataset_size expects an int, actual '16'"):
        SoarConfig(dataset_size="16")


def test_fractional_inner_runs_refused():
    with pytest.raises(ValueError, match=r"inner_runs expects an int, actual 2.5"):
        SoarConfig(inner_runs=2.5)


def test_text_tau_refused():
    with pytest.raises(ValueError, match=r"tau expects a finite number, actual 'abc'"):
        SoarConfig(tau="abc")


def test_nan_tau_refused():
    with pytest.raises(ValueError, match=r"tau expects a finite number, actual nan"):
        SoarConfig(tau=math.nan)


def test_nan_floor_reward_refused():
    with pytest.raises(ValueError, match=r"floor_reward expects a finite number, actual nan"):
        SoarConfig(floor_reward=float("nan"))


def test_bool_dataset_size_refused():
    with pytest.raises(ValueError, match=r"dataset_size expects an int, actual True"):
        SoarConfig(dataset_size=True)


def test_negative_max_grad_norm_refused():
    with pytest.raises(ValueError, match=r"max_grad_norm expects > 0, actual -1.0"):
        RLOOConfig(max_grad_norm=-1.0)


def test_zero_max_new_tokens_refused():
    with pytest.raises(ValueError, match=r"max_new_tokens expects >= 1, actual 0"):
        RLOOConfig(max_new_tokens=0)


def test_rloo_floats_finite_and_typed():
    for name in ("learning_rate", "kl_coef", "temperature"):
        with pytest.raises(ValueError, match=f"{name} expects a finite number"):
            RLOOConfig(**{name: float("inf")})
    with pytest.raises(ValueError, match="questions_per_step expects an int"):
        RLOOConfig(questions_per_step=8.0)
    with pytest.raises(ValueError, match=r"rl expects RLOOConfig, actual \{"):
        SoarConfig(rl={"learning_rate": 1e-4})


def test_valid_values_kept_and_normalized():
    """numpy ints (e.g. from a sweep grid) are ints; ints are accepted for float fields."""
    config = SoarConfig(dataset_size=np.int64(16), tau=0, rl=RLOOConfig(learning_rate=1))
    assert type(config.dataset_size) is int and config.dataset_size == 16
    assert type(config.tau) is float and type(config.rl.learning_rate) is float
    assert tiny(student=None, dataset=None).student is None
    assert tiny().replace(promotion_extra_steps=0).promotion_extra_steps == 0


def test_coerce_field_types_and_checks():
    assert coerce_field(SoarConfig, "dataset_size", "16") == 16
    assert coerce_field(SoarConfig, "rl.learning_rate", "1e-4") == 1e-4
    assert coerce_field(SoarConfig, "measure_grounded", "True") is True
    assert coerce_field(SoarConfig, "student", "null") is None
    assert coerce_field(SoarConfig, "dataset", "123") == "123"  # a string field keeps the text
    assert coerce_field(SoarConfig, "tau", "2") == 2.0
    with pytest.raises(ValueError, match="inner_runs expects an int, actual 2.5"):
        coerce_field(SoarConfig, "inner_runs", "2.5")
    with pytest.raises(ValueError, match="dataset_size expects an int, actual True"):
        coerce_field(SoarConfig, "dataset_size", "true")
    with pytest.raises(ValueError, match="tau expects a finite number, actual nan"):
        coerce_field(SoarConfig, "tau", "NaN")
    with pytest.raises(ValueError, match=r"rl.max_grad_norm expects > 0, actual -1"):
        coerce_field(SoarConfig, "rl.max_grad_norm", "-1")
    with pytest.raises(ValueError, match=r"dataset_size expects >= 1, actual 0"):
        coerce_field(SoarConfig, "dataset_size", "0")


@pytest.mark.parametrize("name", ["dataset_sise", "rl.lr", "rl", "tau.x", "rl.learning_rate.x"])
def test_coerce_field_unknown_names_list_valid_ones(name):
    with pytest.raises(ValueError, match=rf"Unknown setting '{name}'; valid: .*dataset_size.*"
                                         r"rl\.learning_rate"):
        coerce_field(SoarConfig, name, "1")


def test_infinite_tau_turns_promotion_off_but_nan_is_refused():
    from soar_env.config import tiny

    assert tiny(tau=float("inf")).tau == float("inf")  # "never promote" is a setting
    with pytest.raises(ValueError, match="tau"):
        tiny(tau=float("nan"))
    with pytest.raises(ValueError, match="floor_reward"):
        tiny(floor_reward=float("inf"))
