"""Shared helpers for the event I/O tests: random event streams and files in the published layouts."""

from __future__ import annotations

import h5py
import hdf5plugin
import numpy as np

from eventvision.events.core import compute_ms_to_idx, make_events

def random_events(n: int, *, t0: int = 0, duration_us: int = 2_000_000, width: int = 640, height: int = 480,
                  seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0, t0 + duration_us, n))
    return make_events(rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, 2, n))


def write_dsec_reference(path, events: np.ndarray, t_offset: int, *, t_dtype: str = "<u4") -> None:
    """A DSEC events.h5 exactly as published: u2/u2/u4/u1 columns, Blosc/ZSTD, ms_to_idx u8, t_offset i8."""
    blosc = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    with h5py.File(path, "w") as f:
        f.create_dataset("events/x", data=events["x"].astype("<u2"), chunks=True, **blosc)
        f.create_dataset("events/y", data=events["y"].astype("<u2"), chunks=True, **blosc)
        f.create_dataset("events/t", data=(events["t"] - t_offset).astype(t_dtype), chunks=True, **blosc)
        f.create_dataset("events/p", data=(events["p"] > 0).astype("u1"), chunks=True, **blosc)
        f.create_dataset("ms_to_idx", data=compute_ms_to_idx(events["t"] - t_offset).astype("<u8"))
        f.create_dataset("t_offset", data=np.int64(t_offset))
