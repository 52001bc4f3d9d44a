"""The generalization benchmark's real street scene (benchmarks/stereo_kitti.py): KITTI photographs seen by a
pitching rig, GT from the LiDAR scan."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from stereo_kitti import KITTI_TRAINING, make_kitti_clip  # noqa: E402

pytestmark = pytest.mark.skipif(not (KITTI_TRAINING / "velodyne").is_dir(),
                                reason="needs ../shared/data/kitti_object (the real KITTI pair and scan)")


def _sgbm_on_frames(clip, t_us):
    from eventvision.matching.sgbm import sgbm_disparity

    left, right = clip.frames_at(t_us)
    return sgbm_disparity((left * 255).astype(np.uint8), (right * 255).astype(np.uint8), max_disparity=62)


def test_lidar_gt_agrees_with_the_photographs_only_with_the_rig_s_own_rotation():
    clip = make_kitti_clip(1, duration_us=60_000)
    assert (clip.width, clip.height) == (621, 188 - 2 * clip.crop_y) and clip.crop_y > 0
    t = 60_000                                                     # pitch of |omega| * 30 ms, 3-10 px of image motion
    gt = clip.disparity_at(t)
    valid = np.isfinite(gt) & (gt < 62)
    assert 8_000 < valid.sum() < 0.3 * gt.size                      # sparse, like LiDAR GT
    sgbm = _sgbm_on_frames(clip, t)
    both = valid & np.isfinite(sgbm)
    assert both.sum() > 0.7 * valid.sum()
    err = np.abs(sgbm[both] - gt[both])
    # classical matching on the rendered photographs lands on the LiDAR disparities (KITTI's own calibration and
    # scan: ~0.5 px median, a few % of outliers at edges)
    assert np.median(err) < 0.8 and (err > 3).mean() < 0.1
    # GT computed for the opposite rotation sits at the wrong rows: clearly worse
    wrong = dataclasses.replace(clip, omega=-clip.omega).disparity_at(t)
    both_w = np.isfinite(wrong) & (wrong < 62) & np.isfinite(sgbm)
    assert np.median(np.abs(sgbm[both_w] - wrong[both_w])) > 2 * np.median(err)


def test_clip_events_are_both_cameras_sorted_and_in_range():
    clip = make_kitti_clip(2, duration_us=20_000)
    for ev in (clip.left, clip.right):
        assert len(ev) > 10_000 and np.all(np.diff(ev["t"]) >= 0) and ev["t"].max() < 20_000
        assert ev["x"].min() >= 0 and ev["x"].max() < clip.width and ev["y"].max() < clip.height
    again = make_kitti_clip(2, duration_us=20_000)
    assert np.array_equal(again.left, clip.left)                   # seeded


def test_frames_of_a_training_folder_and_a_clear_error_without_any(tmp_path):
    from stereo_kitti import kitti_frames

    from eventvision.errors import DatasetNotFoundError

    assert kitti_frames(KITTI_TRAINING) == ("000000",)
    with pytest.raises(DatasetNotFoundError, match="--kitti-root"):
        kitti_frames(tmp_path)
