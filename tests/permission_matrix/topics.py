"""The console WebSocket's topics against every role: "ok" (subscribed) or "refused".

Run by tests/test_permission_matrix_topics.py, which also fails when a topic of
atp_site.console.live.topics.TOPICS has no row here. Refused means an error frame naming
the topic (the socket stays open); anonymous sockets are closed with 4401 before any topic.

Who may see what (atp_site.console.live.figures.viewer_scope, through
apps.tenants.permissions): global traffic and alerts need every tenant's request log
(routing.view_requestlog, or tenants.view_tenant held globally); providers.health needs
providers.view_provider; spend and the request stream need the request log of one tenant
at least, and carry only those tenants' figures and requests.
"""

from __future__ import annotations

from dataclasses import dataclass

# The permission matrix's role columns (tests/permission_matrix/world.py), in this order.
ROLES = (
    "anonymous",
    "staff",
    "read_only",
    "tenant_member",
    "tenant_admin",
    "auditor",
    "cost_admin",
    "security_admin",
    "platform_admin",
    "manager",
    "super_admin",
    "superuser",
)

OK = "ok"
REFUSED = "refused"


@dataclass(frozen=True)
class TopicRow:
    topic: str
    expect: dict[str, str]


def topic_row(topic: str, expect: str) -> TopicRow:
    outcomes = expect.split()
    assert len(outcomes) == len(ROLES), f"{topic}: {len(outcomes)} outcomes for {len(ROLES)} roles"
    assert set(outcomes) <= {OK, REFUSED}, f"{topic}: outcomes are {OK} or {REFUSED}"
    return TopicRow(topic, dict(zip(ROLES, outcomes, strict=True)))


# fmt: off
TOPIC_ROWS: list[TopicRow] = [
    #          topic                anon     staff    read_only tenant_member tenant_admin auditor cost_admin security_admin platform_admin manager super_admin superuser
    topic_row("system.metrics",   "refused refused  ok        refused       refused      ok      ok         ok             ok             ok      ok          ok"),
    topic_row("system.alerts",    "refused refused  ok        refused       refused      ok      ok         ok             ok             ok      ok          ok"),
    topic_row("providers.health", "refused refused  ok        refused       refused      refused ok         refused        ok             ok      ok          ok"),
    topic_row("costs.realtime",   "refused refused  ok        ok            ok           ok      ok         ok             ok             ok      ok          ok"),
    topic_row("requests.stream",  "refused refused  ok        ok            ok           ok      ok         ok             ok             ok      ok          ok"),
]
# fmt: on
