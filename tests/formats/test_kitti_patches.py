"""StreamDSGN patches of a KITTI Tracking sequence (eventvision.formats.kitti.patch_ranges): the alternating
rule and the release's split_patch_in_scene, rule by rule on hand-made lengths."""

import pytest

from eventvision.errors import UserError
from eventvision.formats import kitti


def test_patch_ranges():
    assert kitti.patch_ranges(100) == [(0, 100)]
    assert kitti.patch_ranges(100, split="train") == [(0, 40), (80, 100)]
    assert kitti.patch_ranges(100, split="val") == [(40, 80)]
    assert kitti.patch_ranges(30, split="val") == []
    with pytest.raises(UserError):
        kitti.patch_ranges(10, split="test")


def test_patch_ranges_release_split_patch_in_scene():
    """tools/gen_split_kitti_tracking.py split_patch_in_scene, rule by rule (40-frame patches)."""
    # under 80 frames: halved
    assert kitti.release_patches(79) == [(0, 39), (39, 79)]
    assert kitti.patch_ranges(50, split="train", rule="streamdsgn") == [(0, 25)]
    assert kitti.patch_ranges(50, split="val", rule="streamdsgn") == [(25, 50)]
    # remainder merged into the last patch: 130 -> 0-40, 40-80, 80-130
    assert kitti.release_patches(130) == [(0, 40), (40, 80), (80, 130)]
    # length divisible by 40: the last 40 frames belong to no patch
    assert kitti.release_patches(160) == [(0, 40), (40, 80), (80, 120)]
    assert kitti.release_patches(80) == [(0, 40)]
    assert kitti.patch_ranges(160, split="train", rule="streamdsgn") == [(0, 40), (80, 120)]
    assert kitti.patch_ranges(160, split="val", rule="streamdsgn") == [(40, 80)]
    with pytest.raises(UserError):
        kitti.patch_ranges(100, split="val", rule="other")
