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
