import json

import pytest
import torch

from eventvision.cli.main import main
from eventvision.models.stereo import build_stereo_model, load_genotype

TINY_RUN = ["search.epochs=2", "search.warmup_epochs=1", "search.filter_multiplier=1", "search.fea_num_layers=1",
            "search.mat_num_layers=2", "search.max_level=1", "search.batch_size=2", "search.energy_weight=0.1",
            "data.synthetic.num_train=4", "data.synthetic.width=36", "data.synthetic.height=24",
            "model.max_disp=12", "data.max_disparity=11.0", "device=cpu"]


pytestmark = pytest.mark.usefixtures("single_thread")


def test_search_cli_writes_loadable_genotype(tmp_path, capsys):
    out = tmp_path / "genotype.yaml"
    assert main(["search", "stereo", "--config", "stereo/small", *TINY_RUN, "--output", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[0])
    g = load_genotype(out)
    assert g.to_dict() == printed["genotype"]
    assert len(g.feature.path) == 1 and len(g.matching.path) == 2
    assert printed["final"]["arch"] is True and printed["final"]["energy"] > 0
    model = build_stereo_model(genotype=str(out), fea_filter_multiplier=1, mat_filter_multiplier=1, max_disp=12)
    assert model(torch.zeros(1, 5, 24, 36), torch.zeros(1, 5, 24, 36)).shape == (1, 24, 36)


def test_search_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["search", "stereo", "search.epoch=1", "--output", str(tmp_path / "g.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search.epoch" in err[0]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("_base_: stereo/small\n")
    assert main(["search", "stereo", "--config", str(cfg), "--output", str(cfg)]) == 2
    assert "is the input file" in capsys.readouterr().err
    assert cfg.read_text() == "_base_: stereo/small\n"
