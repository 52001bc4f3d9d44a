"""SGBM baseline: which per-window event image matches best, and how long a window takes.

Synthetic scenes with exact GT (346x260, f = 200 px, b = 0.1 m, patches at 6-40 px, background at
2-8 px), the 50 ms window ending at the GT time, block 9. For each event image of
:mod:`eventvision.matching.sgbm`: mean error / 1PE / 3PE on the pixels SGBM answers, % of valid GT
pixels answered, and ms per window (image + matching), against the one-channel time surface and the
count image as the simple alternatives.

    python benchmarks/bench_sgbm.py [--scenes 4] [--speckle 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=4)
    ap.add_argument("--speckle", type=int, default=100, help="speckle window (0 = filter off)")
    args = ap.parse_args(argv)
    from eventvision.matching.sgbm import IMAGE_KINDS, event_image, sgbm_disparity
    from eventvision.simulate.stereo_scenes import SceneParams, StereoCamera, StereoScene

    width, height, t0, t1 = 346, 260, 10_000, 60_000
    cam = StereoCamera(width=width, height=height, focal_px=200.0, baseline_m=0.1)
    params = SceneParams(patch_disparity=(6.0, 40.0), background_disparity=(2.0, 8.0))
    scenes = []
    for seed in range(args.scenes):
        scene = StereoScene.random(cam, seed, params)
        left, right = scene.events(t1)
        scenes.append((left, right, scene.disparity(t1)))
    print(f"SGBM on {args.scenes} synthetic scenes {width}x{height}, window {(t1 - t0) / 1000:g} ms, block 9,"
          f" "
          f"speckle window {args.speckle}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'event image':>24} {'mean px':>8} {'median':>7} {'1PE %':>6} {'3PE %':>6} {'answered %':>10} "
          f"{'ms/window':>9}")
    for kind in IMAGE_KINDS:
        errors, answered, valid_total, seconds = [], 0, 0, []
        for left, right, gt in scenes:
            t = time.perf_counter()
            kw = dict(width=width, height=height, t_start=t0, t_end=t1, kind=kind)
            disp = sgbm_disparity(event_image(left, **kw), event_image(right, **kw), max_disparity=63,
                                  speckle_window=args.speckle)
            seconds.append(time.perf_counter() - t)
            valid = np.isfinite(gt) & (gt > 0)
            ok = valid & np.isfinite(disp)
            errors.append(np.abs(disp[ok] - gt[ok]))
            answered, valid_total = answered + int(ok.sum()), valid_total + int(valid.sum())
        err = np.concatenate(errors)
        print(f"{kind:>24} {err.mean():8.3f} {np.median(err):7.3f} {100 * (err > 1).mean():6.1f} "
              f"{100 * (err > 3).mean():6.1f} {100 * answered / valid_total:10.1f} "
              f"{1e3 * float(np.median(seconds)):9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
