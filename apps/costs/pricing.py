"""Cost maths: what a request's token usage costs at a deployment's prices.

Pure functions over `Usage` and `Prices` snapshots so the data plane, the ledger and the
tests share one definition of a cent. Prices are USD per million tokens, as providers
publish them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from apps.providers.adapters.base import Usage

TOKENS_PER_UNIT = Decimal(1_000_000)
# Eight places keep a single cheap token visible: $0.02 per million is $0.00000002.
USD_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens. A `None` rate falls back to the plain input or output rate:
    providers without prompt caching or reasoning bill those tokens like any other."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("input", "output", "cached_input", "cache_write", "reasoning"):
            value = getattr(self, name)
            if value is None and name not in ("input", "output"):
                continue
            price = _to_decimal(value, name)
            if price < 0:
                raise ValueError(f"{name} price must not be negative, got {price}.")
            # Accept ints and strings from configuration but always hold Decimals.
            object.__setattr__(self, name, price)

    @property
    def cached_input_rate(self) -> Decimal:
        return self.input if self.cached_input is None else self.cached_input

    @property
    def cache_write_rate(self) -> Decimal:
        return self.input if self.cache_write is None else self.cache_write

    @property
    def reasoning_rate(self) -> Decimal:
        return self.output if self.reasoning is None else self.reasoning


def _to_decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{name} price must be a number, got {value!r}.")
    if isinstance(value, Decimal):
        price = value
    elif isinstance(value, int | str):
        try:
            price = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name} price must be a number, got {value!r}.") from None
    elif isinstance(value, float):
        # Through str so 0.1 means 0.1, not its binary neighbour.
        price = Decimal(str(value))
    else:
        raise ValueError(f"{name} price must be a number, got {value!r}.")
    if not price.is_finite():
        raise ValueError(f"{name} price must be finite, got {value!r}.")
    return price


def cost_usd(usage: Usage, prices: Prices) -> Decimal:
    """The cost of `usage` in USD, rounded half-up to 8 decimal places.

    `usage.input_tokens` includes cached reads and cache writes, and `output_tokens`
    includes reasoning tokens (see `Usage`). Negative counts are treated as zero. When a
    provider reports more cached or reasoning tokens than the total they belong to, those
    are billed in full and the remainder is zero: over-counting a glitch is safer for a
    budget than under-counting it.
    """
    input_tokens = max(0, usage.input_tokens)
    output_tokens = max(0, usage.output_tokens)
    cached = max(0, usage.cached_input_tokens)
    cache_write = max(0, usage.cache_write_tokens)
    reasoning = max(0, usage.reasoning_tokens)

    uncached = max(0, input_tokens - cached - cache_write)
    visible_output = max(0, output_tokens - reasoning)

    micro_usd = (
        uncached * prices.input
        + cached * prices.cached_input_rate
        + cache_write * prices.cache_write_rate
        + visible_output * prices.output
        + reasoning * prices.reasoning_rate
    )
    cost = (micro_usd / TOKENS_PER_UNIT).quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)
    return max(cost, Decimal(0).quantize(USD_QUANTUM))


def format_usd(amount: Decimal) -> str:
    """`amount` as fixed-point text with 8 decimals for headers, e.g. "0.00012300"."""
    if not amount.is_finite():
        raise ValueError(f"cannot format {amount!r} as USD.")
    quantized = amount.quantize(USD_QUANTUM, rounding=ROUND_HALF_UP)
    if quantized.is_zero():
        # Rounding a tiny negative amount must not print "-0.00000000".
        quantized = abs(quantized)
    return f"{quantized:f}"
