"""Admission: check every rate limit and reserve every budget of a request in one step.

Called by the data plane after routing, before the provider: one `Counters.admit` call
(one Redis round trip, or none in memory) for a key with limits or budgets, nothing for a
key without. The request's tokens are its prompt estimate plus its maximum output, its
cost those tokens at the most expensive deployment it may be sent to. When the request is
settled, `settle` queues the corrections (actual tokens and cost), the release of its
concurrency slot and budget reservations; a background flusher sends the queued
settlements of many requests in one call.

When Redis cannot be reached, `ATP_RATE_LIMITS_ON_REDIS_ERROR` and
`ATP_BUDGETS_ON_REDIS_ERROR` say what happens: `open` admits with a local approximation
(this process's own counters), `closed` refuses with 503.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from apps.costs import limits as L
from apps.costs.counters import (
    BUDGET,
    SLOTS,
    WINDOW,
    Counters,
    MemoryCounters,
    RedisCounters,
    Verdict,
)
from atp_site.lib.errors import ATPError, RateLimited

logger = logging.getLogger(__name__)


class BudgetExceeded(ATPError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"
    retryable = False


class LimitsUnavailable(ATPError):
    status = 503
    type = "service_unavailable"
    code = "limits_unavailable"
    retryable = True


@dataclass(slots=True)
class Downgrade:
    """Every blocking budget that refused wants a cheaper model: use `model` instead."""

    model: str
    budget: L.BudgetRule


@dataclass(slots=True)
class Admission:
    """What one admitted request holds until it is settled."""

    request_id: str
    counters: Counters
    slice: Slice
    tokens: int  # reserved: the prompt estimate plus the maximum output
    cost_units: int  # reserved: the maximum cost
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    downgraded_by: str = ""
    settled: bool = False


# --- the process's counters -----------------------------------------------------------

_counters: Counters | None = None
_local = MemoryCounters()  # the local approximation while Redis is unreachable


def get_counters() -> Counters:
    global _counters
    if _counters is None:
        _counters = RedisCounters() if settings.REDIS_URL else MemoryCounters()
    return _counters


def set_counters(counters: Counters | None) -> None:
    """Replace the process's counters (tests; None rebuilds them from settings)."""
    global _counters, _local, _key_prefix
    _counters = counters
    _local = MemoryCounters()
    _key_prefix = None


_key_prefix: str | None = None


def _prefix() -> str:
    global _key_prefix
    if _key_prefix is None:
        prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX") or "atp"
        _key_prefix = f"{prefix}:lim:"
    return _key_prefix


def budget_key(rule: L.BudgetRule, start: float) -> str:
    return f"{_prefix()}budget:{rule.id}:{int(start)}"


# --- the reservation -----------------------------------------------------------------


@dataclass(slots=True)
class Ask:
    """What a request may use: tokens at most, and cost at most (1e-8 USD units)."""

    tokens: int = 0
    cost_units: int = 0


def ask_for(prompt_tokens: int, max_output: int, prices: list) -> Ask:
    """The request's tokens and its maximum cost at the most expensive of `prices`."""
    tokens = prompt_tokens + max_output
    worst = Decimal(0)
    for price in prices:
        cost = price.input * prompt_tokens + max(price.output, price.reasoning_rate) * max_output
        worst = max(worst, cost)
    return Ask(tokens, math.ceil(worst * L.UNITS_PER_USD / 1_000_000))


# What an item's amount is: one request (and one concurrency slot), the tokens asked, or
# the cost asked.
_ONE, _TOKENS, _COST = 0, 1, 2
_AMOUNT_OF = {L.REQUESTS: _ONE, L.CONCURRENT: _ONE, L.TOKENS: _TOKENS, L.COST: _COST}


@dataclass(slots=True)
class Slice:
    """A key's counters compiled for the current windows and budget periods (until
    `until`, epoch seconds), so admitting a request only fills in its amounts."""

    until: float
    # Per item: (code, counter key, limit, what the amount is, expiry ms or 0, seed).
    rows: list[tuple[str, str, int, int, int, int]]
    meta: list[tuple[str, object, float]]  # per item: ("rule" | "budget", rule, start)
    requests: list[int]  # indices of the requests-per-minute rules (for the headers)
    token_rules: list[int]  # ... and of the tokens-per-minute rules
    # Per settlement op: (code, counter key, what the delta is: 0 tokens correction,
    # 1 cost correction, 2 nothing, 3 the actual cost).
    settle: list[tuple[str, str, int]]
    budgets: list[tuple[L.BudgetRule, float]]  # the budgets, in the settle ops' order


