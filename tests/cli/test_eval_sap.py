"""`eventvision eval sap` end to end on the real KITTI Tracking labels."""

from __future__ import annotations

import json

import pytest

from eventvision.cli.main import main
from eventvision.formats import kitti as io
from eventvision.evaluation.kitti.synthetic import jitter_predictions


@pytest.fixture()
def kitti_root(shared_data):
    return shared_data / "kitti_tracking"


def _write_preds(kitti_root, out_dir, seqs, *, gt=False):
    out_dir.mkdir(exist_ok=True)
    for k, seq in enumerate(seqs):
        objs = io.read_sequence_labels(kitti_root, seq)
        preds = objs[objs["type"] != "DontCare"] if gt else jitter_predictions(objs, seed=k, pos_std_m=0.1)
        io.write_result_file(out_dir / f"{seq}.txt", preds, with_score=not gt)
    return out_dir


def test_gt_as_predictions_json_and_plots(kitti_root, tmp_path, capsys):
    pred = _write_preds(kitti_root, tmp_path / "pred", ["0001", "0006"], gt=True)  # no score column
    out = tmp_path / "res.json"
    rc = main(["eval", "sap", "--gt", str(kitti_root), "--pred", str(pred), "--seqs", "0001,0006",
               "--latency-ms", "0", "--json", str(out), "--plots", str(tmp_path / "plots")])
    assert rc == 0
    res = json.loads(out.read_text())
    assert set(res) >= {"offline", "streaming"}
    for mode in ("offline", "streaming"):
        assert set(res[mode]) == {"Car", "Pedestrian", "Cyclist"}
        for metric in ("bbox", "bev", "3d"):
            assert res[mode]["Car"][metric]["R40"] == pytest.approx([100.0] * 3)
            assert res[mode]["Car"][metric]["R11"] == pytest.approx([100.0] * 3)
            assert res[mode]["Cyclist"][metric]["R40"] == [0.0] * 3  # no cyclist in 0001/0006
    assert res["settings"]["frames"] == 447 + 270
    for cls in ("Car", "Pedestrian", "Cyclist"):
        png = tmp_path / "plots" / f"pr_{cls}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert "offline AP" in text and "streaming AP" in text and "Car" in text


def test_streaming_latency_and_split(kitti_root, tmp_path, capsys):
    pred = _write_preds(kitti_root, tmp_path / "pred", ["0001"])
    out0, out1, out2 = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    args = ["eval", "sap", "--gt", str(kitti_root), "--pred", str(pred), "--seqs", "1"]
    assert main(args + ["--latency-ms", "0", "--json", str(out0)]) == 0
    assert main(args + ["--latency-ms", "250", "--strategy", "kf", "--json", str(out1)]) == 0
    lat = tmp_path / "lat.txt"
    lat.write_text("180\n90\n")
    assert main(args + ["--latencies", str(lat), "--split", "val", "--json", str(out2)]) == 0
    r0, r1, r2 = (json.loads(p.read_text()) for p in (out0, out1, out2))
    assert r0["streaming"] == r0["offline"]
    assert 50.0 < r0["offline"]["Car"]["3d"]["R40"][1] < 100.0
    assert r1["streaming"]["Car"]["3d"]["R40"][1] < r1["offline"]["Car"]["3d"]["R40"][1]
    # the release's split_patch_in_scene: 447 frames -> ten 40-frame patches + 400..447; val = odd patches
    assert r2["settings"]["frames"] == 40 * 5
    out3 = tmp_path / "d.json"
    assert main(args + ["--latencies", str(lat), "--split", "val", "--patch-rule", "alternating",
                        "--json", str(out3)]) == 0
    assert json.loads(out3.read_text())["settings"]["frames"] == 40 * 5 + 7  # 40-80, ..., 440-447
    capsys.readouterr()


