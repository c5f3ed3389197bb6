"""Pure controls rules: threshold params, signal percentages, halt parsing, scope costs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.rules.budget import parse_halt
from drivers.rules.scopes import clamp_fraction, estimated_cost_usd
from drivers.rules.thresholds import (
    DEFAULTS,
    ParamError,
    ThresholdParams,
    merge_params,
    signal_percentage,
    validate_params,
)

_DEFAULT = ThresholdParams(60000, 8192, 1.0, True)


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"max_execution_time_ms": 999}, "max_execution_time_ms"),
        ({"max_execution_time_ms": 300001}, "max_execution_time_ms"),
        ({"max_execution_time_ms": 1500.5}, "max_execution_time_ms"),
        ({"max_tokens": 200001}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_cost_usd": 100.01}, "max_cost_usd"),
        ({"max_cost_usd": "abc"}, "max_cost_usd"),
        ({"max_cost_usd": None}, "max_cost_usd"),
        ({"failure_signal": "yes"}, "failure_signal"),
        ({"other": 1}, "other"),
        ([1], "params"),
    ],
)
def test_invalid_params_name_their_key(params, key):
    with pytest.raises(ParamError) as err:
        validate_params(params)
    assert err.value.key == key


def test_boundaries_are_valid():
    validate_params(
        {
            "max_execution_time_ms": 1000,
            "max_tokens": 256,
            "max_cost_usd": 0.01,
            "failure_signal": False,
        }
    )
    validate_params({"max_execution_time_ms": 300000, "max_tokens": 200000, "max_cost_usd": 100})
    validate_params(DEFAULTS)


def test_merge_last_layer_wins_and_invalid_falls_back():
    assert merge_params([]) == _DEFAULT
    assert merge_params([{"max_tokens": 300}, {"max_tokens": 400, "failure_signal": False}]) == (
        ThresholdParams(60000, 400, 1.0, False)
    )
    assert merge_params([{"max_tokens": 300}, {"max_tokens": 1}]) == _DEFAULT
    assert merge_params([{"max_tokens": 300}, {"bogus": 1}]) == _DEFAULT


def test_signal_percentage():
    assert signal_percentage("NEAR", 85, 100) == 85.0
    assert signal_percentage("NEAR", 5, 0) == 0.0
    assert signal_percentage("BREACH", 5, -1) == 100.0
    assert signal_percentage("BREACH", 150, 120) == 125.0


def test_parse_halt():
    assert parse_halt("Hard budget limit: 120c consumed >= 100c limit") == (120, 100)
    assert parse_halt("Hard budget limit hit") is None
    assert parse_halt(None) is None


def test_scope_costs_and_fraction():
    assert [
        estimated_cost_usd(a) for a in ("RETRY", "FALLBACK", "CIRCUIT_BREAK", "SCALE", "X")
    ] == [
        Decimal("0.1"),
        Decimal("0.05"),
        Decimal("0"),
        Decimal("1"),
        Decimal("0.2"),
    ]
    assert (clamp_fraction(None), clamp_fraction(0), clamp_fraction(5), clamp_fraction(0.5)) == (
        0.1,
        0.01,
        1.0,
        0.5,
    )
