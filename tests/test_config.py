"""The config system: inheritance, overrides, validation with did-you-mean, --print-config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eventvision.config import (Config, apply_overrides, config_from_dict, dump_config, load_config, parse_override)
from eventvision.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_packaged_default_pulls_base_sections():
    cfg = load_config("toy/default")
    assert isinstance(cfg, Config)
    # from base.yaml (untouched by toy/default) and merged key by key with toy's own train block
    assert cfg.train.optimizer.name == "adamw" and cfg.train.optimizer.weight_decay == pytest.approx(1e-4)
    assert cfg.train.optimizer.lr == pytest.approx(1e-2)  # toy overrides only lr inside optimizer
    assert cfg.train.batch_size == 32 and cfg.train.epochs == 5
    assert cfg.data.num_classes == 4 and cfg.model.spiking is False
    assert cfg.seed == 0 and cfg.output_dir == "runs/toy"


def test_child_inherits_parent_by_packaged_name_and_by_sibling_name(tmp_path):
    write(tmp_path / "exp" / "a.yaml", "_base_: toy/default\ntrain:\n  epochs: 7\nmodel:\n  hidden: 5\n")
    write(tmp_path / "exp" / "b.yaml", "_base_: a\ntrain:\n  optimizer:\n    lr: 1e-4\n")
    cfg = load_config(tmp_path / "exp" / "b.yaml")
    assert cfg.train.epochs == 7 and cfg.model.hidden == 5          # from a
    assert cfg.train.optimizer.lr == pytest.approx(1e-4)            # from b (1e-4 read as a float)
    assert cfg.train.optimizer.name == "adamw"                      # from base via toy/default
    assert cfg.data.dim == 8


def test_repo_recipe_loads():
    cfg = load_config(REPO / "configs" / "toy" / "smoke.yaml")
    assert cfg.device == "cpu" and cfg.train.epochs == 3 and cfg.data.separation == pytest.approx(1.0)


def test_overrides_are_typed_yaml_scalars_and_lists():
    cfg = load_config("toy/default", ["train.epochs=2", "train.optimizer.lr=3e-4", "model.spiking=true",
                                      "train.optimizer.betas=[0.8, 0.9]", "output_dir=/tmp/x y"])
    assert cfg.train.epochs == 2 and isinstance(cfg.train.epochs, int)
    assert cfg.train.optimizer.lr == pytest.approx(3e-4)
    assert cfg.model.spiking is True
    assert cfg.train.optimizer.betas == [0.8, 0.9]
    assert cfg.output_dir == "/tmp/x y"
    # ints are accepted where floats are declared
    assert load_config("toy/default", ["train.grad_clip=1"]).train.grad_clip == 1
    assert parse_override("a.b=1.5") == (["a", "b"], 1.5)


def test_unknown_key_gets_did_you_mean():
    with pytest.raises(UserError, match=r"unknown config key 'train.optimizer.lrr'; did you mean 'train.optimizer.lr'"):
        load_config("toy/default", ["train.optimizer.lrr=0.1"])
    with pytest.raises(UserError, match=r"unknown config key 'trian'; did you mean 'train'"):
        load_config("toy/default", ["trian.epochs=1"])


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    path = write(tmp_path / "bad.yaml", "_base_: toy/default\nmodel:\n  hiden: 3\n")
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and "model.hiden" in message and "model.hidden" in message
    assert "\n" not in message


def test_type_errors_are_reported():
    with pytest.raises(UserError, match=r"'train.epochs' expects int, got 2.5"):
        load_config("toy/default", ["train.epochs=2.5"])
    with pytest.raises(UserError, match=r"'model.spiking' expects bool"):
        load_config("toy/default", ["model.spiking=3"])
    with pytest.raises(UserError, match=r"'train.optimizer' expects dict"):
        load_config("toy/default", ["train.optimizer=adam"])


def test_bad_override_syntax_missing_file_bad_yaml_and_cycles(tmp_path):
    with pytest.raises(UserError, match="key=value"):
        load_config("toy/default", ["train.epochs"])
    with pytest.raises(UserError, match="not found.*packaged configs:.*toy/default"):
        load_config("toy/nope")
    with pytest.raises(UserError, match=r"not valid YAML \(line \d\); fix the syntax"):
        load_config(write(tmp_path / "broken.yaml", "_base_: toy/default\ntrain: [\n"))
    write(tmp_path / "x.yaml", "_base_: y\n")
    write(tmp_path / "y.yaml", "_base_: x\n")
    with pytest.raises(UserError, match="circular"):
        load_config(tmp_path / "x.yaml")


def test_dump_round_trips_and_apply_overrides_does_not_mutate():
    cfg = load_config("toy/default", ["train.optimizer.lr=1e-5"])
    text = dump_config(cfg)
    assert "betas: [0.9, 0.999]" in text
    assert yaml.safe_load(text) == cfg.to_dict()
    other = apply_overrides(cfg, ["train.epochs=1"])
    assert other.train.epochs == 1 and cfg.train.epochs == 5
    assert config_from_dict(cfg.to_dict()) == cfg


def test_print_config_cli(tmp_path):
    recipe = write(tmp_path / "r.yaml", "_base_: toy/default\ntrain:\n  epochs: 9\n")
    out = subprocess.run([sys.executable, "-m", "eventvision", "train", "toy", "--config", str(recipe),
                          "model.hidden=7", "--print-config", "--output-dir", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = yaml.safe_load(out.stdout)
    assert printed["train"]["epochs"] == 9 and printed["model"]["hidden"] == 7
    assert printed["output_dir"] == str(tmp_path / "run")
    assert printed == load_config(recipe, ["model.hidden=7", f"output_dir={tmp_path / 'run'}"]).to_dict()
    assert not (tmp_path / "run").exists()  # printing trains nothing



def test_cli_reports_config_mistakes_in_one_line(capsys):
    from eventvision.cli.main import main
    assert main(["train", "toy", "train.epoch=3", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'train.epochs'" in err and err.startswith("eventvision: error:")
    assert main(["train", "toy", "--config", "toy/missing", "--print-config"]) == 2
    assert "config 'toy/missing' not found" in capsys.readouterr().err


def test_every_packaged_config_and_recipe_resolves():
    from eventvision.config import PACKAGED_CONFIG_DIR
    names = [str(p.relative_to(PACKAGED_CONFIG_DIR).with_suffix("")) for p in PACKAGED_CONFIG_DIR.rglob("*.yaml")]
    recipes = sorted((REPO / "configs").rglob("*.yaml"))
    assert "toy/default" in names and REPO / "configs" / "toy" / "smoke.yaml" in recipes
    for name in [n for n in names if n != "base"] + recipes:
        cfg = load_config(name)
        assert isinstance(cfg.train.batch_size, int) and cfg.train.optimizer.name in ("adamw", "adam", "sgd"), name


def test_load_config_and_choices_is_load_config_plus_the_documented_choices():
    from eventvision.config import load_config_and_choices

    cfg, choices = load_config_and_choices("stereo/default", ["train.epochs=3"])
    assert dict(cfg) == dict(load_config("stereo/default", ["train.epochs=3"]))
    assert choices and all(isinstance(v, tuple) and v for v in choices.values())
    key, options = next(iter(choices.items()))
    with pytest.raises(UserError, match=key.rsplit(".", 1)[-1]):
        load_config_and_choices("stereo/default", [f"{key}=not_an_option_{options[0]}"])
