"""Synthetic stereo event data (training, tests, the built-in demo recording).

Samples come from :mod:`eventvision.simulate.stereo_scenes`: random textured planes (fronto-parallel
and slanted, occluding each other, five texture kinds) moving in front of a rectified rig that moves too,
rendered for both cameras and turned into events by the emulator (threshold spread, refractory period,
background noise, hot pixels drawn per scene); GT is the exact ``f·b/Z`` at the window end. Scene ``i``
of a split uses the seed ``seed + SPLIT_OFFSET[split] + FAMILY_OFFSET * family_index + i``, so
train/val/test scenes never coincide, each family has its own scenes, and every sample is reproducible
on its own. Generated samples are cached in memory (SBT as int8); ``prefill`` makes them all at once in several
processes (the same samples: each depends on its index alone).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import functools
import multiprocessing
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from eventvision.data.stereo.common import crop_sample, make_pair_encoder, make_sample, mask_disparity
from eventvision.errors import ConfigError, InvalidValueError
from eventvision.utils.progress import progress
from eventvision.simulate.stereo_scenes import (FAMILIES, FAMILIES_OF_ALL, SceneParams, StereoCamera, StereoScene,
                                                family_params)

SPLIT_OFFSET = {"train": 0, "val": 1_000_000, "test": 2_000_000, "demo": 3_000_000}
#: seed offset between scene families (family k of FAMILIES starts at k * FAMILY_OFFSET)
FAMILY_OFFSET = 100_000
#: ``data.synthetic.family`` value that cycles through every scene family, scene by scene
ALL_FAMILIES = "all"
#: emulation starts this long before a sample's window, so its first SBT bin sees a steady event rate
WARMUP_US = 10_000
#: config fields (a number or null) that, when set, replace every family's :class:`SceneParams` field of the same name
SCALAR_SCENE_OVERRIDES = ("ground_prob", "max_ego_image_speed_px_s", "leaves_prob")


@dataclass(frozen=True)
class SyntheticStereoConfig:
    """Rig and scene ranges of the synthetic data (px, m, µs); ``family``: a scene family of
    :data:`eventvision.simulate.stereo_scenes.FAMILIES` ("mixed" = everything randomized), whose
    disparity and patch-count ranges are replaced by the ones given here."""

    width: int = 96
    height: int = 64
    focal_px: float = 100.0
    baseline_m: float = 0.1
    patch_disparity: tuple[float, float] = (3.0, 64.0)
    background_disparity: tuple[float, float] = (0.5, 40.0)
    num_patches: tuple[int, int] = (1, 6)
    frame_dt_us: int = 2000
    family: str = "mixed"
    #: range (ms) of the moment a sample's sensors start, drawn per scene: (0, 0) observes every scene from its
    #: start, where its oscillating motions are fastest; a wider range also shows slowing and turning motion
    window_start_ms: tuple[float, float] = (0.0, 0.0)
    #: rig rotation of every scene, image speed range (px/s; see SceneParams.ego_rotation_px_s), replacing the
    #: family's own (None: the family's; only the "rotating" family rotates)
    ego_rotation_px_s: tuple[float, float] | None = None
    #: chance of a ground plane below the rig in every scene (see SceneParams.ground_prob), replacing the family's
    #: own (None: the family's; only the "ground" family has one)
    ground_prob: float | None = None
    #: cap on the image speed (px/s) the rig's translation gives the nearest surface (see
    #: SceneParams.max_ego_image_speed_px_s), replacing the family's (None: the family's, no cap)
    max_ego_image_speed_px_s: float | None = None
    #: chance that a surface gets a dead-leaves texture instead of its family's (see SceneParams.leaves_prob),
    #: replacing the family's (None: the family's, 0)
    leaves_prob: float | None = None

    def __post_init__(self):
        if self.family not in FAMILIES and self.family != ALL_FAMILIES:
            raise ConfigError(f"data.synthetic.family='{self.family}' is unknown; choose one of "
                              f"{', '.join(FAMILIES)} or {ALL_FAMILIES}")
        lo, hi = self.window_start_ms
        if not 0 <= lo <= hi:
            raise ConfigError(f"data.synthetic.window_start_ms must be [low, high] with 0 <= low <= high (ms), got "
                              f"{list(self.window_start_ms)}")
        if self.ego_rotation_px_s is not None and not 0 <= self.ego_rotation_px_s[0] <= self.ego_rotation_px_s[1]:
            raise ConfigError(f"data.synthetic.ego_rotation_px_s must be null or [low, high] with 0 <= low <= high "
                              f"(px/s), got {list(self.ego_rotation_px_s)}")
        for key in ("ground_prob", "leaves_prob"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"data.synthetic.{key} must be null or a probability in [0, 1], got {value}")
        if self.max_ego_image_speed_px_s is not None and not self.max_ego_image_speed_px_s > 0:
            raise ConfigError(f"data.synthetic.max_ego_image_speed_px_s must be null or a speed > 0 (px/s), got "
                              f"{self.max_ego_image_speed_px_s}")

    def for_index(self, index: int) -> "SyntheticStereoConfig":
        """The config of scene ``index``: itself, or with ``family: all`` the family ``index mod 11`` in the
        order of :data:`FAMILIES_OF_ALL` (every family in turn, each with its own seeds)."""
        if self.family != ALL_FAMILIES:
            return self
        return dataclasses.replace(self, family=FAMILIES_OF_ALL[int(index) % len(FAMILIES_OF_ALL)])

    @property
    def camera(self) -> StereoCamera:
        return StereoCamera(width=self.width, height=self.height, focal_px=self.focal_px, baseline_m=self.baseline_m)

    @property
    def params(self) -> SceneParams:
        params = family_params(self.family).replace(patch_disparity=tuple(self.patch_disparity),
                                                    background_disparity=tuple(self.background_disparity))
        if self.family not in ("clutter",):   # the clutter family keeps its own (larger) patch count
            params = params.replace(num_patches=tuple(self.num_patches))
        if self.ego_rotation_px_s is not None:
            params = params.replace(ego_rotation_px_s=tuple(self.ego_rotation_px_s))
        overrides = {key: float(getattr(self, key)) for key in SCALAR_SCENE_OVERRIDES if getattr(self, key) is not None}
        params = params.replace(**overrides)
        return params

    @property
    def seed_offset(self) -> int:
        return FAMILY_OFFSET * list(FAMILIES).index(self.family)

    @classmethod
    def from_config(cls, syn_cfg) -> "SyntheticStereoConfig":
        return cls(width=int(syn_cfg.width), height=int(syn_cfg.height), focal_px=float(syn_cfg.focal_px),
                   baseline_m=float(syn_cfg.baseline_m), patch_disparity=tuple(syn_cfg.patch_disparity),
                   background_disparity=tuple(syn_cfg.background_disparity),
                   num_patches=tuple(int(n) for n in syn_cfg.num_patches),
                   frame_dt_us=int(syn_cfg.frame_dt_us),
                   family=str(syn_cfg.get("family", "mixed")),
                   window_start_ms=tuple(float(v) for v in (syn_cfg.get("window_start_ms") or (0.0, 0.0))),
                   ego_rotation_px_s=_optional_range(syn_cfg.get("ego_rotation_px_s")),
                   **{key: _optional_float(syn_cfg, key) for key in SCALAR_SCENE_OVERRIDES})


def _optional_float(syn_cfg, key: str) -> float | None:
    """``data.synthetic.<key>``: a number as a float, or None (null or absent); anything else is a ConfigError."""
    value = syn_cfg.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"data.synthetic.{key} must be null or a number, got {value!r}")
    return float(value)


def _optional_range(value) -> tuple[float, float] | None:
    """A config's ``[low, high]`` (a pair: checked with the config, ``config.RANGE_PAIR_KEYS``) as floats, or None."""
    return None if value is None else (float(value[0]), float(value[1]))


