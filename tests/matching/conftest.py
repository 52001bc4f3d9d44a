"""Every test here runs single-threaded (see the ``single_thread`` fixture in tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread):
    yield
