"""``eventvision convert IN OUT.h5``: any event file to eventvision's h5 layout, streaming in bounded memory.

Stereo input (DSEC sequence folder, MVSEC ``*_data.hdf5``, eventvision h5) becomes the stereo layout
(``left/``, ``right/`` in DSEC layout, both cameras on one clock). Rectification is kept: events of a
DSEC folder or of an MVSEC file with its ``<scene>_calib`` maps are written *rectified* (root attribute
``rectified`` = 1, the same rounding ``run stereo`` applies), so every stereo command gives the same
disparity on the converted file as on the original. The rig goes along: ``focal_px``/``baseline_m`` from
DSEC's ``calibration/cam_to_cam.yaml`` when present, MVSEC's ``focal_baseline_px_m`` (f·B) per scene.
Mono input becomes a single-camera DSEC ``events.h5`` (``events/x`` ..., ``ms_to_idx``, ``t_offset`` at
the root, root attrs width/height), which DSEC tools and ``open_recording`` read directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventvision.cli.args import chunk_events

HELP = "convert an event file to eventvision's h5 layout (DSEC events.h5 for mono, left/right for stereo)"


def add_arguments(parser) -> None:
    parser.add_argument("input", help="event file or DSEC sequence folder")
    parser.add_argument("output", help="output .h5 file (written atomically)")
    parser.add_argument("--compression", choices=("blosc", "gzip", "none"), default="blosc",
                        help="blosc = Blosc/ZSTD as in DSEC (gzip if hdf5plugin is missing)")
    parser.add_argument("--chunk-events", type=chunk_events, default=1 << 20,
                        help="events read and written per step")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it exists (never the input)")


def output_t_offset(stream, t_start: int) -> int:
    """Keep the input clock when its timestamps fit comfortably (DSEC, eventvision files); otherwise
    (absolute µs, e.g. AEDAT/MVSEC) start the stored clock at the first event so ``ms_to_idx`` stays short."""
    return int(stream.meta.t_offset) + (0 if 0 <= t_start < 2 ** 31 else int(t_start))


def _absolute(chunk: np.ndarray, offset: int) -> np.ndarray:
    if offset:
        chunk = chunk.copy()
        chunk["t"] += offset
    return chunk


def stereo_rectification(src: Path, rec) -> tuple[tuple | None, dict, list[str]]:
    """(maps or None, extra root attrs, notes) for a stereo input (see module doc)."""
    from eventvision.inference.stereo import find_rectify_maps
    kind = "dsec" if src.is_dir() else str(rec.format)
    maps, notes = find_rectify_maps(src, kind)
    attrs = {"rectified": int(maps is not None)} if kind in ("dsec", "mvsec") else {}
    if kind == "dsec":
        from eventvision.data.stereo.dsec import read_event_calibration
        calib = read_event_calibration(src)
        if calib is not None:
            attrs["focal_px"], attrs["baseline_m"] = calib
    elif kind == "mvsec":
        from eventvision.data.stereo.mvsec import FOCAL_BASELINE, scene_of
        fb = FOCAL_BASELINE.get(scene_of(src.name.replace("_data.hdf5", "")))
        if fb is not None:
            attrs["focal_baseline_px_m"] = fb
    return maps, attrs, notes


def main(args) -> int:
    import sys

    from eventvision.errors import UserError
    from eventvision.events.core import empty_events
    from eventvision.events.h5 import DsecH5Writer, StereoH5Writer
    from eventvision.events.readers import open_recording
    from eventvision.events.recording import IndexedStream
    from eventvision.representations import rectify
    from eventvision.utils.io import refuse_overwrite_input
    from eventvision.utils.progress import progress

    src, dst = Path(args.input), Path(args.output)
    refuse_overwrite_input(dst, src)
    if dst.exists() and not args.force:
        raise UserError(f"{dst}: already exists; pass --force to replace it or choose another output path")

    notes: list[str] = []  # printed once the output is complete: a failure stays one line
    with open_recording(src) as rec:
        streams = (rec.left, rec.right) if rec.is_stereo else (rec,)
        starts = [s.t_start for s in streams]
        # sequential formats would need an extra decoding pass to know their count: show a running total
        total = sum(s.num_events for s in streams) if all(isinstance(s, IndexedStream) for s in streams) else None
        maps = None
        if rec.is_stereo:
            maps, attrs, notes = stereo_rectification(src, rec)
            if rec.format == "mvsec":   # the calibration files read are inputs too
                from eventvision.data.stereo.mvsec import find_rectify_maps
                refuse_overwrite_input(dst, *(find_rectify_maps(src) or {}).values())
            shift = rec.right_shift
            t0 = min(starts[0], starts[1] + shift)
            writer = StereoH5Writer(dst, rec.left.width, rec.left.height, rec.baseline_m, rec.focal_px,
                                    t_offset=output_t_offset(rec.left, t0), compression=args.compression,
                                    attrs=attrs)
        else:
            writer = DsecH5Writer(dst, rec.width, rec.height, t_offset=output_t_offset(rec, starts[0]),
                                  compression=args.compression)
        with writer, progress(total=total, desc=f"convert {src.name}", unit="ev", unit_scale=True) as bar:
            for k, stream in enumerate(streams):
                for chunk in stream.iter_chunks(args.chunk_events):
                    n_read = len(chunk)
                    chunk = _absolute(chunk, stream.meta.t_offset)
                    if maps is not None:
                        chunk = rectify(chunk, maps[k])
                    if not rec.is_stereo:
                        writer.append(chunk)
                    elif k == 0:
                        writer.append(chunk, empty_events())
                    else:
                        writer.append(empty_events(), chunk)
                    bar.update(n_read)
    for note in notes:
        print(f"eventvision: note: {note}", file=sys.stderr)
    return 0
