"""The upgrade locks nobody out: staff users before the data migration hold, after it, the
management permissions staff had in effect (all but the dedicated ones)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from apps.tenants.permissions import DEDICATED, MANAGER_PERMISSIONS

BEFORE = [("tenants", "0005_management_permissions")]
AFTER = [("tenants", "0006_staff_management_permissions")]
# Permissions this release adds; on a real upgrade they do not exist yet when it runs.
NEW = ["revoke_apikey", "rotate_apikey", "revoke_admintoken", "verify_auditevent"]


@pytest.fixture
def before_upgrade(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield MigrationExecutor(connection).loader.project_state(BEFORE).apps
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def _upgrade() -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)


@pytest.mark.django_db(transaction=True)
def test_staff_users_keep_what_they_could_do_and_nothing_dedicated(before_upgrade):
    old_user = before_upgrade.get_model("auth", "User")
    old_user.objects.create(username="old-staff", is_staff=True)
    old_user.objects.create(username="old-admin", is_staff=True, is_superuser=True)
    old_user.objects.create(username="customer")
    Permission.objects.filter(codename__in=NEW).delete()

    _upgrade()

    users = get_user_model().objects
    staff = users.get(username="old-staff")
    assert staff.get_all_permissions() == MANAGER_PERMISSIONS
    assert not staff.get_all_permissions() & DEDICATED
    assert not staff.has_perm("audit.view_exchange_body")
    assert [g.name for g in staff.groups.all()] == ["atp-managers"]
    assert not users.get(username="customer").get_all_permissions()
    assert not users.get(username="old-admin").groups.exists()  # needs nothing

    client = APIClient()
    client.force_login(staff)
    assert client.get("/api/v1/tenants/").status_code == 200
    assert client.get("/api/v1/audit/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_fresh_install_makes_no_group(before_upgrade):
    _upgrade()
    from django.contrib.auth.models import Group

    assert not Group.objects.filter(name="atp-managers").exists()
