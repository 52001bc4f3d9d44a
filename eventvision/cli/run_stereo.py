"""``eventvision run stereo``: stream a stereo event recording through a disparity network.

    eventvision run stereo --input REC --output DIR [--checkpoint C] [--window-ms 50] [--mp4] [--device auto]

REC is a DSEC sequence folder (``events/{left,right}/events.h5`` + ``rectify_map.h5``), an MVSEC
``*_data.hdf5`` (rectified with ``<scene>_calib/*_map.txt`` when those lie beside it) or an eventvision
stereo ``.h5``. Without ``--input`` a seeded synthetic recording (0.25 s clips of fresh random scenes,
rig and scene statistics of the checkpoint's training data, ``--synthetic-size``) is generated on the
fly and run through the bundled checkpoint (``eventvision/checkpoints/stereo_small.pt``).

Outputs in DIR: ``disparity.h5`` (``disparity`` [N, H, W] float32 px, NaN where unknown; ``timestamps_us``
[N] int64 = window ends on the recording's label clock, i.e. file time + t_offset), one colour PNG per
window under ``png/``, optionally ``disparity.mp4`` (events | disparity side by side) and
``summary.json`` (windows, mean latency, throughput, time split read/representation/network/write).
Every file is written through a temporary name and renamed at the end; the input is never touched.

Spiking state is reset before every window: the network sees the window's SBT bins as its time steps
and was trained on independent windows, so carrying membrane potential across windows would feed it
a state it never saw in training (and make the output depend on where the stream started).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eventvision.cli.args import nonneg_int, positive_float
from eventvision.errors import UserError

HELP = "stream a stereo event recording through the SpikeDHS disparity network (disparity.h5, PNGs, summary.json)"

DEMO_CLIP_US = 250_000
BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "stereo_small.pt"


def add_arguments(parser) -> None:
    parser.add_argument("--input", default=None, help="DSEC sequence folder, MVSEC *_data.hdf5 or eventvision "
                        "stereo .h5 (default: a built-in synthetic recording)")
    parser.add_argument("--output", required=True, help="output folder (created)")
    parser.add_argument("--checkpoint", default=None, help=f"stereo checkpoint (default: bundled {BUNDLED_CHECKPOINT.name})")
    parser.add_argument("--window-ms", type=positive_float, default=50.0,
                        help="window length in ms (default 50)")
    parser.add_argument("--mp4", action="store_true", help="also write disparity.mp4")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--max-windows", type=nonneg_int, default=0,
                        help="stop after this many windows (0 = all)")
    parser.add_argument("--png-every", type=nonneg_int, default=1,
                        help="write a PNG every N windows (0 = none)")
    parser.add_argument("--duration-s", type=positive_float, default=2.0,
                        help="length of the synthetic recording (no --input)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic recording (no --input)")
    parser.add_argument("--synthetic-size", default="144x96", help="WxH of the synthetic recording (no --input); "
                        "same rig and scene statistics as the checkpoint's training data, larger field of view")
    parser.add_argument("--threads", type=nonneg_int, default=0,
                        help="CPU threads for torch (0 = torch's default; 1 is "
                        "fastest on a machine shared with other jobs)")


# ------------------------------------------------------------------------------------------------ input
@dataclass
class StereoInput:
    """An opened stereo recording plus what is needed to rectify it (None: already rectified)."""

    recording: object
    width: int
    height: int
    t_offset: int
    rectify_maps: tuple[np.ndarray, np.ndarray] | None = None
    kind: str = ""
    notes: list[str] = field(default_factory=list)


def open_stereo_input(path: str | Path) -> StereoInput:
    """Open REC (see module doc); UserError naming the file for anything unusable."""
    from eventvision.events.readers import open_recording

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: input not found; pass a DSEC sequence folder, an MVSEC *_data.hdf5 or an "
                        f"eventvision stereo .h5")
    notes: list[str] = []
    maps = None
    if path.is_dir():
        from eventvision.data.stereo.dsec import check_dsec_sequence, read_rectify_map
        check_dsec_sequence(path, with_gt=False)
        rec = open_recording(path)
        maps = tuple(read_rectify_map(path / "events" / cam / "rectify_map.h5") for cam in ("left", "right"))
        kind = "dsec"
    else:
        rec = open_recording(path)
        kind = getattr(rec, "format", "")
        if kind == "mvsec":
            from eventvision.data.stereo.mvsec import find_rectify_maps, load_rectify_maps
            paths = find_rectify_maps(path)
            if paths is None:
                notes.append("no MVSEC rectification maps (<scene>_calib/<scene>_left_x_map.txt ...) beside the "
                             "file: events used unrectified")
            else:
                maps = load_rectify_maps(paths)
    if not getattr(rec, "is_stereo", False):
        raise UserError(f"{path}: holds a single event stream; run stereo needs a left/right pair (DSEC sequence "
                        f"folder, MVSEC *_data.hdf5 with davis/left and davis/right, or an eventvision stereo .h5)")
    if rec.num_events == 0:
        raise UserError(f"{path}: the recording holds no events; nothing to run")
    meta = rec.left.meta
    if maps is not None:
        for m, cam in zip(maps, ("left", "right")):
            if m.shape[:2] != (meta.height, meta.width):
                raise UserError(f"{path}: {cam} rectification map is {m.shape[1]}x{m.shape[0]} but the sensor is "
                                f"{meta.width}x{meta.height}; use the maps of this recording")
    return StereoInput(rec, meta.width, meta.height, int(meta.t_offset), maps, kind, notes)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise UserError(f"--synthetic-size {text!r}: expected WIDTHxHEIGHT, e.g. 144x96") from None
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise UserError(f"--synthetic-size {text!r}: width and height must lie in 8..4096")
    return w, h


def synthetic_input(cfg, *, duration_s: float, seed: int, size: tuple[int, int] | None = None) -> StereoInput:
    """The built-in synthetic recording: the rig (focal length, baseline) and scene statistics (disparity
    ranges, texture scale in px) of the checkpoint's synthetic training data, at ``size`` = (W, H)."""
    import dataclasses
    from eventvision.data.stereo.synthetic import SyntheticStereoConfig, SyntheticStereoRecording
    scene = SyntheticStereoConfig.from_config(cfg.data.synthetic)
    if size is not None:
        scene = dataclasses.replace(scene, width=size[0], height=size[1])
    # clips of fresh scenes, each seen like a training sample (from 10 ms after its start, surfaces at full speed)
    rec = SyntheticStereoRecording(duration_us=int(round(duration_s * 1e6)), seed=seed, scene=scene,
                                   clip_us=DEMO_CLIP_US)
    return StereoInput(rec, scene.width, scene.height, 0, None, "synthetic")


