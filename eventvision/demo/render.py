"""Compose one demo frame (RGB uint8): polarity image | optional overlay, plus a status bar of text."""

from __future__ import annotations

import numpy as np

from eventvision.utils.viz import event_image

BAR_H = 56
KEYS_HELP = "space pause | w/s window +/- | a/d contrast -/+ | q quit"


def _put(img, text, org, scale=0.5, color=(255, 255, 255)):
    import cv2
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def render_frame(result, stats, controls) -> np.ndarray:
    """Event image of the window (red ON / blue OFF on white), the prediction's overlay to its right
    (resized to the same height), and a black bar with prediction, FPS, latency and settings."""
    import cv2
    win = result.window
    panels = [event_image(win.events, win.width, win.height)]
    overlay = result.prediction.overlay
    if overlay is not None:
        if overlay.shape[0] != win.height:
            w = max(1, int(round(overlay.shape[1] * win.height / overlay.shape[0])))
            overlay = cv2.resize(overlay, (w, win.height), interpolation=cv2.INTER_NEAREST)
        panels.append(overlay)
    body = np.concatenate(panels, axis=1) if len(panels) > 1 else panels[0]
    # small sensors (stereo 96x64) are scaled up so the text fits
    if body.shape[1] < 480:
        f = int(np.ceil(480 / body.shape[1]))
        body = cv2.resize(body, (body.shape[1] * f, body.shape[0] * f), interpolation=cv2.INTER_NEAREST)
    bar = np.zeros((BAR_H, body.shape[1], 3), dtype=np.uint8)
    pred = result.prediction
    line1 = pred.text + (f"  ({pred.confidence * 100:.0f}%)" if pred.confidence is not None else "")
    if result.truth:
        line1 += f"   [scene: {result.truth}]"
    lat = stats.latencies_ms[-1] if stats.latencies_ms else float("nan")
    line2 = (f"{stats.fps():5.1f} FPS  latency {lat:6.1f} ms  window {controls.window_us / 1000:.0f} ms  "
             f"C={controls.contrast:.2f}  events {len(win.events):,}" + ("  PAUSED" if controls.paused else ""))
    _put(bar, line1, (8, 20), 0.6, (255, 255, 0))
    _put(bar, line2, (8, 44), 0.45)
    return np.ascontiguousarray(np.concatenate([body, bar], axis=0))
