from __future__ import annotations

import cv2
import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.events.core import make_events
from eventvision.utils.viz import OFF_RGB, ON_RGB, OPENCV_SAME_AS_MATPLOTLIB, colorize, event_image, save_png


@pytest.mark.parametrize("pol", ["pm1", "bool", "01"])
def test_event_image_colours(pol):
    p = np.array([1, 1, 0, 0, 1, 0])
    if pol == "pm1":
        p = np.where(p > 0, 1, -1)
    elif pol == "bool":
        p = p.astype(bool)
    dt = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", p.dtype)])
    ev = np.zeros(6, dtype=dt)
    ev["x"] = [0, 0, 1, 1, 2, 2]
    ev["y"] = [0, 0, 0, 0, 1, 1]
    ev["p"] = p
    img = event_image(ev, 4, 2)
    assert img.shape == (2, 4, 3) and img.dtype == np.uint8
    assert tuple(img[0, 0]) == ON_RGB           # two ON
    assert tuple(img[0, 1]) == OFF_RGB          # two OFF
    assert tuple(img[1, 2]) == (255, 255, 255)  # one ON + one OFF cancel
    assert tuple(img[1, 3]) == (255, 255, 255)  # no events


def test_colorize_range_and_nan():
    a = np.array([[0.0, 0.5, 1.0, np.nan]])
    rgb = colorize(a, cmap="gray")
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255, 0])
    assert tuple(rgb[0, 3]) == (0, 0, 0)
    clipped = colorize(np.array([[-5.0, 5.0]]), vmin=0, vmax=1, cmap="gray")
    np.testing.assert_array_equal(clipped[0, :, 0], [0, 255])
    magma = colorize(a)
    assert tuple(magma[0, 3]) == (0, 0, 0) and magma[0, 2].sum() > 500  # magma's top end is pale yellow
    with pytest.raises(UserError):
        colorize(np.zeros(3))


@pytest.mark.parametrize("cmap", OPENCV_SAME_AS_MATPLOTLIB)
def test_colormaps_read_from_opencv_equal_matplotlib(cmap):
    matplotlib = pytest.importorskip("matplotlib")
    ramp = np.linspace(0.0, 1.0, 256)[None]
    expected = (matplotlib.colormaps[cmap](ramp[0])[:, :3] * 255.0 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(colorize(ramp, vmin=0.0, vmax=1.0, cmap=cmap)[0], expected)


def test_colorize_does_not_import_matplotlib_for_magma():
    import subprocess
    import sys
    code = ("import sys, numpy as np; from eventvision.utils.viz import colorize; colorize(np.eye(3)); "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_save_png_roundtrip_and_atomic(tmp_path):
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = tmp_path / "sub" / "img.png"
    save_png(out, rgb)
    back = cv2.imread(str(out))
    np.testing.assert_array_equal(back[..., ::-1], rgb)
    assert [p.name for p in out.parent.iterdir()] == ["img.png"]  # no temp files left
    ev = make_events([1], [1], [0], [1])
    save_png(tmp_path / "ev.png", event_image(ev, 4, 4))
    with pytest.raises(UserError):
        save_png(tmp_path / "bad.png", np.zeros((3, 3), np.float32))
