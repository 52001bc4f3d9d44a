from __future__ import annotations

import subprocess
import sys

import eventvision.data.stereo as stereo_data


def test_every_exported_name_resolves():
    assert sorted(stereo_data.__all__) == sorted(stereo_data._HOME)
    for name in stereo_data.__all__:
        assert getattr(stereo_data, name).__name__ == name
    assert set(stereo_data.__all__) <= set(dir(stereo_data))


def test_window_encoders_load_without_the_scene_generator():
    # run stereo imports only the encoders: the synthetic scenes (and scipy.ndimage) stay unloaded
    code = ("import sys; from eventvision.data.stereo.common import make_pair_encoder; "
            "print(any(m in sys.modules for m in ('eventvision.simulate.stereo_scenes', 'scipy.ndimage')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
