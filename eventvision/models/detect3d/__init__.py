"""Stereo 3D detection for streaming perception (DSGN-like baseline and StreamDSGN)."""

from eventvision.models.detect3d.model import CLASS_NAMES, StageTimer, StereoDetector3D

__all__ = ["StereoDetector3D", "StageTimer", "CLASS_NAMES"]
