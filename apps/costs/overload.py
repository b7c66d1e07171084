"""Overload control: when a gateway process holds too many /v1 requests, shed the lower
service priorities first.

Each plan has a service priority (apps.costs.limits.PLAN_DEFAULTS). With
`ATP_OVERLOAD_MAX_IN_FLIGHT` = N requests in flight in this process, a new request of
priority 2 (free) is refused with 503 from 70% of N, priority 1 (premium, no plan) from
90%, priority 0 (enterprise) only at N. Counting is per process and costs two integer
operations; the edge releases the slot when the response is finished.
"""

from __future__ import annotations

from django.conf import settings

from atp_site.lib.errors import ATPError

SHARES = {0: 1.0, 1: 0.9, 2: 0.7}


class Overloaded(ATPError):
    status = 503
    type = "service_unavailable"
    code = "overloaded"
    retryable = True


class Gate:
    def __init__(self) -> None:
        self.in_flight = 0
        self.shed = 0

    def enter(self, priority: int) -> None:
        cap = settings.ATP_OVERLOAD_MAX_IN_FLIGHT
        if cap and self.in_flight >= cap * SHARES.get(priority, 1.0):
            self.shed += 1
            raise Overloaded(
                "The gateway is at capacity for this key's service priority; retry shortly.",
                retry_after=1,
            )
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)


gate = Gate()
