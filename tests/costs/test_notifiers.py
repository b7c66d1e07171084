"""Alert notifications: a signed webhook on 127.0.0.1 and e-mail, each delivered once,
retried until they succeed."""

from __future__ import annotations

import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from django.core import mail
from django.utils import timezone

from apps.costs import notifiers, services
from apps.costs.models import BudgetAlert
from apps.costs.tasks import notify_alert
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789"


class Hook:
    """A webhook receiver that fails its first `failures` calls with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[dict, bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.calls.append((dict(self.headers), body))
                status = 500 if len(hook.calls) <= hook.failures else 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/atp"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def eager():
    from atp_site.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


def _alert(tenant: Tenant) -> BudgetAlert:
    budget = services.budget_create(
        scope="tenant", tenant=tenant, name="monthly", limit_usd=Decimal("10")
    )
    return BudgetAlert.objects.create(
        budget=budget,
        tenant=tenant,
        period_start=timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0),
        threshold=80,
        spent_usd=Decimal("8.5"),
        limit_usd=budget.limit_usd,
    )


def test_a_signed_webhook_and_an_email_are_each_sent_once_despite_a_failure(eager, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    hook = Hook(failures=1)
    try:
        tenant = Tenant.objects.create(slug="acme", name="Acme")
        services.notifier_create(name="hook", kind="webhook", target=hook.url, secret=SECRET)
        services.notifier_create(
            name="mail", kind="email", tenant=tenant, target="finance@acme.example"
        )
        other = Tenant.objects.create(slug="globex", name="Globex")
        services.notifier_create(
            name="globex-mail", kind="email", tenant=other, target="ops@globex.example"
        )
        alert = _alert(tenant)
        notify_alert.apply(args=[str(alert.pk)])
    finally:
        hook.close()
    # The webhook failed once and was retried; the e-mail went out once, to acme only.
    assert len(hook.calls) == 2
    assert [m.to for m in mail.outbox] == [["finance@acme.example"]]
    headers, body = hook.calls[-1]
    assert notifiers.verify(SECRET, headers["X-ATP-Signature"], body)
    assert not notifiers.verify("another-secret", headers["X-ATP-Signature"], body)
    payload = orjson.loads(body)
    assert payload["type"] == "budget.threshold_crossed" and payload["tenant"] == "acme"
    assert payload["threshold_percent"] == 80 and payload["spent_usd"] == "8.50000000"
    alert.refresh_from_db()
    assert alert.notified_at is not None and len(alert.delivered_to) == 2
    assert alert.notify_attempts == 2 and alert.notify_error == ""


def test_a_stale_signature_is_refused():
    body = b'{"type": "budget.threshold_crossed"}'
    old = notifiers.sign(SECRET, 1_000_000_000, body)
    assert not notifiers.verify(SECRET, old, body)
