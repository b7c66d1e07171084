"""Overload control: an in-flight window per gateway process, adjusted by how late the
process's event loop runs, that sheds the lower service tiers first.

Each plan has a service priority (apps.costs.limits.PLAN_DEFAULTS), its tier: 0 gold
(enterprise), 1 silver (premium, or no plan), 2 bronze (free). A /v1 request takes a slot
right after its key is known and gives it back when its response is finished. With W the
window and n the requests in flight:

- n >= W: refused at once with 503 `overloaded` and `Retry-After: 1`;
- n >= W x its tier's share (gold 100%, silver 90%, bronze 70%): refused with 429
  `tier_share_exhausted` and `Retry-After: 1`.

The window moves by AIMD between ATP_OVERLOAD_MIN_IN_FLIGHT and ATP_OVERLOAD_MAX_IN_FLIGHT.
Every ATP_OVERLOAD_TICK_MS a controller task sleeps one tick and measures how late it
wakes (the event loop's lag: the time the requests ahead of it kept the loop busy). A lag
above ATP_OVERLOAD_TARGET_LAG_MS means the process has taken more work than its CPU
serves: the window shrinks by a quarter. A lag within target while requests fill most of
the window grows it by ATP_OVERLOAD_INCREASE slots. So admitted requests wait on the CPU
for about the target, and whatever exceeds the process's capacity is answered at once
instead of queueing without bound. Counting is per process and costs two integer
operations on the request path.
"""

from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from atp_site.lib.errors import ATPError

logger = logging.getLogger(__name__)

SHARES = {0: 1.0, 1: 0.9, 2: 0.7}
TIERS = {0: "gold", 1: "silver", 2: "bronze"}
DECREASE = 0.75  # the window's multiplier when the loop runs late
BUSY = 0.8  # the share of the window in use for it to grow


class Overloaded(ATPError):
    status = 503
    type = "service_unavailable"
    code = "overloaded"
    retryable = True


class TierShareExhausted(ATPError):
    status = 429
    type = "rate_limit_error"
    code = "tier_share_exhausted"
    retryable = True


class Gate:
    def __init__(self) -> None:
        self.in_flight = 0
        self.shed = 0  # refused with 503
        self.shed_by_tier = {0: 0, 1: 0, 2: 0}  # refused with 429
        self.window: float | None = None  # None: ATP_OVERLOAD_MAX_IN_FLIGHT (no controller)
        self.peak = 0  # most requests in flight since the controller's last tick
        self.lag = 0.0  # the event loop's last measured lag, in seconds

    def capacity(self) -> float:
        window = self.window
        return settings.ATP_OVERLOAD_MAX_IN_FLIGHT if window is None else window

    def enter(self, priority: int) -> None:
        cap = self.capacity()
        n = self.in_flight
        if cap:
            if n >= cap:
                self.shed += 1
                raise Overloaded(
                    "The gateway is at capacity; retry shortly.",
                    retry_after=1,
                )
            if n >= cap * SHARES.get(priority, 1.0):
                self.shed_by_tier[priority] = self.shed_by_tier.get(priority, 0) + 1
                raise TierShareExhausted(
                    f"The gateway is busy and the {TIERS.get(priority, 'silver')} service "
                    "tier's share of it is in use; retry shortly.",
                    retry_after=1,
                )
        self.in_flight = n + 1
        if n + 1 > self.peak:
            self.peak = n + 1

    def leave(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def adjust(self, lag: float) -> None:
        """One controller tick: shrink on a late loop, grow while the window is used."""
        high = settings.ATP_OVERLOAD_MAX_IN_FLIGHT
        if not high:
            self.window = None
            return
        low = min(settings.ATP_OVERLOAD_MIN_IN_FLIGHT, high)
        window = high if self.window is None else self.window
        self.lag = lag
        if lag * 1000 > settings.ATP_OVERLOAD_TARGET_LAG_MS:
            window = max(low, window * DECREASE)
        elif max(self.peak, self.in_flight) >= window * BUSY:
            window = min(high, window + settings.ATP_OVERLOAD_INCREASE)
        self.window = window
        self.peak = self.in_flight


gate = Gate()


async def control_forever() -> None:
    """Measure the event loop's lag every tick and move the window (started at start-up)."""
    loop = asyncio.get_running_loop()
    while True:
        tick = settings.ATP_OVERLOAD_TICK_MS / 1000
        started = loop.time()
        await asyncio.sleep(tick)
        try:
            gate.adjust(max(0.0, loop.time() - started - tick))
        except Exception:  # a bad setting must not stop the controller for good
            logger.exception("overload control: the window could not be adjusted")
