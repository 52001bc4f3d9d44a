"""Event arrays, slicing, readers and writers. See :mod:`eventvision.events.core` for the contract.

Readers: :func:`open_recording` (any format, streaming). Writers: :class:`StereoH5Writer`,
:func:`write_stereo_h5`, :class:`DsecH5Writer`, :func:`write_dsec_events_h5` (h5py imported lazily).
"""

from eventvision.events.core import (EVENT_DTYPE, EventMeta, check_events, compute_ms_to_idx, empty_events,
                                     make_events, merge_events, signed_polarity, slice_count, slice_time)
from eventvision.events.readers import detect_format, open_recording
from eventvision.events.recording import EventStream, StereoRecording

_LAZY = {"StereoH5Writer", "DsecH5Writer", "write_stereo_h5", "write_dsec_events_h5"}


def __getattr__(name):
    if name in _LAZY:
        from eventvision.events import h5
        return getattr(h5, name)
    raise AttributeError(f"module 'eventvision.events' has no attribute {name!r}")


__all__ = ["EVENT_DTYPE", "DsecH5Writer", "EventMeta", "EventStream", "StereoH5Writer", "StereoRecording",
           "check_events", "compute_ms_to_idx", "detect_format", "empty_events", "make_events", "merge_events",
           "open_recording", "signed_polarity", "slice_count", "slice_time", "write_dsec_events_h5",
           "write_stereo_h5"]
