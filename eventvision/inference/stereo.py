"""Stereo inference on streams: open a recording, cut it into windows, rectify, predict, write.

    source = open_stereo_input("seq_folder_or_file")              # DSEC folder, MVSEC hdf5, eventvision h5
    method = LearnedStereo.from_checkpoint("stereo_refine.pt")    # or SGBMMethod(max_disparity=63)
    for result in StereoPredictor(method, source, window_us=50_000):
        result.disparity                                           # float32 [H, W] px, NaN where unknown
    summary = run_stereo(StereoPredictor(...), output=Path("out"))  # disparity.h5, png/, summary.json

Windows are half-open ``[t0, t1)`` on the left camera's file clock (:class:`EventWindow`), starting at
the first event; both cameras' events are moved through their rectification maps when the input
has them (DSEC ``rectify_map.h5``, MVSEC ``<scene>_calib/*_map.txt``), so every method sees rectified
events. A result's ``t_label_us`` is the window end on the label clock (file time + ``t_offset``).

A method is ``prepare(window) -> inputs`` (the representation) plus ``infer(inputs) -> float32 [H, W]``
(the matcher), timed separately. :class:`LearnedStereo` resets the spiking state before every window:
the network sees the window's SBT bins as its time steps and was trained on independent windows, so
membrane potential carried across windows would be a state it never saw in training (and would make
the output depend on where the stream started). :class:`SGBMMethod` is the classical yardstick
(:mod:`eventvision.matching.sgbm`), no checkpoint needed.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from eventvision.errors import DatasetNotFoundError, FileFormatError, InvalidValueError
from eventvision.events.recording import EventWindow

#: clip length of the built-in synthetic recording (each clip a fresh scene)
DEMO_CLIP_US = 250_000
#: the default of run stereo / demo stereo: SGBM + learned refinement (stereo/refine); the SpikeDHS hybrid is
#: ``checkpoints/stereo_small.pt``
BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "stereo_refine.pt"
METHODS = ("learned", "sgbm")


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
    path: Path | None = None

    def windows(self, window_us: int) -> Iterator[EventWindow]:
        """Consecutive rectified windows ``[t0, t0 + window_us)`` from the first event (µs, left clock)."""
        from eventvision.representations import rectify

        maps = self.rectify_maps
        for t0, t1, left, right in self.recording.iter_windows(int(window_us)):
            if maps is not None:
                left, right = rectify(left, maps[0]), rectify(right, maps[1])
            yield EventWindow(int(t0), int(t1), left, self.width, self.height, right=right)

    def close(self) -> None:
        close = getattr(self.recording, "close", None)
        if close is not None:
            close()


def find_rectify_maps(path: str | Path, kind: str) -> tuple[tuple[np.ndarray, np.ndarray] | None, list[str]]:
    """Rectification maps that belong to a stereo input of ``kind``, and notes on what is missing.

    ``"dsec"`` (a sequence folder): ``events/{left,right}/rectify_map.h5``; ``"mvsec"`` (a ``*_data.hdf5``):
    the ``<scene>_calib/<scene>_{left,right}_{x,y}_map.txt`` files near it; anything else: none (an
    eventvision h5 holds rectified events when it was converted from either).
    """
    from eventvision.representations import load_rectify_map

    path = Path(path)
    if kind == "dsec":
        files = [path / "events" / cam / "rectify_map.h5" for cam in ("left", "right")]
        if not all(f.is_file() for f in files):
            return None, [f"{path}: no events/<left|right>/rectify_map.h5 in the DSEC folder: events used "
                          f"unrectified"]
        return (load_rectify_map(files[0]), load_rectify_map(files[1])), []
    if kind == "mvsec":
        from eventvision.data.stereo.mvsec import find_rectify_maps as find_mvsec, load_rectify_maps

        paths = find_mvsec(path)
        if paths is None:
            return None, [
                f"{path}: no MVSEC rectification maps (<scene>_calib/<scene>_left_x_map.txt ...) beside "
                f"the file: events used unrectified"
            ]
        return load_rectify_maps(paths), []
    return None, []


def open_stereo_input(path: str | Path) -> StereoInput:
    """Open a DSEC sequence folder, an MVSEC ``*_data.hdf5`` or an eventvision stereo ``.h5`` with its maps.

    Raises a typed :class:`~eventvision.errors.UserError` naming the file for anything unusable.
    """
    from eventvision.events.readers import open_recording

    path = Path(path)
    if not path.exists():
        raise DatasetNotFoundError(
            f"{path}: input not found; give a DSEC sequence folder, an MVSEC *_data.hdf5 "
            f"or an eventvision stereo .h5"
        )
    if path.is_dir():
        from eventvision.data.stereo.dsec import check_dsec_sequence

        check_dsec_sequence(path, with_gt=False)
    rec = open_recording(path)
    try:
        if not getattr(rec, "is_stereo", False):
            raise FileFormatError(
                f"{path}: holds a single event stream; stereo needs a left/right pair (DSEC "
                f"sequence folder, MVSEC *_data.hdf5 with davis/left and davis/right, or an "
                f"eventvision stereo .h5)"
            )
        if rec.num_events == 0:
            raise FileFormatError(f"{path}: the recording holds no events; record or convert a non-empty one")
        kind = "dsec" if path.is_dir() else str(getattr(rec, "format", ""))
        maps, notes = find_rectify_maps(path, kind)
        if getattr(rec, "rectified", None) is False:
            notes.append(f"{path}: converted without rectification maps (rectified = 0 in the file): events "
                         f"used unrectified; convert the DSEC folder or the MVSEC file with its calibration maps")
        meta = rec.left.meta
        for m, cam in zip(maps or (), ("left", "right")):
            if m.shape[:2] != (meta.height, meta.width):
                raise FileFormatError(
                    f"{path}: {cam} rectification map is {m.shape[1]}x{m.shape[0]} but the "
                    f"sensor is {meta.width}x{meta.height}; use the maps of this recording"
                )
    except BaseException:
        rec.close()
        raise
    return StereoInput(rec, meta.width, meta.height, int(meta.t_offset), maps, kind, notes, path)


def synthetic_input(cfg, *, duration_s: float, seed: int, size: tuple[int, int] | None = None) -> StereoInput:
    """The built-in synthetic recording: the rig (focal length, baseline) and scene statistics (disparity
    ranges, texture scale in px) of a stereo config's synthetic training data, at ``size`` = (W, H)."""
    import dataclasses
    from eventvision.data.stereo.synthetic import SyntheticStereoConfig, SyntheticStereoRecording

    scene = SyntheticStereoConfig.from_config(cfg.data.synthetic)
    if size is not None:
        scene = dataclasses.replace(scene, width=int(size[0]), height=int(size[1]))
    # clips of fresh scenes, each seen like a training sample (from 10 ms after its start, at full speed)
    rec = SyntheticStereoRecording(
        duration_us=int(round(duration_s * 1e6)), seed=seed, scene=scene, clip_us=DEMO_CLIP_US
    )
    return StereoInput(rec, scene.width, scene.height, 0, None, "synthetic")


