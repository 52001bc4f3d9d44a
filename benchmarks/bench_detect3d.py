"""Stereo 3D detection benchmarks.

Default (``python benchmarks/bench_detect3d.py``, ~1-2 min on CPU): per-frame latency split (features /
volume / BEV / fusion / head) of the small and full configs at KITTI resolution (375x1242) for StreamDSGN and
the DSGN-like baseline (no fusion) in the same run, and what that latency implies for a 10 Hz stream (share
of frames processed, frames skipped, mean age of the output paired with each ground-truth frame).

``compare`` (run once, long: trains two small models on synthetic sequences): baseline vs StreamDSGN, both
trained on the next frame's boxes, evaluated on held-out synthetic sequences with offline next-frame AP and
streaming AP (10 Hz, measured CPU latency and a fixed 50 ms latency), written as JSON. ``--supersample N`` renders
with N x N rays per pixel (the small config's 4 unless given); ``--box-alignment`` streams with the dense box
alignment of ``models/detect3d/alignment.py`` and writes ``<variant>_aligned.json``.

    python benchmarks/bench_detect3d.py [--configs small,full] [--repeats 3] [--threads 1]
    python benchmarks/bench_detect3d.py compare --out runs/detect3d_compare [--epochs 4]
    python benchmarks/bench_detect3d.py curve --out runs/detect3d_compare   # learning curves -> PNG
    python benchmarks/bench_detect3d.py errors --checkpoint C --data ROOT --seqs 0048,0049   # where boxes miss
    python benchmarks/bench_detect3d.py nms [--boxes 500]   # rotated NMS vs the full N x N IoU matrix
    python benchmarks/bench_detect3d.py render [--supersample 4]   # per-object ray cast: window vs whole view
    python benchmarks/bench_detect3d.py score --checkpoint C --data ROOT:0096-0099 --data ROOT2:0100-0111 --threads 2

``errors``: each GT car of frame t+1 of the held-out sequences is matched to the nearest detection (BEV centre
within 3 m) of the forecast made at frame t, and the errors are split by range: depth (camera z), lateral
(camera x), yaw modulo 180 deg (a box turned by 180 deg has the same IoU), length; plus the share of cars
within 0.3 m in both axes (roughly what a 0.7 BEV IoU needs) and the car's own motion over that frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from eventvision.config import load_config
from eventvision.evaluation.streaming import simulated_schedule, pair_outputs
from eventvision.models.detect3d import StageTimer, StereoDetector3D
from eventvision.models.detect3d.alignment import RangeForecaster
from eventvision.simulate.kitti_scenes import KITTI_P2, KITTI_P3

STAGES = ("features", "volume", "bev", "fusion", "head")


def measure(cfg_name: str, fusion: bool, repeats: int, device: torch.device, hw=(375, 1242)) -> dict:
    """Per-stage ms of ``stream_step`` + decoding on random stereo pairs of size ``hw`` (KITTI P2/P3 rescaled)."""
    from eventvision.formats.kitti import scaled_projection

    cfg = load_config(cfg_name, [f"model.fusion={str(fusion).lower()}"])
    model = StereoDetector3D.from_config(cfg.model).to(device).eval()
    scale = hw[0] / 375.0
    P2 = torch.tensor(scaled_projection(KITTI_P2, scale), dtype=torch.float32)[None].to(device)
    P3 = torch.tensor(scaled_projection(KITTI_P3, scale), dtype=torch.float32)[None].to(device)
    g = torch.Generator().manual_seed(0)
    frames = [(torch.rand(1, 3, *hw, generator=g).to(device), torch.rand(1, 3, *hw, generator=g).to(device))
              for _ in range(2)]
    model.reset_stream()
    model.stream_step(*frames[0], P2, P3)  # warm-up (also fills the fusion cache)
    runs = []
    for r in range(repeats):
        timer = StageTimer()
        t0, c0 = time.perf_counter(), time.process_time()
        out = model.stream_step(*frames[r % 2], P2, P3, timer=timer)
        with timer("head", device):  # decoding + NMS belongs to the per-frame cost
            model.decode(out)
        total = (time.perf_counter() - t0) * 1e3
        # process CPU time: what the frame costs without other processes competing for the cores
        runs.append({**{s: timer.ms.get(s, 0.0) for s in STAGES}, "total": total,
                     "cpu": (time.process_time() - c0) * 1e3})
    mean = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    size = "" if tuple(hw) == (375, 1242) else f"@{hw[1]}x{hw[0]}"
    return {"config": cfg_name + size, "fusion": fusion,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "ms": mean}


def stream_implication(latency_ms: float, num_frames: int = 600) -> dict:
    """What one detector with this per-frame latency does to a 10 Hz stream (a 60 s clip): share of frames it
    processes, frames skipped per 40-frame patch, and the mean age (ms) of the output paired with a GT frame
    (sAP pairs each GT frame with the latest emitted output: the older, the further objects have moved)."""
    sched = simulated_schedule(num_frames, [latency_ms])
    pairs = pair_outputs(sched, num_frames)
    ages = [i * 100.0 - sched.frame[p] * 100.0 for i, p in enumerate(pairs) if p >= 0]
    share = len(sched.frame) / num_frames
    return {"processed_share": share, "skipped": int(round(40 * (1 - share))),
            "unpaired_gt_frames": int((pairs < 0).sum()), "mean_age_ms": float(np.mean(ages)) if ages else float("nan")}


def latency_main(args) -> int:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for entry in args.configs.split(","):
        name, _, size = entry.partition("@")  # e.g. small@310x94: the small recipe at its training resolution
        hw = tuple(int(v) for v in reversed(size.split("x"))) if size else (375, 1242)
        for fusion in (False, True):
            res = measure(f"detect3d/{name}", fusion, args.repeats if name != "full" else 1, device, hw)
            res["stream"] = stream_implication(res["ms"]["total"])
            rows.append(res)
            print(json.dumps(res), file=sys.stderr)
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, threads {args.threads}, load average {load:.1f}, input 375x1242 unless named, batch 1 "
          f"(wall-clock ms per frame; 'cpu' = process CPU ms)")
    print(f"{'config':<16}{'variant':<12}{'params M':>9}" + "".join(f"{s:>10}" for s in STAGES) + f"{'total':>10}"
          f"{'cpu':>10}{'x base':>8}{'processed':>10}{'skipped/40':>11}{'age ms':>8}")
    base = {}
    for r in rows:
        key = r["config"]
        if not r["fusion"]:
            base[key] = r["ms"]["total"]
        name = "StreamDSGN" if r["fusion"] else "DSGN-like"
        stages = "".join(f"{r['ms'][s]:>10.1f}" for s in STAGES)
        print(f"{key.split('/')[-1]:<16}{name:<12}{r['params_m']:>9.2f}" + stages
              + f"{r['ms']['total']:>10.1f}{r['ms']['cpu']:>10.1f}{r['ms']['total'] / base[key]:>8.2f}"
              + f"{r['stream']['processed_share']:>10.2f}"
              + f"{r['stream']['skipped']:>11d}{r['stream']['mean_age_ms']:>8.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


# --------------------------------------------------------------------------------------------- compare
def stream_outputs(model, task, seq_names, device, *, latency_ms: float | None, root=None,
                   strategies=("copy",), box_alignment: bool = False):
    """Stream held-out sequences once (of ``root``, default the task's synthetic set) -> (GT frames,
    {strategy: streamed predictions}, mean latency). ``kf`` dates the boxes one frame ahead (the detector
    forecasts frame t+1, ``horizon_frames=1``)."""
    from eventvision.inference.detect3d import Detect3DPredictor
    from eventvision.data.detect3d.kitti_tracking import find_training_dir, load_sequence
    from eventvision.formats.kitti import empty_objects
    from eventvision.evaluation.streaming import Schedule, stream_predictions
    from eventvision.formats.kitti import to_kitti_pixel_scale

    training = find_training_dir(root if root is not None else task.cfg.data.synthetic_root)
    gt_all, stream_all, lats = [], {s: [] for s in strategies}, []
    predictor = Detect3DPredictor(model, device, latency_ms=latency_ms,
                                  box_alignment=RangeForecaster() if box_alignment else None)
    for k, name in enumerate(seq_names):
        seq = load_sequence(training, name)
        if k == 0:
            predictor.warm_up(seq)   # as run detect3d: one untimed run before the first timed frame
        outs = [(r.frame, r.emission_ms, r.latency_ms, r.objects) for r in predictor.stream(seq)]
        preds = [empty_objects(0)] * seq.num_frames
        for f, _, lat, objs, *_ in outs:
            preds[f] = objs
            lats.append(lat)
        sched = Schedule(np.array([o[0] for o in outs], dtype=np.int64), np.array([o[1] for o in outs]))
        height = seq.image_size[1]
        for strategy in strategies:
            streamed = stream_predictions(preds, sched, seq.num_frames, strategy=strategy, P2=seq.calib.P2,
                                          horizon_frames=1 if strategy == "kf" else 0)
            stream_all[strategy] += [to_kitti_pixel_scale(o, height) for o in streamed]
        gt_all += [to_kitti_pixel_scale(o, height) for o in seq.objects]
    return gt_all, stream_all, float(np.mean(lats))


def summarise(ap: dict) -> dict:
    """Moderate R40 AP per class and metric (the headline numbers)."""
    return {f"{cls}/{m}": v["R40"][1] for cls, per in ap.items() for m, v in per.items() if m in ("bev", "3d")}


def compare_main(args) -> int:
    from eventvision.engine.trainer import Trainer
    from eventvision.evaluation.kitti.ap import kitti_eval
    from eventvision.tasks.detect3d import Detect3DTask, ensure_synthetic_dataset

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = [f"data.synthetic_root={args.data}", f"data.synthetic_train_seqs={args.train_seqs}",
              f"data.synthetic_val_seqs={args.val_seqs}", f"data.synthetic_frames={args.frames}",
              f"train.epochs={args.epochs}", f"train.val_every={args.val_every}", "train.tensorboard=false",
              "device=cpu", f"train.checkpoint_every={args.checkpoint_every}",
              f"train.optimizer.lr={args.lr}", f"seed={args.seed}", f"data.synthetic_objects={args.objects}",
              f"data.synthetic_class_probs=[{args.class_probs}]", f"data.synthetic_z_range=[{args.z_range}]"]
    if args.supersample:
        common.append(f"data.synthetic_supersample={args.supersample}")
    variants = {"baseline": "configs/detect3d_small_baseline.yaml",
                "streamdsgn": "configs/detect3d_small_streamdsgn.yaml"}
    if args.only:
        variants = {k: v for k, v in variants.items() if k == args.only}
    results = {}
    holdout = None
    if args.holdout_calib:
        ho = load_config(next(iter(variants.values())), common + [
            f"data.synthetic_root={args.data}_holdout", "data.synthetic_train_seqs=1",
            f"data.synthetic_val_seqs={args.holdout_seqs}", f"data.synthetic_objects={args.holdout_objects}",
            f"data.seed={args.holdout_seed}", f"data.synthetic_calib={args.holdout_calib}"]).data
        root, _, seqs = ensure_synthetic_dataset(ho)   # its one "training" sequence is never used
        holdout = (root, seqs)
    if args.render_only:
        ensure_synthetic_dataset(load_config(next(iter(variants.values())), common).data)
        return 0
    for name, cfg_path in variants.items():
        cfg = load_config(cfg_path, common + [f"output_dir={out / name}", f"model.score_thresh={args.score_thresh}"]
                          + list(args.set))
        task = Detect3DTask.from_config(cfg)
        _, _, val_seqs = ensure_synthetic_dataset(cfg.data)
        device = torch.device("cpu")
        if args.eval_only:  # evaluate the last.pt a previous run left
            from eventvision.engine.checkpoint import load_model_from_checkpoint
            _, model, ckpt = load_model_from_checkpoint(out / name / "last.pt", task_name="detect3d",
                                                        overrides=[f"model.score_thresh={args.score_thresh}"])
            r = {"steps": ckpt.get("step"), "final_train": {k: v for k, v in (ckpt.get("metrics") or {}).items()
                                                            if k.startswith("train/")}}
        else:
            t0 = time.time()
            # --resume: continue the run in --out to --epochs (the cosine schedule restarts at the point the
            # longer schedule has reached: a warm restart, the same for both variants)
            trainer = Trainer.from_config(cfg, task, resume=True if args.resume else None)
            final = trainer.fit()
            model = trainer.model.eval()
            r = {"train_seconds": time.time() - t0, "steps": final.get("step"),
                 "final_train": {k: v for k, v in final.items() if k.startswith("train/")}}
        for mode, lat in ((f"fixed{args.fixed_latency:g}ms", args.fixed_latency), ("measured", None)):
            # measured latency: frames are skipped and outputs age, so also the kf forecast of each track
            strategies = ("copy", "kf") if lat is None else ("copy",)
            gt, streamed, mean_lat = stream_outputs(model, task, val_seqs, device, latency_ms=lat,
                                                    strategies=strategies, box_alignment=args.box_alignment)
            for strategy in strategies:
                key = f"stream_{mode}" + ("" if strategy == "copy" else f"_{strategy}")
                r[key] = {"latency_ms_mean": mean_lat, "strategy": strategy}
                for overlap in ("loose", "strict"):
                    ap = kitti_eval(gt, streamed[strategy], overlap=overlap)
                    r[key][overlap] = {"moderate_R40": summarise(ap), "full": ap}
        if holdout is not None:   # another rig and object count, never trained on: fixed latency only
            gt, streamed, _ = stream_outputs(model, task, holdout[1], device, latency_ms=args.fixed_latency,
                                             root=holdout[0], box_alignment=args.box_alignment)
            streamed = streamed["copy"]
            r["holdout"] = {"calib": args.holdout_calib, "objects": args.holdout_objects,
                            "seed": args.holdout_seed, "sequences": len(holdout[1])}
            for overlap in ("loose", "strict"):
                ap = kitti_eval(gt, streamed, overlap=overlap)
                r["holdout"][overlap] = {"moderate_R40": summarise(ap), "full": ap}
        r["box_alignment"] = bool(args.box_alignment)
        results[name] = r
        (out / f"{name}{'_aligned' if args.box_alignment else ''}.json").write_text(json.dumps(r, indent=2))
        moderate = {k: v.get("loose", {}).get("moderate_R40") for k, v in r.items() if k.startswith("stream_")}
        print(f"{name}: {json.dumps(moderate)}", file=sys.stderr)
    if not args.only:
        (out / f"compare{'_aligned' if args.box_alignment else ''}.json").write_text(json.dumps(results, indent=2))
    return 0


def error_rows(model, seq_names, root, *, min_score: float, box_alignment: bool = False) -> np.ndarray:
    """Per GT car of frame t+1 (Car only): [camera z, dz, dx, dyaw mod pi, dl, motion since t] against the
    nearest forecast of frame t within 3 m in BEV (NaN errors where none); forecasts made every frame."""
    from eventvision.data.detect3d.kitti_tracking import find_training_dir, load_sequence
    from eventvision.inference.detect3d import Detect3DPredictor

    rows, training = [], find_training_dir(root)
    for name in seq_names:
        seq = load_sequence(training, name)
        predictor = Detect3DPredictor(model, torch.device("cpu"), latency_ms=50.0,
                                      box_alignment=RangeForecaster() if box_alignment else None)
        for r in predictor.stream(seq):  # every frame
            if r.frame + 1 >= seq.num_frames:
                continue
            gt, now = (o[o["type"] == "Car"] for o in (seq.objects[r.frame + 1], seq.objects[r.frame]))
            pred = r.objects[(r.objects["type"] == "Car") & (r.objects["score"] >= min_score)]
            for g in gt:
                same = now[now["track_id"] == g["track_id"]]
                motion = float(np.hypot(*(g["location"] - same[0]["location"])[[0, 2]])) if len(same) else np.nan
                dist = np.hypot(*(pred["location"] - g["location"])[:, [0, 2]].T) if len(pred) else np.array([])
                if not len(dist) or dist.min() > 3.0:
                    rows.append([g["location"][2], *[np.nan] * 4, motion])
                    continue
                p = pred[int(np.argmin(dist))]
                dyaw = np.angle(np.exp(2j * (p["rotation_y"] - g["rotation_y"]))) / 2
                rows.append([g["location"][2], *(p["location"] - g["location"])[[2, 0]], dyaw,
                             p["dimensions"][2] - g["dimensions"][2], motion])
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def errors_main(args) -> int:
    from eventvision.engine.checkpoint import load_model_from_checkpoint

    torch.set_num_threads(args.threads)
    _, model, _ = load_model_from_checkpoint(args.checkpoint, task_name="detect3d", device="cpu")
    rows = error_rows(model.eval(), args.seqs.split(","), args.data, min_score=args.min_score,
                      box_alignment=args.box_alignment)
    found = np.isfinite(rows[:, 1])
    print(f"{args.checkpoint}: {len(rows)} GT cars, {found.mean() * 100:.0f} % with a forecast within 3 m "
          f"(score >= {args.min_score})")
    print("| range (m) | cars | median abs depth error (m) | median abs lateral (m) | median abs yaw mod 180 (deg) "
          "| median abs length (m) | within 0.3 m both axes (%) | median motion in the frame (m) |")
    print("|---|---|---|---|---|---|---|---|")
    for lo, hi in ((0, 15), (15, 25), (25, 35), (35, 60)):
        sel = found & (rows[:, 0] >= lo) & (rows[:, 0] < hi)
        if not sel.any():
            continue
        r = np.abs(rows[sel])
        close = ((r[:, 1] < 0.3) & (r[:, 2] < 0.3)).mean() * 100
        print(f"| {lo}-{hi} | {sel.sum()} | {np.median(r[:, 1]):.2f} | {np.median(r[:, 2]):.2f} | "
              f"{np.degrees(np.median(r[:, 3])):.1f} | {np.median(r[:, 4]):.2f} | {close:.0f} | "
              f"{np.nanmedian(r[:, 5]):.2f} |")
    return 0


def _sequence_range(text: str) -> list[str]:
    """'0096-0099' or '0048,0050' -> ['0096', ..., '0099'] / ['0048', '0050']."""
    names = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        names += [f"{i:04d}" for i in range(int(first), int(last or first) + 1)]
    return names


def score_main(args) -> int:
    """Streaming AP of one checkpoint over held-out sequences from one or more roots, as one KITTI evaluation:
    fixed latency and measured latency (copy and kf), loose and strict IoU. Sequences missing from a root are
    rendered first with the scene options and ``--data-seed`` (the seeds ``compare`` renders with)."""
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.evaluation.kitti.ap import kitti_eval
    from eventvision.simulate.kitti_scenes import SceneConfig, write_sequence
    from eventvision.tasks.detect3d import synthetic_sequence_seed

    torch.set_num_threads(args.threads)
    task, model, _ = load_model_from_checkpoint(args.checkpoint, task_name="detect3d",
                                                overrides=[f"model.score_thresh={args.score_thresh}"])
    scene = SceneConfig(num_frames=args.frames, num_objects=args.objects,
                        image_scale=float(task.cfg.data.image_scale),   # the checkpoint's input size
                        class_probs=tuple(float(v) for v in args.class_probs.split(",")),
                        supersample=args.supersample, z_range=tuple(float(v) for v in args.z_range.split(",")))
    modes = ((f"fixed{args.fixed_latency:g}ms", args.fixed_latency, ("copy",)), ("measured", None, ("copy", "kf")))
    gt = []
    streamed = {f"{m}_{s}": [] for m, _, strategies in modes for s in strategies}
    lats = {m: [] for m, _, _ in modes}
    for spec in args.data:
        root, _, seqs = spec.rpartition(":")
        names = _sequence_range(seqs)
        for name in names:
            if not (Path(root) / "training" / "label_02" / f"{name}.txt").is_file():
                write_sequence(root, name, synthetic_sequence_seed(args.data_seed, name), scene, args.calib or None)
        for mode, lat, strategies in modes:
            g, out, mean_lat = stream_outputs(model, task, names, torch.device("cpu"), latency_ms=lat, root=root,
                                              strategies=strategies, box_alignment=args.box_alignment)
            lats[mode].append(mean_lat)
            for strategy in strategies:
                streamed[f"{mode}_{strategy}"] += out[strategy]
            if mode == modes[0][0]:
                gt += g
    result = {"checkpoint": args.checkpoint, "data": args.data, "threads": args.threads,
              "box_alignment": args.box_alignment}
    print(f"{args.checkpoint}: {len(gt)} frames; Car R40 easy / moderate / hard")
    for key, preds in streamed.items():
        mode = key.rsplit("_", 1)[0]
        row = {"latency_ms_mean": float(np.mean(lats[mode]))}
        for overlap in ("loose", "strict"):
            ap = kitti_eval(gt, preds, overlap=overlap)["Car"]
            row[overlap] = {m: [round(v, 2) for v in ap[m]["R40"]] for m in ("bev", "3d")}
        result[key] = row
        print(f"  {key:<16} {row['latency_ms_mean']:6.1f} ms  loose BEV {row['loose']['bev']}  strict BEV "
              f"{row['strict']['bev']}  strict 3D {row['strict']['3d']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def render_main(args) -> int:
    """Synthetic KITTI renderer: the per-object ray cast inside each box's projected window (what render_view
    does) vs over every ray of the view (what it did before), same hits asserted; plus a whole view's time."""
    from eventvision.geometry.boxes3d import box_ray_window, camera_rays, ray_box_intersection
    from eventvision.simulate.kitti_scenes import (SceneConfig, image_size, render_view, sample_tracks,
                                                   sequence_calibration)

    cfg = SceneConfig(num_frames=args.frames, num_objects=args.objects, image_scale=args.scale,
                      supersample=args.supersample)
    calib = sequence_calibration(cfg)
    width, height = image_size(cfg)
    rng = np.random.default_rng(args.seed)
    tracks = sample_tracks(rng, cfg)
    textures = {k: rng.random((128, 128)) for k in ("ground", "wall", "object")}
    origin, dirs = camera_rays(calib.P2, width, height, cfg.supersample)
    ms = {"full": 0.0, "window": 0.0, "view": 0.0}
    for f in range(cfg.num_frames):
        for tr in tracks:
            loc = tr.location(f, cfg.camera_height)
            box = np.array([*loc, tr.hwl[2], tr.hwl[0], tr.hwl[1], tr.ry])
            t0 = time.perf_counter()
            full, _, _ = ray_box_intersection(origin, dirs, loc, tr.hwl, tr.ry)
            t1 = time.perf_counter()
            win = box_ray_window(calib.P2, box, width, height, cfg.supersample)
            part = ray_box_intersection(origin, dirs[win], loc, tr.hwl, tr.ry)[0] if win is not None else None
            t2 = time.perf_counter()
            ms["full"] += (t1 - t0) * 1e3
            ms["window"] += (t2 - t1) * 1e3
            inside = np.full(full.shape, np.inf)
            if part is not None:
                inside[win] = part
            assert np.array_equal(inside, full), "the window missed a hit"
        t0 = time.perf_counter()
        render_view(calib.P2, width, height, tracks, f, cfg, textures)
        ms["view"] += (time.perf_counter() - t0) * 1e3
    n = cfg.num_frames * len(tracks)
    print(f"{width}x{height}, {cfg.supersample}x{cfg.supersample} rays per pixel, {len(tracks)} objects, "
          f"{cfg.num_frames} frames: ray cast per object {ms['window'] / n:.2f} ms in its window vs "
          f"{ms['full'] / n:.2f} ms over the whole view ({ms['full'] / max(ms['window'], 1e-9):.1f}x, same hits); "
          f"render_view {ms['view'] / cfg.num_frames:.0f} ms per view")
    return 0


