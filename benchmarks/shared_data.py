"""Where the real samples are: ``$EVENTVISION_SHARED_DATA``, else ``../shared/data`` beside the checkout.

The one definition for the benchmarks (the tests' twin is ``tests/conftest.py``'s ``SHARED_DATA``); a machine
that holds the samples elsewhere (a GPU machine with a copy, say) sets the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("EVENTVISION_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