@dataclass
class PrerenderedRecording:
    """A stereo recording's windows computed once, up front: ``source`` cut into ``window_us`` windows
    (``(t0, t1, left, right)`` tuples held in memory). Any other window length is read from ``source``.
    Every other attribute (size, clock, rig, ``disparity_at``) is the source's."""

    source: object
    window_us: int
    windows: list

    def __getattr__(self, name):
        if name == "source":          # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.source, name)

    def iter_windows(self, window_us: int, t_start: int | None = None, t_end: int | None = None):
        if int(window_us) != self.window_us or t_start is not None or t_end is not None:
            yield from self.source.iter_windows(window_us, t_start, t_end)
            return
        yield from self.windows


def window_count(recording, window_us: int, max_windows: int = 0) -> int | None:
    """Windows of ``window_us`` µs that cover ``recording``'s ``t_start..t_end`` (inclusive), at most
    ``max_windows`` (0 = no limit); None when the recording does not state its time range."""
    duration = getattr(recording, "t_end", 0) - getattr(recording, "t_start", 0)
    if duration <= 0:
        return None
    total = int(np.ceil((duration + 1) / int(window_us)))
    return min(total, max_windows) if max_windows else total


def prerender(source: StereoInput, window_us: int, *, max_windows: int = 0, show_progress: bool = True
              ) -> StereoInput:
    """``source`` with its first ``max_windows`` (0 = all) windows made before streaming starts (for the
    built-in synthetic recording, whose event simulation is slower than the pipeline: streamed live,
    windows/s would measure the simulator)."""
    import dataclasses
    import itertools

    from eventvision.utils.progress import progress

    rec, window_us = source.recording, int(window_us)
    total = window_count(rec, window_us, max_windows)
    windows = list(progress(itertools.islice(rec.iter_windows(window_us), total), total=total,
                            desc="simulate the built-in recording", unit="win",
                            disable=None if show_progress else True))
    return dataclasses.replace(source, recording=PrerenderedRecording(rec, window_us, windows))


