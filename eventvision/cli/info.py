"""``eventvision info PATH [--json]``: format, sensor size, event count, time range and rate of a recording,
plus the file's other streams (AEDAT 4.0 frames/IMU/triggers) and what a reader skipped (AEDAT 2.0/3.1)."""

from __future__ import annotations

import json

HELP = "show format, sensor size, event count, time range and rate of an event file (per camera for stereo)"


def add_arguments(parser) -> None:
    parser.add_argument("path", help="event file (.h5/.hdf5, .aedat4, .aedat, .raw, .dat, .npy, .npz) or "
                                     "DSEC sequence folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--verify", action="store_true",
                        help="read every event and check time order and coordinates (indexed formats are otherwise "
                             "summarised from their first/last event)")


def _verify(stream) -> None:
    for _ in stream.iter_chunks():
        pass


def _lines(d: dict, indent: str = "") -> list[str]:
    size = f"{d['width']} x {d['height']}" + ("  (inferred from the events)" if d.get("size_inferred") else "")
    rate = f"{d['event_rate_hz'] / 1e6:.3f} Mev/s" if d.get("event_rate_hz") else "n/a"
    return [f"{indent}format:       {d['format']}",
            f"{indent}sensor:       {size}",
            f"{indent}events:       {d['count']:,}",
            f"{indent}t_start_us:   {d['t_start_us']}",
            f"{indent}t_end_us:     {d['t_end_us']}",
            f"{indent}t_offset_us:  {d['t_offset_us']}",
            f"{indent}duration:     {d['duration_s']:.6f} s",
            f"{indent}event rate:   {rate}"] + _extra_lines(d, indent)


def _extra_lines(d: dict, indent: str) -> list[str]:
    out = []
    for name, s in d.get("other_streams", {}).items():
        span = f", t {s['t_start_us']} .. {s['t_end_us']} us" if s.get("t_start_us") is not None else ""
        count = "?" if s.get("count") is None else f"{s['count']:,}"
        out.append(f"{indent}{name + ':':<14}{count} (stream {s['stream_id']}{span})")
    for key in ("chip", "source"):
        if d.get(key):
            out.append(f"{indent}{key + ':':<14}{d[key]}")
    skipped = {k: v for k, v in {**d.get("skipped", {}), **d.get("skipped_packets", {})}.items() if v}
    if skipped:
        unit = " (packets)" if d.get("skipped_packets") else " (records)"
        out.append(f"{indent}{'skipped:':<14}" + ", ".join(f"{k} {v:,}" for k, v in skipped.items()) + unit)
    return out


def main(args) -> int:
    from eventvision.events.readers import open_recording

    with open_recording(args.path) as rec:
        if args.verify:
            for stream in ((rec.left, rec.right) if rec.is_stereo else (rec,)):
                _verify(stream)
        info = {"path": str(args.path), **rec.describe()}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    out = [f"path:         {info['path']}"]
    if info.get("stereo"):
        out.append(f"format:       {info['format']} (stereo)")
        for key in ("baseline_m", "focal_px"):
            if info.get(key) is not None:
                out.append(f"{key + ':':<14}{info[key]}")
        for cam, d in info["streams"].items():
            out.append(f"{cam}:")
            out += _lines(d, "  ")
    else:
        out += _lines(info)
    print("\n".join(out))
    return 0
