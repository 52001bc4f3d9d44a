"""Live demo: frames (camera, video, synthetic) -> event emulator (or real events) -> sliding window ->
representation -> model -> OpenCV window / mp4, with FPS and end-to-end latency.

Entry points: ``eventvision demo gesture|stereo`` (:mod:`eventvision.cli.demo`), ``apps/live_demo.py``,
and :func:`eventvision.demo.app.run_demo`.
"""
