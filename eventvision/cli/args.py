"""Validated argparse types: a number out of range is a usage error (one line, exit 2) naming the option.

``parser.add_argument("--window-ms", type=positive_float, ...)``: argparse reports
``argument --window-ms: must be a finite number > 0, got 'nan'``. Every command uses these for numbers;
``float``/``int`` alone accept ``nan``, ``inf`` and negative sizes.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def _number(kind: type, text: str) -> float | int:
    try:
        value = kind(text) if kind is float else int(text, 10)
    except (TypeError, ValueError):
        what = "a number" if kind is float else "an integer"
        raise argparse.ArgumentTypeError(f"not {what}: '{text}'") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got '{text}'")
    return value


def number_in(kind: type, *, low: float | None = None, high: float | None = None,
              low_open: bool = False) -> Callable[[str], float | int]:
    """An argparse type: ``kind`` (int or float), finite, in ``[low, high]`` (``(low, high]`` if
    ``low_open``)."""
    lower = (f"> {low}" if low_open else f">= {low}") if low is not None else ""
    bound = " and ".join(b for b in (lower, f"<= {high}" if high is not None else "") if b)

    def parse(text: str):
        value = _number(kind, text)
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {bound}, got '{text}'")
        return value

    parse.__name__ = f"{kind.__name__} {bound}".strip()
    return parse


finite_float = number_in(float)
positive_float = number_in(float, low=0, low_open=True)
nonneg_float = number_in(float, low=0)
positive_int = number_in(int, low=1)
nonneg_int = number_in(int, low=0)
probability = number_in(float, low=0, high=1)
#: image/sensor sides in pixels (event coordinates are uint16)
pixels = number_in(int, low=1, high=1 << 16)
#: events per read/write step: at most 2**26 (about 0.9 GB of events in memory)
chunk_events = number_in(int, low=1, high=1 << 26)

__all__ = ["chunk_events", "finite_float", "nonneg_float", "nonneg_int", "number_in", "pixels",
           "positive_float", "positive_int", "probability"]
