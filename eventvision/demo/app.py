"""``run_demo``: wire a source, the emulator, a predictor and a window/recorder together."""

from __future__ import annotations

from eventvision.demo.display import VideoRecorder, WindowDisplay
from eventvision.demo.pipeline import Controls, DemoPipeline
from eventvision.demo.predictors import build_predictor
from eventvision.demo.sources import open_source
from eventvision.demo.display import NO_GUI_REMEDY
from eventvision.errors import InvalidValueError


def run_demo(task: str, source: str, *, headless: bool = False, record: str | None = None, model: str = "auto",
             checkpoint: str | None = None, window_ms: float | None = None, contrast: float = 0.2,
             refractory_us: int = 0, noise_rate_hz: float = 0.0, width: int = 640, height: int = 480,
             max_steps: int | None = None, realtime: bool = True, device: str = "cpu", seed: int = 0,
             on_frame=None) -> dict:
    """Run the live demo; returns the summary (frames shown, FPS, latency mean/p95 in ms, drops).

    ``task``: 'gesture' or 'stereo'. ``source``: 'synthetic', a camera index, a video, an event
    recording or 'inivation'. ``headless``: no window (then ``record`` is required). ``max_steps``:
    stop after this many input frames/chunks. ``window_ms``: sliding window (default: what the model was
    trained on, 1 s for gesture, the stereo config's window; 100 ms without a model).
    ``on_frame(rgb, result)``: optional hook (tests).
    """
    if task not in ("gesture", "stereo"):
        raise InvalidValueError(f"demo: unknown task '{task}'; use gesture or stereo")
    if headless and not record:
        raise InvalidValueError("demo: headless mode needs a video file to record into (OUT.mp4); there is no "
                                "window to show frames in")
    if (window_ms is not None and window_ms <= 0) or contrast <= 0 or width <= 0 or height <= 0:
        raise InvalidValueError("demo: the window length, contrast threshold, width and height must be > 0")
    if max_steps is not None and max_steps <= 0:
        raise InvalidValueError(f"demo: the step limit must be >= 1, got {max_steps}")
    if not headless:
        from eventvision.demo.display import gui_available
        if not gui_available():
            raise InvalidValueError(f"this OpenCV build has no GUI (opencv-python-headless); {NO_GUI_REMEDY}")
    predictor = build_predictor(task, model, checkpoint, device)  # fail fast on a missing checkpoint
    if task == "stereo" and source == "synthetic":
        # the synthetic rig the model was trained on (ray-cast scenes: small), else the stereo/small one
        cfg = getattr(getattr(predictor, "task", None), "cfg", None)
        if cfg is None:
            from eventvision.config import load_config
            cfg = load_config("stereo/small")
        rig = cfg.data.synthetic
        width, height = int(rig.width), int(rig.height)
    src = open_source(source, task=task, width=width, height=height, realtime=realtime, max_steps=max_steps,
                      seed=seed)
    width, height = getattr(src, "width", width), getattr(src, "height", height)
    if window_ms is None:
        window_ms = float(getattr(predictor, "window_ms", 100.0))
    _warm_up(predictor, task, width, height)
    controls = Controls(window_us=int(window_ms * 1000), contrast=contrast)
    display = None if headless else WindowDisplay(controls)
    recorder = VideoRecorder(record, fps=float(getattr(src, "fps", 30.0))) if record else None

    def sink(rgb, result, stats) -> bool:
        if rgb is not None:
            if recorder is not None:
                recorder.write(rgb)
            if on_frame is not None:
                on_frame(rgb, result)
        if display is not None:
            return display.show(rgb)
        return not controls.quit

    pipeline = DemoPipeline(src, predictor, width=width, height=height, controls=controls,
                            emulator_kwargs={"contrast": contrast, "refractory_us": refractory_us,
                                             "noise_rate_hz": noise_rate_hz, "seed": seed},
                            lossless=not realtime)
    ok = False
    try:
        summary = pipeline.run(sink)
        ok = True
    finally:
        if recorder is not None:
            recorder.close(ok=ok and recorder.frames > 0)
        if display is not None:
            display.close()
    summary["recorded_frames"] = recorder.frames if recorder is not None else 0
    summary["predictor"] = predictor.name
    return summary


def _warm_up(predictor, task: str, width: int, height: int) -> None:
    """Compile/load the numba kernels and run the model once before the clock starts (first calls take
    seconds, which would otherwise show up as dropped frames and latency at the start of a live run)."""
    import numpy as np

    from eventvision.demo.predictors import Window
    from eventvision.events.core import make_events
    from eventvision.simulate.emulator import EventEmulator

    emu = EventEmulator(8, 8)
    emu.reset(np.full((8, 8), 0.2), 0)
    emu.step(np.full((8, 8), 0.8), 1000)
    ev = make_events([0, min(1, width - 1)], [0, 0], [0, 1000], [1, -1])
    predictor(Window(0, 1000, ev, width, height, right=ev if task == "stereo" else None))

