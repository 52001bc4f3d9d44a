"""Running models on event streams: one predictor per task, writers beside them.

* :mod:`eventvision.inference.stereo`: open a stereo recording, window, rectify, predict (learned
  checkpoint or SGBM), write ``disparity.h5`` / PNGs / ``summary.json`` / MP4;
* :mod:`eventvision.inference.detect3d`: KITTI stereo sequences streamed at 10 Hz with measured latency -> 3D boxes;
* :mod:`eventvision.inference.gesture`: the gesture checkpoint on event windows (the live demo's model);
* :mod:`eventvision.inference.writers`: the output writers (temporary name, renamed on close).

``cli/`` and ``demo/`` parse arguments and draw; the work happens here. Windows are half-open
``[t0, t1)`` (:class:`eventvision.events.recording.EventWindow`).
"""