# ------------------------------------------------------------------------------------------------ methods
class LearnedStereo:
    """A stereo checkpoint: both cameras' window encoded as the task says (``StereoTask.pair_encoder``: SBT, or
    time surfaces + SGBM for an SGBM-refine checkpoint) -> the network -> disparity px."""

    name = "learned"

    def __init__(self, task, model, device=None):
        import torch

        self.task, self.model = task, model
        param = next(model.parameters(), None)
        self.device = (
            torch.device(device)
            if device is not None
            else (param.device if param is not None else torch.device("cpu"))
        )
        if self.device.type == "cpu" and not model.training:
            from eventvision.models.conv import fuse_conv_bn

            fuse_conv_bn(model)                            # inference only: BN folded into the conv before it
        if hasattr(model, "for_cpu_inference") and self.device.type == "cpu":
            model.for_cpu_inference()                       # the model's own measured preferences
        self.max_disparity = float(task.cfg.data.max_disparity)
        self.window_ms = float(getattr(task.cfg.data, "window_ms", 50.0))  # the training window
        self._encoders: dict = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, *, device="cpu") -> "LearnedStereo":
        """Load ``path`` (default: the bundled ``stereo_refine.pt``)."""
        from eventvision.engine.checkpoint import load_model_from_checkpoint

        path = Path(path) if path else BUNDLED_CHECKPOINT
        if not path.is_file():
            raise DatasetNotFoundError(
                f"{path}: stereo checkpoint not found; train one with 'eventvision train "
                f"stereo --config stereo/refine' or use the SGBM method"
            )
        task, model, _ = load_model_from_checkpoint(path, device=device, task_name="stereo")
        return cls(task, model, device)

    def prepare(self, window: EventWindow):
        """The window's events -> the model's input tensors (batch of one): sign-SBT of both cameras, or
        for an SGBM-refine checkpoint the left time surface plus the guide (SGBM, answered mask, costs)."""
        import torch

        key = (window.width, window.height)
        enc = self._encoders.get(key)
        if enc is None:
            enc = self._encoders[key] = self.task.pair_encoder(width=window.width, height=window.height)
        if window.right is None:
            raise InvalidValueError(
                "stereo: the window holds one camera's events; a stereo method needs both"
            )
        inputs = enc(window.events, window.right, window.t0, window.t1)
        return {k: torch.from_numpy(v)[None] for k, v in inputs.items()}

    def infer(self, inputs) -> np.ndarray:
        import torch

        with torch.inference_mode():
            disp = self.task.predict(self.model, self.task.move_batch(inputs, self.device))[0]
            out = disp.float().cpu().numpy()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out

    def __call__(self, window: EventWindow) -> np.ndarray:
        return self.infer(self.prepare(window))


class SGBMMethod:
    """OpenCV semi-global matching on per-window event images (:mod:`eventvision.matching.sgbm`)."""

    name = "sgbm"

    def __init__(self, *, max_disparity: float = 63.0, window_ms: float = 50.0, options: dict | None = None):
        self.max_disparity, self.window_ms = float(max_disparity), float(window_ms)
        self.options = dict(options or {})

    def _model(self, window: EventWindow):
        from eventvision.matching.sgbm import SGBMStereo

        return SGBMStereo.from_config(
            self.options, width=window.width, height=window.height, max_disparity=self.max_disparity
        )

    def prepare(self, window: EventWindow):
        from eventvision.matching.sgbm import event_image_pair

        if window.right is None:
            raise InvalidValueError(
                "stereo: the window holds one camera's events; a stereo method needs both"
            )
        sgbm = self._model(window)
        images = event_image_pair(window.events, window.right, width=window.width, height=window.height,
                                  t_start=window.t0, t_end=window.t1, kind=sgbm.image, tau_us=sgbm.tau_us)
        return (sgbm, *images)

    def infer(self, inputs) -> np.ndarray:
        from eventvision.matching.sgbm import sgbm_disparity

        sgbm, left, right = inputs
        return sgbm_disparity(left, right, max_disparity=sgbm.max_disparity, block_size=sgbm.block_size)

    def __call__(self, window: EventWindow) -> np.ndarray:
        return self.infer(self.prepare(window))


