"""The row inserter's quick path for times gives what Django's own conversion gives."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from apps.routing.models import RequestLog
from atp_site.lib.bulk import _adapter

pytestmark = pytest.mark.django_db

TIMES = [
    datetime(2026, 12, 5, 0, 15, 3, 638007, tzinfo=UTC),
    datetime(2026, 12, 5, 0, 15, 3, tzinfo=UTC),  # no microseconds: shorter text
    datetime(2026, 12, 5, 1, 15, 3, 5, tzinfo=timezone(timedelta(hours=1))),  # not UTC
    None,
]


@pytest.mark.parametrize("value", TIMES, ids=str)
def test_times_convert_as_django_converts_them(value):
    field = RequestLog._meta.get_field("created_at")
    assert _adapter(field, connection)(value) == field.get_db_prep_save(value, connection)


def test_a_time_stored_through_the_quick_path_reads_back_equal():
    from atp_site.lib.bulk import RowInserter

    when = datetime(2026, 12, 5, 0, 15, 3, 638007, tzinfo=UTC)
    RowInserter("routing.RequestLog").insert(
        [{"request_id": "req-time", "created_at": when, "endpoint": "chat", "http_status": 200}]
    )
    assert RequestLog.objects.get(request_id="req-time").created_at == when
    assert RequestLog.objects.filter(created_at__gte=when - timedelta(microseconds=1)).exists()
