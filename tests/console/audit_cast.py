"""The cast and helpers of the audit console tests (imported by their modules)."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from apps.audit.services import audit_record
from tests.conftest import TenantFactory, UserFactory, grant_permissions

AUDITOR_PERMISSIONS = (
    "audit.view_auditevent",
    "audit.export_auditevent",
    "audit.report_auditevent",
    "audit.verify_auditevent",
    "audit.export_data_subject",
    "audit.view_storedexchange",
)


@pytest.fixture
def eager_jobs(settings, tmp_path, django_capture_on_commit_callbacks):
    """Celery runs tasks in process and results go to a private data directory.

    Returns a context manager that runs the on-commit callbacks (the job's enqueue) of
    what happens inside it, as a real commit would.
    """
    from atp_site.celery import app

    settings.DATA_DIR = tmp_path
    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield lambda: django_capture_on_commit_callbacks(execute=True)
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def acme(db):
    return TenantFactory(slug="acme", name="Acme")


@pytest.fixture
def globex(db):
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def auditor(db):
    """Holds the auditor role's audit permissions on every tenant."""
    return grant_permissions(UserFactory(username="auditor"), *AUDITOR_PERMISSIONS)


def tenant_auditor(username, tenant, *extra):
    """Audits one tenant through django-guardian (a tenant admin's audit grants)."""
    user = UserFactory(username=username)
    for permission in ("tenants.view_tenant", "tenants.audit_tenant", *extra):
        assign_perm(permission, user, tenant)
    return user


@pytest.fixture
def acme_auditor(acme):
    return tenant_auditor("acme-auditor", acme, "tenants.export_tenant_subjects")


@pytest.fixture
def globex_auditor(globex):
    return tenant_auditor("globex-auditor", globex, "tenants.export_tenant_subjects")


@pytest.fixture
def events(acme, globex):
    """A few events of each tenant and one without a tenant."""
    made = []
    for i in range(3):
        made.append(
            audit_record(
                event_type="key.created", action="create", tenant_id=acme.pk, data={"i": i}
            )
        )
        made.append(
            audit_record(
                event_type="key.revoked",
                action="revoke",
                tenant_id=globex.pk,
                outcome="denied",
                data={"i": i},
            )
        )
    made.append(audit_record(event_type="provider.created", action="create"))
    return made
