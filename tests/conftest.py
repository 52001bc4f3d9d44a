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
