import time
import uuid

from atp_site.lib.uuids import uuid7, uuid7_batch


def test_a_batch_of_ids_is_version_7_unique_and_ascending():
    ids = uuid7_batch(10_000)  # more than the 4,096 one millisecond's counter holds
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)  # as text columns sort


def test_ids_start_with_the_time_and_later_batches_sort_after():
    before = time.time_ns() // 1_000_000
    first = uuid7()
    time.sleep(0.002)
    second = uuid7_batch(3)
    after = time.time_ns() // 1_000_000
    assert before <= first.int >> 80 <= after
    assert all(first < later for later in second)
    assert uuid7_batch(0) == []
