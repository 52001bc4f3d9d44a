"""``eventvision convert``: real samples to the h5 layouts, exact content, and bad input (exit 2, no output)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from eventvision.cli.main import main
from eventvision.events import open_recording, write_stereo_h5
from eventvision.events.core import compute_ms_to_idx, make_events


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["sample.aedat4", "evt3_sample.raw", "sample_ncars.dat"])
def test_convert_mono_sample_to_dsec_layout(capsys, tmp_path, shared_data, name):
    src = shared_data / "events" / name
    out = tmp_path / "out.h5"
    code, _, err = _run(capsys, "convert", src, out, "--chunk-events", 5000)
    assert code == 0, err
    ref = open_recording(src)
    ev = ref.read_all()
    got = open_recording(out)
    assert got.format == "dsec" and (got.width, got.height) == (ref.describe()["width"], ref.describe()["height"])
    back = got.read_all()
    back["t"] += got.meta.t_offset
    np.testing.assert_array_equal(back, ev)
    with h5py.File(out) as f:
        assert "32001" in f["events/t"]._filters  # Blosc, as DSEC
        np.testing.assert_array_equal(f["ms_to_idx"][:], compute_ms_to_idx(f["events/t"][:]))
        assert f["t_offset"][()] == got.meta.t_offset
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5"]


def test_convert_stereo_keeps_both_cameras(capsys, tmp_path):
    rng = np.random.default_rng(1)
    mk = lambda n: make_events(rng.integers(0, 64, n), rng.integers(0, 48, n),  # noqa: E731
                               np.sort(rng.integers(0, 3 * 10**6, n)), rng.integers(0, 2, n))
    left, right = mk(4000), mk(6000)
    write_stereo_h5(tmp_path / "in.h5", left, right, width=64, height=48, baseline_m=0.2, focal_px=70.0)
    code, _, err = _run(capsys, "convert", tmp_path / "in.h5", tmp_path / "out.h5", "--compression", "gzip")
    assert code == 0, err
    rec = open_recording(tmp_path / "out.h5")
    assert rec.is_stereo and (rec.baseline_m, rec.focal_px) == (0.2, 70.0)
    l, r = rec.read_all()
    np.testing.assert_array_equal(l, left)
    np.testing.assert_array_equal(r, right)


def test_convert_refuses_to_overwrite_input_and_existing_output(capsys, tmp_path, shared_data):
    src = tmp_path / "in.npy"
    np.save(src, make_events([1, 2], [1, 1], [1, 2], [1, 0]))
    before = src.read_bytes()
    code, _, err = _run(capsys, "convert", src, src)
    assert code == 2 and "is the input file" in err and src.read_bytes() == before
    (tmp_path / "exists.h5").write_bytes(b"keep")
    code, _, err = _run(capsys, "convert", src, tmp_path / "exists.h5")
    assert code == 2 and "already exists" in err and (tmp_path / "exists.h5").read_bytes() == b"keep"
    assert _run(capsys, "convert", src, tmp_path / "exists.h5", "--force")[0] == 0
    assert open_recording(tmp_path / "exists.h5").num_events == 2


@pytest.mark.parametrize("case", ["missing", "unknown", "truncated", "unsorted_late", "outside"])
def test_convert_bad_input_leaves_nothing(capsys, tmp_path, shared_data, case):
    src = tmp_path / f"in_{case}"
    if case == "unknown":
        src.write_bytes(b"hello world" * 10)
    elif case == "truncated":
        src = src.with_suffix(".aedat4")
        src.write_bytes((shared_data / "events" / "sample.aedat4").read_bytes()[:600_000])
    elif case == "unsorted_late":  # the problem sits in a late chunk: output must still not appear
        t = np.arange(20_000)
        t[15_000] = 3
        src = src.with_suffix(".npy")
        np.save(src, make_events(t % 50, t % 40, t, t % 2))
    elif case == "outside":
        src = src.with_suffix(".npz")
        np.savez(src, events=make_events([1, 2, 70], [1, 1, 1], [1, 2, 3], [1, 0, 1]), width=64, height=48)
    before = src.read_bytes() if src.exists() else None
    out = tmp_path / "out" / "o.h5"
    code, _, err = _run(capsys, "convert", src, out, "--chunk-events", 1000)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventvision: error:") and "Traceback" not in err
    assert not out.exists() and (not out.parent.exists() or list(out.parent.iterdir()) == [])
    assert (src.read_bytes() if src.exists() else None) == before


def test_convert_dsec_sequence_puts_right_on_left_clock(capsys, tmp_path):
    import hdf5plugin

    rng = np.random.default_rng(2)
    cams = {}
    for cam, off in (("left", 1_000_000), ("right", 1_250_000)):
        t = np.sort(rng.integers(2_000_000, 4_000_000, 3000))
        ev = make_events(rng.integers(0, 640, 3000), rng.integers(0, 480, 3000), t, rng.integers(0, 2, 3000))
        cams[cam] = (ev, off)
        d = tmp_path / "seq" / "events" / cam
        d.mkdir(parents=True)
        blosc = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
        with h5py.File(d / "events.h5", "w") as f:
            for k, dt in (("x", "<u2"), ("y", "<u2"), ("t", "<u4"), ("p", "u1")):
                col = ev[k] - off if k == "t" else (ev[k] > 0 if k == "p" else ev[k])
                f.create_dataset(f"events/{k}", data=np.asarray(col).astype(dt), **blosc)
            f.create_dataset("ms_to_idx", data=compute_ms_to_idx(ev["t"] - off))
            f.create_dataset("t_offset", data=np.int64(off))
    code, _, err = _run(capsys, "convert", tmp_path / "seq", tmp_path / "seq.h5")
    assert code == 0, err
    rec = open_recording(tmp_path / "seq.h5")
    assert rec.is_stereo and rec.left.meta.t_offset == rec.right.meta.t_offset == 1_000_000
    l, r = rec.read_all()
    np.testing.assert_array_equal(l["t"] + 1_000_000, cams["left"][0]["t"])
    np.testing.assert_array_equal(r["t"] + 1_000_000, cams["right"][0]["t"])  # absolute times preserved


def _shifted_map(width, height, dx):
    """A DSEC-convention rectify map moving every raw pixel by ``dx`` columns (map[y, x] = (x + dx, y))."""
    from eventvision.data.stereo.export import identity_rectify_map
    rmap = identity_rectify_map(width, height)
    rmap[..., 0] += dx
    return rmap


def _raw(events, dx, width):
    """Rectified events -> the raw ones a camera with map shift ``dx`` recorded."""
    keep = (events["x"].astype(np.int64) - dx >= 0) & (events["x"].astype(np.int64) - dx < width)
    out = events[keep].copy()
    out["x"] = (out["x"].astype(np.int64) - dx).astype(out["x"].dtype)
    return out


@pytest.mark.parametrize("layout", ["dsec", "mvsec"])
def test_convert_stereo_keeps_rectification_error_unchanged(capsys, tmp_path, layout):
    """A rig whose raw coordinates need rectification: run stereo on the original and on the converted file
    gives the same disparity, hence the same error against the exact GT (before the fix: 1.2 -> 5.9 px)."""
    import json
    from eventvision.data.stereo.export import write_dsec_sequence, write_mvsec_sequence
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene
    width, height = (160, 120) if layout == "dsec" else (346, 260)
    cam = StereoCamera(width=width, height=height, focal_px=0.8 * width, baseline_m=0.1)
    scene = StereoScene.random(cam, 7)
    left, right = scene.events(110_000, frame_dt_us=2000)
    maps = (_shifted_map(width, height, 3), _shifted_map(width, height, -4))
    raw_l, raw_r = _raw(left, 3, width), _raw(right, -4, width)
    if layout == "dsec":
        src = write_dsec_sequence(tmp_path / "seq", left=raw_l, right=raw_r, width=width, height=height,
                                  rectify_maps=maps)
        calib = src / "calibration"
        calib.mkdir()
        q = "  - [1, 0, 0, -80]\n  - [0, 1, 0, -60]\n  - [0, 0, 0, 128.0]\n  - [0, 0, 10.0, 0]\n"
        (calib / "cam_to_cam.yaml").write_text("disparity_to_depth:\n  cams_03:\n" + q)
    else:
        src, _ = write_mvsec_sequence(tmp_path / "indoor_flying", "indoor_flying1", left=raw_l, right=raw_r,
                                      rectify_maps=maps)
    dst = tmp_path / "conv.h5"
    code, _, err = _run(capsys, "convert", src, dst)
    assert code == 0, err
    with h5py.File(dst) as f:
        assert f.attrs["rectified"] == 1
        if layout == "dsec":
            assert f.attrs["focal_px"] == 128.0 and f.attrs["baseline_m"] == pytest.approx(0.1)
        else:
            assert f.attrs["focal_baseline_px_m"] == pytest.approx(19.941772)
    outs = {}
    for name, inp in (("before", src), ("after", dst)):
        code, _, err = _run(capsys, "run", "stereo", "--method", "sgbm", "--input", inp,
                            "--output", tmp_path / name, "--png-every", "0")
        assert code == 0, err
        with h5py.File(tmp_path / name / "disparity.h5") as f:
            outs[name] = (f["disparity"][:], f["timestamps_us"][:])
    np.testing.assert_array_equal(outs["after"][0], outs["before"][0])
    np.testing.assert_array_equal(outs["after"][1], outs["before"][1])
    disp, ts = outs["after"]
    gt = scene.disparity(int(ts[-1]))
    ok = np.isfinite(gt) & np.isfinite(disp[-1])
    assert np.median(np.abs(disp[-1][ok] - gt[ok])) < 0.5     # rectified: SGBM finds the true disparity
    assert json.loads((tmp_path / "after" / "summary.json").read_text())["windows"] == len(disp)


def test_a_file_converted_without_maps_says_so_when_run(capsys, tmp_path):
    """An MVSEC file without its calibration maps converts with rectified = 0; run stereo reads the flag back
    and notes that the events are unrectified. A flag that is not 0/1 is one line and exit 2."""
    from eventvision.data.stereo.export import write_mvsec_sequence
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene
    cam = StereoCamera(width=346, height=260, focal_px=200.0, baseline_m=0.1)
    left, right = StereoScene.random(cam, 3).events(60_000, frame_dt_us=5000)
    src, _ = write_mvsec_sequence(tmp_path / "flying", "indoor_flying1", left=left, right=right)
    dst = tmp_path / "conv.h5"
    assert _run(capsys, "convert", src, dst)[0] == 0
    with h5py.File(dst) as f:
        assert f.attrs["rectified"] == 0
    code, _, err = _run(capsys, "run", "stereo", "--method", "sgbm", "--input", dst, "--output", tmp_path / "o",
                        "--png-every", "0")
    assert code == 0 and "rectified = 0" in err and "unrectified" in err
    with h5py.File(dst, "r+") as f:
        f.attrs["rectified"] = "yes"
    code, _, err = _run(capsys, "run", "stereo", "--method", "sgbm", "--input", dst, "--output", tmp_path / "o2")
    assert code == 2 and err.count("\n") == 1 and "'rectified' must be 0 or 1" in err
