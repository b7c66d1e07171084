"""Spend forecasts from a daily series: linear trend plus weekly seasonality, with its error
on held-out history.

Pure functions over lists of daily amounts (no ORM) so they can be tested on synthetic
series; apps.costs.spend feeds them a tenant's daily rollups.

Method (ordinary least squares on the whole history given):

    spend(day) = a + b * t + c[weekday(day)]

with `t` the day's index and `c` one dummy per weekday but the first day's (the baseline
weekday is absorbed by `a`). It needs two full weeks (TREND_AND_WEEKLY_MIN_DAYS); a shorter
history fits the trend alone (at least two days), a single day is carried forward flat.
Forecast days below zero are clipped to zero (spend is never negative).

Error: the same method is fitted on the history without its last HOLDOUT days (14 when the
history has at least 42 days, else 7 when it has at least 14) and compared with those days:
mean absolute error (USD per day) and mean absolute percentage error over the days that
had spend. Next to it, the error of the seasonal naive forecast (each day equals the same
weekday one week before) on the same days, so the method can be judged against a simple
honest baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

HORIZON_DAYS = 30
TREND_AND_WEEKLY_MIN_DAYS = 14
TREND_MIN_DAYS = 2

METHOD_TREND_WEEKLY = "linear trend + day-of-week (least squares)"
METHOD_TREND = "linear trend (least squares)"
METHOD_FLAT = "flat (a single day of history)"
METHOD_NONE = "none (no history)"


@dataclass(frozen=True, slots=True)
class Holdout:
    """How the method did on the last `days` days of history when fitted on the rest."""

    days: int
    method: str
    mae: float
    mape: float | None  # percent, over held-out days that had spend; None if none had
    naive_mae: float | None  # seasonal naive (same weekday, a week before) on the same days


@dataclass(frozen=True, slots=True)
class Forecast:
    """Daily forecasts from `start` (the day after the history) on."""

    method: str
    start: date
    daily: list[float]
    history_days: int
    trend_per_day: float | None  # the fitted slope `b`, USD per day per day
    weekday_effects: dict[int, float] | None  # weekday (0 = Monday) -> effect, mean zero
    holdout: Holdout | None

    @property
    def total(self) -> float:
        return sum(self.daily)


@dataclass(frozen=True, slots=True)
class _Fit:
    method: str
    intercept: float
    slope: float
    effects: dict[int, float]  # weekday -> dummy coefficient (0 for the baseline weekday)

    def predict(self, t: int, weekday: int) -> float:
        return self.intercept + self.slope * t + self.effects.get(weekday, 0.0)


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float] | None:
    """Solve a small linear system by Gaussian elimination with partial pivoting; None when
    it is singular."""
    n = len(vector)
    rows = [list(matrix[i]) + [vector[i]] for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            return None
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, n):
            factor = rows[r][col] / rows[col][col]
            if factor:
                for c in range(col, n + 1):
                    rows[r][c] -= factor * rows[col][c]
    solution = [0.0] * n
    for r in range(n - 1, -1, -1):
        total = rows[r][n] - sum(rows[r][c] * solution[c] for c in range(r + 1, n))
        solution[r] = total / rows[r][r]
    return solution


def _least_squares(design: list[list[float]], values: Sequence[float]) -> list[float] | None:
    """Coefficients minimising the squared error (normal equations; the systems here have
    at most eight unknowns and a centred time index, so they are well conditioned)."""
    k = len(design[0])
    normal = [[sum(row[i] * row[j] for row in design) for j in range(k)] for i in range(k)]
    target = [sum(row[i] * y for row, y in zip(design, values, strict=True)) for i in range(k)]
    return _solve(normal, target)


def _fit(values: Sequence[float], start: date) -> _Fit:
    n = len(values)
    if n == 0:
        return _Fit(METHOD_NONE, 0.0, 0.0, {})
    if n < TREND_MIN_DAYS:
        return _Fit(METHOD_FLAT, float(values[0]), 0.0, {})
    centre = (n - 1) / 2
    if n >= TREND_AND_WEEKLY_MIN_DAYS:
        base = start.weekday()
        others = [(base + k) % 7 for k in range(1, 7)]
        design = [
            [1.0, t - centre]
            + [1.0 if (start + timedelta(days=t)).weekday() == w else 0.0 for w in others]
            for t in range(n)
        ]
        solved = _least_squares(design, values)
        if solved is not None:
            effects = dict(zip(others, solved[2:], strict=True))
            return _Fit(METHOD_TREND_WEEKLY, solved[0] - solved[1] * centre, solved[1], effects)
    design = [[1.0, t - centre] for t in range(n)]
    solved = _least_squares(design, values)
    if solved is None:  # cannot happen with two distinct days; kept for safety
        return _Fit(METHOD_FLAT, sum(values) / n, 0.0, {})
    return _Fit(METHOD_TREND, solved[0] - solved[1] * centre, solved[1], {})


def _predict(fit: _Fit, *, start: date, first_index: int, days: int) -> list[float]:
    out = []
    for offset in range(days):
        t = first_index + offset
        weekday = (start + timedelta(days=t)).weekday()
        out.append(max(0.0, fit.predict(t, weekday)))
    return out


def _holdout_days(n: int) -> int:
    if n >= 42:
        return 14
    if n >= 14:
        return 7
    return 0


def holdout_error(values: Sequence[float], *, start: date) -> Holdout | None:
    """The method's error on the last days of `values` when fitted on the others (None
    when the history is too short to hold any out)."""
    days = _holdout_days(len(values))
    if not days:
        return None
    train, test = list(values[:-days]), list(values[-days:])
    fit = _fit(train, start)
    predicted = _predict(fit, start=start, first_index=len(train), days=days)
    errors = [abs(p - a) for p, a in zip(predicted, test, strict=True)]
    with_spend = [(abs(p - a) / a) for p, a in zip(predicted, test, strict=True) if a > 0]
    naive_mae = None
    if len(train) >= 7:
        # The same weekday one week earlier, from the history or the held-out days before.
        series = train + test
        naive = [series[len(train) + i - 7] for i in range(days)]
        naive_mae = sum(abs(p - a) for p, a in zip(naive, test, strict=True)) / days
    return Holdout(
        days=days,
        method=fit.method,
        mae=sum(errors) / days,
        mape=100 * sum(with_spend) / len(with_spend) if with_spend else None,
        naive_mae=naive_mae,
    )


def forecast_daily(
    values: Sequence[float], *, start: date, horizon: int = HORIZON_DAYS
) -> Forecast:
    """Forecast the `horizon` days after a contiguous daily series.

    `values[i]` is the spend of day `start + i`; days without spend must be given as zero.
    """
    clean = [float(v) for v in values]
    if any(not math.isfinite(v) for v in clean):
        raise ValueError("the series holds a value that is not a finite number")
    n = len(clean)
    fit = _fit(clean, start)
    daily = _predict(fit, start=start, first_index=n, days=horizon)
    effects = None
    if fit.method == METHOD_TREND_WEEKLY:
        raw = {w: fit.effects.get(w, 0.0) for w in range(7)}
        mean = sum(raw.values()) / 7
        effects = {w: raw[w] - mean for w in range(7)}
    return Forecast(
        method=fit.method,
        start=start + timedelta(days=n),
        daily=daily,
        history_days=n,
        trend_per_day=fit.slope if fit.method in (METHOD_TREND, METHOD_TREND_WEEKLY) else None,
        weekday_effects=effects,
        holdout=holdout_error(clean, start=start),
    )
