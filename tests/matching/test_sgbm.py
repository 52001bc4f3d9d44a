"""SGBM baseline: exact shifts, the NaN contract, and a synthetic event scene with exact GT."""

import numpy as np
import pytest

from eventvision.errors import InvalidValueError
from eventvision.matching.sgbm import (
    IMAGE_KINDS,
    SGBMStereo,
    event_image,
    sgbm_disparity,
    sgbm_from_events,
)
from eventvision.simulate.stereo_scenes import SceneParams, StereoCamera, StereoScene


def _texture(height, width, seed=0):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.uniform(0, 255, (height, width)), 1.0)
    return np.clip((img - img.min()) * 255 / np.ptp(img), 0, 255).astype(np.uint8)


def test_exact_shift_recovered_including_left_border():
    width, shift = 120, 7
    scene = _texture(60, width + shift)
    left, right = scene[:, :width], scene[:, shift:]  # right sees every point 7 px further left
    disp = sgbm_disparity(left, right, max_disparity=31, block_size=5)
    assert disp.dtype == np.float32 and disp.shape == left.shape
    inner = disp[:, shift + 2 : -2]  # columns x < shift have no match in the right view
    answered = np.isfinite(inner)
    assert answered.mean() > 0.95
    assert np.abs(inner[answered] - shift).max() <= 0.5
    assert answered[:, :8].mean() > 0.9  # the padded left columns are matched too


def test_beyond_max_disparity_is_nan_and_bad_inputs_refused():
    scene = _texture(40, 100)
    disp = sgbm_disparity(scene[:, :70], scene[:, 30:], max_disparity=20, block_size=5)
    assert np.all(~np.isfinite(disp) | (disp <= 20))
    with pytest.raises(InvalidValueError):
        sgbm_disparity(scene, scene[:, 1:], max_disparity=20)
    with pytest.raises(InvalidValueError):
        sgbm_disparity(scene, scene, max_disparity=20, block_size=4)


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_event_image_half_open_window(kind):
    from eventvision.events.core import make_events

    ev = make_events([1, 2, 3], [0, 0, 0], [0, 10, 20], [1, -1, 1])
    img = event_image(ev, width=4, height=2, t_start=0, t_end=20, kind=kind)
    assert img.dtype == np.uint8 and img.shape[:2] == (2, 4)
    flat = img.reshape(2, 4, -1)
    neutral = 128 if kind == "polarity_sum" else 0
    assert np.all(flat[0, 3] == neutral)  # the event at t = t_end lies outside [0, 20)
    assert np.any(flat[0, 1] != neutral) and np.any(flat[0, 2] != neutral)


def test_synthetic_scene_with_exact_gt():
    """Mean error on answered GT pixels below 1 px, >= 85 % of them answered, 1PE below 10 %."""
    cam = StereoCamera(width=160, height=120, focal_px=120.0, baseline_m=0.1)
    errors, answered, total = [], 0, 0
    for seed in (0, 1):
        scene = StereoScene.random(cam, seed, SceneParams(patch_disparity=(6.0, 30.0)))
        t0, t1 = 10_000, 60_000
        left, right = scene.events(t1)
        gt = scene.disparity(t1)
        disp = SGBMStereo(width=160, height=120, max_disparity=63)(left, right, t0, t1)
        np.testing.assert_array_equal(
            disp,
            sgbm_from_events(left, right, t_start=t0, t_end=t1, width=160, height=120, max_disparity=63),
            strict=False,
        )
        valid = np.isfinite(gt) & (gt > 0)
        ok = valid & np.isfinite(disp)
        errors.append(np.abs(disp[ok] - gt[ok]))
        answered, total = answered + ok.sum(), total + valid.sum()
    err = np.concatenate(errors)
    print(
        f"sgbm synthetic: epe {err.mean():.3f} px, 1pe {100 * (err > 1).mean():.1f} %, "
        f"answered {100 * answered / total:.1f} %"
    )
    assert err.mean() < 1.0
    assert (err > 1).mean() < 0.10
    assert answered / total >= 0.85
