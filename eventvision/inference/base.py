"""What every stream predictor shares: the CPU thread policy and background stages.

Thread policy of the stream commands (``--threads``): N > 0 runs everything one after the other with N
torch intra-op threads. 0 (the default) is automatic: when the load leaves only one core idle it is
N = 1; otherwise reading/encoding the next window (:func:`in_background`) and writing the outputs
(:class:`BackgroundWorker`) move to worker threads, which hold about one core; with three or more idle
cores a :class:`ThreadTuner` picks the network's intra-op threads (the remaining cores or 1) by timing both
while the stream runs, again from time to time, because the load of a shared machine changes (a losing setting
is dropped after one slow window and tried ever more rarely). On two cores the network keeps one thread: trials
with two contend with the worker threads and only cost time. A network on a GPU keeps one CPU thread: the
tuner is for networks on the CPU (on a 16-core VM its trials of 13 threads made ``run stereo`` on an H200 0.56x
as fast as ``--threads 1``).
OpenCV's own thread pool follows the same rule (one thread in automatic mode, N otherwise): its workers
would be a fourth contender for two cores during SGBM and PNG encoding.

Why not simply torch's default (one intra-op thread per core): its OpenMP workers spin at every join,
so when another job holds a core each layer waits for a descheduled worker; on 2 busy cores that made
``run stereo`` 5-12x slower than one thread. Threads that block on queues do not have that problem.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

from eventvision.errors import InvalidValueError
from eventvision.utils.device import free_cores


def configure_threads(threads: int = 0) -> int:
    """Apply the thread policy (module doc) for ``threads`` (0 = automatic); returns the cores to use
    (``>= 2`` in automatic mode means: background stages plus a :class:`ThreadTuner`)."""
    threads = int(threads)
    if threads < 0:
        raise InvalidValueError(f"thread count must be >= 0 (0 = automatic), got {threads}")
    n = threads or free_cores()
    import cv2
    import torch
    torch.set_num_threads(n if threads else 1)
    cv2.setNumThreads(n if threads else 1)
    return n


def network_tuner(cores: int) -> "ThreadTuner | None":
    """The automatic mode's :class:`ThreadTuner` for ``cores`` idle cores (None below three: the worker
    threads hold one core, so the network keeps one thread)."""
    return ThreadTuner(cores - 1) if cores >= 3 else None


def stream_policy(threads: int, cores: int, network_device: str | None) -> tuple[int, bool, "ThreadTuner | None"]:
    """How a stream command runs (module doc): ``threads`` as given (0 = automatic), ``cores`` as
    :func:`configure_threads` returned, ``network_device`` the device type of the learned network (``"cpu"``,
    ``"cuda"``; None: no network, e.g. SGBM) -> ``(cores, background stages?, ThreadTuner or None)``.

    Automatic with a network on a GPU: the stages one after the other with ``min(2, cores)`` threads. On an H200
    (16-core VM) the worker threads made ``run stereo`` slower than ``--threads 1`` (7.9 vs 11.3 windows/s; likely
    the network's many short kernel launches waiting for the GIL); two threads in order ran fastest (14.0)."""
    if threads:
        return cores, False, None
    if network_device == "cuda":
        return configure_threads(min(2, cores)), False, None
    return cores, True, network_tuner(cores) if network_device == "cpu" else None


class ThreadTuner:
    """Choose torch's intra-op threads during a stream: ``high`` or 1, whichever runs the network faster.

    Call :meth:`before` and :meth:`after` around each window's network step. Window 0 (warm-up) runs with the
    current choice (1 at first). A trial then times ``trial`` windows with 1 thread and up to ``trial`` with
    ``high``; the faster median wins. A ``high`` window slower than ``give_up`` times the 1-thread median ends the
    trial at once: on a many-core machine whose cores are busy or shared (a VM's), every window with ``high``
    threads can cost many times a 1-thread one, so a losing setting is tried as briefly and as rarely as possible.
    The next trial comes ``period`` windows later; each trial that ``high`` loses doubles that wait, up to
    ``max_period`` windows (a win resets it), because the load of a shared machine changes.
    """

    def __init__(self, high: int, *, trial: int = 3, period: int = 40, max_period: int = 640,
                 give_up: float = 1.25):
        self.high, self.trial, self.base_period = int(high), int(trial), int(period)
        self.max_period, self.give_up = int(max_period), float(give_up)
        self.period, self.chosen = self.base_period, 1
        self._index, self._next_trial = 0, 1
        self._phase: int | None = None          # threads being timed in a trial (1, then high); None: no trial
        self._times: dict[int, list[float]] = {}

    def before(self) -> int:
        import torch
        if self._phase is None and self._index >= self._next_trial:
            self._phase, self._times = 1, {1: [], self.high: []}
        n = self._phase if self._phase is not None else self.chosen
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return n

    def after(self, seconds: float) -> None:
        phase = self._phase
        if phase is not None:
            import statistics
            self._times[phase].append(float(seconds))
            if phase == 1 and len(self._times[1]) >= self.trial:
                self._phase = self.high
            elif phase == self.high:
                one, high = (statistics.median(self._times[k]) for k in (1, self.high))
                if high > self.give_up * one or len(self._times[self.high]) >= self.trial:
                    self._end_trial(high_won=high < one)
        self._index += 1

    def _end_trial(self, *, high_won: bool) -> None:
        self.chosen = self.high if high_won else 1
        self.period = self.base_period if high_won else min(2 * self.period, self.max_period)
        self._phase, self._next_trial = None, self._index + 1 + self.period


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