def build_method(
    method: str = "learned",
    *,
    checkpoint: str | Path | None = None,
    device="cpu",
    max_disparity: float = 63.0,
    options: dict | None = None,
):
    """``"learned"`` (``checkpoint``, default the bundled one) or ``"sgbm"`` (``max_disparity`` px)."""
    if method == "sgbm":
        return SGBMMethod(max_disparity=max_disparity, options=options)
    if method != "learned":
        raise InvalidValueError(f"stereo method '{method}': unknown; choose one of {', '.join(METHODS)}")
    return LearnedStereo.from_checkpoint(checkpoint, device=device)


# ------------------------------------------------------------------------------------------------ predictor
@dataclass
class StereoResult:
    """One window's answer: ``disparity`` float32 [H, W] px (NaN unknown) at ``t_label_us`` (window end,
    label clock); ``started`` = ``perf_counter()`` when the window's reading began (latency origin)."""

    index: int
    window: EventWindow
    disparity: np.ndarray
    t_label_us: int
    started: float


@dataclass
class RunStats:
    """Per-stage wall times (s) summed over windows; ``cpu``: CPU time of the whole process during the
    loop (all threads), which a busy machine inflates far less than wall time."""

    windows: int = 0
    read: float = 0.0
    representation: float = 0.0
    network: float = 0.0
    write: float = 0.0
    wall: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        n = max(self.windows, 1)
        return {
            "windows": self.windows,
            "mean_latency_ms": 1e3 * float(np.mean(self.latencies)) if self.latencies else 0.0,
            "throughput_hz": self.windows / self.wall if self.wall > 0 else 0.0,
            "time_split_ms": {
                "read": 1e3 * self.read / n,
                "representation": 1e3 * self.representation / n,
                "network": 1e3 * self.network / n,
                "write": 1e3 * self.write / n,
            },
            "wall_s": self.wall,
            "cpu_ms_per_window": 1e3 * self.cpu / n,
        }


class StereoPredictor:
    """Iterate over a :class:`StereoInput` window by window through a method, yielding :class:`StereoResult`.

    ``window_us``: window length (µs); ``max_windows``: stop after that many (0 = all). ``background``:
    read, rectify and encode the next windows on a worker thread while the method's ``infer`` runs
    (:func:`eventvision.inference.base.in_background`; the stage times then overlap). ``tuner``: a
    :class:`~eventvision.inference.base.ThreadTuner` choosing the network's threads. Stage times
    accumulate in :attr:`stats`.
    """

    def __init__(self, method, source: StereoInput, *, window_us: int = 50_000, max_windows: int = 0,
                 background: bool = False, tuner=None):
        if int(window_us) <= 0:
            raise InvalidValueError(f"stereo window length must be positive, got {window_us} µs")
        self.method, self.source = method, source
        self.window_us, self.max_windows = int(window_us), int(max_windows)
        self.background, self.tuner = bool(background), tuner
        self.stats = RunStats()

    @property
    def num_windows(self) -> int | None:
        return window_count(self.source.recording, self.window_us, self.max_windows)

    def _prepared(self) -> Iterator[tuple]:
        """(window, method inputs, perf_counter when reading began) per window, timing read/representation."""
        stats, windows, k = self.stats, self.source.windows(self.window_us), 0
        while not (self.max_windows and k >= self.max_windows):
            t_start = time.perf_counter()
            window = next(windows, None)
            if window is None:
                return
            t_read = time.perf_counter()
            inputs = self.method.prepare(window)
            stats.read += t_read - t_start
            stats.representation += time.perf_counter() - t_read
            k += 1
            yield window, inputs, t_start

    def __iter__(self) -> Iterator[StereoResult]:
        from eventvision.inference.base import in_background
        stats = self.stats
        prepared = in_background(self._prepared()) if self.background else self._prepared()
        for window, inputs, t_start in prepared:
            if self.tuner is not None:
                self.tuner.before()
            t_net = time.perf_counter()
            disparity = self.method.infer(inputs)
            seconds = time.perf_counter() - t_net
            stats.network += seconds
            if self.tuner is not None:
                self.tuner.after(seconds)
            stats.windows += 1
            t_label = window.t1 + self.source.t_offset
            yield StereoResult(stats.windows - 1, window, disparity, t_label, t_start)


