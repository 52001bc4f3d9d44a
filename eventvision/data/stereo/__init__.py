"""Stereo event datasets: DSEC, MVSEC and synthetic scenes, all yielding the sample dict of
:mod:`eventvision.data.stereo.common` (``left``/``right`` float32 [T, 1, H, W] sign-SBT,
``disparity`` float32 [H, W] px with NaN invalid, ``meta``).

The names below are imported on first use: ``run stereo`` needs only the window encoders of ``common``, and the
synthetic scenes would bring scipy.ndimage in (~0.2 s of a 2 s recording's run on 2 cores)."""

_HOME = {
    "WindowEncoder": "common", "crop_sample": "common", "make_sample": "common", "mask_disparity": "common",
    "DSECStereoSequence": "dsec", "build_dsec_dataset": "dsec", "check_dsec_sequence": "dsec",
    "MVSECStereoSequence": "mvsec", "build_mvsec_dataset": "mvsec",
    "SyntheticStereoConfig": "synthetic", "SyntheticStereoDataset": "synthetic",
    "SyntheticStereoRecording": "synthetic",
}


def __getattr__(name):
    if name in _HOME:
        import importlib
        return getattr(importlib.import_module(f"eventvision.data.stereo.{_HOME[name]}"), name)
    raise AttributeError(f"module 'eventvision.data.stereo' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_HOME})


__all__ = ["DSECStereoSequence", "MVSECStereoSequence", "SyntheticStereoConfig", "SyntheticStereoDataset",
           "SyntheticStereoRecording", "WindowEncoder", "build_dsec_dataset", "build_mvsec_dataset",
           "check_dsec_sequence", "crop_sample", "make_sample", "mask_disparity"]
