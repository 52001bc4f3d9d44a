"""What every stream predictor shares: the CPU thread policy and background stages.

``--threads N`` of the stream commands counts every CPU thread a run keeps busy: with N >= 2 one thread
reads, rectifies and encodes the next window (:func:`in_background`) and writes the outputs
(:class:`BackgroundWorker`) while the network runs on the other N - 1 (torch intra-op threads); with
N = 1 everything runs one after the other on one thread. 0 = automatic: the cores the load leaves idle.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Callable, Iterable, Iterator

from eventvision.errors import InvalidValueError


def free_cores() -> int:
    """Cores this process may use that the 1-minute load average leaves idle (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def configure_threads(threads: int = 0) -> int:
    """CPU threads for a stream run: ``threads`` (0 = :func:`free_cores`); sets torch's intra-op threads to
    that number minus the one background stage when it is 2 or more (see module doc). Returns the total.

    Why not torch's default (one intra-op thread per core): its OpenMP workers spin at every join, so when
    another job holds a core each layer waits for a descheduled worker; on 2 busy cores that made
    ``run stereo`` 5-12x slower than one thread. Threads that block on queues do not have that problem.
    """
    threads = int(threads)
    if threads < 0:
        raise InvalidValueError(f"thread count must be >= 0 (0 = automatic), got {threads}")
    n = threads or free_cores()
    import torch
    torch.set_num_threads(max(1, n - 1) if n >= 2 else 1)
    return n


_DONE = object()


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def in_background(iterable: Iterable, depth: int = 2) -> Iterator:
    """Iterate ``iterable`` on a worker thread, up to ``depth`` items ahead of the consumer.

    Exceptions of the worker are re-raised in the consumer; closing the generator stops the worker.
    Pays off when the items come from code that releases the GIL (h5py reads, numba ``nogil`` kernels,
    OpenCV) while the consumer runs torch: two cores busy without OpenMP workers spinning at joins.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def work():
        try:
            for item in iterable:
                if not _put(q, (True, item), stop):
                    return
        except BaseException as exc:  # handed to the consumer
            _put(q, (False, exc), stop)
            return
        _put(q, (True, _DONE), stop)

    worker = threading.Thread(target=work, name="eventvision-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=10.0)


class BackgroundWorker:
    """Run submitted calls in order on one worker thread (``depth`` waiting at most); :meth:`close` waits
    for them. The first exception of a call is re-raised by the next :meth:`submit` or by :meth:`close`."""

    def __init__(self, depth: int = 4):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="eventvision-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            call = self._q.get()
            if call is _DONE:
                return
            if self._error is None:
                try:
                    call[0](*call[1])
                except BaseException as exc:  # re-raised on the caller's thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable, *args) -> None:
        self._raise()
        _put(self._q, (fn, args), self._stop)

    def close(self) -> None:
        """Wait for every submitted call; re-raise the first failure."""
        _put(self._q, _DONE, self._stop)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Drop what is waiting and stop (after an error elsewhere)."""
        self._error = self._error or RuntimeError("aborted")
        _put(self._q, _DONE, self._stop)
        self._thread.join(timeout=10.0)
