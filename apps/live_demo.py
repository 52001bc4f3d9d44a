#!/usr/bin/env python
"""Live event-camera demo (thin wrapper over eventvision.demo).

    python apps/live_demo.py gesture --source 0                # webcam -> emulator -> gesture model
    python apps/live_demo.py gesture --source synthetic --headless --record out.mp4 --max-steps 300
    python apps/live_demo.py stereo --source recording.h5 --model sgbm   # rectified like `run stereo`

Keys: space pause, w/s window longer/shorter, a/d contrast lower/higher, q or Esc quit.
"""

import sys

from eventvision.cli.main import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("gesture", "stereo"):
        print(__doc__)
        sys.exit(2 if argv else 0)
    sys.exit(main(["demo", *argv]))
