"""Event arrays, slicing, readers and writers. See :mod:`eventvision.events.core` for the contract."""

from eventvision.events.core import (EVENT_DTYPE, EventMeta, check_events, compute_ms_to_idx, empty_events,
                                     make_events, merge_events, signed_polarity, slice_count, slice_time)

__all__ = ["EVENT_DTYPE", "EventMeta", "check_events", "compute_ms_to_idx", "empty_events", "make_events",
           "merge_events", "signed_polarity", "slice_count", "slice_time"]
