from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from eventvision.errors import UserError
from eventvision.events.core import make_events
from eventvision.representations import (REPRESENTATIONS, Histogram, StackByTime, ToFrames, VoxelGrid,
                                         build_representation, functional as F, load_rectify_map)


def events(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 32, n), rng.integers(0, 24, n), np.sort(rng.integers(0, 60_000, n)),
                       rng.integers(0, 2, n))


def test_transforms_equal_functional():
    ev = events()
    np.testing.assert_array_equal(VoxelGrid(num_bins=5, width=32, height=24)(ev),
                                  F.voxel_grid(ev, num_bins=5, width=32, height=24))
    np.testing.assert_array_equal(ToFrames(num_frames=4, split_by="time", width=32, height=24)(ev),
                                  F.to_frames(ev, num_frames=4, width=32, height=24, split_by="time"))
    sbt = StackByTime(num_bins=5, width=32, height=24, sign=True, window_us=50_000)(ev)
    t0 = int(ev["t"][0])
    np.testing.assert_array_equal(sbt, F.stack_by_time(ev, num_bins=5, width=32, height=24, t_start=t0,
                                                       t_end=t0 + 50_000, sign=True))


def test_as_tensor_is_zero_copy():
    ev = events()
    out = Histogram(width=32, height=24, num_bins=2, as_tensor=True)(ev)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, 24, 32) and out.dtype == torch.float32
    assert float(out.sum()) == len(ev)


def test_from_config_and_registry(tmp_path):
    vg = build_representation({"name": "voxel_grid", "num_bins": 3, "width": 32, "height": 24, "normalize": True})
    assert isinstance(vg, VoxelGrid) and vg.num_bins == 3 and vg.normalize
    assert set(REPRESENTATIONS) == {"voxel_grid", "histogram", "time_surface", "stack_by_time", "stack_by_number",
                                    "to_frames"}
    with pytest.raises(UserError, match="unknown option"):
        VoxelGrid.from_config({"num_bins": 3, "width": 32, "height": 24, "bins": 2})
    with pytest.raises(UserError, match="unknown"):
        build_representation({"name": "nope"})


def test_rectify_map_option_from_dsec_file(tmp_path):
    xs, ys = np.meshgrid(np.arange(32, dtype=np.float32), np.arange(24, dtype=np.float32))
    rmap = np.stack([31 - xs, ys], axis=-1)  # horizontal mirror
    path = tmp_path / "rectify_map.h5"
    with h5py.File(path, "w") as fh:
        fh["rectify_map"] = rmap
    np.testing.assert_array_equal(load_rectify_map(path), rmap)
    ev = events()
    hist = Histogram.from_config({"width": 32, "height": 24, "rectify_map": str(path)})(ev)
    np.testing.assert_array_equal(hist, F.histogram(ev, width=32, height=24)[..., ::-1])
    with pytest.raises(UserError):
        load_rectify_map(tmp_path / "missing.h5")
