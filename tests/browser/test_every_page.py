"""Every console page, in a real browser: it renders, axe-core finds no serious or critical
violation in either theme, and it is photographed (both themes, desktop and phone).

The page list is the URL configuration itself (every GET outside the API, as
tests/test_permission_matrix.py finds them), so a new page is walked without anyone adding
it here. The other browser tests check and photograph the pages of their scenarios in the
states that matter (a key shown once, form errors, a filtered list); this test runs after
them and covers each page they did not, as the superuser, over objects it makes first.
"""

from __future__ import annotations

import json
import re

import openai
import pytest
from django.urls import NoReverseMatch, reverse

from tests.browser.helpers import CHECKED, PHOTOGRAPHED, check_accessibility, screenshot
from tests.e2e.conftest import run_manage
from tests.test_permission_matrix import endpoints

pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]

# GETs that are not pages: the overview's figures (a fragment the page polls) and a job's
# result file.
NOT_PAGES = {"console:overview-figures", "audit:job-download"}

# Objects for the pages that address one, made through the services on the live server.
_SEED = """
import json
from django.contrib.auth import get_user_model
from apps.audit.access import auditor_grant
from apps.audit.models import AuditEvent, Job, RetentionPolicy
from apps.audit.retention import retention_policy_save
from apps.providers.services import deployment_create, provider_create
from apps.routing.route_services import route_create
from apps.tenants.models import Tenant
from apps.tenants.services import admin_token_create, api_key_create, project_create, tenant_create
User = get_user_model()
boss = User.objects.get(username={boss!r})
tenant = Tenant.objects.filter(slug="walk").first() or tenant_create(slug="walk", name="Walk")
provider = provider_create(name="walk-provider", kind="openai", base_url="http://127.0.0.1:9/v1")
deployment = deployment_create(
    provider=provider, public_name="walk-model", upstream_model="gpt-4o-mini",
    input_price="0.15", output_price="0.6",
)
project = project_create(tenant=tenant, slug="walk-project", name="Walk project")
key, _ = api_key_create(tenant=tenant, name="walk key", project=project)
token, _ = admin_token_create(user=boss, name="walk token")
route = route_create(name="walk/route", description="A route the page walk opens")
policy = retention_policy_save(policy=RetentionPolicy(tenant_id=tenant.pk, classification="bodies", days=30))
auditor, _ = User.objects.get_or_create(username="walk-auditor")
auditor_grant(user=auditor, tenant=tenant)
job = Job.objects.create(
    kind="audit.verify", requested_by=boss, status="succeeded", progress=100,
    message="Verified", result={{"ok": True}},
)
from decimal import Decimal
from django.utils import timezone
from apps.costs import services as costs
from apps.costs.models import BudgetAlert
ratelimit = costs.rate_limit_create(scope="project", project=project, requests_per_minute=60)
budget = costs.budget_create(scope="tenant", tenant=tenant, name="walk budget", limit_usd=50)
alert = BudgetAlert.objects.create(
    budget=budget, tenant=tenant, period_start=timezone.now(), threshold=80,
    spent_usd=Decimal("40.5"), limit_usd=budget.limit_usd,
)
notifier = costs.notifier_create(
    name="walk notifier", kind="email", tenant=tenant, target="walk@example.com"
)
from apps.policies.services import policy_create
walk_policy = policy_create(
    tenant=tenant, name="walk-policy", rules=[dict(
        id="no-secrets", when=[dict(attr="request.entities", op="contains", value="SECRET")],
        effect=dict(type="deny", message="No secrets."),
    )],
)
# Two weeks of spend, so the spend pages show a chart and tables rather than their
# empty state.
from datetime import timedelta
from apps.costs.models import UsageRecord
from apps.costs.rollups import floor_day, rollup_range
from apps.tenants.services import tenant_update
deployment_create(
    provider=provider, public_name="walk-frontier", upstream_model="gpt-4o",
    input_price="250", output_price="1000",
)
tenant_update(tenant=tenant, baseline_model="walk-frontier", gain_share_percent=20)
today = floor_day(timezone.now())
for day in range(14):
    for n in range(3):
        UsageRecord.objects.create(
            request_id=f"walk-{{day}}-{{n}}", created_at=today - timedelta(days=day, hours=-n),
            tenant_id=tenant.pk, project_id=project.pk, api_key_id=key.pk, model="walk-model",
            provider_id=provider.pk, deployment_id=deployment.pk, route="walk/route" if n else "",
            input_tokens=1200 * (n + 1), output_tokens=400 + 37 * day,
            cost_usd=Decimal("0.35") + Decimal(day % 5) / 10 + Decimal(n * 14) / 100,
        )
rollup_range(start=today - timedelta(days=14), end=today + timedelta(days=1))
print(json.dumps({{
    "provider": str(provider.pk), "deployment": str(deployment.pk), "tenant": str(tenant.pk),
    "tenant_slug": tenant.slug, "apikey": str(key.pk), "admintoken": str(token.pk),
    "project": str(project.pk),
    "user": auditor.pk, "route": str(route.pk), "retentionpolicy": policy.pk,
    "job": str(job.pk), "event": AuditEvent.objects.order_by("-sequence").first().sequence,
    "ratelimit": str(ratelimit.pk), "budget": str(budget.pk), "budgetalert": str(alert.pk),
    "notifier": str(notifier.pk), "policy": walk_policy.pk,
}}))
"""

