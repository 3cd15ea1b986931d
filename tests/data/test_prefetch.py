"""Reading ahead in a thread: the reader's order, its errors where they belong, bounded memory, early stops."""
import threading
import time

import pytest

from knowwhen.data.prefetch import prefetched
from knowwhen.errors import DataError


def test_items_come_in_the_readers_order():
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))
    assert list(prefetched(iter(range(5)), depth=0)) == list(range(5))


def test_an_error_of_the_reader_is_raised_in_the_consumer_after_the_items_before_it():
    def reader():
        yield 1
        yield 2
        raise DataError("x.png: cannot decode")

    got = []
    with pytest.raises(DataError, match="cannot decode"):
        for item in prefetched(reader(), depth=2):
            got.append(item)
    assert got == [1, 2]


def test_the_reader_runs_at_most_depth_items_ahead_and_stops_with_the_consumer():
    produced = []

    def reader():
        for k in range(1000):
            produced.append(k)
            yield k

    items = prefetched(reader(), depth=2)
    assert next(items) == 0
    time.sleep(0.3)
    assert len(produced) <= 1 + 2 + 1  # the one consumed, a full queue, one waiting to be put
    items.close()
    time.sleep(0.3)
    assert len(produced) <= 5 and not any(t.name == "knowwhen-prefetch" for t in threading.enumerate())