class _StereoOutputs:
    """The writers of one run; :meth:`write` handles one result (called in order, maybe on a worker)."""

    def __init__(self, output: Path, predictor: StereoPredictor, *, mp4: bool, png_every: int):
        from eventvision.inference.writers import DisparityH5, MP4Writer, PNGSequence
        source = predictor.source
        self.width, self.height, self.stats = source.width, source.height, predictor.stats
        self.max_disp = float(predictor.method.max_disparity)
        self.h5 = DisparityH5(output / "disparity.h5", self.width, self.height,
                              {"window_us": predictor.window_us, "max_disparity": self.max_disp,
                               "units": "pixels", "method": predictor.method.name})
        self.writers = [self.h5]
        try:
            self.video = MP4Writer(output / "disparity.mp4", 2 * self.width, self.height,
                                   fps=1e6 / predictor.window_us) if mp4 else None
        except BaseException as exc:
            self.h5.abort(exc)
            raise
        self.writers += [self.video] if self.video is not None else []
        self.pngs = PNGSequence(output / "png", png_every)

    def write(self, result: StereoResult) -> None:
        from eventvision.utils.viz import colorize, event_image
        t_w = time.perf_counter()
        self.h5.append(result.disparity, result.t_label_us)
        colour = None
        if self.pngs.wants(result.index) or self.video is not None:
            colour = colorize(result.disparity, vmin=0.0, vmax=self.max_disp)
        if self.pngs.wants(result.index):
            self.pngs.append(result.index, colour)
        if self.video is not None:
            events = event_image(result.window.events, self.width, self.height)
            self.video.append(np.concatenate([events, colour], axis=1))
        t_done = time.perf_counter()
        self.stats.write += t_done - t_w
        self.stats.latencies.append(t_done - result.started)

    def close(self) -> None:
        for w in self.writers:
            w.close()

    def abort(self, exc: BaseException) -> None:
        for w in self.writers:
            w.abort(exc)


def run_stereo(predictor: StereoPredictor, output: Path, *, mp4: bool = False, png_every: int = 1,
               extra_summary: dict | None = None, show_progress: bool = True) -> dict:
    """Stream ``predictor`` into ``output``: ``disparity.h5``, ``png/NNNNNN.png`` (every ``png_every``-th
    window), optionally ``disparity.mp4`` (events | disparity) and ``summary.json``; returns the summary.
    With ``predictor.background`` the outputs are written on a worker thread too."""
    from eventvision.inference.base import BackgroundWorker
    from eventvision.inference.writers import write_summary
    from eventvision.utils.progress import progress

    output = Path(output)
    created = [d for d in (*reversed(output.parents), output, output / "png") if not d.exists()]
    output.mkdir(parents=True, exist_ok=True)
    outputs = _StereoOutputs(output, predictor, mp4=mp4, png_every=png_every)
    worker = BackgroundWorker() if predictor.background else None
    bar = progress(total=predictor.num_windows, desc=f"run stereo ({predictor.method.name})", unit="win",
                   disable=None if show_progress else True)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    try:
        for result in predictor:
            if worker is None:
                outputs.write(result)
            else:
                worker.submit(outputs.write, result)
            bar.update(1)
        if worker is not None:
            worker.close()
    except BaseException as exc:
        if worker is not None:
            worker.abort()
        outputs.abort(exc)
        _remove_empty(created)
        raise
    finally:
        bar.close()
    outputs.close()
    stats = predictor.stats
    stats.wall, stats.cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    summary = {**stats.summary(), "window_ms": predictor.window_us / 1000.0, "width": outputs.width,
               "height": outputs.height, "method": predictor.method.name,
               "device": str(getattr(predictor.method, "device", "cpu")), "background": predictor.background,
               **(extra_summary or {})}
    write_summary(output / "summary.json", summary)
    return summary


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created, deepest first, where nothing was left in them."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):  # not empty, or already gone
            folder.rmdir()


