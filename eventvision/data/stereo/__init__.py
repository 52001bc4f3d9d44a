"""Stereo event datasets: DSEC, MVSEC and synthetic scenes, all yielding the sample dict of
:mod:`eventvision.data.stereo.common` (``left``/``right`` float32 [T, 1, H, W] sign-SBT,
``disparity`` float32 [H, W] px with NaN invalid, ``meta``)."""

from eventvision.data.stereo.common import WindowEncoder, crop_sample, make_sample, mask_disparity
from eventvision.data.stereo.dsec import DSECStereoSequence, build_dsec_dataset, check_dsec_sequence
from eventvision.data.stereo.mvsec import MVSECStereoSequence, build_mvsec_dataset
from eventvision.data.stereo.synthetic import SyntheticStereoConfig, SyntheticStereoDataset, SyntheticStereoRecording

__all__ = ["WindowEncoder", "crop_sample", "make_sample", "mask_disparity", "DSECStereoSequence", "build_dsec_dataset",
           "check_dsec_sequence", "MVSECStereoSequence", "build_mvsec_dataset", "SyntheticStereoConfig",
           "SyntheticStereoDataset", "SyntheticStereoRecording"]
