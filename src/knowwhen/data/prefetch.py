"""Reading ahead: the next batches of images are decoded in a background thread while the network runs.

Decoders (Pillow, tifffile, h5py, NumPy's crops) spend most of their time outside Python's lock, so a thread
overlaps them with the network's kernels. The queue holds at most `depth` batches, so memory stays bounded; the
order is the reader's; an error in the reader is raised in the consumer, where it would have been raised without
the thread; a consumer that stops early stops the reader.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """`items` in order, produced up to `depth` ahead in a thread; `depth` 0 reads in the caller's thread."""
    if depth <= 0:
        yield from items
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if not _put(slots, (item, None), stop):
                    return
            _put(slots, (_DONE, None), stop)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which raises it
            _put(slots, (_DONE, e), stop)

    worker = threading.Thread(target=produce, name="knowwhen-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _put(slots: queue.Queue, entry, stop: threading.Event) -> bool:
    """Puts `entry` unless the consumer stopped; False when it did."""
    while not stop.is_set():
        try:
            slots.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