# Which object a page of each URL name prefix addresses.
OBJECT_OF = (
    ("providers:provider-", "provider"),
    ("providers:deployment-", "deployment"),
    ("tenants:tenant-", "tenant"),
    ("tenants:project-", "project"),
    ("tenants:apikey-", "apikey"),
    ("tenants:admintoken-", "admintoken"),
    ("tenants:user-", "user"),
    ("routing:route-", "route"),
    ("routing:requestlog-", "requestlog"),
    ("audit:event-", "event"),
    ("audit:job-", "job"),
    ("audit:retentionpolicy-", "retentionpolicy"),
    ("costs:ratelimit-", "ratelimit"),
    ("costs:budget-", "budget"),
    ("costs:budgetalert-", "budgetalert"),
    ("costs:notifier-", "notifier"),
    ("policies:policy-", "policy"),
)


def _path(name: str, objects: dict) -> str:
    """The page's path: without arguments, else with the object its name addresses."""
    try:
        return reverse(name)
    except NoReverseMatch:
        pass
    if name == "routing:route-builtin":
        return reverse(name, args=["atp/balanced"])
    if name == "audit:auditor-revoke":
        return reverse(name, args=[objects["user"], objects["tenant_slug"]])
    for prefix, kind in OBJECT_OF:
        if name.startswith(prefix):
            return reverse(name, args=[objects[kind]])
    raise AssertionError(f"the page walk does not know which object {name} addresses")


def _console_pages() -> list[str]:
    """URL names of every console page: GETs outside the management API's namespaces."""
    return sorted(
        name
        for name, method in endpoints()
        if method == "get"
        and name not in NOT_PAGES
        and not name.startswith("api-")
        and not name.partition(":")[0].endswith("-api")
    )


def test_every_console_page_renders_passes_axe_and_is_photographed(
    signed_in_page, console, console_users
):
    boss, _ = console_users.get("superuser")
    seeded = run_manage(console.env, "shell", "-c", _SEED.format(boss=boss)).stdout
    objects = json.loads(seeded.strip().splitlines()[-1])
    # A request through the official SDK, for the request pages.
    client = openai.OpenAI(base_url=f"{console.base_url}/v1", api_key=console.key, timeout=20)
    raw = client.chat.completions.with_raw_response.create(
        model="team/sim", messages=[{"role": "user", "content": "One line about walking."}]
    )
    request_id = raw.headers["x-request-id"]
    assert request_id in console.log_rows([request_id])
    objects["requestlog"] = console.db.query(
        "SELECT id FROM routing_requestlog WHERE request_id = %s", (request_id,)
    )[0][0]

    page = signed_in_page("superuser", path=None)
    walked, failures = [], []
    for name in _console_pages():
        photograph, check = name not in PHOTOGRAPHED, name not in CHECKED
        if not (photograph or check):
            continue
        path = _path(name, objects)
        response = page.goto(path)
        if response is None or response.status != 200:
            failures.append(f"{name} ({path}): HTTP {response and response.status}")
            continue
        if not page.locator("main h1").count():
            failures.append(f"{name} ({path}): no page heading")
            continue
        if page.csp_errors:
            failures.append(f"{name} ({path}): Content-Security-Policy errors {page.csp_errors}")
            page.csp_errors.clear()
        try:
            if check:
                check_accessibility(page)
        except AssertionError as problem:
            failures.append(str(problem))
        if photograph:
            screenshot(page, "page-" + re.sub(r"[^a-z0-9]+", "-", name.replace(":", "-")))
        walked.append(name)
    assert not failures, "\n".join(failures)
    # Every console page was covered: by another test or by this walk.
    assert set(_console_pages()) <= PHOTOGRAPHED | set(walked)
    assert set(_console_pages()) <= CHECKED | set(walked)
