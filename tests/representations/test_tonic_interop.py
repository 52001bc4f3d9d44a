"""Our representations as tonic transforms, and exact event conversion to tonic's dtype and back."""

from __future__ import annotations

import numpy as np
import pytest
import tonic

from eventvision.errors import InvalidValueError
from eventvision.events import open_recording
from eventvision.events.core import make_events
from eventvision.representations import (REPRESENTATIONS, Histogram, ToFrames, VoxelGrid, from_tonic,
                                         functional as F, to_tonic)

W, H = 48, 32


def events(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, W, n), rng.integers(0, H, n), np.sort(rng.integers(0, 80_000, n)),
                       rng.integers(0, 2, n))


@pytest.mark.parametrize("dtype", [tonic.io.events_struct, tonic.datasets.DVSGesture.dtype,
                                   tonic.datasets.NMNIST.dtype])
def test_every_representation_takes_tonic_events(dtype):
    ev = events()
    tev = to_tonic(ev, dtype)
    assert tev.dtype == dtype
    for name, cls in REPRESENTATIONS.items():
        t = cls.from_sensor_size((W, H, 2))
        assert t.sensor_size == (W, H, 2)
        np.testing.assert_array_equal(t(tev), t(ev), err_msg=name)
    np.testing.assert_array_equal(VoxelGrid.from_sensor_size((W, H, 2), num_bins=4)(tev),
                                  F.voxel_grid(ev, num_bins=4, width=W, height=H))


def test_compose_with_tonic_transforms():
    ev = events(2000, seed=1)
    tev = to_tonic(ev)
    denoise = tonic.transforms.Denoise(filter_time=5000)
    pipeline = tonic.transforms.Compose([denoise, ToFrames.from_sensor_size((W, H, 2), num_frames=4,
                                                                            split_by="time")])
    kept = denoise(tev.copy())
    assert 0 < len(kept) < len(tev)  # the tonic stage really acts
    np.testing.assert_array_equal(pipeline(tev.copy()), F.to_frames(from_tonic(kept), num_frames=4, width=W,
                                                                     height=H, split_by="time"))
    # tonic's own frame transform agrees with ours on the same events (first frames; tonic drops the remainder)
    theirs = tonic.transforms.ToFrame(sensor_size=(W, H, 2), n_time_bins=4)(kept)
    np.testing.assert_array_equal(pipeline(tev.copy())[:-1], theirs[:-1])


def test_as_a_tonic_dataset_transform(tmp_path):
    """tonic's DVSGesture class on its own on-disk layout (ibmGestureTest/userNN_light/<label>.npy with
    columns x, y, p, t_ms; >= 100 files and the archive present so it does not download)."""
    root = tmp_path / "DVSGesture"
    (root / "ibmGestureTest" / "user24_led").mkdir(parents=True)
    (root / "ibmGestureTest.tar.gz").write_bytes(b"")
    rng = np.random.default_rng(2)
    expected = {}
    for i in range(100):
        ev = make_events(rng.integers(0, 128, 50), rng.integers(0, 128, 50), np.sort(rng.integers(0, 500, 50)) * 1000,
                         rng.integers(0, 2, 50))
        folder = root / "ibmGestureTest" / f"user{24 + i // 11:02d}_led"
        folder.mkdir(exist_ok=True)
        label = i % 11
        np.save(folder / f"{label}.npy", np.stack([ev["x"], ev["y"], ev["p"] > 0, ev["t"] / 1000], 1).astype(float))
        expected[str(folder / f"{label}.npy")] = ev
    hist = Histogram.from_sensor_size(tonic.datasets.DVSGesture.sensor_size, as_tensor=True)
    ds = tonic.datasets.DVSGesture(str(tmp_path), train=False, transform=hist)
    assert len(ds) == 100
    for idx in (0, 57):
        out, label = ds[idx]
        ev = expected[ds.data[idx]]
        assert label == int(ds.data[idx].rsplit("/", 1)[1][:-4])
        np.testing.assert_array_equal(out.numpy(), F.histogram(ev, width=128, height=128))


@pytest.mark.parametrize("name", ["davis346.aedat4", "evt3_pedestrians.raw", "sample_ncars.dat"])
def test_recordings_round_trip_through_tonic_dtype(shared_data, name):
    ev = open_recording(shared_data / "events" / name).read_all()
    tev = to_tonic(ev)
    assert tev.dtype == tonic.io.events_struct
    np.testing.assert_array_equal(tev["p"], ev["p"] > 0)
    np.testing.assert_array_equal(from_tonic(tev), ev)
    wide = to_tonic(ev, tonic.datasets.NMNIST.dtype)  # int64 fields, p in {0, 1}
    assert set(np.unique(wide["p"]).tolist()) <= {0, 1}
    np.testing.assert_array_equal(from_tonic(wide), ev)


def test_conversion_errors():
    ev = events()
    with pytest.raises(InvalidValueError, match="does not fit"):
        to_tonic(make_events([40_000], [0], [0], [1]))
    bad = to_tonic(ev)
    bad["x"][3] = -1
    with pytest.raises(InvalidValueError, match="negative"):
        from_tonic(bad)
    with pytest.raises(InvalidValueError, match="fields"):
        from_tonic(np.zeros(3))
    with pytest.raises(InvalidValueError, match="sensor_size"):
        VoxelGrid.from_sensor_size(128)
