"""Cost maths: rates per token kind, fallbacks, clamping and rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.costs.pricing import Prices, cost_usd, format_usd
from apps.providers.adapters.base import Usage

D = Decimal


def test_plain_input_and_output_are_billed_per_million():
    prices = Prices(input=D("2.50"), output=D("10"))
    usage = Usage(input_tokens=1000, output_tokens=500)
    # 1000 * 2.50 / 1e6 + 500 * 10 / 1e6
    assert cost_usd(usage, prices) == D("0.00750000")


def test_cached_reads_cache_writes_and_reasoning_use_their_own_rates():
    prices = Prices(
        input=D("3"),
        output=D("15"),
        cached_input=D("0.30"),
        cache_write=D("3.75"),
        reasoning=D("20"),
    )
    usage = Usage(
        input_tokens=10_000,
        output_tokens=2_000,
        cached_input_tokens=6_000,
        cache_write_tokens=1_000,
        reasoning_tokens=500,
    )
    expected = (
        3_000 * D("3")  # uncached input
        + 6_000 * D("0.30")
        + 1_000 * D("3.75")
        + 1_500 * D("15")  # visible output
        + 500 * D("20")
    ) / 1_000_000
    assert cost_usd(usage, prices) == expected.quantize(D("0.00000001"))
    assert cost_usd(usage, prices) == D("0.04705000")


def test_missing_rates_fall_back_to_input_and_output_prices():
    usage = Usage(
        input_tokens=4_000,
        output_tokens=1_000,
        cached_input_tokens=1_000,
        cache_write_tokens=1_000,
        reasoning_tokens=400,
    )
    with_fallbacks = Prices(input=D("1"), output=D("4"))
    explicit = Prices(
        input=D("1"), output=D("4"), cached_input=D("1"), cache_write=D("1"), reasoning=D("4")
    )
    plain = Usage(input_tokens=4_000, output_tokens=1_000)
    assert cost_usd(usage, with_fallbacks) == cost_usd(usage, explicit)
    assert cost_usd(usage, with_fallbacks) == cost_usd(plain, with_fallbacks)
    assert cost_usd(usage, with_fallbacks) == D("0.00800000")


def test_a_zero_rate_is_not_treated_as_missing():
    prices = Prices(input=D("1"), output=D("1"), cached_input=D("0"))
    usage = Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000)
    assert cost_usd(usage, prices) == D("0E-8")


def test_negative_counts_are_clamped_and_cost_is_never_negative():
    prices = Prices(input=D("2"), output=D("8"))
    usage = Usage(input_tokens=-100, output_tokens=-5, cached_input_tokens=-7, reasoning_tokens=-1)
    assert cost_usd(usage, prices) == D("0")
    assert cost_usd(usage, prices) >= 0


def test_over_reported_cached_and_reasoning_tokens_are_billed_in_full():
    prices = Prices(input=D("1"), output=D("2"), cached_input=D("0.5"), reasoning=D("3"))
    usage = Usage(input_tokens=100, output_tokens=10, cached_input_tokens=300, reasoning_tokens=50)
    # Uncached and visible output clamp to zero; the reported cached and reasoning count.
    assert cost_usd(usage, prices) == (300 * D("0.5") + 50 * D("3")) / 1_000_000


def test_cost_is_quantized_half_up_to_eight_places():
    # One token at $0.005 per million is $0.000000005: exactly half a quantum.
    assert cost_usd(Usage(input_tokens=1), Prices(input=D("0.005"), output=D("0"))) == D(
        "0.00000001"
    )
    assert cost_usd(Usage(input_tokens=1), Prices(input=D("0.0049"), output=D("0"))) == D(
        "0.00000000"
    )
    result = cost_usd(Usage(input_tokens=3, output_tokens=7), Prices(input=D("1"), output=D("3")))
    assert result == D("0.00002400")
    assert result.as_tuple().exponent == -8


def test_prices_accept_numbers_from_configuration_and_hold_decimals():
    prices = Prices(input=2, output="10.5", cached_input=0.1)  # type: ignore[arg-type]
    assert prices.input == D("2")
    assert prices.output == D("10.5")
    assert prices.cached_input == D("0.1")
    assert prices.cache_write is None
    assert isinstance(prices.input, Decimal)


@pytest.mark.parametrize(
    "fields",
    [
        {"input": D("-1"), "output": D("1")},
        {"input": D("1"), "output": D("1"), "reasoning": D("-0.01")},
        {"input": "cheap", "output": D("1")},
        {"input": D("NaN"), "output": D("1")},
        {"input": None, "output": D("1")},
    ],
)
def test_invalid_prices_are_rejected(fields):
    with pytest.raises(ValueError):
        Prices(**fields)


def test_prices_are_frozen():
    prices = Prices(input=D("1"), output=D("2"))
    with pytest.raises(AttributeError):
        prices.input = D("5")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (D("0.000123"), "0.00012300"),
        (D("1E-7"), "0.00000010"),
        (D("0"), "0.00000000"),
        (D("12345.5"), "12345.50000000"),
        (D("0.000000005"), "0.00000001"),
        (D("-0.000000001"), "0.00000000"),
        (D("1.23E+3"), "1230.00000000"),
    ],
)
def test_format_usd_is_fixed_point_with_eight_decimals(amount, text):
    assert format_usd(amount) == text


def test_format_usd_rejects_non_finite_amounts():
    with pytest.raises(ValueError):
        format_usd(D("Infinity"))
