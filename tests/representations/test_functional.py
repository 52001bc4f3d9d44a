"""Each kernel against a straightforward numpy reference written here (np.add.at accumulates repeats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.representations import functional as F

W, H = 13, 7


def make(n, *, seed=0, pol="pm1", t_span=10_000, w=W, h=H, repeat=True):
    rng = np.random.default_rng(seed)
    if pol == "bool":
        pdt = np.bool_
    elif pol == "01":
        pdt = np.uint8
    else:
        pdt = np.int8
    dt = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", pdt)])
    ev = np.empty(n, dtype=dt)
    # few pixels so that many events repeat a pixel
    ev["x"] = rng.integers(0, 3 if repeat else w, n)
    ev["y"] = rng.integers(0, 2 if repeat else h, n)
    ev["t"] = np.sort(rng.integers(1_000, 1_000 + t_span, n))
    on = rng.random(n) < 0.5
    ev["p"] = on if pol == "bool" else (on.astype(pdt) if pol == "01" else np.where(on, 1, -1))
    return ev


def signed(ev):
    return np.where(ev["p"] > 0, 1.0, -1.0)


def ref_voxel(ev, B, w=W, h=H):
    out = np.zeros((B, h, w))
    if len(ev) == 0:
        return out
    t = ev["t"].astype(np.float64)
    span = t[-1] - t[0]
    ts = (B - 1) * (t - t[0]) / span if span > 0 else np.zeros_like(t)
    for b in range(B):
        wgt = np.maximum(0.0, 1.0 - np.abs(b - ts))
        np.add.at(out[b], (ev["y"].astype(int), ev["x"].astype(int)), signed(ev) * wgt)
    return out


def time_bins(ev, B, t0, t1):
    t = ev["t"].astype(np.int64)
    if t1 > t0:
        b = np.minimum((B * (t - t0)) // (t1 - t0), B - 1)
    else:
        b = np.zeros(len(t), dtype=np.int64)
    keep = (t >= t0) & (t <= t1)
    return b, keep


def ref_hist(ev, B, t0=None, t1=None):
    out = np.zeros((B, 2, H, W))
    if len(ev) == 0:
        return out
    t0 = ev["t"][0] if t0 is None else t0
    t1 = ev["t"][-1] if t1 is None else t1
    b, keep = time_bins(ev, B, t0, t1)
    c = (ev["p"] > 0).astype(int)
    np.add.at(out, (b[keep], c[keep], ev["y"][keep].astype(int), ev["x"][keep].astype(int)), 1.0)
    return out


def ref_sbt(ev, B, t0=None, t1=None, sign=False):
    out = np.zeros((B, H, W))
    if len(ev):
        t0 = ev["t"][0] if t0 is None else t0
        t1 = ev["t"][-1] if t1 is None else t1
        b, keep = time_bins(ev, B, t0, t1)
        np.add.at(out, (b[keep], ev["y"][keep].astype(int), ev["x"][keep].astype(int)), signed(ev)[keep])
    return np.sign(out) if sign else out


def sj_segments(t, split_by, T):
    """SpikingJelly cal_fixed_frames_number_segment_index, re-stated (empty segments allowed)."""
    N = len(t)
    jl = np.zeros(T, dtype=int)
    jr = np.zeros(T, dtype=int)
    if split_by == "number":
        di = N // T
        for i in range(T):
            jl[i] = i * di
            jr[i] = jl[i] + di
        jr[-1] = N
    else:
        dt = (t[-1] - t[0]) // T if N else 0
        idx = np.arange(N)
        for i in range(T):
            tl = dt * i + (t[0] if N else 0)
            tr = tl + dt
            m = idx[(t >= tl) & (t < tr)] if i < T - 1 else idx[t >= tl]
            jl[i] = m[0] if len(m) else 0
            jr[i] = m[-1] + 1 if len(m) else 0
        jr[-1] = N
    return jl, jr


def ref_frames(ev, T, split_by):
    out = np.zeros((T, 2, H, W))
    jl, jr = sj_segments(ev["t"], split_by, T)
    for i in range(T):
        seg = ev[jl[i]:jr[i]]
        np.add.at(out[i], ((seg["p"] > 0).astype(int), seg["y"].astype(int), seg["x"].astype(int)), 1.0)
    return out


def ref_sbn(ev, B, sign=False):
    out = np.zeros((B, H, W))
    jl, jr = sj_segments(ev["t"], "number", B)
    for i in range(B):
        seg = ev[jl[i]:jr[i]]
        np.add.at(out[i], (seg["y"].astype(int), seg["x"].astype(int)), signed(seg))
    return np.sign(out) if sign else out


def ref_ts(ev, tau, t_ref=None):
    out = np.zeros((2, H, W))
    if len(ev) == 0:
        return out
    t_ref = ev["t"][-1] if t_ref is None else t_ref
    for e in ev:
        if e["t"] > t_ref:
            continue
        out[int(e["p"] > 0), e["y"], e["x"]] = np.exp(-(t_ref - e["t"]) / tau)  # sorted: the last one wins
    return out


CASES = [(0, "pm1"), (1, "pm1"), (1, "bool"), (2, "01"), (257, "bool"), (3000, "pm1"), (3000, "01"), (3001, "bool")]


@pytest.mark.parametrize("n,pol", CASES)
@pytest.mark.parametrize("B", [1, 5])
def test_voxel_grid(n, pol, B):
    ev = make(n, seed=n, pol=pol)
    before = ev.copy()
    got = F.voxel_grid(ev, num_bins=B, width=W, height=H)
    assert got.dtype == np.float32 and got.shape == (B, H, W)
    np.testing.assert_allclose(got, ref_voxel(ev, B), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(ev, before)  # caller's array untouched


def test_voxel_grid_values_by_hand():
    ev = make(3, pol="pm1")
    ev["x"], ev["y"], ev["t"], ev["p"] = [0, 0, 1], [0, 0, 0], [0, 50, 100], [1, -1, 1]
    got = F.voxel_grid(ev, num_bins=3, width=2, height=1)
    # t* = 0, 1, 2 -> each event exactly in one bin
    np.testing.assert_allclose(got[:, 0, :], [[1, 0], [-1, 0], [0, 1]])
    ev["t"] = [0, 25, 100]  # t* = 0.5 -> half in bin 0, half in bin 1
    got = F.voxel_grid(ev, num_bins=3, width=2, height=1)
    np.testing.assert_allclose(got[:, 0, :], [[0.5, 0], [-0.5, 0], [0, 1]])


def test_voxel_grid_normalize():
    ev = make(500, seed=3)
    got = F.voxel_grid(ev, num_bins=5, width=W, height=H, normalize=True)
    ref = ref_voxel(ev, 5)
    nz = ref != 0
    exp = np.zeros_like(ref)
    exp[nz] = (ref[nz] - ref[nz].mean()) / ref[nz].std()
    np.testing.assert_allclose(got, exp, atol=1e-4)
    assert F.voxel_grid(make(0), num_bins=5, width=W, height=H, normalize=True).sum() == 0


@pytest.mark.parametrize("n,pol", CASES)
@pytest.mark.parametrize("B", [1, 4])
def test_histogram(n, pol, B):
    ev = make(n, seed=n + 1, pol=pol)
    got = F.histogram(ev, width=W, height=H, num_bins=B)
    assert got.shape == (B, 2, H, W)
    np.testing.assert_allclose(got, ref_hist(ev, B), atol=1e-5)
    assert got.sum() == n


@pytest.mark.parametrize("n,pol", CASES)
@pytest.mark.parametrize("sign", [False, True])
def test_stack_by_time(n, pol, sign):
    ev = make(n, seed=n + 2, pol=pol)
    np.testing.assert_allclose(F.stack_by_time(ev, num_bins=5, width=W, height=H, sign=sign),
                               ref_sbt(ev, 5, sign=sign), atol=1e-5)


def test_stack_by_time_spikedhs_window():
    """5 bins of 10 ms over a fixed 50 ms window; events outside the window dropped."""
    ev = make(2000, seed=7, t_span=70_000)
    t0 = 5_000
    got = F.stack_by_time(ev, num_bins=5, width=W, height=H, t_start=t0, t_end=t0 + 50_000, sign=True)
    np.testing.assert_allclose(got, ref_sbt(ev, 5, t0, t0 + 50_000, sign=True))
    inside = ev[(ev["t"] >= t0 + 20_000) & (ev["t"] < t0 + 30_000)]
    np.testing.assert_allclose(got[2], ref_sbt(inside, 1, t0, t0 + 10**9, sign=True)[0])


@pytest.mark.parametrize("n,pol", CASES)
@pytest.mark.parametrize("sign", [False, True])
def test_stack_by_number(n, pol, sign):
    ev = make(n, seed=n + 3, pol=pol)
    np.testing.assert_allclose(F.stack_by_number(ev, num_bins=5, width=W, height=H, sign=sign),
                               ref_sbn(ev, 5, sign=sign), atol=1e-5)


@pytest.mark.parametrize("n,pol", CASES)
@pytest.mark.parametrize("split_by", ["number", "time"])
def test_to_frames(n, pol, split_by):
    ev = make(n, seed=n + 4, pol=pol)
    got = F.to_frames(ev, num_frames=6, width=W, height=H, split_by=split_by)
    assert got.shape == (6, 2, H, W)
    np.testing.assert_allclose(got, ref_frames(ev, 6, split_by))
    assert got.sum() == n


def _spikingjelly_reference():
    """SpikingJelly's own segment/integration functions, lifted from its source with ``ast``.

    ``spikingjelly.datasets`` cannot be imported here (it imports torchvision), so the three
    functions are compiled from the installed file on their own.
    """
    import ast
    import importlib.util
    from typing import Optional
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("spikingjelly is not installed")
    src_path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "utils.py"
    if not src_path.is_file():
        pytest.skip(f"{src_path} not found")
    tree = ast.parse(src_path.read_text())
    wanted = {"cal_fixed_frames_number_segment_index", "integrate_events_segment_to_frame",
              "integrate_events_by_fixed_frames_number"}
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    assert {node.name for node in body} == wanted
    namespace = {"np": np, "Optional": Optional}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(src_path), "exec"), namespace)
    return namespace["integrate_events_by_fixed_frames_number"]


def test_to_frames_matches_spikingjelly():
    integrate = _spikingjelly_reference()
    ev = make(5000, seed=11, pol="01", repeat=False)
    d = {k: ev[k] for k in ("t", "x", "y", "p")}
    for split_by in ("number", "time"):
        ref = integrate(d, split_by, 8, H, W)
        np.testing.assert_allclose(F.to_frames(ev, num_frames=8, width=W, height=H, split_by=split_by), ref)


@pytest.mark.parametrize("n,pol", CASES)
def test_time_surface(n, pol):
    ev = make(n, seed=n + 5, pol=pol)
    np.testing.assert_allclose(F.time_surface(ev, width=W, height=H, tau_us=3000.0), ref_ts(ev, 3000.0),
                               atol=1e-6)
    if n:
        t_ref = int(ev["t"][n // 2])
        np.testing.assert_allclose(F.time_surface(ev, width=W, height=H, tau_us=800.0, t_ref=t_ref),
                                   ref_ts(ev, 800.0, t_ref), atol=1e-6)


@pytest.mark.parametrize("fn", ["voxel_grid", "histogram", "stack_by_time", "stack_by_number", "to_frames"])
@pytest.mark.parametrize("n", [1, 3, 40_001])
def test_parallel_equals_single(fn, n):
    ev = make(n, seed=n + 6, pol="bool", w=64, h=48, repeat=False)
    kw = {"num_frames": 5} if fn == "to_frames" else {"num_bins": 5}
    single = getattr(F, fn)(ev, width=64, height=48, parallel=False, **kw)
    par = getattr(F, fn)(ev, width=64, height=48, parallel=True, **kw)
    np.testing.assert_allclose(par, single, atol=1e-5)


def test_automatic_choice():
    assert not F.use_parallel(1000, 5 * 480 * 640)
    assert not F.use_parallel(10**7, 10**9)
    from numba import get_num_threads
    assert F.use_parallel(10**7, 5 * 480 * 640, ignore_load=True) == (get_num_threads() > 1)
    assert F.use_parallel(10, 10, parallel=True) and not F.use_parallel(10**8, 10, parallel=False)


def test_out_of_sensor_events_are_ignored():
    ev = make(100, seed=9, w=W, h=H, repeat=False)
    ev["x"][::3] = W + 5
    keep = ev["x"] < W
    np.testing.assert_allclose(F.histogram(ev, width=W, height=H), ref_hist(ev[keep], 1))


def test_rectify():
    ev = make(200, seed=10, repeat=False)
    before = ev.copy()
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    rmap = np.stack([xs + 2.4, ys - 0.6], axis=-1)  # shift right by 2.4 px, up by 0.6 px
    out = F.rectify(ev, rmap)
    np.testing.assert_array_equal(ev, before)
    exp_x = np.floor(ev["x"] + 2.4 + 0.5).astype(int)
    exp_y = np.floor(ev["y"] - 0.6 + 0.5).astype(int)
    keep = (exp_x < W) & (exp_y >= 0)
    assert 0 < keep.sum() < len(ev)
    np.testing.assert_array_equal(out["x"], exp_x[keep])
    np.testing.assert_array_equal(out["y"], exp_y[keep])
    np.testing.assert_array_equal(out["t"], ev["t"][keep])
    np.testing.assert_array_equal(out["p"], ev["p"][keep])
    with pytest.raises(UserError):
        F.rectify(ev, rmap[..., 0])


def test_bad_arguments():
    ev = make(10)
    with pytest.raises(UserError):
        F.to_frames(ev, num_frames=3, width=W, height=H, split_by="bogus")
    with pytest.raises(UserError):
        F.voxel_grid(ev, num_bins=0, width=W, height=H)
    with pytest.raises(UserError):
        F.voxel_grid(np.zeros(3), num_bins=2, width=W, height=H)
    with pytest.raises(UserError):
        F.time_surface(ev, width=W, height=H, tau_us=0)


def test_exact_bin_boundaries():
    """Events exactly on bin edges land in the bin the integer formulas give (the kernels divide by
    multiplying with a reciprocal plus a correction step)."""
    ev = make(0)
    span, B = 999_999, 7
    ts = np.unique(np.concatenate([(np.arange(B + 1) * span) // B, (np.arange(B + 1) * span) // B + 1,
                                   (np.arange(B + 1) * span) // B - 1]))
    ts = ts[(ts >= 0) & (ts <= span)]
    ev = np.zeros(len(ts), dtype=ev.dtype)
    ev["t"] = ts + 5_000_000_000
    ev["x"] = np.arange(len(ts)) % W
    ev["p"] = 1
    np.testing.assert_allclose(F.histogram(ev, width=W, height=H, num_bins=B), ref_hist(ev, B))
    np.testing.assert_allclose(F.stack_by_time(ev, num_bins=B, width=W, height=H), ref_sbt(ev, B))
    for split_by in ("time", "number"):
        np.testing.assert_allclose(F.to_frames(ev, num_frames=B, width=W, height=H, split_by=split_by),
                                   ref_frames(ev, B, split_by))


@pytest.mark.parametrize("dense", [False, True])
def test_voxel_grid_both_strategies(dense):
    """Sparse windows scatter straight into the planes, dense ones go through the bin accumulator; same result."""
    from eventvision.representations import _kernels as K
    n = int(K.PAIR_MIN_EVENTS_PER_CELL * W * H * 4 * (3 if dense else 0.5))
    ev = make(n, seed=21, repeat=False)
    np.testing.assert_allclose(F.voxel_grid(ev, num_bins=4, width=W, height=H, parallel=False), ref_voxel(ev, 4),
                               atol=1e-5, rtol=1e-5)
    # unsorted middle (first/last entries still the earliest/latest): same grid, through the direct scatter
    order = np.concatenate([[0], 1 + np.random.default_rng(1).permutation(n - 2), [n - 1]])
    np.testing.assert_allclose(F.voxel_grid(ev[order], num_bins=4, width=W, height=H, parallel=False),
                               ref_voxel(ev, 4), atol=1e-4, rtol=1e-5)


def _scenario(name, n=2000):
    """Dense events (several per output cell) shaped to hit the chunked kernel's edge cases."""
    ev = make(n, seed=len(name) + n, repeat=False)
    if name == "gaps":  # empty bins inside the window and a chunk boundary inside a gap
        t = np.sort(np.concatenate([np.random.default_rng(3).integers(1_000, 2_500, n // 2),
                                    np.random.default_rng(4).integers(9_000, 11_000, n - n // 2)]))
        ev["t"] = t
    elif name == "off_sensor":  # events outside the sensor, also as the first and last event of a chunk
        ev["x"][::7] = W + 3
        ev["y"][n // 2 - 1:n // 2 + 1] = H
        ev["x"][0] = W
    elif name == "same_time":  # every event at one timestamp: one bin
        ev["t"] = 5_000
    elif name == "unsorted":  # the first and last stay the extremes, the middle is shuffled
        order = np.concatenate([[0], 1 + np.random.default_rng(5).permutation(n - 2), [n - 1]])
        ev = ev[order]
    return ev


def _sorted(ev):
    return ev[np.argsort(ev["t"], kind="stable")]


SCENARIOS = ["plain", "gaps", "off_sensor", "same_time", "unsorted", "tiny"]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("chunks", [1, 2, 3, 5, 8])
def test_chunked_kernel_equals_reference(scenario, chunks, monkeypatch):
    """The multi-core kernel with any number of chunks (a chunk per thread) equals the numpy references:
    chunk boundaries inside a bin, in a gap between bins, more chunks than events, unsorted input."""
    import numba
    monkeypatch.setattr(numba, "get_num_threads", lambda: chunks)
    ev = _scenario(scenario) if scenario != "tiny" else make(3, seed=8, repeat=False)
    keep = (ev["x"] < W) & (ev["y"] < H)
    inside = ev[keep]
    B = 5
    tol = dict(atol=1e-4, rtol=1e-5)
    if scenario != "off_sensor":  # (ref_voxel takes t0 and tN from the events it adds)
        np.testing.assert_allclose(F.voxel_grid(ev, num_bins=B, width=W, height=H, parallel=True),
                                   ref_voxel(_sorted(ev), B), **tol)
    t0, t1 = int(ev["t"].min()), int(ev["t"].max())
    np.testing.assert_allclose(F.histogram(ev, num_bins=B, width=W, height=H, parallel=True, t_start=t0, t_end=t1),
                               ref_hist(inside, B, t0, t1), **tol)
    # a window narrower than the events: events before and after it are dropped
    w0, w1 = t0 + (t1 - t0) // 5, t1 - (t1 - t0) // 7
    np.testing.assert_allclose(F.stack_by_time(ev, num_bins=B, width=W, height=H, parallel=True, t_start=w0,
                                               t_end=w1), ref_sbt(inside, B, w0, w1), **tol)
    if scenario != "unsorted":  # number bins follow the event order; frames by time assume sorted input
        sbn = F.stack_by_number(ev, num_bins=B, width=W, height=H, parallel=True)
        np.testing.assert_allclose(sbn, F.stack_by_number(ev, num_bins=B, width=W, height=H, parallel=False), **tol)
        if scenario != "off_sensor":
            np.testing.assert_allclose(sbn, ref_sbn(ev, B), **tol)
            for split_by in ("number", "time"):
                np.testing.assert_allclose(F.to_frames(ev, num_frames=B, width=W, height=H, split_by=split_by,
                                                       parallel=True), ref_frames(ev, B, split_by), **tol)


def test_chunk_layout_shares_only_boundary_planes():
    """Two chunks of sorted events split inside bin 2 of 6: the voxel grid's planes 2 and 3 are shared
    (bin 2's events of both chunks spill into plane 3), chunk 0 owns them, chunk 1 keeps two edge slots."""
    from eventvision.representations import _kernels as K
    t = np.arange(1000, dtype=np.int64)
    bounds, bins, planes, owner, edge_base = K._chunk_layout(t, K.MODE_VOXEL, 6, 1, 0, 999, 5 / 999, 0, 2)
    assert bounds.tolist() == [0, 500, 1000]
    assert bins.tolist() == [[0, 2], [2, 5]] and planes.tolist() == [[0, 3], [2, 5]]
    assert owner.tolist() == [0, 0, 0, 0, 1, 1]
    assert edge_base.tolist() == [0, 0, 2]
    # per-polarity counts: bins are not spilled into, so only bin 2's two channel planes are shared
    _, _, planes, owner, edge_base = K._chunk_layout(t, K.MODE_TIME_COUNT, 5, 2, 0, 999, 0.0, 0, 2)
    assert planes.tolist() == [[0, 5], [4, 9]] and owner.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert edge_base.tolist() == [0, 0, 2]
    # a plane no chunk touches has no owner (zeros after the merge): events only in bins 0-1 of 5
    _, _, planes, owner, edge_base = K._chunk_layout(t, K.MODE_TIME_COUNT, 5, 1, 0, 2499, 0.0, 0, 1)
    assert owner.tolist() == [0, 0, -1, -1, -1] and edge_base.tolist() == [0, 0]


def test_bin_key_ranges_match_the_bin_formula():
    """The per-bin key ranges that let the kernel skip the bin formula give exactly the formula's bins."""
    from eventvision.representations import _kernels as K
    for mode, t0, t_end, idiv in [(K.MODE_TIME_COUNT, 10, 10 + 999_999, 0), (K.MODE_TIME_POLARITY, 0, 7, 0),
                                  (K.MODE_TIME_COUNT, 5, 5, 0), (K.MODE_FLOORTIME_COUNT, 3, 0, 13),
                                  (K.MODE_NUMBER_COUNT, 0, 0, 4), (K.MODE_NUMBER_POLARITY, 0, 0, 0)]:
        B = 7
        span = t_end - t0
        inv = K._reciprocal(mode, t0, t_end, idiv)
        edges = t0 + (np.arange(B + 1) * max(span, 1)) // B
        keys = np.arange(0, 200) if mode in (K.MODE_NUMBER_COUNT, K.MODE_NUMBER_POLARITY) else \
            np.unique(np.concatenate([np.arange(t0 - 2, t0 + 120), edges - 1, edges, edges + 1, [t_end, t_end + 1]]))
        for key in keys:
            i, ti = (int(key), 0) if mode in (K.MODE_NUMBER_COUNT, K.MODE_NUMBER_POLARITY) else (0, int(key))
            b = K._event_bin(mode, i, ti, t0, t_end, span, B, idiv, inv)
            if b < 0:
                continue
            lo, hi = K._bin_keys(mode, b, B, t0, t_end, idiv)
            assert lo <= key < hi, (mode, key, b, lo, hi)