# ------------------------------------------------------------------------------------------------ outputs
class DisparityH5:
    """Incremental ``disparity.h5`` writer: append per window, rename into place on :meth:`close`."""

    def __init__(self, path: Path, width: int, height: int, attrs: dict):
        import h5py
        from eventvision.utils.io import atomic_path
        self._ctx = atomic_path(path)
        tmp = self._ctx.__enter__()
        self._file = h5py.File(tmp, "w")
        self._disp = self._file.create_dataset("disparity", shape=(0, height, width), maxshape=(None, height, width),
                                               dtype="f4", chunks=(1, height, width), compression="lzf")
        self._ts = self._file.create_dataset("timestamps_us", shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,))
        for k, v in attrs.items():
            if v is not None:
                self._file.attrs[k] = v
        self._n = 0

    def append(self, disparity: np.ndarray, t_us: int) -> None:
        n = self._n
        self._disp.resize(n + 1, axis=0)
        self._ts.resize(n + 1, axis=0)
        self._disp[n] = disparity
        self._ts[n] = t_us
        self._n = n + 1

    def close(self) -> None:
        self._file.close()
        self._ctx.__exit__(None, None, None)

    def abort(self, exc) -> None:
        self._file.close()
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)


class MP4Writer:
    """Side-by-side (events | disparity) video, written to a temporary name and renamed on close."""

    def __init__(self, path: Path, width: int, height: int, fps: float):
        import cv2
        from eventvision.utils.io import atomic_path
        self._ctx = atomic_path(path)
        tmp = self._ctx.__enter__()
        self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (2 * width, height))
        if not self._writer.isOpened():
            self._ctx.__exit__(None, None, None)
            raise UserError(f"{path}: OpenCV cannot write MP4 here (no mp4v codec); run without --mp4")

    def append(self, rgb: np.ndarray) -> None:
        self._writer.write(rgb[:, :, ::-1].copy())

    def close(self) -> None:
        self._writer.release()
        self._ctx.__exit__(None, None, None)

    def abort(self, exc) -> None:
        self._writer.release()
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)


