"""Helpers for the engine tests: small toy-task configs that train in well under a second."""

from __future__ import annotations

import pytest

from eventvision.config import load_config

#: a toy problem hard enough that learning is visible (chance = 25 %), run on the CPU without TensorBoard
TOY = ["device=cpu", "train.tensorboard=false", "data.separation=1.0", "data.train_size=256", "data.val_size=256",
       "train.batch_size=32", "train.optimizer.lr=1e-2"]


@pytest.fixture(scope="session")
def toy_overrides() -> list[str]:
    return list(TOY)


@pytest.fixture
def toy_config(tmp_path):
    def make(*overrides: str, output_dir=None):
        return load_config("toy/default", TOY + [f"output_dir={output_dir or tmp_path / 'run'}", *overrides])
    return make
