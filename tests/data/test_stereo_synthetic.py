"""Synthetic stereo dataset and recording: layout, determinism, disjoint splits, GT consistent with events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from eventvision.data.stereo.synthetic import SyntheticStereoConfig, SyntheticStereoDataset, SyntheticStereoRecording

SCENE = SyntheticStereoConfig(width=40, height=24, frame_dt_us=5000, patch_disparity=(3.0, 9.0),
                               background_disparity=(1.0, 4.0))


def test_sample_layout_and_masking():
    ds = SyntheticStereoDataset(split="val", num_samples=2, max_disparity=10.0, scene=SCENE)
    s = ds[0]
    assert s["left"].shape == (5, 1, 24, 40) and s["left"].dtype == np.float32
    assert set(np.unique(s["left"]).tolist()) <= {-1.0, 0.0, 1.0} and (s["left"] != 0).mean() > 0.05
    d = s["disparity"]
    assert d.dtype == np.float32 and np.nanmax(d) < 10.0 and np.nanmin(d) > 0
    with pytest.raises(IndexError):
        ds[2]


def test_deterministic_and_disjoint_splits():
    a = SyntheticStereoDataset(split="train", num_samples=2, seed=3, scene=SCENE)[1]
    b = SyntheticStereoDataset(split="train", num_samples=2, seed=3, scene=SCENE)[1]
    c = SyntheticStereoDataset(split="val", num_samples=2, seed=3, scene=SCENE)[1]
    assert np.array_equal(a["left"], b["left"]) and np.array_equal(a["disparity"], b["disparity"], equal_nan=True)
    assert not np.array_equal(a["disparity"], c["disparity"], equal_nan=True)


def test_random_training_crop():
    ds = SyntheticStereoDataset(split="train", num_samples=1, crop=(16, 32), scene=SCENE)
    s = ds[0]
    assert s["left"].shape == (5, 1, 16, 32) and s["disparity"].shape == (16, 32)


def test_recording_streams_windows_with_gt():
    rec = SyntheticStereoRecording(duration_us=120_000, seed=1, scene=SCENE)
    windows = list(rec.iter_windows(50_000))
    assert [(t0, t1) for t0, t1, _, _ in windows] == [(0, 50_000), (50_000, 100_000), (100_000, 120_000)]
    for t0, t1, left, right in windows:
        for ev in (left, right):
            assert len(ev) and ev["t"].min() >= t0 and ev["t"].max() < t1
    gt = rec.disparity_at(100_000)
    assert gt.shape == (24, 40) and np.isfinite(gt).mean() > 0.5


def test_fresh_sensor_window_restarts_the_sensors_shortly_before_the_window():
    from eventvision.data.stereo.synthetic import WARMUP_US
    from eventvision.errors import InvalidValueError

    rec = SyntheticStereoRecording(duration_us=200_000, seed=1, scene=SCENE)
    streamed = {t0: (left, right) for t0, _, left, right in rec.iter_windows(50_000)}
    # the first window: its fresh sensor starts where the stream's did (no time before 0), so the same events
    assert all(np.array_equal(a, b) for a, b in zip(rec.fresh_sensor_window(0, 50_000), streamed[0]))
    early = rec.fresh_sensor_window(WARMUP_US, 50_000 + WARMUP_US)   # sensors started at 0, cut at 10 ms
    first = streamed[0][0]
    assert np.array_equal(early[0][early[0]["t"] < 50_000], first[first["t"] >= WARMUP_US])
    # later: the window's own time span, the stream's scene, but not the stream's events (no history)
    left, right = rec.fresh_sensor_window(150_000, 200_000)
    for fresh, stream in ((left, streamed[150_000][0]), (right, streamed[150_000][1])):
        assert fresh["t"].min() >= 150_000 and fresh["t"].max() < 200_000
        assert 0.3 < len(fresh) / len(stream) < 3 and not np.array_equal(fresh, stream)
    with pytest.raises(InvalidValueError, match="one-scene"):
        SyntheticStereoRecording(duration_us=200_000, seed=2, scene=SCENE, clip_us=100_000).fresh_sensor_window(0, 1)


def test_clip_recording_restarts_scenes_and_gt_follows():
    rec = SyntheticStereoRecording(duration_us=200_000, seed=2, scene=SCENE, clip_us=100_000)
    windows = list(rec.iter_windows(50_000))
    assert [(t0, t1) for t0, t1, _, _ in windows] == [(0, 50_000), (50_000, 100_000), (100_000, 150_000),
                                                     (150_000, 200_000)]
    for t0, t1, left, right in windows:
        assert len(left) > 5 and left["t"].min() >= t0 and left["t"].max() < t1
    # the window ending at a clip boundary belongs to the first clip; the next one to a different scene
    assert np.array_equal(rec.disparity_at(100_000), rec._scene(0).disparity(100_000 + 10_000), equal_nan=True)
    assert not np.array_equal(rec.disparity_at(150_000), rec._scene(0).disparity(160_000), equal_nan=True)
    assert np.array_equal(rec.disparity_at(150_000), rec._scene(1).disparity(60_000), equal_nan=True)


def test_families_have_their_own_held_out_scenes():
    mixed = SyntheticStereoDataset(split="test", num_samples=1, scene=SCENE)
    dots = SyntheticStereoDataset(split="test", num_samples=1, scene=SyntheticStereoConfig(
        **{**SCENE.__dict__, "family": "dots"}))
    assert dots.scene_seed(0) != mixed.scene_seed(0)
    assert dots.scene.params.textures == (("dots", 1.0),)
    with pytest.raises(Exception, match="family"):
        SyntheticStereoConfig(family="nope")


def test_family_all_cycles_every_family_with_its_own_seeds():
    from eventvision.simulate.stereo_scenes import FAMILIES, FAMILIES_OF_ALL

    n = len(FAMILIES_OF_ALL)
    every = SyntheticStereoConfig(**{**SCENE.__dict__, "family": "all"})
    ds = SyntheticStereoDataset(split="train", num_samples=2 * n, scene=every)
    names = [every.for_index(i).family for i in range(2 * n)]
    assert names[:n] == list(FAMILIES_OF_ALL) and names[n:] == list(FAMILIES_OF_ALL)
    # the families the bundled checkpoints trained on, in their order; later ones are held out only
    assert list(FAMILIES)[:n] == list(FAMILIES_OF_ALL) and n == 11 and "rotating" not in FAMILIES_OF_ALL
    dots = list(FAMILIES).index("dots")
    alone = SyntheticStereoDataset(split="train", num_samples=dots + 1,
                                   scene=SyntheticStereoConfig(**{**SCENE.__dict__, "family": "dots"}))
    assert ds.scene_seed(dots) == alone.scene_seed(dots)          # scene k of "all" = scene k of its family
    assert len({ds.scene_seed(i) for i in range(len(ds))}) == len(ds)


def test_sizes_cycle_so_every_family_is_seen_at_every_size():
    import dataclasses

    from eventvision.errors import ConfigError
    from eventvision.simulate.stereo_scenes import FAMILIES_OF_ALL
    from eventvision.tasks.stereo import synthetic_sizes

    n = len(FAMILIES_OF_ALL)
    scene = dataclasses.replace(SCENE, family="all")
    ds = SyntheticStereoDataset(split="train", num_samples=2 * n + 1, scene=scene, sizes=((40, 24), (56, 32)),
                                crop=(16, 32))
    seen = {(ds.scene_config(i).family, ds.scene_config(i).width) for i in range(2 * n)}
    assert seen == {(f, w) for f in FAMILIES_OF_ALL for w in (40, 56)}
    assert (ds.scene_config(n).width, ds.scene_config(n).height) == (56, 32)
    assert ds.window_events(n)[4].shape == (32, 56) and ds.window_events(0)[4].shape == (24, 40)
    assert ds[n]["left"].shape[-2:] == (16, 32)            # every size cut to the one training crop
    assert ds.encoder_for(40, 24) is ds.encoder and ds.encoder_for(56, 32) is not ds.encoder

    class RawEvents:                                       # eval --method's stand-in serves every size
        any_size = True

    ds.encoder = RawEvents()
    assert ds.encoder_for(56, 32) is ds.encoder
    # one family: the size changes scene by scene, and the scene seeds do not depend on the sizes
    mixed = SyntheticStereoDataset(split="val", num_samples=2, scene=SCENE, sizes=((40, 24), (56, 32)))
    assert [mixed.scene_config(i).width for i in range(2)] == [40, 56]
    assert mixed.scene_seed(1) == SyntheticStereoDataset(split="val", num_samples=2, scene=SCENE).scene_seed(1)
    with pytest.raises(ConfigError, match="training crop"):
        SyntheticStereoDataset(split="train", num_samples=1, scene=SCENE, sizes=((40, 24),), crop=(32, 32))
    assert synthetic_sizes([[346, 260], (640, 480)]) == ((346, 260), (640, 480)) and synthetic_sizes(None) == ()
    with pytest.raises(ConfigError, match=r"\[width, height\]"):
        synthetic_sizes([[346, 260, 3]])


def test_window_start_is_drawn_per_scene_and_the_window_and_gt_follow_it():
    import dataclasses

    from eventvision.data.stereo.synthetic import WARMUP_US
    from eventvision.errors import ConfigError
    from eventvision.simulate.stereo_scenes import StereoScene

    at_start = SyntheticStereoDataset(split="train", num_samples=3, scene=SCENE)
    later = SyntheticStereoDataset(split="train", num_samples=3,
                                   scene=dataclasses.replace(SCENE, window_start_ms=(200.0, 900.0)))
    starts = []
    for i in range(3):
        left, right, t0, t1, gt = later.window_events(i)
        begin = t0 - WARMUP_US
        starts.append(begin)
        assert 200_000 <= begin <= 900_000 and begin % 1000 == 0 and t1 - t0 == later.window_us
        assert left["t"].min() >= begin and max(left["t"].max(), right["t"].max()) < t1
        seed = later.scene_seed(i)
        scene = StereoScene.random(SCENE.camera, seed, later.scene_config(i).params)
        np.testing.assert_array_equal(np.isnan(gt), np.isnan(np.where(
            (scene.disparity(t1) > 0) & (scene.disparity(t1) < later.max_disparity), 1.0, np.nan)))
        assert later.window_start_us(seed) == begin                    # from the seed alone: reproducible
        assert at_start.window_events(i)[2] == WARMUP_US                # the default observes the scene's start
    assert len(set(starts)) == 3
    with pytest.raises(ConfigError, match="window_start_ms"):
        dataclasses.replace(SCENE, window_start_ms=(5.0, 1.0))


def test_ego_rotation_option_turns_every_family_s_rig_and_is_validated():
    import dataclasses

    from eventvision.config import load_config
    from eventvision.errors import ConfigError

    cfg = load_config("stereo/refine", ["data.synthetic.ego_rotation_px_s=[0,300]"]).data.synthetic
    scene = SyntheticStereoConfig.from_config(cfg)
    assert scene.ego_rotation_px_s == (0.0, 300.0) and scene.for_index(10).params.ego_rotation_px_s == (0.0, 300.0)
    assert SyntheticStereoConfig.from_config(load_config("stereo/refine").data.synthetic).ego_rotation_px_s is None
    plain = dataclasses.replace(SCENE, family="plain")
    assert plain.params.ego_rotation_px_s == (0.0, 0.0)                       # default: the family's own
    assert dataclasses.replace(plain, ego_rotation_px_s=(10.0, 20.0)).params.ego_rotation_px_s == (10.0, 20.0)
    with pytest.raises(ConfigError, match="ego_rotation_px_s"):
        SyntheticStereoConfig(ego_rotation_px_s=(300.0, 0.0))
    for bad in ("data.synthetic.ego_rotation_px_s=[1,2,3]", "data.synthetic.window_start_ms=[5]"):
        with pytest.raises(ConfigError, match=r"must be a pair \[low, high\]"):   # was a ValueError for [5]
            load_config("stereo/refine", [bad])
    # rotating scenes through the dataset: reproducible, GT finite where the left view sees a surface
    turned = dataclasses.replace(SCENE, ego_rotation_px_s=(200.0, 300.0))
    ds = SyntheticStereoDataset(split="val", num_samples=1, scene=turned)
    left, _, _, _, gt = ds.window_events(0)
    again = ds.window_events(0)
    assert np.array_equal(left, again[0]) and np.isfinite(gt).mean() > 0.3


def test_ground_option_puts_a_ground_under_every_family_s_rig_and_is_validated():
    import dataclasses

    from eventvision.config import load_config
    from eventvision.errors import ConfigError

    cfg = load_config("stereo/refine", ["data.synthetic.ground_prob=0.5"]).data.synthetic
    assert SyntheticStereoConfig.from_config(cfg).for_index(3).params.ground_prob == 0.5
    assert SyntheticStereoConfig.from_config(load_config("stereo/refine").data.synthetic).ground_prob is None
    assert dataclasses.replace(SCENE, family="plain").params.ground_prob == 0.0     # default: the family's own
    assert dataclasses.replace(SCENE, family="ground").params.ground_prob == 1.0
    with pytest.raises(ConfigError, match="ground_prob"):
        SyntheticStereoConfig(ground_prob=1.5)
    for bad in ("data.synthetic.ground_prob=2", "data.synthetic.ground_prob=road"):
        with pytest.raises(ConfigError, match=r"ground_prob .* must"):      # 'road' was a ValueError traceback
            load_config("stereo/refine", [bad])
    # through the dataset: the ground scene's window differs from the same seed's scene without one, below the
    # horizon only
    grounded = SyntheticStereoDataset(split="val", num_samples=1, scene=dataclasses.replace(SCENE, ground_prob=1.0))
    bare = SyntheticStereoDataset(split="val", num_samples=1, scene=dataclasses.replace(SCENE, ground_prob=0.0))
    gt_ground, gt_bare = grounded.window_events(0)[-1], bare.window_events(0)[-1]
    both = np.isfinite(gt_ground) & np.isfinite(gt_bare)
    changed = both & (gt_ground > gt_bare + 1e-3)
    assert changed.any() and (gt_ground[both] >= gt_bare[both] - 1e-4).all()
    assert np.nonzero(changed)[0].min() >= SCENE.height // 2 - 1


def test_ego_speed_cap_bounds_the_nearest_surface_s_image_speed_and_keeps_the_draws():
    import dataclasses

    from eventvision.config import load_config
    from eventvision.errors import ConfigError
    from eventvision.simulate.stereo_scenes import StereoScene

    scene = dataclasses.replace(SCENE, family="mixed", width=96, height=64, focal_px=80.0)
    capped_cfg = dataclasses.replace(scene, max_ego_image_speed_px_s=150.0)
    fastest = 0.0
    for seed in range(40):
        free = StereoScene.random(scene.camera, seed, scene.params)
        capped = StereoScene.random(capped_cfg.camera, seed, capped_cfg.params)
        z_near = min(float(s.centre[2]) for s in free.surfaces)
        speed = lambda sc: scene.focal_px * float(np.hypot(*sc.ego_velocity[:2])) / z_near   # noqa: E731
        fastest = max(fastest, speed(free))
        assert speed(capped) <= 150.0 + 1e-6 and speed(capped) <= speed(free) + 1e-9
        # the same draws: surfaces and direction unchanged, only the rig's speed scaled down
        assert all(np.allclose(a.centre, b.centre) for a, b in zip(free.surfaces, capped.surfaces))
        assert np.isclose(np.arctan2(*capped.ego_velocity[1::-1]), np.arctan2(*free.ego_velocity[1::-1]))
        assert capped.ego_velocity[2] == free.ego_velocity[2]
    assert fastest > 150.0                                  # the cap did bind somewhere
    cfg = load_config("stereo/refine", ["data.synthetic.max_ego_image_speed_px_s=500"]).data.synthetic
    assert SyntheticStereoConfig.from_config(cfg).for_index(3).params.max_ego_image_speed_px_s == 500.0
    assert SyntheticStereoConfig.from_config(load_config("stereo/refine").data.synthetic).for_index(3).params \
        .max_ego_image_speed_px_s == np.inf
    with pytest.raises(ConfigError, match="max_ego_image_speed_px_s"):
        SyntheticStereoConfig(max_ego_image_speed_px_s=0.0)
    for bad in ("data.synthetic.max_ego_image_speed_px_s=-5", "data.synthetic.max_ego_image_speed_px_s=fast"):
        with pytest.raises(ConfigError, match="max_ego_image_speed_px_s"):
            SyntheticStereoConfig.from_config(load_config("stereo/refine", [bad]).data.synthetic)


def test_leaves_option_reaches_every_family_s_scenes_and_is_validated():
    import dataclasses

    from eventvision.config import load_config
    from eventvision.errors import ConfigError

    cfg = load_config("stereo/refine", ["data.synthetic.leaves_prob=0.3"]).data.synthetic
    assert SyntheticStereoConfig.from_config(cfg).for_index(4).params.leaves_prob == 0.3     # the dots family too
    assert SyntheticStereoConfig.from_config(load_config("stereo/refine").data.synthetic).leaves_prob is None
    assert dataclasses.replace(SCENE, family="smooth").params.leaves_prob == 0.0
    with pytest.raises(ConfigError, match="leaves_prob"):
        SyntheticStereoConfig(leaves_prob=-0.1)
    for bad in ("data.synthetic.leaves_prob=1.5", "data.synthetic.leaves_prob=many"):
        with pytest.raises(ConfigError, match="leaves_prob"):
            SyntheticStereoConfig.from_config(load_config("stereo/refine", [bad]).data.synthetic)


def test_prefill_in_processes_makes_the_samples_lazy_reading_makes():
    from eventvision.config import load_config
    from eventvision.errors import ConfigError
    from eventvision.tasks.stereo import StereoTask

    base = ["data.synthetic.width=48", "data.synthetic.height=32", "data.crop=[]", "data.synthetic.num_val=3",
            "data.synthetic.family=all", "data.synthetic.leaves_prob=0.5"]
    lazy = StereoTask(load_config("stereo/refine", base)).build_dataset("val")
    prefilled = StereoTask(load_config("stereo/refine", base + ["data.synthetic.prefill_workers=2"]))
    made = prefilled.build_dataset("val")
    assert sorted(made._cache) == [0, 1, 2] and not lazy._cache
    assert not prefilled.build_dataset("val", prefill=False)._cache   # readers of a few scenes or of raw windows
    assert not prefilled.build_reading_dataset("val")._cache
    assert prefilled.example_batch(1)["disparity"].shape == (1, 32, 48)
    for index in range(3):
        a, b = lazy[index], made[index]
        assert a.keys() == b.keys() and a["meta"] == b["meta"]
        arrays = [key for key, value in a.items() if isinstance(value, np.ndarray)]
        assert {"left", "disparity"} <= set(arrays)
        for key in arrays:
            assert np.array_equal(a[key], b[key], equal_nan=True), key
    assert lazy.prefill(1) is lazy and sorted(lazy._cache) == [0, 1, 2]     # in this process: the same path
    with pytest.raises(ConfigError, match="prefill_workers"):
        StereoTask(load_config("stereo/refine", base + ["data.synthetic.prefill_workers=-1"])).build_dataset("val")


def test_prefill_never_starts_more_processes_than_cores(monkeypatch):
    """A checkpoint trained on a 16-core machine stores prefill_workers=14; read on one core, no pool is made."""
    import concurrent.futures

    from eventvision.data.stereo import synthetic

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started on a one-core machine")

    monkeypatch.setattr(synthetic.os, "cpu_count", lambda: 1)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    ds = SyntheticStereoDataset(split="val", num_samples=2, scene=SCENE)
    assert sorted(ds.prefill(14)._cache) == [0, 1]


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = (Path("/proc") / entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists() or (os.cpu_count() or 1) < 2,
                    reason="reads processes from Linux /proc; a prefill in processes needs two cores")
@pytest.mark.parametrize("after_s", [0.2, 4.0], ids=["while-they-start", "while-they-work"])
def test_ctrl_c_during_a_prefill_in_processes_exits_130_and_leaves_no_process(tmp_path, after_s):
    """A terminal's Ctrl-C (SIGINT to the whole process group) while spawned processes import (before their
    initializer ran: they printed tracebacks once) or make the scenes: the workers ignore it, the parent cancels what
    is pending, exits 130 with one line, and no process of the group outlives it."""
    argv = [sys.executable, "-m", "eventvision", "train", "stereo", "data.synthetic.width=96",
            "data.synthetic.height=64", "data.crop=[]", "data.synthetic.num_train=2000", "data.synthetic.num_val=2",
            "data.synthetic.prefill_workers=2", "device=cpu", f"output_dir={tmp_path / 'run'}"]
    env = dict(os.environ, EVENTVISION_NO_PROGRESS="1", OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    workers: list[int] = []
    while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)     # spawn's resource tracker is a child too: the pool is up once its workers are
        workers = [p for p in _children(proc.pid) if b"resource_tracker" not in _cmdline(p)]
    assert len(workers) >= 2 and proc.poll() is None, f"no prefill processes seen: {proc.communicate()}"
    time.sleep(after_s)                               # 2000 scenes take minutes: the prefill is still running
    signalled = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["eventvision: interrupted (SIGINT); partial outputs were removed"]
    assert time.monotonic() - signalled < 30          # pending scenes cancelled, not made to the end
    with pytest.raises(ProcessLookupError):           # nothing of the group is left running
        for _ in range(50):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)
    assert not list((tmp_path / "run").glob("*.pt"))


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""
