"""Shared test fixtures. Real samples are read from ../shared/data (never copied into the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EVENTVISION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

os.environ.setdefault("EVENTVISION_NO_PROGRESS", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; tests that need it are skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set EVENTVISION_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def single_thread():
    """Run a test with one torch and one numba thread (restored afterwards).

    Tiny networks are fastest single-threaded, and on a busy 2-core machine oversubscribed OpenMP
    threads (torch's, and the spinning workers numba's parallel kernels leave) slow torch 10-30x.
    Use with ``pytestmark = pytest.mark.usefixtures("single_thread")``.
    """
    import numba
    import torch

    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    numba.set_num_threads(numba_threads)