# ------------------------------------------------------------------------------------------------ pipeline
@dataclass
class RunStats:
    """Per-stage wall times (s) summed over windows."""

    windows: int = 0
    read: float = 0.0
    representation: float = 0.0
    network: float = 0.0
    write: float = 0.0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        n = max(self.windows, 1)
        return {"windows": self.windows,
                "mean_latency_ms": 1e3 * float(np.mean(self.latencies)) if self.latencies else 0.0,
                "throughput_hz": self.windows / self.wall if self.wall > 0 else 0.0,
                "time_split_ms": {"read": 1e3 * self.read / n, "representation": 1e3 * self.representation / n,
                                  "network": 1e3 * self.network / n, "write": 1e3 * self.write / n},
                "wall_s": self.wall}


def iter_disparity(task, model, source: StereoInput, *, window_us: int, device, stats: RunStats,
                   max_windows: int = 0, encode=None):
    """Yield ``(t_end_label_clock_us, disparity float32 [H, W], left_events, t_begin)`` per window, timing stages.

    ``encode(events, t0, t1) -> float32 [T, 1, H, W]`` defaults to the task's SBT encoder. The spiking
    state is reset before each window (see module doc).
    """
    import torch
    from eventvision.data.stereo.common import WindowEncoder
    from eventvision.representations import rectify

    if encode is None:
        encode = WindowEncoder(width=source.width, height=source.height, num_bins=int(task.cfg.data.num_bins))
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    windows = source.recording.iter_windows(window_us)
    while True:
        t_start = time.perf_counter()
        try:
            t0, t1, left, right = next(windows)
        except StopIteration:
            return
        if source.rectify_maps is not None:
            left, right = rectify(left, source.rectify_maps[0]), rectify(right, source.rectify_maps[1])
        t_read = time.perf_counter()
        batch = {"left": torch.from_numpy(encode(left, t0, t1))[None],
                 "right": torch.from_numpy(encode(right, t0, t1))[None]}
        t_repr = time.perf_counter()
        with torch.no_grad():
            task.reset(model)
            disp = task.predict(model, task.move_batch(batch, device))[0]
            disp = disp.float().cpu().numpy()
            sync()
        t_net = time.perf_counter()
        stats.read += t_read - t_start
        stats.representation += t_repr - t_read
        stats.network += t_net - t_repr
        stats.windows += 1
        yield int(t1) + source.t_offset, disp, left, t_start
        if max_windows and stats.windows >= max_windows:
            return


