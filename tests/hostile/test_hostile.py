"""Hostile inputs, command by command: every case is one row of CASES.

Each case runs ``eventvision ARGV`` in a forked child (imports done once in this process, so a case
costs milliseconds, not an interpreter start) under an address-space ceiling (RLIMIT_AS: the child may
grow by at most ``mem_mb`` beyond what this process already maps) and asserts:

* the exit status (2 for bad input, 130 for Ctrl-C, 143 for SIGTERM);
* exactly one line on stderr, ``eventvision: error: ...`` naming the file or option, no traceback;
* the sha256 of every input file unchanged (inputs live in one folder shared by all cases);
* nothing left behind in the case's output folder (no partial output, no temporary file).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import signal
import sys
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from eventvision.cli.main import main
from eventvision.events.core import make_events
from eventvision.events.h5 import write_dsec_events_h5, write_stereo_h5

KITTI_LINE = "{f} {tid} Car 0 0 -1.57 100.0 120.0 200.0 180.0 1.5 1.6 3.9 {x} 1.6 {z} 0.1 {score}\n"
CALIB = ("".join(f"{k}: 700 0 600 {-380 if k == 'P3' else 0} 0 700 180 0 0 0 1 0\n" for k in ("P0", "P1", "P2", "P3"))
         + "R_rect: 1 0 0 0 1 0 0 0 1\n" + "Tr_velo_cam: " + " ".join(["0"] * 12) + "\n")


# --------------------------------------------------------------------------------------------- inputs
def _events(n=2000, w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, w, n), rng.integers(0, h, n), np.sort(rng.integers(0, 2_000_000, n)),
                       rng.integers(0, 2, n))


def _dsec(path: Path, edit=None) -> None:
    write_dsec_events_h5(path, _events(), width=64, height=48, compression="none")
    if edit is not None:
        with h5py.File(path, "r+") as f:
            edit(f)


def _replace(f, name, value):
    del f[name]
    f[name] = value


def _mvsec(path: Path, edit) -> None:
    ev = _events(5000, 346, 260)
    arr = np.stack([ev["x"], ev["y"], ev["t"] / 1e6, ev["p"]], 1).astype(np.float64)
    edit(arr)
    with h5py.File(path, "w") as f:
        f["davis/left/events"] = arr
        f["davis/right/events"] = arr


def _npz_bomb(path: Path) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10,)})
    buf.write(b"\0" * 64)
    with zipfile.ZipFile(path, "w") as z:
        for k in "xytp":
            z.writestr(f"{k}.npy", buf.getvalue())


def _kitti(root: Path, *, label_extra="", calib=CALIB) -> None:
    (root / "label_02").mkdir(parents=True)
    (root / "calib").mkdir()
    lines = "".join(KITTI_LINE.format(f=f, tid=1, x=2.0, z=20.0 - f * 0.1, score="").replace(" \n", "\n")
                    for f in range(20))
    (root / "label_02" / "0000.txt").write_text(lines + label_extra)
    Path(root / "calib" / "0000.txt").write_bytes(calib.encode() if isinstance(calib, str) else calib)


def _pred(folder: Path, extra: str | bytes = "") -> None:
    folder.mkdir(parents=True)
    text = "".join(KITTI_LINE.format(f=f, tid=1, x=2.0, z=20.0 - f * 0.1, score="0.9") for f in range(20))
    data = text.encode() + (extra.encode() if isinstance(extra, str) else extra)
    (folder / "0000.txt").write_bytes(data)


def build_inputs(d: Path, big: Path) -> None:
    d.mkdir()
    big.mkdir()
    with open(big / "endless_header.raw", "wb") as fh:  # sparse: 1.5 GB that takes no disk (nor hashing time)
        fh.write(b"% evt 3.0 ")
        fh.truncate(1_500_000_000)
    with open(big / "endless_header.aedat", "wb") as fh:  # the same for an AEDAT 3.1 '#' header
        fh.write(b"#!AER-DAT3.1\r\n#Source 1: DVS128")
        fh.truncate(1_500_000_000)
    np.save(d / "ev.npy", _events())
    bad = np.zeros(3, dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "i1")])
    bad["x"], bad["y"], bad["t"], bad["p"] = [1, -5, 2], [1, 1, 1], [1, 2, 3], [1, 0, 1]
    np.save(d / "neg_x.npy", bad)
    strx = np.zeros(2, dtype=[("x", "U3"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])
    np.save(d / "str_x.npy", strx)
    os.link(d / "ev.npy", d / "ev_hardlink.npy")
    os.symlink(d / "ev.npy", d / "ev_symlink.npy")
    ev = _events()
    np.savez(d / "w_str.npz", x=ev["x"], y=ev["y"], t=ev["t"], p=ev["p"], width="abc", height=48)
    np.savez(d / "t_off_bytes.npz", x=ev["x"], y=ev["y"], t=ev["t"], p=ev["p"], width=64, height=48,
             t_offset=np.bytes_(b"12"))
    _npz_bomb(d / "bomb.npz")
    _dsec(d / "dsec_ok.h5")
    _dsec(d / "w_str.h5", lambda f: f.attrs.__setitem__("width", "sixty-four"))
    _dsec(d / "w_nan.h5", lambda f: f.attrs.__setitem__("width", np.nan))
    _dsec(d / "w_array.h5", lambda f: f.attrs.__setitem__("width", np.array([64, 64])))
    _dsec(d / "w_huge.h5", lambda f: f.attrs.__setitem__("height", 10 ** 9))
    _dsec(d / "t_off_bytes.h5", lambda f: _replace(f, "t_offset", np.bytes_(b"0")))
    _dsec(d / "ms_bytes.h5", lambda f: _replace(f, "ms_to_idx", np.array([b"0", b"1"])))
    _dsec(d / "ms_huge.h5", lambda f: (f.__delitem__("ms_to_idx"), f.create_dataset(
        "ms_to_idx", shape=(10 ** 10,), dtype="<u8", chunks=(1 << 20,))))
    _dsec(d / "x_group.h5", lambda f: (f.__delitem__("events/x"), f.create_group("events/x")))
    (d / "seq" / "events" / "left").mkdir(parents=True)
    (d / "seq" / "events" / "right").mkdir(parents=True)
    _dsec(d / "seq" / "events" / "left" / "events.h5")
    _dsec(d / "seq" / "events" / "right" / "events.h5")
    for cam, size in (("left", 64), ("right", 80)):
        (d / "seq_sizes" / "events" / cam).mkdir(parents=True)
        _dsec(d / "seq_sizes" / "events" / cam / "events.h5", lambda f, w=size: f.attrs.__setitem__("width", w))
    write_stereo_h5(d / "stereo.h5", _events(), _events(seed=1), width=64, height=48, compression="none")

    def nan_x(a):
        a[10, 0] = np.nan

    def back_t(a):
        a[2500, 2] = 0.01

    def inf_t(a):
        a[7, 2] = np.inf
    _mvsec(d / "nan_x_data.hdf5", nan_x)
    _mvsec(d / "back_t_data.hdf5", back_t)
    _mvsec(d / "inf_t_data.hdf5", inf_t)
    (d / "huge_geom.raw").write_bytes(b"% evt 3.0\n% geometry 99999999x5\n% end\n" + b"\0" * 64)
    (d / "cfg.yaml").write_text("_base_: toy/default\ntrain:\n  epochs: 1\n")
    (d / "cfg_latin1.yaml").write_bytes("_base_: toy/default\n# caf\xe9\n".encode("latin-1"))
    (d / "cfg_neg_batch.yaml").write_text("_base_: toy/default\ntrain:\n  batch_size: -4\n")
    (d / "cfg_betas.yaml").write_text("_base_: toy/default\ntrain:\n  optimizer:\n    betas: [0.9]\n")
    (d / "cfg_split.yaml").write_text("_base_: toy/default\ntrain:\n  val_split: holdout\n")
    (d / "model.pt").write_bytes(b"not a checkpoint, but an input all the same")
    (d / "video.mp4").write_bytes(b"\0\0\0\x18ftypmp42 not really a video")
    _kitti(d / "kitti")
    _kitti(d / "kitti_latin1", label_extra="0 1 Caf\xe9 0 0 0 1 1 2 2 1 1 1 1 1 1 0\n")
    Path(d / "kitti_latin1" / "label_02" / "0000.txt").write_bytes(
        (d / "kitti_latin1" / "label_02" / "0000.txt").read_text().encode("latin-1"))
    _kitti(d / "kitti_calib_bin", calib=b"P0: \xff\xfe\x00binary\n")
    _pred(d / "pred")
    _pred(d / "pred_nan_score", "20 1 Car 0 0 0 100 120 200 180 1.5 1.6 3.9 2 1.6 18 0.1 nan\n")
    _pred(d / "pred_nan_loc", "20 1 Car 0 0 0 100 120 200 180 1.5 1.6 3.9 nan 1.6 18 0.1 0.5\n")
    _pred(d / "pred_neg_size", "20 1 Car 0 0 0 100 120 200 180 -1.5 1.6 3.9 2 1.6 18 0.1 0.5\n")
    _pred(d / "pred_far_frame", "30000000 1 Car 0 0 0 100 120 200 180 1.5 1.6 3.9 2 1.6 18 0.1 0.5\n")
    _pred(d / "pred_past_frame", "999999 1 Car 0 0 0 100 120 200 180 1.5 1.6 3.9 2 1.6 18 0.1 0.5\n")
    _pred(d / "pred_binary", b"\x89PNG\r\n\x1a\n\xff\xff\n")
    _pred(d / "pred_long_line", "0" * 200_000 + "\n")
    (d / "emission_latin1.txt").write_bytes("0000 0 10.0\n0000 1 caf\xe9\n".encode("latin-1"))
    (d / "emission_far.txt").write_text("0000 99999999 10.0\n")
    (d / "latencies_nan.txt").write_text("120\nnan\n")
    (d / "latencies_neg.txt").write_text("120\n-5\n")
    (d / "emission_list.json").write_text("[1, 2, 3]")
    (d / "emission_inf.json").write_text('{"0000": [[1e400, 5.0]]}')
    _checkpoints(d)


def _checkpoints(d: Path) -> None:
    """Hand-edited toy checkpoints: a list for a config, an invalid value, a config that builds nothing."""
    from eventvision.config import load_config
    from eventvision.engine.checkpoint import save_checkpoint

    cfg = load_config("toy/default").to_dict()
    save_checkpoint(d / "ckpt_list_cfg.pt", task="toy", config=[1, 2], model={})
    save_checkpoint(d / "ckpt_neg_hidden.pt", task="toy", config={**cfg, "model": {**cfg["model"], "hidden": -3}},
                    model={})
    save_checkpoint(d / "ckpt_model_str.pt", task="toy", config={**cfg, "model": "tiny"}, model={})
    save_checkpoint(d / "ckpt_task.pt", task="../../etc", config=cfg, model={})


# ------------------------------------------------------------------------------------------------ cases
@dataclass(frozen=True)
class Case:
    id: str
    argv: str                 # {in}: inputs, {big}: sparse big inputs, {out}: this case's empty output folder
    names: str                # substring the one-line message must contain (the file or option)
    rc: int = 2
    mem_mb: int = 1500        # address-space growth allowed over this process


SAP = "eval sap --gt {in}/kitti --pred {in}/pred --seqs 0"
CASES = [
    # --- data loss: an output onto/into an input -------------------------------------------------------
    Case("convert-same-file", "convert {in}/ev.npy {in}/ev.npy --force", "ev.npy"),
    Case("convert-hard-link", "convert {in}/ev.npy {in}/ev_hardlink.npy --force", "ev_hardlink.npy"),
    Case("convert-symlink", "convert {in}/ev.npy {in}/ev_symlink.npy --force", "ev_symlink.npy"),
    Case("convert-into-input-folder", "convert {in}/seq {in}/seq/out.h5", "inside the input folder"),
    Case("convert-below-a-file", "convert {in}/ev.npy {in}/ev.npy/out.h5", "not a folder"),
    Case("convert-onto-folder", "convert {in}/ev.npy {out}", "exists"),
    Case("sap-json-onto-result", SAP + " --latency-ms 0 --json {in}/pred/0000.txt", "0000.txt"),
    Case("sap-json-onto-label", SAP + " --json {in}/kitti/label_02/0000.txt", "0000.txt"),
    Case("sap-plots-into-gt", SAP + " --plots {in}/kitti/plots", "inside the input folder"),
    Case("sap-json-onto-latencies", SAP + " --latencies {in}/latencies_neg.txt --json {in}/latencies_neg.txt",
         "latencies_neg.txt"),
    Case("profile-json-onto-checkpoint", "profile toy --checkpoint {in}/model.pt --json {in}/model.pt",
         "model.pt"),
    Case("profile-json-onto-config", "profile toy --config {in}/cfg.yaml --json {in}/cfg.yaml", "cfg.yaml"),
    Case("profile-json-below-file", "profile toy --json {in}/cfg.yaml/report.json", "not a folder"),
    Case("demo-record-onto-source", "demo gesture --source {in}/video.mp4 --record {in}/video.mp4 --headless",
         "video.mp4"),
    Case("run-stereo-into-input", "run stereo --input {in}/seq --output {in}/seq/run", "seq"),
    Case("train-output-is-config", "train toy --config {in}/cfg.yaml --output-dir {in}/cfg.yaml", "cfg.yaml"),
    Case("eval-json-onto-checkpoint", "eval toy --checkpoint {in}/model.pt --json {in}/model.pt", "model.pt"),
    # --- silently wrong results -> refused --------------------------------------------------------------
    Case("info-mvsec-nan-x", "info --verify {in}/nan_x_data.hdf5", "nan_x_data.hdf5"),
    Case("info-mvsec-inf-t", "info --verify {in}/inf_t_data.hdf5", "inf_t_data.hdf5"),
    Case("convert-mvsec-nan-x", "convert {in}/nan_x_data.hdf5 {out}/o.h5", "nan_x_data.hdf5"),
    Case("convert-mvsec-back-t", "convert {in}/back_t_data.hdf5 {out}/o.h5", "not monotonic"),
    # fails mid-run, after the output folder was made: the folders it made are removed again
    Case("run-stereo-mvsec-back-t", "run stereo --input {in}/back_t_data.hdf5 --output {out}/r/s --method sgbm",
         "not monotonic"),
    Case("info-npy-negative-x", "info --verify {in}/neg_x.npy", "neg_x.npy"),
    Case("convert-npy-negative-x", "convert {in}/neg_x.npy {out}/o.h5", "neg_x.npy"),
    Case("sap-nan-score", "eval sap --gt {in}/kitti --pred {in}/pred_nan_score --seqs 0",
         "score is not finite"),
    Case("sap-nan-location", "eval sap --gt {in}/kitti --pred {in}/pred_nan_loc --seqs 0", "not finite"),
    Case("sap-negative-size", "eval sap --gt {in}/kitti --pred {in}/pred_neg_size --seqs 0",
         "negative 3D box"),
    # --- malformed metadata and headers -> one line -----------------------------------------------------
    Case("info-h5-width-string", "info {in}/w_str.h5", "'width'"),
    Case("info-h5-width-nan", "info {in}/w_nan.h5", "'width'"),
    Case("info-h5-width-array", "info {in}/w_array.h5", "'width'"),
    Case("info-h5-height-huge", "info {in}/w_huge.h5", "'height'"),
    Case("info-h5-t-offset-bytes", "info {in}/t_off_bytes.h5", "t_offset"),
    Case("info-h5-ms-to-idx-bytes", "info {in}/ms_bytes.h5", "ms_to_idx"),
    Case("info-h5-ms-to-idx-huge", "info {in}/ms_huge.h5", "ms_to_idx"),
    Case("info-h5-group-for-dataset", "info {in}/x_group.h5", "events/x"),
    Case("convert-stereo-sizes-differ", "convert {in}/seq_sizes {out}/o.h5", "right sensor is 80x48"),
    Case("info-npz-width-string", "info {in}/w_str.npz", "'width'"),
    Case("info-npz-t-offset-bytes", "info {in}/t_off_bytes.npz", "t_offset"),
    Case("info-npz-declared-huge", "info {in}/bomb.npz", "bomb.npz"),
    Case("info-npy-string-field", "info {in}/str_x.npy", "'x'"),
    Case("info-raw-absurd-geometry", "info {in}/huge_geom.raw", "width 99999999"),
    Case("info-raw-endless-header", "info {big}/endless_header.raw", "header line", mem_mb=300),
    Case("info-aedat3-endless-header", "info {big}/endless_header.aedat", "header line", mem_mb=300),
    # --- text files: non-UTF-8, out-of-range numbers, unbounded lines -----------------------------------
    Case("sap-label-not-utf8", "eval sap --gt {in}/kitti_latin1 --pred {in}/pred --seqs 0", "UTF-8"),
    Case("sap-result-binary", "eval sap --gt {in}/kitti --pred {in}/pred_binary --seqs 0", "UTF-8"),
    Case("sap-result-endless-line", "eval sap --gt {in}/kitti --pred {in}/pred_long_line --seqs 0",
         "longer than", mem_mb=300),
    Case("sap-result-far-frame", "eval sap --gt {in}/kitti --pred {in}/pred_far_frame --seqs 0",
         "frame 30000000", mem_mb=500),
    Case("sap-result-frame-past-labels", "eval sap --gt {in}/kitti --pred {in}/pred_past_frame --seqs 0",
         "past the last labelled frame"),
    Case("sap-calib-binary", "eval sap --gt {in}/kitti_calib_bin --pred {in}/pred --seqs 0 --latency-ms 50 "
         "--strategy kf", "calib"),
    Case("sap-emission-not-utf8", SAP + " --emission {in}/emission_latin1.txt", "emission_latin1.txt"),
    Case("sap-emission-far-frame", SAP + " --emission {in}/emission_far.txt", "emission_far.txt"),
    Case("sap-emission-json-list", SAP + " --emission {in}/emission_list.json", "emission_list.json"),
    Case("sap-emission-json-inf-frame", SAP + " --emission {in}/emission_inf.json", "emission_inf.json"),
    Case("eval-checkpoint-config-list", "eval toy --checkpoint {in}/ckpt_list_cfg.pt", "not a mapping"),
    Case("eval-checkpoint-config-negative", "eval toy --checkpoint {in}/ckpt_neg_hidden.pt", "model.hidden"),
    Case("profile-checkpoint-config-unbuildable", "profile toy --checkpoint {in}/ckpt_model_str.pt",
         "ckpt_model_str.pt"),
    Case("profile-checkpoint-unknown-task", "profile toy --checkpoint {in}/ckpt_task.pt", "ckpt_task.pt"),
    Case("sap-latencies-nan", SAP + " --latencies {in}/latencies_nan.txt", "latencies_nan.txt"),
    Case("sap-latencies-negative", SAP + " --latencies {in}/latencies_neg.txt", "latencies_neg.txt"),
    Case("profile-config-not-utf8", "profile toy --config {in}/cfg_latin1.yaml", "cfg_latin1.yaml"),
    Case("profile-config-negative-batch", "profile toy --config {in}/cfg_neg_batch.yaml", "train.batch_size"),
    Case("profile-config-betas-length", "profile toy --config {in}/cfg_betas.yaml", "train.optimizer.betas"),
    Case("profile-config-unknown-split", "profile toy --config {in}/cfg_split.yaml", "train.val_split"),
    Case("profile-override-zero-hidden", "profile toy model.hidden=0", "model.hidden"),
    Case("profile-override-nan-lr", "profile toy train.optimizer.lr=.nan", "train.optimizer.lr"),
    # --- CLI numbers ------------------------------------------------------------------------------------
    Case("run-stereo-window-nan", "run stereo --output {out}/r --window-ms nan", "--window-ms"),
    Case("run-stereo-duration-inf", "run stereo --output {out}/r --duration-s inf", "--duration-s"),
    Case("run-stereo-window-negative", "run stereo --output {out}/r --window-ms -5", "--window-ms"),
    Case("demo-window-zero", "demo gesture --headless --window-ms 0", "--window-ms"),
    Case("demo-negative-width", "demo gesture --headless --width -640", "--width"),
    Case("convert-chunk-zero", "convert {in}/ev.npy {out}/o.h5 --chunk-events 0", "--chunk-events"),
    Case("sap-latency-nan", SAP + " --latency-ms nan", "--latency-ms"),
    Case("sap-patch-len-text", SAP + " --patch-len forty", "--patch-len"),
    Case("profile-batch-inf", "profile toy --batch-size 1e9999", "--batch-size"),
    Case("profile-e-mac-negative", "profile toy --e-mac -4.6", "--e-mac"),
    Case("eval-unknown-split", "eval toy --checkpoint {in}/model.pt --split holdout", "--split"),
    Case("eval-batch-negative", "eval toy --checkpoint {in}/model.pt --batch-size -1", "--batch-size"),
    Case("run-detect3d-latency-nan", "run detect3d --input {in}/kitti --output {out}/o --latency-ms nan",
         "--latency-ms"),
    Case("search-stereo-output-is-config", "search stereo --config {in}/cfg.yaml --output {in}/cfg.yaml",
         "cfg.yaml"),
    Case("bench-voxel-bins-zero", "bench voxel --bins 0", "--bins"),
    Case("demo-stereo-window-nan", "demo stereo --headless --window-ms nan", "--window-ms"),
    Case("bench-unknown", "bench nope", "nope"),
]


# ---------------------------------------------------------------------------------------------- runner
def _sha256_tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            out[str(p.relative_to(root))] = h.hexdigest()
        elif p.is_symlink():
            out[str(p.relative_to(root))] = "->" + os.readlink(p)
    return out


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_cli(argv: list[str], workdir: Path, *, mem_mb: int, signal_when=None) -> tuple[int, str, str]:
    """``eventvision argv`` in a forked child with stdout/stderr to files and RLIMIT_AS = now + mem_mb.

    ``signal_when``: (predicate, signum): send signum to the child once predicate() holds.
    """
    out_f, err_f = workdir / ".stdout", workdir / ".stderr"
    limit = _vm_size() + mem_mb * (1 << 20)
    pid = os.fork()
    if pid == 0:  # child
        rc = 1
        try:
            fd_out = os.open(out_f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fd_err = os.open(err_f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            os.environ["EVENTVISION_NO_PROGRESS"] = "1"
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # what the real interpreter would print: a traceback
                traceback.print_exc()
                rc = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(rc if isinstance(rc, int) else 1)
    deadline = time.monotonic() + 120
    sent = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if signal_when is not None and not sent and signal_when[0]():
            os.kill(pid, signal_when[1])
            sent = True
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"eventvision {' '.join(argv)} did not finish in 120 s")
        time.sleep(0.005)
    rc = os.waitstatus_to_exitcode(status)
    out, err = out_f.read_text(errors="replace"), err_f.read_text(errors="replace")
    out_f.unlink()
    err_f.unlink()
    return rc, out, err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import torch  # noqa: F401 - imported once here, shared by the forked children of the torch commands

    root = tmp_path_factory.mktemp("hostile")
    build_inputs(root / "in", root / "big")
    # warm the numba kernels for the column types the cases use, so each child loads nothing
    from eventvision.events._kernels import pack_events
    for dt in (np.float64, np.int16, np.uint16):
        t_dt, p_dt = (np.float64, np.float64) if dt is np.float64 else (np.int64, np.int8)
        pack_events(np.zeros(1, dt), np.zeros(1, dt), np.zeros(1, t_dt), np.zeros(1, p_dt))
    return root, _sha256_tree(root / "in")


def _check_one_line(err: str, names: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("eventvision: error:") or lines[0].startswith("eventvision: interrupted"), err
    assert names in lines[0], (names, err)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(world, case):
    root, hashes = world
    out = root / "out" / case.id
    out.mkdir(parents=True)
    big = root / "big" / "endless_header.raw"
    big_stat = big.stat()
    argv = case.argv.format(**{"in": root / "in", "big": root / "big", "out": out}).split()
    rc, _, err = run_cli(argv, root, mem_mb=case.mem_mb)
    assert rc == case.rc, err
    _check_one_line(err, case.names)
    assert _sha256_tree(root / "in") == hashes, "an input changed"
    after = big.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (big_stat.st_size, big_stat.st_mtime_ns, big_stat.st_ino), "the big input changed"
    assert sorted(os.listdir(out)) == [], "output left behind"


def _signalled_convert(root: Path, name: str, signum: int) -> tuple[Path, int, str]:
    """Convert a 400k-event file slowly and send ``signum`` once its temporary output exists."""
    src = root / "big.npy"
    if not src.exists():
        np.save(src, _events(400_000, 640, 480, seed=3))
    out = root / "out" / name
    out.mkdir(parents=True)
    started = lambda: any(".evtmp" in n for n in os.listdir(out))  # noqa: E731
    argv = ["convert", str(src), str(out / "o.h5"), "--chunk-events", "2000", "--compression", "gzip"]
    rc, _, err = run_cli(argv, root, mem_mb=1500, signal_when=(started, signum))
    return out, rc, err


@pytest.mark.parametrize("signum,rc", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_during_convert_removes_temp(world, signum, rc):
    out, rc_got, err = _signalled_convert(world[0], f"interrupt-{signum}", signum)
    assert rc_got == rc, err
    _check_one_line(err, "interrupted")
    assert os.listdir(out) == []


def test_killed_convert_leaves_a_temp_that_the_next_run_sweeps(world):
    root = world[0]
    out, rc, _ = _signalled_convert(root, "sigkill", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert [n for n in os.listdir(out) if ".evtmp" in n], "SIGKILL left no temp file: the test did not test"
    rc, _, err = run_cli(["convert", str(root / "in" / "ev.npy"), str(out / "small.h5")], root, mem_mb=1500)
    assert rc == 0, err
    assert os.listdir(out) == ["small.h5"]
    assert (out / "small.h5").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_every_command_has_a_case():
    from eventvision.cli.main import COMMANDS, TASK_COMMANDS
    covered = {c.argv.split()[0] for c in CASES} | {" ".join(c.argv.split()[:2]) for c in CASES}
    commands = set(COMMANDS) | {f"{v} {t}" for v, t in TASK_COMMANDS}
    assert commands <= covered, commands - covered


def test_right_image_of_another_size_is_refused(tmp_path):
    import cv2

    from eventvision.data.detect3d.kitti_tracking import read_stereo_pair
    from eventvision.errors import FileFormatError
    cv2.imwrite(str(tmp_path / "l.png"), np.zeros((40, 60, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "r.png"), np.zeros((40, 64, 3), np.uint8))
    with pytest.raises(FileFormatError, match="r.png: right image is 64x40 px but the left image l.png is 60x40"):
        read_stereo_pair(tmp_path / "l.png", tmp_path / "r.png")


def test_json_output_written_when_valid(world):
    root, _ = world
    out = root / "out" / "valid-sap"
    out.mkdir(parents=True)
    argv = (SAP + " --latency-ms 0 --json {out}/r.json").format(**{"in": root / "in", "out": out}).split()
    rc, _, err = run_cli(argv, root, mem_mb=1500)
    assert rc == 0, err
    assert json.loads((out / "r.json").read_text())["settings"]["frames"] == 20
    assert (out / "r.json").stat().st_mode & 0o777 == 0o666 & ~_umask()
