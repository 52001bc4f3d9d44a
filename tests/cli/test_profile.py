"""`eventvision profile <task>` on the toy task: table, mJ per sample, counts equal hand counts."""

import json

import pytest

from eventvision.cli.main import main


def test_profile_toy_spiking(tmp_path, capsys):
    out = tmp_path / "energy.json"
    rc = main(["profile", "toy", "model.spiking=true", "model.timesteps=4", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mJ per sample" in text and "LIFNode" in text
    rep = json.loads(out.read_text())
    rows = {r["name"]: r for r in rep["rows"]}
    # toy defaults: dim 8 -> hidden 32 -> 4 classes, T = 4, one sample
    assert rows["fc1"]["op"] == "MAC" and rows["fc1"]["macs"] == 4 * 32 * 8  # Gaussian input: not spikes
    fr = rows["lif"]["fr_out"]
    assert 0.0 <= fr <= 1.0
    assert rows["fc2"]["op"] == "AC" and rows["fc2"]["acs"] == pytest.approx(fr * 4 * 4 * 32)
    assert rep["energy_mj"] == pytest.approx((4.6 * rep["total_macs"] + 0.9 * rep["total_acs"]) * 1e-9)
    # same seed, same untrained weights: identical numbers on a second run
    rc = main(["profile", "toy", "model.spiking=true", "--e-ac", "1.8", "--json", str(out)])
    rep2 = json.loads(out.read_text())
    assert rc == 0 and rep2["total_acs"] == pytest.approx(rep["total_acs"]) and rep2["e_ac_pj"] == 1.8


def test_profile_ann_counts_macs(capsys):
    assert main(["profile", "toy", "--batch-size", "2"]) == 0
    text = capsys.readouterr().out
    # ToyMLP: Linear(8, 32) + Linear(32, 4) on real input = 256 + 128 MACs per sample
    assert "total per sample: 384 MACs, 0 ACs" in text


@pytest.mark.parametrize("argv", [["profile", "toy", "model.bogus=1"], ["profile", "nope"],
                                  ["profile", "toy", "--batch-size", "0"]])
def test_profile_bad_input_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventvision: error:") and len(err.strip().splitlines()) == 1


def test_profile_detect3d_renders_its_one_sample_in_a_removed_temp_dir(tmp_path, monkeypatch, capsys):
    import tempfile

    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert main(["profile", "detect3d", "--batch-size", "2"]) == 0
    assert "mJ per sample" in capsys.readouterr().out
    assert list(work.iterdir()) == [] and list(temp.iterdir()) == []  # nothing under ./runs, temp removed


def test_profile_syops_convention(tmp_path, capsys):
    out = tmp_path / "syops.json"
    rc = main(["profile", "toy", "model.spiking=true", "model.timesteps=4", "--convention", "syops",
               "--json", str(out)])
    assert rc == 0 and "syops convention" in capsys.readouterr().out
    rep = json.loads(out.read_text())
    rows = {r["name"]: r for r in rep["rows"]}
    assert rep["convention"] == "syops"
    assert rows["fc1"]["macs"] == 4 * 32 * 8 + 32  # syops-counter adds the bias once per call
    assert rows["lif"]["acs"] == 4 * 32  # one membrane update per neuron and step
    fr = rows["fc2"]["fr_in"]
    assert rows["fc2"]["acs"] == pytest.approx(fr * (4 * 4 * 32 + 4))
