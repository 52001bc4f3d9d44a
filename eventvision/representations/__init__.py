"""Event -> tensor representations (numba kernels behind thin frozen-dataclass transforms).

>>> vg = VoxelGrid(num_bins=5, width=640, height=480)
>>> grid = vg(events)                       # float32 numpy [5, 480, 640]
>>> grid_t = VoxelGrid(num_bins=5, width=640, height=480, as_tensor=True)(events)   # torch, zero-copy

Every transform takes an optional DSEC ``rectify_map`` [H, W, 2] (events are moved through it and
those falling outside the sensor dropped before the representation is computed). Polarity may be
{-1, +1}, {0, 1} or bool (``p > 0`` is ON). The kernels live in :mod:`.functional`.

Every transform is also a tonic transform: it takes tonic's structured events (fields by name, any
integer dtypes, bool polarity), composes in ``tonic.transforms.Compose`` and serves as a tonic dataset's
``transform``; :meth:`~_Transform.from_sensor_size` builds one from tonic's ``sensor_size`` (W, H, P).
:mod:`.interop` converts events both ways exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from eventvision.errors import ConfigError, DatasetNotFoundError, FileFormatError, InvalidValueError
from eventvision.representations import functional
from eventvision.representations.functional import rectify
from eventvision.representations.interop import from_tonic, to_tonic

__all__ = ["VoxelGrid", "Histogram", "TimeSurface", "StackByTime", "StackByNumber", "ToFrames", "rectify",
           "REPRESENTATIONS", "build_representation", "load_rectify_map", "functional", "from_tonic", "to_tonic"]


def load_rectify_map(path: str | Path) -> np.ndarray:
    """Read ``rectify_map`` float32 [H, W, 2] (``map[y, x] = (x', y')``) from a DSEC ``rectify_map.h5``.

    The one reader of that file (datasets, ``run stereo``, the demo and the transforms use it).
    """
    import h5py
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: rectify map not found; it is the DSEC file "
                                   f"events/<left|right>/rectify_map.h5 of the sequence (train_events.zip)")
    try:
        with h5py.File(path, "r") as fh:
            if "rectify_map" not in fh:
                raise FileFormatError(f"{path}: no 'rectify_map' dataset; expected a DSEC rectify_map.h5")
            data = np.asarray(fh["rectify_map"], dtype=np.float32)
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read as HDF5 ({exc}); re-download the DSEC events archive"
                              ) from None
    if data.ndim != 3 or data.shape[2] != 2:
        raise FileFormatError(f"{path}: rectify_map has shape {data.shape}, expected (H, W, 2)")
    return data


@dataclass(frozen=True, eq=False)
class _Transform:
    """Shared behaviour: optional rectification, numpy or (zero-copy) torch output, ``from_config``."""

    width: int
    height: int
    rectify_map: np.ndarray | None = dataclasses.field(default=None, repr=False, kw_only=True)
    as_tensor: bool = dataclasses.field(default=False, kw_only=True)

    name: ClassVar[str] = ""

    def __call__(self, events: np.ndarray):
        if self.rectify_map is not None:
            events = rectify(events, self.rectify_map)
        out = self.compute(events)
        if self.as_tensor:
            import torch
            return torch.from_numpy(out)
        return out

    def compute(self, events: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """tonic's ``sensor_size``: (width, height, 2 polarities)."""
        return (self.width, self.height, 2)

    @classmethod
    def from_sensor_size(cls, sensor_size, **options):
        """Build from tonic's ``sensor_size`` (W, H[, P]) plus this transform's other options."""
        try:
            width, height = int(sensor_size[0]), int(sensor_size[1])
        except (TypeError, ValueError, IndexError):
            raise InvalidValueError(f"sensor_size must be (width, height[, polarities]) like tonic's, got "
                                    f"{sensor_size!r}") from None
        if width < 1 or height < 1:
            raise InvalidValueError(f"sensor_size {tuple(sensor_size)}: width and height must be >= 1")
        return cls(width=width, height=height, **options)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **overrides):
        """Build from a config mapping whose keys are this transform's fields (``name`` is ignored).

        ``rectify_map`` may be a path to a DSEC ``rectify_map.h5``.
        """
        data = {k: v for k, v in dict(cfg).items() if k != "name"}
        data.update(overrides)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"representation '{cls.name}': unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(fields))}")
        if isinstance(data.get("rectify_map"), (str, Path)):
            data["rectify_map"] = load_rectify_map(data["rectify_map"])
        return cls(**data)