def test_sampled_latencies_deterministic_by_seed_and_release_kf(kitti_root, tmp_path, capsys):
    pred = _write_preds(kitti_root, tmp_path / "pred", ["0001"])
    lat = tmp_path / "lat.txt"
    lat.write_text("60\n130\n250\n")
    args = ["eval", "sap", "--gt", str(kitti_root), "--pred", str(pred), "--seqs", "1", "--latencies", str(lat),
            "--latency-draw", "random", "--split", "val"]
    outs = [tmp_path / f"{k}.json" for k in range(4)]
    for out, extra in zip(outs, (["--seed", "3"], ["--seed", "3"], ["--seed", "4"],
                                 ["--seed", "3", "--strategy", "kf-streamdsgn"])):
        assert main(args + extra + ["--json", str(out)]) == 0
    r = [json.loads(p.read_text()) for p in outs]
    assert r[0]["streaming"] == r[1]["streaming"] and r[0]["streaming"] != r[2]["streaming"]
    assert r[3]["settings"]["strategy"] == "kf-streamdsgn" and r[3]["settings"]["latency_draw"] == "random"
    capsys.readouterr()


def test_image_height_read_from_image_02(kitti_root, tmp_path):
    """A render whose image_02 frames are 125 px high is evaluated at KITTI's pixel scale without
    --image-height (2D boxes and difficulty levels as at full size)."""
    import cv2
    import numpy as np
    seq = "0001"
    gt = io.read_sequence_labels(kitti_root, seq)
    root = tmp_path / "small"
    (root / "label_02").mkdir(parents=True)
    (root / "calib").mkdir()
    (root / "image_02" / seq).mkdir(parents=True)
    (root / "calib" / f"{seq}.txt").write_text((io.tracking_root(kitti_root) / "calib" / f"{seq}.txt").read_text())
    cv2.imwrite(str(root / "image_02" / seq / "000000.png"), np.zeros((125, 414, 3), np.uint8))
    io.write_result_file(root / "label_02" / f"{seq}.txt", _scaled_copy(gt, 1 / 3), with_score=False)
    pred = tmp_path / "pred"
    pred.mkdir()
    io.write_result_file(pred / f"{seq}.txt", _scaled_copy(gt[gt["type"] != "DontCare"], 1 / 3), with_score=False)
    out = tmp_path / "r.json"
    assert main(["eval", "sap", "--gt", str(root), "--pred", str(pred), "--seqs", seq, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["offline"]["Car"]["3d"]["R40"] == pytest.approx([100.0] * 3)


def test_emission_file(kitti_root, tmp_path):
    pred = _write_preds(kitti_root, tmp_path / "pred", ["0006"])
    em = tmp_path / "em.txt"
    em.write_text("".join(f"0006 {i} {100 * i + 150}\n" for i in range(270)))  # = a fixed 150 ms
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    base = ["eval", "sap", "--gt", str(kitti_root), "--pred", str(pred), "--seqs", "0006"]
    assert main(base + ["--emission", str(em), "--json", str(a)]) == 0
    assert main(base + ["--latency-ms", "150", "--json", str(b)]) == 0
    assert json.loads(a.read_text())["streaming"] == json.loads(b.read_text())["streaming"]


def _scaled_copy(objects, factor):
    out = objects.copy()
    out["bbox"] = out["bbox"] * factor
    return out


def test_image_height_rescales_boxes_of_downscaled_renders(kitti_root, tmp_path):
    """The same sequence rendered at 1/3 size (2D boxes / 3, image 125 px high) evaluated with
    --image-height 125 gives KITTI's numbers at full size; without it, objects change difficulty."""
    import shutil
    seq = "0001"
    full_pred = _write_preds(kitti_root, tmp_path / "pred_full", [seq])
    small_root = tmp_path / "small"
    (small_root / "label_02").mkdir(parents=True)
    shutil.copytree(kitti_root / ("training" if (kitti_root / "training").is_dir() else ".") / "calib",
                    small_root / "calib")
    gt = io.read_sequence_labels(kitti_root, seq)
    io.write_result_file(small_root / "label_02" / f"{seq}.txt", _scaled_copy(gt, 1 / 3), with_score=False)
    small_pred = tmp_path / "pred_small"
    small_pred.mkdir()
    io.write_result_file(small_pred / f"{seq}.txt", _scaled_copy(io.read_label_file(full_pred / f"{seq}.txt"), 1 / 3))
    out = {k: tmp_path / f"{k}.json" for k in ("full", "small_rescaled", "small_raw")}
    base = ["eval", "sap", "--seqs", seq, "--latency-ms", "120"]
    assert main(base + ["--gt", str(kitti_root), "--pred", str(full_pred), "--json", str(out["full"])]) == 0
    assert main(base + ["--gt", str(small_root), "--pred", str(small_pred), "--image-height", "125",
                        "--json", str(out["small_rescaled"])]) == 0
    assert main(base + ["--gt", str(small_root), "--pred", str(small_pred), "--json", str(out["small_raw"])]) == 0
    full, rescaled, raw = (json.loads(out[k].read_text()) for k in ("full", "small_rescaled", "small_raw"))
    for mode in ("offline", "streaming"):
        for metric in ("bbox", "bev", "3d"):  # label files keep 2 decimals, so boxes differ by < 0.015 px
            assert rescaled[mode]["Car"][metric]["R40"] == pytest.approx(full[mode]["Car"][metric]["R40"], abs=0.5)
    assert raw["offline"]["Car"]["3d"]["R40"] != pytest.approx(full["offline"]["Car"]["3d"]["R40"], abs=0.5)
    assert rescaled["settings"]["image_height"] == 125


@pytest.mark.parametrize("case", ["no_pred_file", "bad_seqs", "bad_emission", "bad_root", "bad_line", "both_sources",
                                  "bad_image_height", "json_is_input"])
def test_bad_input_exits_2(kitti_root, tmp_path, capsys, case):
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "0001.txt").write_text("0 1 Car 0 0 0.1 1 2 3 4 1 1 1 1 1 1 0 0.5\n")
    args = ["eval", "sap", "--gt", str(kitti_root), "--pred", str(pred), "--seqs", "0001"]
    if case == "no_pred_file":
        args[-1] = "0001,0006"
    elif case == "bad_seqs":
        args[-1] = "one"
    elif case == "bad_emission":
        (tmp_path / "em.txt").write_text("0001 x 12\n")
        args += ["--emission", str(tmp_path / "em.txt")]
    elif case == "bad_root":
        args[3] = str(tmp_path)
    elif case == "bad_line":
        (pred / "0001.txt").write_text("0 1 Car 0 0\n")
    elif case == "both_sources":
        args += ["--latency-ms", "10", "--latencies", "x.txt"]
    elif case == "bad_image_height":
        args += ["--image-height", "0"]
    elif case == "json_is_input":
        (tmp_path / "lat.txt").write_text("100\n")
        args += ["--latencies", str(tmp_path / "lat.txt"), "--json", str(tmp_path / "lat.txt")]
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse usage errors exit through the one-line parser
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err


def test_sequence_length_from_image_02(kitti_root, tmp_path):
    """Frames after the last labelled one count when the images are there (they change the patches)."""
    import cv2
    import numpy as np
    seq = "0001"  # 447 labelled frames; with 560 images: 13 patches of 40 and none for the last 40 frames
    root = tmp_path / "root"
    (root / "label_02").mkdir(parents=True)
    (root / "calib").mkdir()
    (root / "image_02" / seq).mkdir(parents=True)
    src = io.tracking_root(kitti_root)
    for sub in ("label_02", "calib"):
        (root / sub / f"{seq}.txt").write_text((src / sub / f"{seq}.txt").read_text())
    img = np.zeros((375, 1242, 3), np.uint8)
    ok, buf = cv2.imencode(".png", img)
    for i in range(560):
        (root / "image_02" / seq / f"{i:06d}.png").write_bytes(buf.tobytes())
    pred = _write_preds(kitti_root, tmp_path / "pred", [seq])
    out = tmp_path / "r.json"
    assert main(["eval", "sap", "--gt", str(root), "--pred", str(pred), "--seqs", seq, "--split", "val",
                 "--json", str(out)]) == 0
    # val patches 1, 3, .., 11 (from the 447 labelled frames alone: 5 patches)
    assert json.loads(out.read_text())["settings"]["frames"] == 40 * 6
    assert io.sequence_num_frames(root, seq) == 560
