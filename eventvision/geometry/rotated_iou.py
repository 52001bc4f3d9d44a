"""CPU overlaps of KITTI boxes (numba): 2D image boxes, rotated BEV rectangles, 3D camera boxes.

Semantics of kitti-object-eval-python (``image_box_overlap``, ``rotate_iou_gpu_eval``,
``d3_box_overlap``), computed on the CPU in float64:

- 2D: boxes (x1, y1, x2, y2) px, areas (x2-x1)(y2-y1) (no +1).
- BEV: rectangles (x, z, l, w, ry); the intersection of two rotated rectangles is the area of the
  convex polygon from Sutherland-Hodgman clipping, computed exactly (no sampling).
- 3D: boxes (x, y, z, l, h, w, ry) with y the bottom (box spans y-h..y):
  intersection = BEV intersection x height overlap; union = l·h·w + l'·h'·w' - intersection.

``criterion``: -1 IoU, 0 intersection / area of ``boxes`` (a), 1 intersection / area of ``query`` (b),
2 the intersection itself. Every kernel is pure (returns a new array) and compiled with cache=True.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _corners(x, z, l, w, ry, out):
    """Corners (x, z) of a BEV rectangle, counter-clockwise in the (x, z) plane, into out [4, 2]."""
    c = np.cos(ry)
    s = np.sin(ry)
    # local offsets (lx, lz) listed counter-clockwise; R = [[c, s], [-s, c]] keeps the orientation
    for k in range(4):
        lx = 0.5 * l if (k == 0 or k == 1) else -0.5 * l
        lz = -0.5 * w if (k == 0 or k == 3) else 0.5 * w
        out[k, 0] = c * lx + s * lz + x
        out[k, 1] = -s * lx + c * lz + z


@numba.njit(cache=True)
def _polygon_area(px, pz, n):
    acc = 0.0
    for k in range(n):
        k2 = (k + 1) % n
        acc += px[k] * pz[k2] - px[k2] * pz[k]
    return 0.5 * abs(acc)


@numba.njit(cache=True)
def _rect_intersection(a, b, ca, cb, bx, bz, tx, tz):
    """Area of the intersection of BEV rectangles a, b (x, z, l, w, ry); ca/cb/bx/bz/tx/tz scratch."""
    if a[2] <= 0.0 or a[3] <= 0.0 or b[2] <= 0.0 or b[3] <= 0.0:
        return 0.0
    # cheap reject: circumscribed circles apart
    dx = a[0] - b[0]
    dz = a[1] - b[1]
    ra = 0.5 * np.sqrt(a[2] * a[2] + a[3] * a[3])
    rb = 0.5 * np.sqrt(b[2] * b[2] + b[3] * b[3])
    if dx * dx + dz * dz >= (ra + rb) * (ra + rb):
        return 0.0
    _corners(a[0], a[1], a[2], a[3], a[4], ca)
    _corners(b[0], b[1], b[2], b[3], b[4], cb)
    n = 4
    for k in range(4):
        bx[k] = ca[k, 0]
        bz[k] = ca[k, 1]
    # clip polygon (bx, bz) by each edge of b (counter-clockwise: inside is on the left)
    for e in range(4):
        p1x = cb[e, 0]
        p1z = cb[e, 1]
        p2x = cb[(e + 1) % 4, 0]
        p2z = cb[(e + 1) % 4, 1]
        ex = p2x - p1x
        ez = p2z - p1z
        m = 0
        prev = n - 1
        dprev = ex * (bz[prev] - p1z) - ez * (bx[prev] - p1x)
        for k in range(n):
            dcur = ex * (bz[k] - p1z) - ez * (bx[k] - p1x)
            if (dcur >= 0.0) != (dprev >= 0.0):
                t = dprev / (dprev - dcur)
                tx[m] = bx[prev] + t * (bx[k] - bx[prev])
                tz[m] = bz[prev] + t * (bz[k] - bz[prev])
                m += 1
            if dcur >= 0.0:
                tx[m] = bx[k]
                tz[m] = bz[k]
                m += 1
            prev = k
            dprev = dcur
        n = m
        if n < 3:
            return 0.0
        for k in range(n):
            bx[k] = tx[k]
            bz[k] = tz[k]
    return _polygon_area(bx, bz, n)


@numba.njit(cache=True, inline="always")
def _overlap_ratio(inter, size_a, size_b, criterion):
    """Overlap of two boxes from their intersection and sizes (areas or volumes), as in the reference:
    criterion -1 = IoU, 0 = inter / size_a, 1 = inter / size_b, else the raw intersection."""
    if criterion == -1:
        return inter / (size_a + size_b - inter)
    if criterion == 0:
        return inter / size_a
    if criterion == 1:
        return inter / size_b
    return inter


@numba.njit(cache=True)
def _bev_overlap_kernel(boxes, query, criterion):
    n = boxes.shape[0]
    k = query.shape[0]
    out = np.zeros((n, k), dtype=np.float64)
    ca = np.empty((4, 2))
    cb = np.empty((4, 2))
    bx = np.empty(16)
    bz = np.empty(16)
    tx = np.empty(16)
    tz = np.empty(16)
    for i in range(n):
        area_a = boxes[i, 2] * boxes[i, 3]
        for j in range(k):
            inter = _rect_intersection(boxes[i], query[j], ca, cb, bx, bz, tx, tz)
            if inter <= 0.0:
                continue
            out[i, j] = _overlap_ratio(inter, area_a, query[j, 2] * query[j, 3], criterion)
    return out


@numba.njit(cache=True)
def _d3_overlap_kernel(boxes, query, criterion):
    n = boxes.shape[0]
    k = query.shape[0]
    out = np.zeros((n, k), dtype=np.float64)
    ca = np.empty((4, 2))
    cb = np.empty((4, 2))
    bx = np.empty(16)
    bz = np.empty(16)
    tx = np.empty(16)
    tz = np.empty(16)
    a = np.empty(5)
    b = np.empty(5)
    for i in range(n):
        a[0] = boxes[i, 0]
        a[1] = boxes[i, 2]
        a[2] = boxes[i, 3]
        a[3] = boxes[i, 5]
        a[4] = boxes[i, 6]
        for j in range(k):
            iw = min(boxes[i, 1], query[j, 1]) - max(boxes[i, 1] - boxes[i, 4], query[j, 1] - query[j, 4])
            if iw <= 0.0:
                continue
            b[0] = query[j, 0]
            b[1] = query[j, 2]
            b[2] = query[j, 3]
            b[3] = query[j, 5]
            b[4] = query[j, 6]
            inter_bev = _rect_intersection(a, b, ca, cb, bx, bz, tx, tz)
            if inter_bev <= 0.0:
                continue
            out[i, j] = _overlap_ratio(iw * inter_bev, boxes[i, 3] * boxes[i, 4] * boxes[i, 5],
                                       query[j, 3] * query[j, 4] * query[j, 5], criterion)
    return out


@numba.njit(cache=True)
def _image_overlap_kernel(boxes, query, criterion):
    n = boxes.shape[0]
    k = query.shape[0]
    out = np.zeros((n, k), dtype=np.float64)
    for j in range(k):
        q_area = (query[j, 2] - query[j, 0]) * (query[j, 3] - query[j, 1])
        for i in range(n):
            iw = min(boxes[i, 2], query[j, 2]) - max(boxes[i, 0], query[j, 0])
            if iw <= 0.0:
                continue
            ih = min(boxes[i, 3], query[j, 3]) - max(boxes[i, 1], query[j, 1])
            if ih <= 0.0:
                continue
            out[i, j] = _overlap_ratio(iw * ih, (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]), q_area,
                                       criterion)
    return out


_KERNELS = {"bbox": (_image_overlap_kernel, 4), "bev": (_bev_overlap_kernel, 5), "3d": (_d3_overlap_kernel, 7)}


@numba.njit(cache=True)
def _frames_overlap_kernel(kind, a, a_off, b, b_off, criterion):
    """Per-frame overlaps of a[a_off[f]:a_off[f+1]] x b[b_off[f]:b_off[f+1]], flattened row-major;
    returns (values, offsets [F+1])."""
    nf = a_off.shape[0] - 1
    off = np.zeros(nf + 1, dtype=np.int64)
    for f in range(nf):
        off[f + 1] = off[f] + (a_off[f + 1] - a_off[f]) * (b_off[f + 1] - b_off[f])
    out = np.zeros(off[nf], dtype=np.float64)
    for f in range(nf):
        sa = a[a_off[f]:a_off[f + 1]]
        sb = b[b_off[f]:b_off[f + 1]]
        if sa.shape[0] == 0 or sb.shape[0] == 0:
            continue
        if kind == 0:
            m = _image_overlap_kernel(sa, sb, criterion)
        elif kind == 1:
            m = _bev_overlap_kernel(sa, sb, criterion)
        else:
            m = _d3_overlap_kernel(sa, sb, criterion)
        out[off[f]:off[f + 1]] = m.ravel()
    return out, off


def _as_boxes(x, width: int) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, width)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"expected boxes of shape [N, {width}], got {arr.shape}")
    return arr


def image_overlap(boxes, query, criterion: int = -1) -> np.ndarray:
    """2D overlaps [N, K] of image boxes [N, 4] and [K, 4] (x1, y1, x2, y2 px)."""
    return _image_overlap_kernel(_as_boxes(boxes, 4), _as_boxes(query, 4), criterion)


def bev_overlap(boxes, query, criterion: int = -1) -> np.ndarray:
    """Rotated BEV overlaps [N, K] of rectangles [N, 5] and [K, 5] (x, z, l, w, ry; m, rad)."""
    return _bev_overlap_kernel(_as_boxes(boxes, 5), _as_boxes(query, 5), criterion)


def iou3d(boxes, query, criterion: int = -1) -> np.ndarray:
    """3D overlaps [N, K] of camera boxes [N, 7] and [K, 7] (x, y, z, l, h, w, ry; y = bottom)."""
    return _d3_overlap_kernel(_as_boxes(boxes, 7), _as_boxes(query, 7), criterion)


def frames_overlap(kind: str, a, a_offsets, b, b_offsets, criterion: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Overlaps of many frames at once: ``a`` [Na, C] split by ``a_offsets`` [F+1], likewise ``b``.

    Returns (values, offsets [F+1]): frame f's [na_f, nb_f] matrix is
    ``values[offsets[f]:offsets[f+1]].reshape(na_f, nb_f)``. kind: 'bbox' | 'bev' | '3d'.
    """
    width = _KERNELS[kind][1]
    return _frames_overlap_kernel({"bbox": 0, "bev": 1, "3d": 2}[kind], _as_boxes(a, width),
                                  np.ascontiguousarray(a_offsets, dtype=np.int64), _as_boxes(b, width),
                                  np.ascontiguousarray(b_offsets, dtype=np.int64), criterion)