class SyntheticStereoDataset(torch.utils.data.Dataset):
    """``num_samples`` synthetic windows of ``window_us`` each; item = sample dict (see ``common``).

    ``sizes``: sensor sizes ``(width, height)`` px that the scenes cycle through (empty: ``scene``'s own).
    With ``family: all`` scene ``i`` has family ``i mod 11`` and size ``(i // 11) mod len(sizes)``, so every
    family is seen at every size; a training crop (``crop``) must fit the smallest size."""

    def __init__(self, *, split: str = "train", num_samples: int = 64, seed: int = 0, window_us: int = 50_000,
                 num_bins: int = 5, max_disparity: float = 63.0, crop: tuple[int, int] | None = None,
                 scene: SyntheticStereoConfig = SyntheticStereoConfig(), encoding: Mapping[str, Any] | None = None,
                 sizes: tuple[tuple[int, int], ...] = ()):
        if split not in SPLIT_OFFSET:
            raise InvalidValueError(f"synthetic stereo: unknown split '{split}'; use one of "
                                    f"{', '.join(SPLIT_OFFSET)}")
        self.sizes = tuple((int(w), int(h)) for w, h in sizes)
        if any(w < 8 or h < 8 for w, h in self.sizes):
            raise ConfigError(f"data.synthetic.sizes: every size must be at least 8x8 px, got {list(self.sizes)}")
        if crop and any(h < crop[0] or w < crop[1] for w, h in self.sizes):
            raise ConfigError(f"data.synthetic.sizes {[list(s) for s in self.sizes]}: every size must hold the "
                              f"training crop {list(crop)} (height, width)")
        self.split, self.num_samples, self.seed = split, int(num_samples), int(seed)
        self.window_us, self.max_disparity, self.crop = int(window_us), float(max_disparity), crop
        self.scene = scene
        self._make_encoder = functools.partial(make_pair_encoder, encoding, num_bins=num_bins,
                                               max_disparity=max_disparity)
        self._encoders: dict[tuple[int, int], Any] = {}
        self.encoder = self._make_encoder(width=scene.width, height=scene.height)
        self._cache: dict[int, dict] = {}
        self._draws = 0   # training crops differ at every access (seeded by index and draw count)

    def __len__(self) -> int:
        return self.num_samples

    def encoder_for(self, width: int, height: int):
        """The window encoder of a ``width`` x ``height`` scene (one per size, made once). ``self.encoder`` is
        the one of the base size; a stand-in put there with ``any_size = True`` (e.g. the raw-events encoder
        of ``eval --method``) serves every size."""
        key = (int(width), int(height))
        if getattr(self.encoder, "any_size", False) or key == (self.scene.width, self.scene.height):
            return self.encoder
        if key not in self._encoders:
            self._encoders[key] = self._make_encoder(width=key[0], height=key[1])
        return self._encoders[key]

    def scene_config(self, index: int) -> SyntheticStereoConfig:
        """Scene ``index``'s family and size (see the class doc)."""
        scene = self.scene.for_index(index)
        if self.sizes:
            per_size = len(FAMILIES_OF_ALL) if self.scene.family == ALL_FAMILIES else 1
            width, height = self.sizes[(int(index) // per_size) % len(self.sizes)]
            scene = dataclasses.replace(scene, width=width, height=height)
        return scene

    def scene_seed(self, index: int) -> int:
        return self.seed + SPLIT_OFFSET[self.split] + self.scene.for_index(index).seed_offset + int(index)

    def window_events(self, index: int) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray]:
        """Scene ``index``'s raw material: ``(left events, right events, t0, t1, GT disparity [H, W])``,
        the window ``[t0, t1)`` (µs) and its GT at ``t1`` (px, NaN outside ``(0, max_disparity)``)."""
        scene = self.scene_of(index)
        begin, t0, t1 = self.window_times(index)
        left, right = scene.events(t1, frame_dt_us=self.scene.frame_dt_us, t_begin_us=begin)
        return left, right, t0, t1, mask_disparity(scene.disparity(t1), self.max_disparity)

    def scene_of(self, index: int) -> StereoScene:
        """Scene ``index`` itself (surfaces, rig motion, event statistics), e.g. for its GT at other times."""
        config = self.scene_config(index)
        return StereoScene.random(config.camera, self.scene_seed(index), config.params)

    def window_times(self, index: int) -> tuple[int, int, int]:
        """``(sensor start, t0, t1)`` (µs) of scene ``index``'s window ``[t0, t1)``."""
        begin = self.window_start_us(self.scene_seed(index))
        return begin, begin + WARMUP_US, begin + WARMUP_US + self.window_us

    def window_start_us(self, seed: int) -> int:
        """When the sensors of the scene with ``seed`` start (µs; the window follows ``WARMUP_US`` later):
        drawn from ``window_start_ms``, whole milliseconds, from the seed alone (0 when the range is (0, 0))."""
        lo, hi = self.scene.window_start_ms
        if hi <= 0:
            return 0
        return 1000 * int(np.random.default_rng((int(seed), 11)).integers(int(lo), int(hi) + 1))

    def _generate(self, index: int) -> dict:
        left, right, t0, t1, disparity = self.window_events(index)
        encoder = self.encoder_for(disparity.shape[1], disparity.shape[0])
        inputs = {k: _compact(v) for k, v in encoder(left, right, t0, t1).items()}
        return make_sample(inputs, disparity, t_end_us=t1, sequence=f"synthetic-{self.split}", index=index)

    def prefill(self, workers: int = 1) -> "SyntheticStereoDataset":
        """Generate every sample not cached yet, in ``workers`` processes (spawned, one thread each; 1: here), with a
        progress bar; returns ``self``. The cache then holds what lazy generation would have made. Never more processes
        than the machine has cores (a checkpoint carries the setting of the machine it was trained on)."""
        workers = min(int(workers), os.cpu_count() or 1)
        missing = [i for i in range(self.num_samples) if i not in self._cache]
        if not missing:
            return self
        bar = progress(total=len(missing), desc=f"synthetic {self.split} scenes", unit="scene")
        with bar:
            if workers <= 1 or len(missing) == 1:
                for index in missing:
                    self._cache[index] = self._generate(index)
                    bar.update()
                return self
            blank = copy.copy(self)          # what the processes need: the settings, not the cache
            blank._cache, blank._encoders = {}, {}
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=min(int(workers), len(missing)), mp_context=multiprocessing.get_context("spawn"),
                initializer=_prefill_worker_init, initargs=(blank,))
            try:
                with _interrupts_blocked_for_new_processes():        # pool.map starts the processes
                    samples = pool.map(_prefill_generate, missing, chunksize=2)
                for index, sample in zip(missing, samples):
                    self._cache[index] = sample
                    bar.update()
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return self

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        if index not in self._cache:
            self._cache[index] = self._generate(index)
        sample = dict(self._cache[index])
        for key, value in self._cache[index].items():
            if isinstance(value, np.ndarray) and key != "disparity":
                sample[key] = _expand(value)
        rng = None
        if self.split == "train" and self.crop:
            self._draws += 1
            rng = np.random.default_rng((self.seed, index, self._draws))
        return crop_sample(sample, self.crop, rng)


