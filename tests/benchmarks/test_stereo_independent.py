"""The generalization benchmark's clips made another way (benchmarks/stereo_independent.py): exact GT."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from stereo_independent import make_clip  # noqa: E402


def test_gt_is_the_nearest_plane_and_occlusions_are_nan():
    clip = make_clip(5, width=120, height=80, texture="dots", duration_us=30_000)
    assert len(clip.left) > 1000 and len(clip.right) > 1000
    assert np.all(np.diff(clip.left["t"]) >= 0) and clip.left["t"].max() < 30_000
    gt = clip.disparity_at(20_000)
    image, owner = clip.layers(20_000, "left")
    disp = np.array([p.disparity for p in clip.planes], np.float32)[owner]
    finite = np.isfinite(gt)
    np.testing.assert_array_equal(gt[finite], disp[finite])          # each pixel: its nearest plane's disparity
    assert 0.3 < finite.mean() < 1.0                                   # occluded / out-of-view pixels are NaN
    _, owner_r = clip.layers(20_000, "right")
    ys, xs = np.nonzero(finite)
    xr = np.rint(xs - gt[ys, xs]).astype(int)
    assert np.all(owner_r[ys, xr] == owner[ys, xs])                  # the right camera sees the same plane there


def test_sgbm_recovers_a_dot_clip():
    from eventvision.matching.sgbm import sgbm_from_events

    clip = make_clip(2, width=160, height=96, texture="dots", duration_us=60_000)
    sgbm = sgbm_from_events(clip.left, clip.right, t_start=10_000, t_end=60_000, width=160, height=96,
                            max_disparity=62)
    gt = clip.disparity_at(60_000)
    both = np.isfinite(gt) & np.isfinite(sgbm)
    assert both.sum() > 0.3 * np.isfinite(gt).sum()
    assert np.median(np.abs(sgbm[both] - gt[both])) < 0.5


def test_ground_clip_gt_grows_row_by_row_and_sgbm_recovers_it():
    from eventvision.matching.sgbm import sgbm_from_events

    plain = make_clip(7, width=160, height=96, texture="dots", duration_us=60_000)
    clip = make_clip(7, width=160, height=96, texture="dots", duration_us=60_000, ground=True)
    ground = clip.planes[-1]
    assert ground.horizon is not None and len(clip.planes) == len(plain.planes) + 1
    assert all(a.disparity == b.disparity and a.box == b.box for a, b in zip(plain.planes, clip.planes))
    assert clip.velocity[1] == 0.0 and abs(clip.velocity[0]) == np.hypot(*plain.velocity)   # along the baseline
    gt = clip.disparity_at(40_000)
    _, owner = clip.layers(40_000, "left")
    on_ground = (owner == len(clip.planes) - 1) & np.isfinite(gt)
    ys, xs = np.nonzero(on_ground)
    assert len(ys) > 500 and ys.min() > ground.horizon
    expected = ground.disparity * (ys - ground.horizon) / (clip.height - 1 - ground.horizon)
    np.testing.assert_allclose(gt[ys, xs], expected, rtol=1e-5)          # linear in the row, 0 at the horizon
    # the ground is nearer than what it hides: wherever it is seen, no other plane there is nearer
    for k, plane in enumerate(clip.planes[:-1]):
        assert not np.any(on_ground & (owner == k))
    assert np.all(gt[ys, xs] > min(p.disparity for p in clip.planes[:-1]) - 1e-4)
    # exact: the right view at (x - d, y) is the left view at (x, y) (up to reading the right row between pixels),
    # and clearly not at one pixel off
    left, right = clip.layers(40_000, "left")[0], clip.layers(40_000, "right")[0]
    cols = np.arange(clip.width)

    def mismatch(shift):
        return np.abs(np.array([np.interp(x - gt[y, x] + shift, cols, right[y]) for y, x in zip(ys, xs)])
                      - left[ys, xs])

    assert np.median(mismatch(0.0)) < 1e-4 and mismatch(0.0).mean() < 0.3 * mismatch(1.0).mean()
    # from the events: a slanted surface seen through 50 ms of motion, so SGBM's blocks are near, not exact
    sgbm = sgbm_from_events(clip.left, clip.right, t_start=10_000, t_end=60_000, width=160, height=96,
                            max_disparity=62)
    gt_end = clip.disparity_at(60_000)
    _, owner_end = clip.layers(60_000, "left")
    both = (owner_end == len(clip.planes) - 1) & np.isfinite(gt_end) & np.isfinite(sgbm)
    assert both.sum() > 300 and np.median(np.abs(sgbm[both] - gt_end[both])) < 1.0
