"""What every stream predictor shares: the CPU thread policy."""

from __future__ import annotations

import os

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
    """Set torch's intra-op threads (and numba's) to ``threads``; 0 = :func:`free_cores`. Returns the number.

    Why not torch's default (one thread per core): its OpenMP workers spin at every join, so when another
    job holds a core the step waits for a descheduled worker; on 2 busy cores that made ``run stereo`` 5-12x
    slower than one thread. Counting only the cores the load leaves idle keeps the default at one thread
    on a busy machine and uses the spare core on an idle one.
    """
    threads = int(threads)
    if threads < 0:
        raise InvalidValueError(f"thread count must be >= 0 (0 = automatic), got {threads}")
    n = threads or free_cores()
    import torch

    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass
    return n
