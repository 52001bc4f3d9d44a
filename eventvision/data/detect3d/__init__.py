"""KITTI Tracking stereo sequences (images or simulated events) for streaming 3D detection."""

from eventvision.data.detect3d.kitti_tracking import (KittiTrackingStereo, collate_detect3d, find_training_dir,
                                                      load_sequence, patch_split)

__all__ = ["KittiTrackingStereo", "collate_detect3d", "find_training_dir", "load_sequence", "patch_split"]
