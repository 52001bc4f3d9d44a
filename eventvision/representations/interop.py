"""tonic interop: our events <-> tonic's structured events, and our transforms inside tonic pipelines.

tonic keeps events as a numpy structured array whose fields are named ``x``, ``y``, ``t``, ``p`` (order and
dtypes vary per dataset: ``tonic.io.events_struct`` is x/y int16, t int64 µs, p bool; DVSGesture
orders them x, y, p, t; N-MNIST uses int64 for all). Every transform of :mod:`eventvision.representations`
reads fields by name and accepts any integer x/y/t and bool, {0, 1} or {-1, +1} polarity, so it is a
tonic transform as it stands: ``tonic.transforms.Compose([tonic.transforms.Denoise(10_000),
VoxelGrid.from_sensor_size(dataset.sensor_size, num_bins=5)])`` works, and so does passing it as a
tonic dataset's ``transform``. The conversions below are exact both ways.
"""

from __future__ import annotations

import numpy as np

from eventvision.errors import InvalidValueError
from eventvision.events._kernels import pack_events

#: ``tonic.io.events_struct`` (tonic's default event dtype): x, y int16; t int64 µs; p bool (True = ON)
TONIC_EVENTS_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def to_tonic(events: np.ndarray, dtype: np.dtype = TONIC_EVENTS_DTYPE) -> np.ndarray:
    """Our EVENT_DTYPE events as tonic events of ``dtype`` (fields x, y, t, p by name; a bool ``p`` is
    True for ON, an integer ``p`` is 1 for ON and 0 for OFF, tonic's convention)."""
    dtype = np.dtype(dtype)
    if not {"x", "y", "t", "p"} <= set(dtype.names or ()):
        raise InvalidValueError(f"tonic dtype {dtype} lacks some of the fields x, y, t, p")
    for k in ("x", "y"):
        if len(events) and int(events[k].max()) > np.iinfo(dtype[k]).max:
            raise InvalidValueError(f"events: {k} up to {int(events[k].max())} does not fit tonic's "
                                    f"{dtype[k]} field; pass a wider dtype")
    out = np.empty(len(events), dtype)
    for k in ("x", "y", "t"):
        out[k] = events[k]
    out["p"] = events["p"] > 0
    return out


def from_tonic(events: np.ndarray) -> np.ndarray:
    """tonic events (any dtype with fields x, y, t in µs, p) as our EVENT_DTYPE (p > 0 is ON)."""
    names = set(getattr(getattr(events, "dtype", None), "names", None) or ())
    if not {"x", "y", "t", "p"} <= names:
        raise InvalidValueError(f"tonic events: expected fields x, y, t, p, got "
                                f"{sorted(names) or type(events)}")
    if len(events):
        if min(int(events["x"].min()), int(events["y"].min())) < 0:
            raise InvalidValueError("tonic events: negative x or y (outside the sensor); drop them first, "
                                    "e.g. with tonic.transforms.CenterCrop")
        if np.issubdtype(events["t"].dtype, np.floating) and not np.all(np.isfinite(events["t"])):
            raise InvalidValueError("tonic events: t has non-finite values")
    t = events["t"]
    if np.issubdtype(t.dtype, np.floating):
        t = np.round(t).astype(np.int64)
    p = events["p"].view(np.uint8) if events["p"].dtype == np.bool_ else events["p"]
    return pack_events(events["x"], events["y"], t.astype(np.int64, copy=False), p)


__all__ = ["TONIC_EVENTS_DTYPE", "from_tonic", "to_tonic"]
