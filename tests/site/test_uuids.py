import time
import uuid

from atp_site.lib.uuids import uuid7, uuid7_batch


def test_a_batch_of_ids_is_version_7_unique_and_ascending():
    ids = uuid7_batch(10_000)  # more than the 4,096 one millisecond's counter holds
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)  # as text columns sort


def test_ids_start_with_the_time_and_later_batches_sort_after(monkeypatch):
    from atp_site.lib import uuids

    # No id made before (earlier tests travel in time, and large batches borrow
    # milliseconds ahead): the next id carries the clock's time.
    monkeypatch.setattr(uuids, "_last_ms", 0)
    monkeypatch.setattr(uuids, "_last_counter", -1)
    before = time.time_ns() // 1_000_000
    first = uuid7()
    time.sleep(0.002)
    second = uuid7_batch(3)
    after = time.time_ns() // 1_000_000
    assert before <= first.int >> 80 <= after
    assert all(first < later for later in second)
    assert uuid7_batch(0) == []


def test_ids_made_in_one_millisecond_by_separate_calls_stay_in_order(monkeypatch):
    frozen = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: frozen)
    ids = [uuid7() for _ in range(5_000)] + uuid7_batch(10)  # past one millisecond's 4,096
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    first_ms = ids[0].int >> 80
    assert first_ms >= frozen // 1_000_000
    assert (ids[-1].int >> 80) - first_ms in (1, 2)  # borrowed the next millisecond(s)
    # A clock stepping back never makes an id smaller than the last one.
    monkeypatch.setattr(time, "time_ns", lambda: frozen - 5 * 10**9)
    assert uuid7() > ids[-1]