def run(*, source: StereoInput, task, model, output: Path, window_us: int, device, mp4: bool = False,
        png_every: int = 1, max_windows: int = 0, extra_summary: dict | None = None, encode=None,
        show_progress: bool = True) -> dict:
    """Run the whole pipeline into ``output``; returns the summary dict (also written as summary.json)."""
    from eventvision.utils.io import atomic_write_text
    from eventvision.utils.progress import progress
    from eventvision.utils.viz import colorize, event_image, save_png

    output.mkdir(parents=True, exist_ok=True)
    width, height = source.width, source.height
    max_disp = float(task.cfg.data.max_disparity)
    stats = RunStats()
    h5 = DisparityH5(output / "disparity.h5", width, height,
                     {"window_us": int(window_us), "max_disparity": max_disp, "units": "pixels"})
    video = MP4Writer(output / "disparity.mp4", width, height, fps=1e6 / window_us) if mp4 else None
    writers = [w for w in (h5, video) if w is not None]
    duration = getattr(source.recording, "t_end", 0) - getattr(source.recording, "t_start", 0)
    total = int(np.ceil((duration + 1) / window_us)) if duration > 0 else None
    if max_windows and total:
        total = min(total, max_windows)
    bar = progress(total=total, desc="run stereo", unit="win", disable=None if show_progress else True)
    t_wall = time.perf_counter()
    try:
        for i, (t_us, disp, left, t_begin) in enumerate(iter_disparity(
                task, model, source, window_us=window_us, device=device, stats=stats, max_windows=max_windows,
                encode=encode)):
            t_w = time.perf_counter()
            h5.append(disp, t_us)
            colour = None
            if png_every and i % png_every == 0:
                colour = colorize(disp, vmin=0.0, vmax=max_disp)
                save_png(output / "png" / f"{i:06d}.png", colour)
            if video is not None:
                colour = colorize(disp, vmin=0.0, vmax=max_disp) if colour is None else colour
                video.append(np.concatenate([event_image(left, width, height), colour], axis=1))
            t_done = time.perf_counter()
            stats.write += t_done - t_w
            stats.latencies.append(t_done - t_begin)
            bar.update(1)
    except BaseException as exc:
        for w in writers:
            w.abort(exc)
        raise
    finally:
        bar.close()
    for w in writers:
        w.close()
    stats.wall = time.perf_counter() - t_wall
    summary = {**stats.summary(), "window_ms": window_us / 1000.0, "width": width, "height": height,
               "device": str(device), **(extra_summary or {})}
    atomic_write_text(output / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def check_output(output: Path, input_path: Path | None) -> None:
    """Refuse an output folder that is (or lies inside / contains the files of) the input."""
    if output.exists() and not output.is_dir():
        raise UserError(f"{output}: exists and is not a folder; --output names a folder to create")
    if input_path is None:
        return
    inp, out = input_path.resolve(), output.resolve()
    if inp == out or (inp.is_dir() and inp in out.parents) or (inp.is_file() and out == inp.parent and
                                                               inp.name in ("disparity.h5", "summary.json")):
        raise UserError(f"{output}: output would be written into the input {input_path}; choose another --output")


def main(args) -> int:
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.utils.device import select_device

    if args.window_ms <= 0:
        raise UserError(f"--window-ms {args.window_ms}: must be positive (the model was trained on 50 ms)")
    output = Path(args.output)
    input_path = Path(args.input) if args.input else None
    check_output(output, input_path)
    from eventvision.utils.io import refuse_overwrite_input
    for name in ("disparity.h5", "disparity.mp4", "summary.json", "png"):
        refuse_overwrite_input(output / name, input_path, args.checkpoint)
    ckpt_path = Path(args.checkpoint) if args.checkpoint else BUNDLED_CHECKPOINT
    if args.checkpoint is None and not ckpt_path.is_file():
        raise UserError(f"{ckpt_path}: bundled checkpoint missing from this install; pass --checkpoint or train "
                        f"one with 'eventvision train stereo --config stereo/small'")
    size = parse_size(args.synthetic_size) if input_path is None else None
    device = select_device(args.device)
    if args.threads > 0:
        import torch
        torch.set_num_threads(args.threads)
    source = open_stereo_input(input_path) if input_path else None  # fail on bad input before loading torch models
    task, model, ckpt = load_model_from_checkpoint(ckpt_path, device=device, task_name="stereo")
    if source is None:
        source = synthetic_input(task.cfg, duration_s=args.duration_s, seed=args.seed, size=size)
    for note in source.notes:
        print(f"eventvision: note: {note}", file=sys.stderr)
    summary = run(source=source, task=task, model=model, output=output, window_us=int(round(args.window_ms * 1000)),
                  device=device, mp4=args.mp4, png_every=args.png_every, max_windows=args.max_windows,
                  extra_summary={"input": str(input_path) if input_path else f"synthetic(seed={args.seed})",
                                 "input_kind": source.kind, "checkpoint": str(ckpt_path)})
    print(f"run stereo: {summary['windows']} windows, {summary['throughput_hz']:.1f} windows/s, mean latency "
          f"{summary['mean_latency_ms']:.1f} ms -> {output}")
    return 0
