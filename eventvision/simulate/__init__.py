"""Simulation: the frames -> events emulator (:mod:`.emulator`) and per-task synthetic scene generators
(``<task>_scenes.py``, owned by each task)."""

from eventvision.simulate.emulator import EventEmulator, emulate_frames, iter_emulate

__all__ = ["EventEmulator", "emulate_frames", "iter_emulate"]