def _slice(key_limits: L.KeyLimits, now: float, skip_budget: str) -> Slice:
    prefix = _prefix()
    rows: list[tuple[str, str, int, int, int, int]] = []
    meta: list[tuple[str, object, float]] = []
    requests: list[int] = []
    token_rules: list[int] = []
    tokens_ops: list[tuple[str, str, int]] = []
    cost_ops: list[tuple[str, str, int]] = []
    slot_ops: list[tuple[str, str, int]] = []
    budget_ops: list[tuple[str, str, int]] = []
    budgets: list[tuple[L.BudgetRule, float]] = []
    until = math.inf
    for rule in key_limits.rules:
        if rule.kind == L.REQUESTS:
            requests.append(len(rows))
        elif rule.kind == L.TOKENS:
            token_rules.append(len(rows))
        meta.append(("rule", rule, 0.0))
        if rule.kind == L.CONCURRENT:
            key = f"{prefix}{rule.counter}"
            rows.append((SLOTS, key, rule.limit, _ONE, 0, 0))
            slot_ops.append((SLOTS, key, 2))
            continue
        window = L.WINDOWS[rule.kind]
        index = int(now // window)
        until = min(until, (index + 1) * window)
        key = f"{prefix}{rule.counter}:{index}"
        rows.append(
            (WINDOW, key, rule.limit, _AMOUNT_OF[rule.kind], (index + 1) * window * 1000, 0)
        )
        if rule.kind == L.TOKENS:
            tokens_ops.append((WINDOW, key, 0))
        elif rule.kind == L.COST:
            cost_ops.append((WINDOW, key, 1))
    for budget in key_limits.budgets:
        start, end = budget.bounds(now)
        key = budget_key(budget, start)
        # Budget counters outlive their period by a day, for the pages that read them.
        expires = int(end * 1000) + 86_400_000 if end is not None else 0
        if end is not None:
            until = min(until, end)
        blocks = budget.blocks and budget.id != skip_budget
        rows.append(
            (BUDGET, key, budget.limit if blocks else -1, _COST, expires, budget.seed_for(start))
        )
        meta.append(("budget", budget, start))
        budget_ops.append((BUDGET, key, 3))
        budgets.append((budget, start))
    return Slice(
        until, rows, meta, requests, token_rules,
        tokens_ops + cost_ops + slot_ops + budget_ops, budgets,
    )  # fmt: skip


def _compiled(key_limits: L.KeyLimits, now: float, skip_budget: str) -> Slice:
    found = key_limits.slices.get(skip_budget)
    if found is None or now >= found.until:
        found = key_limits.slices[skip_budget] = _slice(key_limits, now, skip_budget)
    return found


def _items(sl: Slice, ask: Ask, now: float) -> list[list]:
    now_ms = int(now * 1000)
    amounts = (1, ask.tokens, ask.cost_units)
    return [
        [code, key, limit, amounts[what], max(1, expires - now_ms) if expires else 0, seed]
        for code, key, limit, what, expires, seed in sl.rows
    ]


def _duration(ms: int) -> str:
    """A reset time as OpenAI writes it: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds, milli = divmod(ms, 1000)
    text = f"{seconds % 60}.{milli:03d}".rstrip("0") + "s" if milli else f"{seconds % 60}s"
    if seconds >= 60:
        hours, minutes = divmod(seconds // 60, 60)
        text = (f"{hours}h{minutes}m" if hours else f"{minutes}m") + text
    return text


def _headers(sl: Slice, items: list[list], verdict: Verdict, admitted: bool) -> list:
    """OpenAI's x-ratelimit-* trio for requests and for tokens, from the tightest rule."""
    out: list[tuple[bytes, bytes]] = []
    for indices, suffix in ((sl.requests, b"requests"), (sl.token_rules, b"tokens")):
        best = None
        for i in indices:
            limit = items[i][2]
            used = verdict.used[i] + (items[i][3] if admitted else 0)
            remaining = limit - used if used < limit else 0
            if best is None or remaining < best[1]:
                best = (limit, remaining, verdict.reset_ms[i])
        if best is not None:
            out += [
                (b"x-ratelimit-limit-" + suffix, str(best[0]).encode()),
                (b"x-ratelimit-remaining-" + suffix, str(best[1]).encode()),
                (b"x-ratelimit-reset-" + suffix, _duration(best[2]).encode()),
            ]
    return out


def _refusal(
    items: list[list], meta: list, verdict: Verdict, headers: list, now: float
) -> ATPError | Downgrade:
    i = verdict.refused
    what, rule, start = meta[i]
    amount = items[i][3]
    if what == "budget":
        if rule.action == "downgrade":
            return Downgrade(rule.downgrade_to, rule)
        _, end = rule.bounds(now)
        retry = (end - now) if end is not None else None
        spent = L.units_to_usd(verdict.used[i])
        err = BudgetExceeded(
            f"The {rule.period} budget '{rule.name}' of the {rule.label} is spent "
            f"(${spent.quantize(Decimal('0.01'))} of ${rule.limit_usd.normalize():f}"
            + (", including requests in flight" if amount else "")
            + ")."
            + (" It resets at the start of the next period." if end is not None else ""),
            retry_after=retry,
            details={"budget": rule.name, "budget_id": rule.id, "period": rule.period},
        )
        err.headers = [*headers, (b"x-should-retry", b"false")]
        return err
    retry_ms = 1000 if rule.kind == L.CONCURRENT else max(verdict.reset_ms[i], 1)
    too_big = amount > rule.limit and rule.kind != L.CONCURRENT
    message = f"Rate limit reached for {rule.describe()}: "
    if too_big:
        message += (
            f"this request needs {amount:,}"
            + (" tokens (prompt estimate plus max output)" if rule.kind == L.TOKENS else "")
            + ", more than the limit allows in one window. Lower max_tokens or the prompt."
        )
    else:
        used = verdict.used[i]
        message += f"used {used:,} of {rule.limit:,}. Retry after {_duration(retry_ms)}."
    err = RateLimited(
        message,
        code="rate_limit_exceeded",
        retry_after=retry_ms / 1000,
        retryable=not too_big,
        details={"limit": rule.kind, "level": rule.level},
    )
    err.headers = headers
    return err


async def admit(
    key_limits: L.KeyLimits, request_id: str, ask: Ask, *, skip_budget: str = ""
) -> Admission | Downgrade:
    """Check and reserve; raises RateLimited, BudgetExceeded or LimitsUnavailable, or
    returns a Downgrade when a downgrading budget is spent (call again for the cheaper
    model with `skip_budget` set to that budget's id)."""
    now = time.time()
    sl = _compiled(key_limits, now, skip_budget)
    items = _items(sl, ask, now)
    counters = get_counters()
    hold_ms = int(settings.ATP_LIMITS_RESERVATION_SECONDS * 1000)
    try:
        verdict = await counters.admit(request_id, items, hold_ms)
    except Exception as exc:  # Redis unreachable or failing: the documented choice
        counters = _on_redis_error(key_limits, exc)
        verdict = await counters.admit(request_id, items, hold_ms)
    headers = _headers(sl, items, verdict, verdict.allowed) if sl.requests or sl.token_rules else []
    if not verdict.allowed:
        refusal = _refusal(items, sl.meta, verdict, headers, now)
        what, rule, _ = sl.meta[verdict.refused]
        if isinstance(refusal, Downgrade):
            stats.downgraded += 1
            return refusal
        stats.refused[("budget" if what == "budget" else rule.kind, rule.level)] += 1
        raise refusal
    return Admission(request_id, counters, sl, ask.tokens, ask.cost_units, headers)


def _on_redis_error(key_limits: L.KeyLimits, exc: Exception) -> Counters:
    budgets = settings.ATP_BUDGETS_ON_REDIS_ERROR
    rates = settings.ATP_RATE_LIMITS_ON_REDIS_ERROR
    closed = (key_limits.budgets and budgets == "closed") or (
        key_limits.rules and rates == "closed"
    )
    logger.warning("limit counters in Redis unavailable (%s)", type(exc).__name__)
    stats.redis_errors += 1
    if closed:
        raise LimitsUnavailable(
            "The gateway cannot check this key's limits right now; retry shortly.",
            retry_after=1,
        ) from None
    return _local


# --- settlement -----------------------------------------------------------------------


@dataclass(slots=True)
class Stats:
    """This process's figures for /metrics (labels bounded: kinds and levels only)."""

    settled: int = 0
    redis_errors: int = 0
    settle_errors: int = 0
    refused: Counter = field(default_factory=Counter)  # (limit kind or "budget", level)
    downgraded: int = 0


stats = Stats()


def settlement_ops(admission: Admission, tokens_used: int, cost_units: int) -> list[list]:
    rid, held = admission.request_id, admission.cost_units
    deltas = (tokens_used - admission.tokens, cost_units - held, 0, cost_units)
    return [[code, key, rid, deltas[what], held] for code, key, what in admission.slice.settle]


def settle(admission: Admission | None, *, tokens_used: int, cost: Decimal) -> None:
    """Queue the request's settlement (exactly once; never raises into the response)."""
    if admission is None or admission.settled:
        return
    admission.settled = True
    cost_units = max(0, int(cost * L.UNITS_PER_USD))
    ops = settlement_ops(admission, tokens_used, cost_units)
    if isinstance(admission.counters, MemoryCounters):
        results = admission.counters.settle_now(ops)
        _after_settle(admission, ops, results)
        return
    _flusher.add(admission, ops)


def _after_settle(admission: Admission, ops: list[list], results: list[int]) -> None:
    stats.settled += 1
    budgets = admission.slice.budgets
    if not budgets:
        return
    first = len(ops) - len(budgets)
    for (rule, start), op, after in zip(budgets, ops[first:], results[first:], strict=True):
        delta = op[3]
        if after < 0 or delta <= 0:
            continue
        before = after - delta
        for mark in rule.thresholds:
            line = rule.limit * mark / 100
            if before < line <= after:
                from apps.costs import alerts

                alerts.crossed(rule, start, mark, after)


class Flusher:
    """Sends queued settlements in batches: every `ATP_LIMITS_SETTLE_SECONDS` at most
    `ATP_LIMITS_SETTLE_BATCH` per call, so many answers share one round trip."""

    def __init__(self) -> None:
        self.pending: list[tuple[Admission, list[list]]] = []
        self.task: asyncio.Task | None = None

    def add(self, admission: Admission, ops: list[list]) -> None:
        self.pending.append((admission, ops))
        if self.task is None or self.task.done():
            try:
                self.task = asyncio.get_running_loop().create_task(self.run())
            except RuntimeError:  # no loop (a synchronous caller): settle right here
                self.pending.remove((admission, ops))
                asyncio.run(self._send([(admission, ops)]))

    async def run(self) -> None:
        while self.pending:
            # Let the answers of the next few milliseconds join this batch.
            await asyncio.sleep(settings.ATP_LIMITS_SETTLE_SECONDS)
            limit = settings.ATP_LIMITS_SETTLE_BATCH
            batch, self.pending = self.pending[:limit], self.pending[limit:]
            await self._send(batch)

    async def _send(self, batch: list[tuple[Admission, list[list]]]) -> None:
        groups: dict[int, list[tuple[Admission, list[list]]]] = {}
        for entry in batch:
            groups.setdefault(id(entry[0].counters), []).append(entry)
        for entries in groups.values():
            counters = entries[0][0].counters
            ops = [op for _, group in entries for op in group]
            for attempt in range(3):
                try:
                    results = await counters.settle(ops)
                    break
                except Exception:
                    if attempt == 2:
                        # Reservations expire by themselves; the spend is in the ledger.
                        stats.settle_errors += len(entries)
                        logger.warning("could not settle %d requests' limits", len(entries))
                        results = None
                        break
                    await asyncio.sleep(0.05 * (attempt + 1))
            if results is None:
                continue
            at = 0
            for admission, group in entries:
                _after_settle(admission, group, results[at : at + len(group)])
                at += len(group)

    async def drain(self) -> None:
        while self.pending or (self.task is not None and not self.task.done()):
            if self.task is not None and not self.task.done():
                await self.task
            elif self.pending:
                await self.run()


_flusher = Flusher()


async def drain() -> None:
    """Send every queued settlement (shutdown, tests)."""
    await _flusher.drain()
