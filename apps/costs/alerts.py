"""Budget alerts: recorded once per threshold per period, audited, then notified.

The data plane calls `crossed` when a settlement takes a budget's spend over one of its
thresholds. Recording happens off the event loop, in one worker thread: the
`BudgetAlert` unique constraint (budget, period, threshold) makes a second crossing of
the same line (another process, a retried settlement) a no-op, and only the process that
inserted the row audits it (`budget.threshold_crossed`) and queues its notifications
(`costs.notify_alert`, retried with backoff).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.db import IntegrityError, close_old_connections, connection, transaction

from apps.costs import limits as L

logger = logging.getLogger(__name__)

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atp-budget-alerts")
_pending: list = []


def crossed(rule: L.BudgetRule, period_start: float, threshold: float, spent_units: int) -> None:
    """Record the crossing in the background (never blocks or raises into the caller)."""
    future = _executor.submit(_record_in_thread, rule, period_start, threshold, spent_units)
    _pending.append(future)
    if len(_pending) > 1000:
        _pending[:] = [f for f in _pending if not f.done()]


def wait_for_pending(timeout: float = 10.0) -> None:
    """Block until every queued crossing is recorded (shutdown, tests)."""
    for future in list(_pending):
        future.result(timeout=timeout)
    _pending.clear()


def _record_in_thread(rule, period_start, threshold, spent_units) -> None:
    close_old_connections()
    try:
        record_alert(
            budget_id=rule.id,
            period_start=L.period_start_datetime(period_start),
            threshold=threshold,
            spent=L.units_to_usd(spent_units),
        )
    except Exception:
        logger.exception("could not record the alert of budget %s at %s%%", rule.id, threshold)
    finally:
        connection.close()  # this thread's own connection; tests drop the database after


def record_alert(*, budget_id, period_start, threshold: float, spent: Decimal):
    """The alert, created and audited the first time only; None when it already existed
    or the budget is gone."""
    from apps.audit.snapshots import audit_change
    from apps.costs.models import Budget, BudgetAlert

    budget = Budget.objects.filter(pk=budget_id).first()
    if budget is None:
        return None
    try:
        with transaction.atomic():
            alert = BudgetAlert.objects.create(
                budget=budget,
                tenant_id=budget.tenant_id,
                period_start=period_start,
                threshold=threshold,
                spent_usd=spent.quantize(Decimal("0.00000001")),
                limit_usd=budget.limit_usd,
            )
            audit_change(
                event_type="budget.threshold_crossed",
                resource_id=budget.pk,
                tenant_id=budget.tenant_id,
                data={
                    "budget": budget.name,
                    "threshold_percent": threshold,
                    "spent_usd": str(alert.spent_usd),
                    "limit_usd": str(budget.limit_usd),
                    "period": budget.period,
                    "period_start": period_start.isoformat(),
                    "action": budget.action,
                },
            )
            transaction.on_commit(lambda: _queue_notify(alert.pk))
    except IntegrityError:
        return None
    return alert


def _queue_notify(alert_id) -> None:
    from apps.costs.tasks import notify_alert

    try:
        notify_alert.delay(str(alert_id))
    except Exception:
        logger.exception("could not queue the notifications of budget alert %s", alert_id)