# ------------------------------------------------------------------------------------------------ evaluation
class _EventsOfWindow:
    """Stands in for a stereo dataset's pair encoder: returns the window's (rectified) events themselves,
    so a sample carries ``left``/``right`` event arrays instead of their encoding; remembers the window."""

    bounds: tuple[int, int] = (0, 0)
    #: serves every sensor size (a synthetic dataset with ``sizes`` uses it for all of them)
    any_size = True

    def __call__(self, left: np.ndarray, right: np.ndarray, t_start: int, t_end: int) -> dict:
        from eventvision.events.recording import window_slice

        self.bounds = (int(t_start), int(t_end))
        return {"left": window_slice(left, t_start, t_end), "right": window_slice(right, t_start, t_end)}


def _leaf_datasets(dataset) -> list:
    inner = getattr(dataset, "datasets", None)
    return [d for part in inner for d in _leaf_datasets(part)] if inner is not None else [dataset]


def evaluate_on_events(task, method, split: str = "val", *, evaluator=None, max_samples: int = 0,
                       show_progress: bool = True) -> dict:
    """Evaluate an event-window method (e.g. :class:`SGBMMethod`) on a stereo task's split -> metrics.

    Every dataset of the stereo task (synthetic, DSEC, MVSEC) cuts each GT sample's window
    ``[t_gt - window, t_gt)`` and rectifies it exactly as for the network; here the window's events are
    handed to ``method`` instead of being encoded. The split's crop (``data.crop``, a centre crop outside
    training) is applied to the full-frame prediction and to the GT alike.
    """
    evaluators = {method.name: evaluator if evaluator is not None else task.build_evaluator()}
    return compare_on_events(task, {method.name: method}, split, evaluators=evaluators,
                             max_samples=max_samples, show_progress=show_progress)[method.name]


def compare_on_events(task, methods: dict, split: str = "val", *, reference: str | None = None,
                      evaluators: dict | None = None, max_samples: int = 0,
                      show_progress: bool = True) -> dict:
    """Several methods on the same windows and GT of a stereo task's split (see :func:`evaluate_on_events`).

    Returns ``{name: metrics}`` per method and, with ``reference`` (e.g. ``"sgbm"``), also
    ``{"<name>_on_<reference>_pixels": metrics}`` for every other method: its errors on exactly the pixels
    where the reference answers, the fair comparison with a method that abstains.
    """
    from eventvision.data.stereo.common import crop_sample
    from eventvision.utils.progress import progress

    dataset = task.build_reading_dataset(split)   # a prefill would encode the windows before the swap below
    leaves = _leaf_datasets(dataset)
    for leaf in leaves:
        if not hasattr(leaf, "encoder"):
            raise InvalidValueError(f"stereo evaluation: dataset {type(leaf).__name__} does not expose its "
                                    f"window encoder; it cannot be run on raw events")
    if reference is not None and reference not in methods:
        raise InvalidValueError(f"stereo comparison: reference '{reference}' is not one of "
                                f"{', '.join(methods)}")
    evaluators = dict(evaluators or {})
    names = list(methods) + [f"{n}_on_{reference}_pixels" for n in methods if reference and n != reference]
    for name in names:
        evaluators.setdefault(name, task.build_evaluator())
        evaluators[name].reset()
    crop = next((leaf.crop for leaf in leaves if getattr(leaf, "crop", None)), None)
    encoder = _EventsOfWindow()
    for leaf in leaves:
        leaf.encoder, leaf.crop = encoder, None
    total = len(dataset) if not max_samples else min(len(dataset), int(max_samples))
    for i in progress(range(total), total=total, desc=f"eval {split} ({', '.join(methods)})", unit="sample",
                      disable=None if show_progress else True):
        sample = dataset[i]
        gt = np.asarray(sample["disparity"], dtype=np.float32)
        height, width = gt.shape
        window = EventWindow(*encoder.bounds, sample["left"], width, height, right=sample["right"])
        preds = {name: m(window) for name, m in methods.items()}
        if crop:
            def cut(a):
                return crop_sample({"left": a[None], "right": a[None], "disparity": gt}, crop,
                                   None)["left"][0]
            preds, gt = {name: cut(p) for name, p in preds.items()}, cut(gt)
        for name, pred in preds.items():
            evaluators[name].process({"disparity": gt[None]}, pred[None])
            if reference and name != reference:
                masked = np.where(np.isfinite(preds[reference]), pred, np.nan).astype(np.float32)
                evaluators[f"{name}_on_{reference}_pixels"].process({"disparity": gt[None]}, masked[None])
    return {name: evaluators[name].evaluate() for name in names}
