"""Rotated BEV / 3D / 2D overlaps against analytic values and an independent polygon library."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.geometry import boxes3d as boxes
from eventvision.geometry import rotated_iou as iou

SQRT2 = np.sqrt(2.0)


def test_rotated_unit_squares_analytic():
    a = np.array([[0.0, 0.0, 1.0, 1.0, 0.0]])
    b = np.array([[0.0, 0.0, 1.0, 1.0, np.pi / 4]])
    inter = 2.0 * (SQRT2 - 1.0)  # regular octagon left by a square and its 45° turn
    assert iou.bev_overlap(a, b, criterion=2)[0, 0] == pytest.approx(inter, rel=1e-12)
    assert iou.bev_overlap(a, b)[0, 0] == pytest.approx(inter / (2.0 - inter), rel=1e-12)
    assert iou.bev_overlap(a, b, criterion=0)[0, 0] == pytest.approx(inter, rel=1e-12)
    # shifted half a side: IoU 1/3; a full turn / 180° changes nothing
    assert iou.bev_overlap(a, [[0.5, 0.0, 1.0, 1.0, 0.0]])[0, 0] == pytest.approx(1 / 3)
    assert iou.bev_overlap(a, [[0.0, 0.0, 1.0, 1.0, np.pi]])[0, 0] == pytest.approx(1.0)
    # a 2x1 rectangle turned 90° over itself: the 1x1 centre square -> IoU 1/3
    r = np.array([[0.0, 0.0, 2.0, 1.0, 0.0]])
    assert iou.bev_overlap(r, [[0.0, 0.0, 2.0, 1.0, np.pi / 2]])[0, 0] == pytest.approx(1 / 3)
    # disjoint, touching corners, degenerate size
    assert iou.bev_overlap(a, [[3.0, 0.0, 1.0, 1.0, 0.3]])[0, 0] == 0.0
    assert iou.bev_overlap(a, [[0.0, 0.0, 0.0, 1.0, 0.0]])[0, 0] == 0.0


def test_rotation_sign_convention():
    # corner of a 4x2 box turned by ry lands where R_y says: x' = cos*lx + sin*lz, z' = -sin*lx + cos*lz
    ry = 0.4
    bev = np.array([[0.0, 0.0, 4.0, 2.0, ry]])
    tip = np.array([[2.0 * np.cos(ry), -2.0 * np.sin(ry)]])  # front centre (lx = l/2, lz = 0)
    small = np.array([[tip[0, 0], tip[0, 1], 0.2, 0.2, ry]])
    mirrored = np.array([[tip[0, 0], -tip[0, 1], 0.2, 0.2, ry]])
    # the small box centred on the front edge is half inside; its mirror image is outside
    assert iou.bev_overlap(small, bev, criterion=0)[0, 0] == pytest.approx(0.5)
    assert iou.bev_overlap(mirrored, bev, criterion=0)[0, 0] == 0.0
    np.testing.assert_allclose(boxes.bev_corners(bev)[0].mean(axis=0), [0, 0], atol=1e-12)


def test_3d_height_offsets():
    a = np.array([[0.0, 1.0, 0.0, 2.0, 1.0, 1.0, 0.3]])  # spans y 0..1
    assert iou.iou3d(a, a)[0, 0] == pytest.approx(1.0)
    b = a.copy()
    b[0, 1] = 1.5  # spans 0.5..1.5: half the height overlaps
    assert iou.iou3d(a, b)[0, 0] == pytest.approx(1.0 / 3.0)
    b[0, 1] = 2.0  # touching faces
    assert iou.iou3d(a, b)[0, 0] == 0.0
    c = a.copy()  # taller box sharing the bottom: inter 2, union 4
    c[0, 4] = 2.0
    c[0, 1] = 1.0
    assert iou.iou3d(a, c)[0, 0] == pytest.approx(0.5)
    d = a.copy()
    d[0, 6] += np.pi / 4
    d[0, 3] = d[0, 5] = 1.0
    a1 = a.copy()
    a1[0, 3] = 1.0
    inter = 2.0 * (SQRT2 - 1.0)  # unit squares at 45°, same height 1
    assert iou.iou3d(a1, d)[0, 0] == pytest.approx(inter / (2.0 - inter))
    assert iou.iou3d(a1, d, criterion=2)[0, 0] == pytest.approx(inter)


def test_image_overlap():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(iou.image_overlap(a, b), [[50 / 150, 0.0]])
    np.testing.assert_allclose(iou.image_overlap(a, b, criterion=0), [[0.5, 0.0]])


def test_random_boxes_against_shapely():
    shapely = pytest.importorskip("shapely.geometry")
    rng = np.random.default_rng(1)
    a = np.c_[rng.uniform(-2, 2, (60, 2)), rng.uniform(0.5, 4, (60, 2)), rng.uniform(-np.pi, np.pi, 60)]
    b = np.c_[rng.uniform(-2, 2, (50, 2)), rng.uniform(0.5, 4, (50, 2)), rng.uniform(-np.pi, np.pi, 50)]
    got = iou.bev_overlap(a, b)
    ca, cb = boxes.bev_corners(a), boxes.bev_corners(b)
    want = np.zeros_like(got)
    for i in range(len(a)):
        pa = shapely.Polygon(ca[i])
        for j in range(len(b)):
            pb = shapely.Polygon(cb[j])
            inter = pa.intersection(pb).area
            want[i, j] = inter / (pa.area + pb.area - inter)
    assert (want > 0).mean() > 0.3
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_frames_overlap_matches_per_frame():
    rng = np.random.default_rng(2)
    a = np.c_[rng.uniform(-3, 3, (9, 3)), rng.uniform(1, 3, (9, 3)), rng.uniform(-3, 3, 9)]
    b = np.c_[rng.uniform(-3, 3, (7, 3)), rng.uniform(1, 3, (7, 3)), rng.uniform(-3, 3, 7)]
    a_off, b_off = np.array([0, 4, 4, 9]), np.array([0, 2, 5, 7])
    vals, off = iou.frames_overlap("3d", a, a_off, b, b_off)
    for f in range(3):
        m = vals[off[f]:off[f + 1]].reshape(a_off[f + 1] - a_off[f], b_off[f + 1] - b_off[f])
        np.testing.assert_array_equal(m, iou.iou3d(a[a_off[f]:a_off[f + 1]], b[b_off[f]:b_off[f + 1]]))
    a_in = a.copy()
    iou.iou3d(a, b)
    np.testing.assert_array_equal(a, a_in)  # kernels never touch their inputs