_prefill_dataset: SyntheticStereoDataset | None = None


@contextlib.contextmanager
def _interrupts_blocked_for_new_processes() -> Iterator[None]:
    """Processes started inside are born with SIGINT blocked (the mask survives fork and exec, as for CPython's
    resource tracker), so a Ctrl-C to the process group while they import cannot print their tracebacks; their
    initializer ignores it, then unblocks. This thread gets a Ctrl-C of that moment once the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _prefill_worker_init(dataset: SyntheticStereoDataset) -> None:
    """A prefill process: one thread per library (the processes share the cores), Ctrl-C left to the parent."""
    global _prefill_dataset
    import cv2
    import numba

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    _prefill_dataset = dataset


def _prefill_generate(index: int) -> dict:
    return _prefill_dataset._generate(index)


def _compact(x: np.ndarray) -> np.ndarray:
    """Cache form of an encoded window: int8 when every value is a small integer (sign-SBT's -1/0/+1,
    4x smaller), otherwise unchanged (other representations, raw event arrays)."""
    if x.dtype.fields is None and x.dtype.kind == "f":
        small = x.astype(np.int8)
        if np.array_equal(small, x):
            return small
    return x


def _expand(x: np.ndarray) -> np.ndarray:
    """Model form of a cached window: float32 tensors' data; structured event arrays and uint8 images (the
    SGBM-refine input, scaled by the model) as they are."""
    return x if x.dtype.fields is not None or x.dtype == np.uint8 else x.astype(np.float32)


@dataclass
class SyntheticStereoRecording:
    """A seeded synthetic stereo *recording*, streamed window by window.

    With ``clip_us`` = 0 it is one long scene whose surfaces oscillate. With ``clip_us`` > 0 it is a
    sequence of clips of that length, each a fresh scene (seed ``seed + k``) observed from
    ``WARMUP_US`` after its start, like the training samples (scene motion at full speed).

    Offers the stereo-recording interface that ``eventvision run stereo`` uses: ``is_stereo``, ``width``,
    ``height``, ``t_start``/``t_end`` (µs, t_end inclusive), ``baseline_m``, ``focal_px`` and
    ``iter_windows(window_us)`` yielding ``(t0, t1, left_events, right_events)``; plus ``disparity_at(t_us)``
    for the exact GT.
    """

    duration_us: int = 1_000_000
    seed: int = 0
    scene: SyntheticStereoConfig = field(default_factory=SyntheticStereoConfig)
    clip_us: int = 0
    is_stereo: bool = True

    width = property(lambda self: self.scene.width)
    height = property(lambda self: self.scene.height)
    t_start = property(lambda self: 0)
    t_end = property(lambda self: int(self.duration_us) - 1)   # inclusive, like EventStream.t_end
    baseline_m = property(lambda self: self.scene.baseline_m)
    focal_px = property(lambda self: self.scene.focal_px)

    def _scene(self, k: int) -> StereoScene:
        return StereoScene.random(self.scene.camera, self.seed + SPLIT_OFFSET["demo"] + k,
                                  self.scene.for_index(k).params)

    def iter_windows(self, window_us: int, t_start: int | None = None, t_end: int | None = None
                     ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        t_end = self.duration_us if t_end is None else min(int(t_end), self.duration_us)
        t_start = 0 if t_start is None else int(t_start)
        window_us = int(window_us)
        if not self.clip_us:
            for t0, t1, left, right in self._scene(0).iter_events(t_end, frame_dt_us=self.scene.frame_dt_us,
                                                                   chunk_us=window_us):
                if t0 >= t_start:
                    yield t0, t1, left, right
            return
        k = 0
        while k * self.clip_us < t_end:
            base = k * self.clip_us
            clip_end = min(self.clip_us, t_end - base)
            if base + clip_end > t_start:
                left, right = self._scene(k).events(WARMUP_US + clip_end, frame_dt_us=self.scene.frame_dt_us)
                for ev in (left, right):
                    ev["t"] += base - WARMUP_US
                for t0 in range(base, base + clip_end, window_us):
                    t1 = min(t0 + window_us, base + clip_end)
                    if t0 >= t_start:
                        yield t0, t1, _slice(left, t0, t1), _slice(right, t0, t1)
            k += 1

    def fresh_sensor_window(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        """The events of ``[t0, t1)`` (µs) of a one-scene recording (``clip_us`` = 0) as a fresh sensor started
        ``WARMUP_US`` before ``t0`` sees them, like a training sample's window, instead of the stream's own
        (whose sensors carry every earlier moment's state): -> ``(left, right)`` events."""
        if self.clip_us:
            raise InvalidValueError("fresh_sensor_window: only a one-scene recording (clip_us = 0) has one scene "
                                    "to restart")
        left, right = self._scene(0).events(int(t1), frame_dt_us=self.scene.frame_dt_us,
                                            t_begin_us=max(int(t0) - WARMUP_US, 0))
        return _slice(left, int(t0), int(t1)), _slice(right, int(t0), int(t1))

    def disparity_at(self, t_us: int) -> np.ndarray:
        t_us = int(t_us)
        if not self.clip_us:
            return self._scene(0).disparity(t_us)
        k = max(t_us - 1, 0) // self.clip_us      # a window ending exactly at a clip boundary belongs to that clip
        return self._scene(k).disparity(t_us - k * self.clip_us + WARMUP_US)


def _slice(events: np.ndarray, t0: int, t1: int) -> np.ndarray:
    i0, i1 = np.searchsorted(events["t"], [t0, t1], side="left")
    return events[i0:i1]
