"""The spend forecast: trend and weekly pattern recovered from synthetic series, the error on
held-out days reported next to a seasonal naive baseline."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from apps.costs.forecast import (
    METHOD_FLAT,
    METHOD_NONE,
    METHOD_TREND,
    METHOD_TREND_WEEKLY,
    forecast_daily,
    holdout_error,
)

START = date(2026, 9, 7)  # a Monday
WEEK = [5.0, 6.0, 6.0, 5.5, 4.0, -8.0, -10.0]  # Monday first: quiet weekends


def series(days: int, *, level=40.0, slope=0.5, week=WEEK, noise=0.0, seed=1) -> list[float]:
    rng = random.Random(seed)
    return [
        level + slope * t + week[(START + timedelta(days=t)).weekday()] + rng.gauss(0, noise)
        for t in range(days)
    ]


def truth(days: int, horizon: int, **kwargs) -> list[float]:
    return series(days + horizon, **kwargs)[days:]


def test_an_exact_trend_with_a_weekly_pattern_is_recovered():
    history = series(63)
    forecast = forecast_daily(history, start=START)
    assert forecast.method == METHOD_TREND_WEEKLY
    assert forecast.start == START + timedelta(days=63)
    assert len(forecast.daily) == 30
    assert forecast.trend_per_day == pytest.approx(0.5)
    expected = truth(63, 30)
    assert forecast.daily == pytest.approx(expected, abs=1e-6)
    assert forecast.total == pytest.approx(sum(expected), abs=1e-4)
    # Weekday effects are the pattern around its mean.
    mean = sum(WEEK) / 7
    assert [forecast.weekday_effects[w] for w in range(7)] == pytest.approx(
        [v - mean for v in WEEK], abs=1e-6
    )
    assert forecast.holdout.days == 14
    assert forecast.holdout.mae == pytest.approx(0, abs=1e-6)


def test_a_history_starting_on_any_weekday_lines_the_pattern_up_by_date():
    offset = 3  # the history starts on a Thursday
    history = series(45 + offset)[offset:]
    forecast = forecast_daily(history, start=START + timedelta(days=offset))
    assert forecast.daily == pytest.approx(truth(45 + offset, 30), abs=1e-6)


def test_a_noisy_series_is_forecast_within_tolerance_and_beats_the_naive_baseline():
    history = series(91, noise=2.0, seed=7)
    forecast = forecast_daily(history, start=START)
    expected = truth(91, 30, noise=0.0)
    # Within 3% of the true 30-day total, and no day far off.
    assert forecast.total == pytest.approx(sum(expected), rel=0.03)
    assert max(abs(f - e) for f, e in zip(forecast.daily, expected, strict=True)) < 3.0
    holdout = forecast.holdout
    assert holdout.days == 14 and holdout.method == METHOD_TREND_WEEKLY
    assert 0 < holdout.mae < 3.0
    assert holdout.mape is not None and holdout.mape < 10
    assert holdout.naive_mae is not None and holdout.mae < holdout.naive_mae


def test_held_out_error_is_what_the_fit_on_the_rest_misses():
    # Flat at 10, then the last week jumps to 20: a fit on the first weeks says 10.
    history = [10.0] * 21 + [20.0] * 7
    holdout = holdout_error(history, start=START)
    assert holdout.days == 7
    assert holdout.mae == pytest.approx(10.0)
    assert holdout.mape == pytest.approx(50.0)
    assert holdout.naive_mae == pytest.approx(10.0)


def test_short_histories_fall_back_to_simpler_methods():
    trend = forecast_daily([1.0, 2.0, 3.0, 4.0, 5.0], start=START, horizon=3)
    assert trend.method == METHOD_TREND
    assert trend.daily == pytest.approx([6.0, 7.0, 8.0])
    assert trend.holdout is None
    flat = forecast_daily([7.0], start=START, horizon=2)
    assert (flat.method, flat.daily) == (METHOD_FLAT, [7.0, 7.0])
    empty = forecast_daily([], start=START, horizon=2)
    assert (empty.method, empty.daily, empty.total) == (METHOD_NONE, [0.0, 0.0], 0.0)


def test_a_falling_trend_never_forecasts_negative_spend():
    history = [max(0.0, 30 - 2 * t) for t in range(14)]
    forecast = forecast_daily(history, start=START)
    assert min(forecast.daily) == 0.0


def test_days_without_spend_keep_mape_defined_only_where_there_was_spend():
    assert holdout_error([0.0] * 14, start=START).mape is None


def test_a_value_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError, match="finite"):
        forecast_daily([1.0, float("nan")], start=START)