def curve_main(args) -> int:
    """Learning curves of a compare run (train loss and per-epoch offline next-frame AP of both variants,
    read from the engine's metrics.csv) -> one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventvision.engine.logger import read_metrics_csv
    from eventvision.utils.io import atomic_path

    fig, (ax_loss, ax_ap) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, colour in (("baseline", "tab:blue"), ("streamdsgn", "tab:red")):
        path = Path(args.out) / name / "metrics.csv"
        if not path.is_file():
            continue
        rows = read_metrics_csv(path)
        for tag, style in (("train/loss", "-"), ("train/loss_depth", ":")):
            pts = [(r["step"], r["value"]) for r in rows if r["tag"] == tag]
            if pts:
                ax_loss.plot(*zip(*pts), style, color=colour, label=f"{name} {tag.split('/')[1]}")
        for tag, style in ((args.ap_tag, "o-"),):
            pts = [(r["step"], r["value"]) for r in rows if r["tag"] == tag]
            if pts:
                ax_ap.plot(*zip(*pts), style, color=colour, label=name)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(fontsize=7)
    ax_ap.set_xlabel("step")
    ax_ap.set_ylabel(args.ap_label or f"{args.ap_tag} (%)")
    ax_ap.legend(fontsize=7)
    fig.tight_layout()
    out = Path(args.png)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    print(out)
    return 0


def nms_main(args) -> int:
    """Rotated BEV NMS as the detector runs it (``head.rotated_nms``: each kept box's IoU with the survivors)
    against the greedy NMS over the full N x N rotated IoU matrix it replaced, on clustered candidates like a
    detector's (``--clusters`` cars, N boxes jittered around them); both must keep the same boxes."""
    from eventvision.models.detect3d.head import rotated_bev_iou, rotated_nms

    rng = np.random.default_rng(args.seed)
    per = max(1, args.boxes // args.clusters)
    centres = rng.uniform([5, -10, -1], [45, 10, -0.5], size=(args.clusters, 3))
    boxes = np.concatenate([np.column_stack([c + rng.normal(0, [0.6, 0.4, 0.05], size=(per, 3)),
                                             rng.normal([3.9, 1.6, 1.5], 0.2, size=(per, 3)),
                                             rng.uniform(-np.pi, np.pi, per)]) for c in centres])
    scores = rng.random(len(boxes))

    def full_matrix():
        order = np.argsort(-scores, kind="stable")
        iou = rotated_bev_iou(boxes[order], boxes[order])
        suppressed, keep = np.zeros(len(boxes), bool), []
        for i in range(len(boxes)):
            if not suppressed[i]:
                keep.append(int(order[i]))
                suppressed |= iou[i] > args.thresh
        return keep

    tb, ts = torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores)
    row_wise = lambda: rotated_nms(tb, ts, args.thresh).tolist()  # noqa: E731
    if row_wise() != full_matrix():
        raise SystemExit("rotated_nms and the full-matrix NMS kept different boxes")
    ms = {}
    for name, fn in (("full N x N matrix (before)", full_matrix), ("row-wise (rotated_nms)", row_wise)):
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            kept = fn()
        ms[name] = (time.perf_counter() - t0) / args.repeats * 1e3
    before, after = ms.values()
    print(f"{len(boxes)} candidates in {args.clusters} clusters, IoU threshold {args.thresh}, {len(kept)} kept")
    for name, v in ms.items():
        print(f"  {name:28s} {v:8.2f} ms")
    print(f"  ratio row-wise / full matrix: {after / before:.3f}x ({before / after:.1f}x faster)")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        p = argparse.ArgumentParser(prog="bench_detect3d.py compare")
        p.add_argument("--out", default="runs/detect3d_compare")
        p.add_argument("--data", default="runs/detect3d_compare_data")
        p.add_argument("--train-seqs", type=int, default=6)
        p.add_argument("--val-seqs", type=int, default=3)
        p.add_argument("--frames", type=int, default=40)
        p.add_argument("--epochs", type=int, default=4)
        p.add_argument("--objects", type=int, default=6)
        p.add_argument("--class-probs", default="0.6,0.2,0.2", help="Car,Pedestrian,Cyclist sampling weights")
        p.add_argument("--z-range", default="6.0,45.0", help="camera depth range of objects at frame 0 (m)")
        p.add_argument("--supersample", type=int, default=0,
                       help="anti-aliasing sub-samples per pixel axis of the renders (0: the config's)")
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--fixed-latency", type=float, default=50.0)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--only", choices=("baseline", "streamdsgn"), default=None)
        p.add_argument("--eval-only", action="store_true", help="evaluate the checkpoints of a previous run")
        p.add_argument("--val-every", type=int, default=0, help="validate (offline next-frame AP) every N epochs")
        p.add_argument("--checkpoint-every", type=int, default=0, help="write last.pt every N steps")
        p.add_argument("--resume", action="store_true", help="continue the runs in --out up to --epochs")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="extra config override for both variants (repeatable), e.g. model.geo_convs=0")
        p.add_argument("--box-alignment", action="store_true",
                       help="stream with dense box alignment (models/detect3d/alignment.py); "
                            "writes <variant>_aligned.json")
        p.add_argument("--render-only", action="store_true",
                       help="render the synthetic data set and stop (run once before parallel --only runs)")
        p.add_argument("--score-thresh", type=float, default=0.02)
        p.add_argument("--holdout-calib", default="",
                       help="also score on sequences rendered with this KITTI calib file (another rig), "
                            "--holdout-objects objects, seed --holdout-seed; cached under DATA_holdout")
        p.add_argument("--holdout-seqs", type=int, default=4)
        p.add_argument("--holdout-objects", type=int, default=8)
        p.add_argument("--holdout-seed", type=int, default=7)
        return compare_main(p.parse_args(argv[1:]))
    p = argparse.ArgumentParser(prog="bench_detect3d.py")
    if argv and argv[0] == "errors":
        p = argparse.ArgumentParser(prog="bench_detect3d.py errors")
        p.add_argument("--checkpoint", default="eventvision/checkpoints/detect3d_small.pt")
        p.add_argument("--data", required=True, help="a KITTI Tracking layout root (e.g. a compare run's data)")
        p.add_argument("--seqs", required=True, help="comma-separated held-out sequences")
        p.add_argument("--min-score", type=float, default=0.3)
        p.add_argument("--box-alignment", action="store_true", help="refine ranges by dense box alignment")
        p.add_argument("--threads", type=int, default=1)
        return errors_main(p.parse_args(argv[1:]))
    if argv and argv[0] == "score":
        p = argparse.ArgumentParser(prog="bench_detect3d.py score")
        p.add_argument("--checkpoint", default="eventvision/checkpoints/detect3d_small.pt")
        p.add_argument("--data", action="append", required=True, metavar="ROOT:SEQS",
                       help="a KITTI Tracking layout root and its held-out sequences, e.g. runs/d:0096-0099 "
                            "(repeatable; all are scored together)")
        p.add_argument("--frames", type=int, default=40)
        p.add_argument("--objects", type=int, default=6)
        p.add_argument("--class-probs", default="1.0,0.0,0.0")
        p.add_argument("--z-range", default="6.0,35.0")
        p.add_argument("--supersample", type=int, default=4)
        p.add_argument("--calib", default="", help="render missing sequences with this KITTI calib file")
        p.add_argument("--data-seed", type=int, default=0, help="data.seed of the renders (compare's: 0)")
        p.add_argument("--fixed-latency", type=float, default=50.0)
        p.add_argument("--score-thresh", type=float, default=0.02)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--box-alignment", action="store_true")
        p.add_argument("--json", default=None)
        return score_main(p.parse_args(argv[1:]))
    if argv and argv[0] == "render":
        p = argparse.ArgumentParser(prog="bench_detect3d.py render")
        p.add_argument("--frames", type=int, default=10)
        p.add_argument("--objects", type=int, default=6)
        p.add_argument("--scale", type=float, default=0.25)
        p.add_argument("--supersample", type=int, default=4)
        p.add_argument("--seed", type=int, default=0)
        return render_main(p.parse_args(argv[1:]))
    if argv and argv[0] == "nms":
        p = argparse.ArgumentParser(prog="bench_detect3d.py nms")
        p.add_argument("--boxes", type=int, default=500, help="candidates (the decoder's pre-NMS top-k is 500)")
        p.add_argument("--clusters", type=int, default=12)
        p.add_argument("--thresh", type=float, default=0.25, help="NMS IoU threshold (detect3d/full: 0.25)")
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--seed", type=int, default=0)
        return nms_main(p.parse_args(argv[1:]))
    if argv and argv[0] == "curve":
        p = argparse.ArgumentParser(prog="bench_detect3d.py curve")
        p.add_argument("--out", default="runs/detect3d_compare")
        p.add_argument("--png", default="docs/images/detect3d_learning_curve.png")
        p.add_argument("--ap-tag", default="val/Car/bev/R40/moderate")
        p.add_argument("--ap-label", default="", help="y label of the AP panel (say which IoU the run scored)")
        return curve_main(p.parse_args(argv[1:]))
    p.add_argument("--configs", default="small,full,small@310x94", help="config[@WxH], comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", default=None)
    return latency_main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
