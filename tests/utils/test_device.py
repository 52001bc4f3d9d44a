"""Device and CPU-thread policy helpers (``eventvision.utils.device``)."""

from __future__ import annotations

import pytest
import torch

from eventvision.errors import InvalidValueError
from eventvision.utils.device import free_cores, select_device, training_threads


def test_training_threads_policy():
    assert training_threads(3, free=1, current=2) == 3                    # asked for: as given
    assert training_threads(0, free=2, current=2) == 2                    # automatic: the idle cores
    assert training_threads(0, free=1, current=2) == 1                    # a busy 2-core machine: one thread
    assert training_threads(0, free=16, current=16, processes=4) == 4     # torchrun's processes share them
    assert training_threads(0, free=2, current=2, processes=4) == 1
    assert training_threads(0, free=8, current=1) == 1                    # never above the caller's own setting
    assert training_threads(0, free=2, current=2, omp_env="1") is None    # OMP_NUM_THREADS set: the user's choice
    assert training_threads(2, free=1, current=1, omp_env="1") == 2       # train.threads wins over it
    with pytest.raises(InvalidValueError, match="train.threads"):
        training_threads(-1, free=2, current=2)


def test_free_cores_and_cpu_device():
    assert 1 <= free_cores()
    assert select_device("cpu") == torch.device("cpu")