@dataclass(frozen=True, eq=False)
class VoxelGrid(_Transform):
    """E2VID voxel grid, float32 [B, H, W] (see :func:`functional.voxel_grid`)."""

    num_bins: int = 5
    normalize: bool = False
    name: ClassVar[str] = "voxel_grid"

    def compute(self, events):
        return functional.voxel_grid(events, num_bins=self.num_bins, width=self.width, height=self.height,
                                     normalize=self.normalize)


@dataclass(frozen=True, eq=False)
class Histogram(_Transform):
    """Per-polarity counts, float32 [B, 2, H, W] (channel 1 = ON)."""

    num_bins: int = 1
    name: ClassVar[str] = "histogram"

    def compute(self, events):
        return functional.histogram(events, width=self.width, height=self.height, num_bins=self.num_bins)


@dataclass(frozen=True, eq=False)
class TimeSurface(_Transform):
    """exp(-(t_ref - t_last)/tau) per polarity, float32 [2, H, W]; t_ref = last event."""

    tau_us: float = 50_000.0
    name: ClassVar[str] = "time_surface"

    def compute(self, events):
        return functional.time_surface(events, width=self.width, height=self.height, tau_us=self.tau_us)


@dataclass(frozen=True, eq=False)
class StackByTime(_Transform):
    """SBT, float32 [B, H, W]; ``window_us`` fixes the span from the first event (e.g. 50_000 for SpikeDHS)."""

    num_bins: int = 5
    sign: bool = False
    window_us: int | None = None
    name: ClassVar[str] = "stack_by_time"

    def compute(self, events):
        t_start = t_end = None
        if self.window_us is not None and len(events):
            t_start = int(events["t"][0])
            t_end = t_start + int(self.window_us)
        return functional.stack_by_time(events, num_bins=self.num_bins, width=self.width, height=self.height,
                                        t_start=t_start, t_end=t_end, sign=self.sign)


@dataclass(frozen=True, eq=False)
class StackByNumber(_Transform):
    """SBN, float32 [B, H, W] (bins of equal event count)."""

    num_bins: int = 5
    sign: bool = False
    name: ClassVar[str] = "stack_by_number"

    def compute(self, events):
        return functional.stack_by_number(events, num_bins=self.num_bins, width=self.width, height=self.height,
                                          sign=self.sign)


@dataclass(frozen=True, eq=False)
class ToFrames(_Transform):
    """T per-polarity count frames for multi-step SNNs, float32 [T, 2, H, W] (SpikingJelly split_by)."""

    num_frames: int = 16
    split_by: str = "number"
    name: ClassVar[str] = "to_frames"

    def compute(self, events):
        return functional.to_frames(events, num_frames=self.num_frames, width=self.width, height=self.height,
                                    split_by=self.split_by)


REPRESENTATIONS: dict[str, type[_Transform]] = {
    cls.name: cls for cls in (VoxelGrid, Histogram, TimeSurface, StackByTime, StackByNumber, ToFrames)
}


def build_representation(cfg: Mapping[str, Any], **overrides) -> _Transform:
    """Transform named by ``cfg['name']`` (one of :data:`REPRESENTATIONS`), other keys are its options."""
    name = dict(cfg).get("name")
    if name not in REPRESENTATIONS:
        raise ConfigError(f"representation '{name}' is unknown; choose one of {', '.join(REPRESENTATIONS)}")
    return REPRESENTATIONS[name].from_config(cfg, **overrides)
