"""One progress-bar helper for the whole suite (tqdm on stderr, silenced with EVENTVISION_NO_PROGRESS=1)."""

from __future__ import annotations

import os
import threading
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def _own_lock_in_forked_child() -> None:
    """Give a forked child its own tqdm lock. tqdm's default lock holds a multiprocessing semaphore that a fork
    shares with the parent, and every bar (a disabled one too) takes it when created: a child killed while
    holding it (SIGKILL, OOM) would leave the parent's next bar waiting forever."""
    tqdm.set_lock(threading.RLock())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_own_lock_in_forked_child)


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             disable: bool | None = None, **kwargs) -> tqdm:
    """Wrap ``iterable`` in a tqdm bar (unit e.g. 'win', 'batch', 'frame'); shows rate as unit/s."""
    if disable is None:
        disable = os.environ.get("EVENTVISION_NO_PROGRESS", "") not in ("", "0")
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kwargs)
