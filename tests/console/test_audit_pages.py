"""Console pages of the audit log: search, detail, export, subjects, retention, auditor grants."""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.test import Client
from guardian.shortcuts import assign_perm

from apps.audit.models import AuditEvent, Job, RetentionPolicy
from apps.audit.services import audit_record
from tests.conftest import UserFactory
from tests.console.audit_cast import *  # noqa: F403 - the cast's fixtures

pytestmark = pytest.mark.django_db

PAGES = (
    "/audit/",
    "/audit/verify/",
    "/audit/export/",
    "/audit/reports/",
    "/audit/subjects/",
    "/audit/subjects/erase/",
    "/audit/retention/",
    "/audit/retention/add/",
    "/audit/auditors/",
)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_signed_out_pages_redirect_to_sign_in(client: Client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(settings.LOGIN_URL)


@pytest.mark.parametrize("path", PAGES)
def test_a_user_without_permissions_gets_403(path):
    response = signed_in(UserFactory(username="nobody")).get(path)
    assert response.status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_the_superuser_opens_every_page(admin_user, events, path):
    response = signed_in(admin_user).get(path)
    assert response.status_code == 200, response.content[:500]


def test_auditor_opens_the_audit_pages_but_not_erase_retention_changes_or_grants(auditor):
    client = signed_in(auditor)
    for path in ("/audit/", "/audit/verify/", "/audit/export/", "/audit/reports/"):
        assert client.get(path).status_code == 200, path
    assert client.get("/audit/subjects/").status_code == 200
    for path in ("/audit/subjects/erase/", "/audit/retention/add/", "/audit/auditors/"):
        assert client.get(path).status_code == 403, path


def test_signed_out_post_gets_401(client: Client):
    response = client.post("/audit/verify/", {})
    assert response.status_code == 401


def test_list_shows_events_newest_first_with_tenant_slugs(auditor, events):
    response = signed_in(auditor).get("/audit/")
    wanted = {e.sequence for e in events}
    shown = [r.sequence for r in response.context["page"].rows if r.sequence in wanted]
    assert shown == sorted(wanted, reverse=True)
    assert b"acme" in response.content and b"globex" in response.content


def test_list_filters_by_tenant_outcome_action_actor_and_classification(
    auditor, events, acme, globex
):
    client = signed_in(auditor)
    by_tenant = client.get("/audit/", {"tenant": "acme"}).context["page"].rows
    assert {r.tenant_id for r in by_tenant} == {acme.pk}
    denied = client.get("/audit/", {"outcome": "denied"}).context["page"].rows
    assert len(denied) == 3 and {r.tenant_id for r in denied} == {globex.pk}
    revoked = client.get("/audit/", {"action": "revoke"}).context["page"].rows
    assert len(revoked) == 3
    typed = client.get("/audit/", {"event_type": "provider."}).context["page"].rows
    assert [r.event_type for r in typed] == ["provider.created"]
    assert client.get("/audit/", {"actor": "nobody-at-all"}).context["page"].rows == []
    restricted = client.get("/audit/", {"classification": "restricted"}).context["page"].rows
    assert {r.classification for r in restricted} <= {"restricted"}
    assert not {r.sequence for r in restricted} & {e.sequence for e in events}


def test_list_time_range_and_an_inverted_range_is_an_error_not_a_500(auditor, events):
    client = signed_in(auditor)
    page = client.get("/audit/", {"since": "2000-01-01T00:00", "until": "2100-01-01T00:00"})
    assert {e.sequence for e in events} <= {r.sequence for r in page.context["page"].rows}
    inverted = client.get("/audit/", {"since": "2100-01-01T00:00", "until": "2000-01-01T00:00"})
    assert inverted.status_code == 200
    assert b"Must be later than" in inverted.content
    garbage = client.get("/audit/", {"since": "yesterday-ish", "outcome": "nope", "cursor": "!!"})
    assert garbage.status_code == 200


def test_htmx_gets_the_table_fragment(auditor, events):
    response = signed_in(auditor).get(
        "/audit/", {"tenant": "acme"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="console-table"
    )
    assert response.status_code == 200
    assert b"<html" not in response.content and b"key.created" in response.content


def test_keyset_pages_walk_the_whole_log(auditor, events, monkeypatch):
    from apps.audit.tables import AuditEventTable

    monkeypatch.setattr(AuditEventTable, "per_page", 2)
    client = signed_in(auditor)
    seen, query = [], {"event_type": "key."}
    for _ in range(10):
        response = client.get("/audit/", query)
        page = response.context["page"]
        seen += [r.sequence for r in page.rows]
        if not page.next_cursor:
            break
        query = {"event_type": "key.", "cursor": page.next_cursor}
    keys = [e.sequence for e in events if e.event_type.startswith("key.")]
    assert seen == sorted(keys, reverse=True)


def test_a_period_is_paged_newest_first_by_time(auditor, events, monkeypatch):
    from apps.audit.tables import AuditEventTable

    monkeypatch.setattr(AuditEventTable, "per_page", 2)
    client = signed_in(auditor)
    period = {"since": "2000-01-01T00:00", "until": "2100-01-01T00:00", "event_type": "key."}
    seen, query = [], dict(period)
    for _ in range(10):
        page = client.get("/audit/", query).context["page"]
        seen += [r.sequence for r in page.rows]
        if not page.next_cursor:
            break
        query = {**period, "cursor": page.next_cursor}
    keys = [e for e in events if e.event_type.startswith("key.")]
    assert seen == [e.sequence for e in sorted(keys, key=lambda e: e.occurred_at, reverse=True)]
    back = client.get("/audit/", {**period, "before": page.prev_cursor}).context["page"]
    assert [r.sequence for r in back.rows] == seen[-4:-2]


def test_tenant_auditor_sees_only_their_tenants_events(acme_auditor, events, acme, globex):
    client = signed_in(acme_auditor)
    rows = client.get("/audit/").context["page"].rows
    assert rows and {r.tenant_id for r in rows} == {acme.pk}
    # Another tenant in the filter reads as one that does not exist.
    response = client.get("/audit/", {"tenant": "globex"})
    assert response.context["page"].rows == []
    theirs = next(e for e in events if e.tenant_id == globex.pk)
    assert client.get(f"/audit/events/{theirs.sequence}/").status_code == 404
    untenanted = next(e for e in events if e.tenant_id is None)
    assert client.get(f"/audit/events/{untenanted.sequence}/").status_code == 404
    mine = next(e for e in events if e.tenant_id == acme.pk)
    assert client.get(f"/audit/events/{mine.sequence}/").status_code == 200


def test_detail_shows_hash_previous_hash_and_signature_status(auditor, events):
    event = events[3]
    response = signed_in(auditor).get(f"/audit/events/{event.sequence}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert event.hash in body and event.prev_hash in body and event.signature in body
    integrity = response.context["integrity"]
    assert integrity.hash_matches and integrity.signature == "valid"
    assert integrity.links_to_previous is True
    assert signed_in(auditor).get("/audit/events/999999/").status_code == 404


def test_detail_of_a_tampered_event_says_so(auditor, events):
    from tests.audit.conftest import tampering

    event = events[2]
    with tampering() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET outcome = 'failure' WHERE sequence = %s",
            [event.sequence],
        )
    integrity = signed_in(auditor).get(f"/audit/events/{event.sequence}/").context["integrity"]
    assert not integrity.hash_matches


# --- export ----------------------------------------------------------------------------------


def test_export_is_filtered_like_the_list_and_csv_cells_are_neutralised(auditor, acme, eager_jobs):
    audit_record(
        event_type="key.created", action="create", tenant_id=acme.pk, data={"name": "=HYPERLINK()"}
    )
    audit_record(event_type="+cmd|calc", action="-danger", tenant_id=acme.pk)
    audit_record(event_type="other", action="create")
    client = signed_in(auditor)
    page = client.get("/audit/export/", {"tenant": "acme"})
    assert page.status_code == 200
    assert page.context["filterset"].form["tenant"].value() == "acme"
    with eager_jobs():
        response = client.post("/audit/export/", {"tenant": "acme", "format": "csv"})
    assert response.status_code == 303
    job = Job.objects.get(kind="audit.export")
    assert job.status == "succeeded" and job.tenant_ids == [str(acme.pk)]
    download = client.get(f"/audit/jobs/{job.pk}/download/")
    assert download.status_code == 200
    text = b"".join(download.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2
    assert {r["event_type"] for r in rows} == {"key.created", "'+cmd|calc"}
    assert next(r for r in rows if r["event_type"] == "'+cmd|calc")["action"] == "'-danger"
    assert "'=HYPERLINK()" in next(r for r in rows if r["event_type"] == "key.created")["data"]
    exported = AuditEvent.objects.filter(event_type="audit.exported").get()
    assert exported.actor == "auditor" and exported.data["rows"] == 2


def test_export_jsonl_ends_with_the_signed_manifest(auditor, events, eager_jobs):
    import json

    client = signed_in(auditor)
    with eager_jobs():
        client.post("/audit/export/", {"format": "jsonl", "outcome": "denied"})
    job = Job.objects.get(kind="audit.export")
    lines = b"".join(client.get(f"/audit/jobs/{job.pk}/download/").streaming_content).splitlines()
    assert len(lines) == 4
    manifest = json.loads(lines[-1])["atp_export"]
    assert manifest["statement"]["rows"] == 3 and manifest["signature"]
    assert manifest["statement"]["filters"] == {"outcome": "denied"}


def test_export_form_errors_are_shown_not_500(auditor):
    response = signed_in(auditor).post("/audit/export/", {"format": "xml", "tenant": "nope"})
    assert response.status_code == 200
    assert Job.objects.count() == 0
    assert b"field-error" in response.content


# --- data subjects ---------------------------------------------------------------------------


def test_subject_export_runs_as_a_job_scoped_to_the_tenant(
    acme_auditor, globex_auditor, acme, eager_jobs
):
    audit_record(event_type="user.login", action="login", tenant_id=acme.pk)
    client = signed_in(acme_auditor)
    with eager_jobs():
        response = client.post("/audit/subjects/", {"tenant": "acme", "subject": "alice"})
    assert response.status_code == 303
    job = Job.objects.get(kind="audit.subject_export")
    assert job.status == "succeeded"
    assert client.get(f"/audit/jobs/{job.pk}/download/").status_code == 200
    other = signed_in(globex_auditor)
    assert other.get(f"/audit/jobs/{job.pk}/").status_code == 404
    assert other.get(f"/audit/jobs/{job.pk}/download/").status_code == 404
    # A tenant outside the caller's reads as an invalid choice, and nothing runs.
    refused = signed_in(globex_auditor).post(
        "/audit/subjects/", {"tenant": "acme", "subject": "alice"}
    )
    assert refused.status_code == 200 and Job.objects.count() == 1


def test_subject_export_bodies_need_the_body_permission(acme_auditor, acme, eager_jobs):
    client = signed_in(acme_auditor)
    response = client.post("/audit/subjects/", {"tenant": "acme", "subject": "a", "bodies": "on"})
    assert response.status_code == 200
    assert b"You may not read this tenant" in response.content
    assign_perm("tenants.view_tenant_bodies", acme_auditor, acme)
    with eager_jobs():
        client.post("/audit/subjects/", {"tenant": "acme", "subject": "a", "bodies": "on"})
    job = Job.objects.get()
    assert "audit.storedexchange:view_body" in job.permissions
    # Someone who may export the tenant's subjects but not read its bodies cannot download it.
    from tests.console.audit_cast import tenant_auditor

    peer = tenant_auditor("peer", acme, "tenants.export_tenant_subjects")
    assert signed_in(peer).get(f"/audit/jobs/{job.pk}/download/").status_code == 404


def test_erase_needs_the_dedicated_permission(auditor, acme):
    response = signed_in(auditor).post(
        "/audit/subjects/erase/", {"tenant": "acme", "subject": "alice", "confirm": "alice"}
    )
    assert response.status_code == 403


def test_erase_asks_for_confirmation_naming_what_goes_then_erases(acme, grant):
    from apps.audit.models import StoredExchange

    eraser = grant(UserFactory(username="eraser"), "audit.erase_data_subject")
    StoredExchange.objects.create(request_id="r1", tenant_id=acme.pk, end_user="alice")
    StoredExchange.objects.create(request_id="r2", tenant_id=acme.pk, end_user="bob")
    client = signed_in(eraser)
    first = client.post("/audit/subjects/erase/", {"tenant": "acme", "subject": "alice"})
    assert first.status_code == 200
    body = first.content.decode()
    assert (
        "Erase <code>alice</code> at Acme" in body and "<strong>1</strong> stored exchange" in body
    )
    assert StoredExchange.objects.filter(end_user="alice").exists()
    wrong = client.post(
        "/audit/subjects/erase/", {"tenant": "acme", "subject": "alice", "confirm": "bob"}
    )
    assert wrong.status_code == 200 and StoredExchange.objects.filter(end_user="alice").exists()
    done = client.post(
        "/audit/subjects/erase/", {"tenant": "acme", "subject": "alice", "confirm": "alice"}
    )
    assert done.status_code == 303
    assert not StoredExchange.objects.filter(end_user="alice").exists()
    assert StoredExchange.objects.filter(end_user="bob").exists()
    erased = AuditEvent.objects.get(event_type="privacy.subject_erased")
    assert erased.actor == "eraser" and erased.source == "console"


# --- retention -------------------------------------------------------------------------------


@pytest.fixture
def security_admin(db, grant):
    return grant(
        UserFactory(username="secadmin"),
        "audit.view_retentionpolicy",
        "audit.add_retentionpolicy",
        "audit.change_retentionpolicy",
        "audit.delete_retentionpolicy",
        "audit.view_auditevent",
        "audit.grant_auditor_auditevent",
    )


def test_retention_policy_create_edit_delete_through_the_service(security_admin, acme):
    client = signed_in(security_admin)
    created = client.post(
        "/audit/retention/add/", {"tenant": "acme", "classification": "requests", "days": "30"}
    )
    assert created.status_code == 303
    policy = RetentionPolicy.objects.get()
    assert policy.tenant_id == acme.pk and policy.days == 30
    assert AuditEvent.objects.filter(event_type="retention_policy.created").exists()
    listed = client.get("/audit/retention/")
    assert b"requests" in listed.content
    edited = client.post(
        f"/audit/retention/{policy.pk}/edit/",
        {"tenant": "acme", "classification": "requests", "days": "60"},
    )
    assert edited.status_code == 303
    policy.refresh_from_db()
    assert policy.days == 60
    assert client.get(f"/audit/retention/{policy.pk}/delete/").status_code == 200
    assert client.post(f"/audit/retention/{policy.pk}/delete/").status_code == 303
    assert not RetentionPolicy.objects.exists()


def test_retention_errors_are_next_to_the_field(security_admin, grant):
    client = signed_in(security_admin)
    no_permission = client.post(
        "/audit/retention/add/", {"tenant": "", "classification": "internal", "days": "4000"}
    )
    assert no_permission.status_code == 200
    assert "change_audit_retention" in str(no_permission.context["form"].errors["classification"])
    grant(security_admin, "audit.change_audit_retention")
    too_short = signed_in(security_admin).post(
        "/audit/retention/add/", {"tenant": "", "classification": "internal", "days": "5"}
    )
    errors = too_short.context["form"].errors
    assert "ATP_AUDIT_MIN_RETENTION_DAYS" in str(errors["days"])
    assert b'class="field-error"' in too_short.content
    htmx = signed_in(security_admin).post(
        "/audit/retention/add/",
        {"tenant": "", "classification": "internal", "days": "5"},
        HTTP_HX_REQUEST="true",
    )
    assert htmx.status_code == 422 and b"<html" not in htmx.content
    assert not RetentionPolicy.objects.exists()


def test_tenant_admin_manages_only_their_tenants_policies(acme, globex):
    admin = UserFactory(username="acme-admin")
    for permission in ("tenants.view_tenant", "tenants.manage_tenant_retention"):
        assign_perm(permission, admin, acme)
    theirs = RetentionPolicy.objects.create(tenant_id=globex.pk, classification="requests", days=9)
    client = signed_in(admin)
    assert client.get(f"/audit/retention/{theirs.pk}/edit/").status_code == 404
    refused = client.post(
        "/audit/retention/add/", {"tenant": "globex", "classification": "requests", "days": "5"}
    )
    assert refused.status_code == 200 and "tenant" in refused.context["form"].errors
    ok = client.post(
        "/audit/retention/add/", {"tenant": "acme", "classification": "bodies", "days": "5"}
    )
    assert ok.status_code == 303


# --- auditor grants --------------------------------------------------------------------------


def test_auditor_grants_are_listed_granted_and_revoked_with_audit_events(
    security_admin, acme, auditor
):
    target = UserFactory(username="newauditor")
    client = signed_in(security_admin)
    page = client.get("/audit/auditors/")
    assert page.status_code == 200
    assert any(g.user == auditor and g.tenant is None for g in page.context["grants"])
    assert "bodies" not in page.context["form"].fields
    granted = client.post("/audit/auditors/", {"user": "newauditor", "tenant": "acme"})
    assert granted.status_code == 303
    assert target.has_perm("tenants.audit_tenant", acme)
    assert AuditEvent.objects.filter(event_type="auditor.granted", actor="secadmin").count() == 1
    # One event for the grant, not one more per permission from the role receivers.
    assert not AuditEvent.objects.filter(
        event_type="permission.granted", resource_id=str(target.pk)
    ).exists()
    listed = client.get("/audit/auditors/").context["grants"]
    assert any(g.user == target and g.tenant == acme for g in listed)
    assert client.get(f"/audit/auditors/{target.pk}/acme/revoke/").status_code == 200
    assert client.post(f"/audit/auditors/{target.pk}/acme/revoke/").status_code == 303
    target = type(target).objects.get(pk=target.pk)
    assert not target.has_perm("tenants.audit_tenant", acme)
    assert AuditEvent.objects.filter(event_type="auditor.revoked").exists()


def test_only_superusers_grant_body_access(admin_user, acme):
    target = UserFactory(username="bodyreader")
    client = signed_in(admin_user)
    client.post("/audit/auditors/", {"user": "bodyreader", "tenant": "acme", "bodies": "on"})
    assert target.has_perm("tenants.view_tenant_bodies", acme)


def test_grant_form_errors_are_not_500(security_admin):
    response = signed_in(security_admin).post("/audit/auditors/", {"user": "ghost", "tenant": ""})
    assert response.status_code == 200
    assert "user" in response.context["form"].errors


def test_menu_leads_to_the_audit_log(auditor):
    response = signed_in(auditor).get("/audit/")
    assert b'href="/audit/"' in response.content
