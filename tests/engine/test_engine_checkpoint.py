"""Checkpoints: round trip, atomic writes, clear one-line errors (API and CLI exit 2), model rebuild."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from eventvision.cli.main import main as cli_main
from eventvision.engine import Trainer, evaluate, load_checkpoint, load_model_from_checkpoint, save_checkpoint
from eventvision.engine.checkpoint import FORMAT, VERSION
from eventvision.errors import UserError
from eventvision.tasks.toy import ToyMLP, ToyTask


@pytest.fixture(scope="module")
def trained(tmp_path_factory, toy_overrides):
    from eventvision.config import load_config
    out = tmp_path_factory.mktemp("ckpt") / "run"
    cfg = load_config("toy/default", toy_overrides + ["train.epochs=2", f"output_dir={out}"])
    trainer = Trainer.from_config(cfg, "toy", verbose=False)
    metrics = trainer.fit()
    return out, metrics


def test_round_trip_holds_every_field(tmp_path):
    model = ToyMLP(dim=3, hidden=4, num_classes=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "a" / "c.pt", task="toy", config={"x": {"y": 1}}, model=model, optimizer=opt,
                           epoch=3, step=7, metrics={"acc": 0.5}, extra={"genotype": [[1, 2], [3]]})
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temp file left
    ckpt = load_checkpoint(path, expected_task="toy")
    assert ckpt["format"] == FORMAT and ckpt["version"] == VERSION and ckpt["task"] == "toy"
    assert ckpt["config"] == {"x": {"y": 1}} and ckpt["epoch"] == 3 and ckpt["step"] == 7
    assert ckpt["metrics"] == {"acc": 0.5} and ckpt["extra"] == {"genotype": [[1, 2], [3]]}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in ckpt["model"].items())
    assert torch.equal(ckpt["optimizer"]["state"][0]["momentum_buffer"],
                       opt.state_dict()["state"][0]["momentum_buffer"])
    assert ckpt["torch_version"] == torch.__version__ and ckpt["code_version"]


def test_failed_write_leaves_old_file_intact(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", task="toy", config={}, model={"w": torch.zeros(2)})
    with pytest.raises(TypeError):
        save_checkpoint(path, task="toy", config={}, model={"w": torch.ones(2)}, metrics={"bad": object()})
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_bad_files_raise_one_line_user_errors(tmp_path, trained):
    out, _ = trained
    good = (out / "best.pt").read_bytes()
    cases = {
        "missing.pt": (None, "checkpoint not found"),
        "truncated.pt": (good[: len(good) // 2], "corrupt or truncated"),
        "garbage.pt": (b"\x00\x01not a checkpoint" * 10, "corrupt or truncated"),
        "empty.pt": (b"", "corrupt or truncated"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        with pytest.raises(UserError, match=message) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not an eventvision checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": FORMAT, "version": VERSION + 1}, tmp_path / "newer.pt")
    with pytest.raises(UserError, match="newer than this eventvision supports"):
        load_checkpoint(tmp_path / "newer.pt")
    torch.save({"format": FORMAT, "version": VERSION, "task": "toy"}, tmp_path / "partial.pt")
    with pytest.raises(UserError, match="lacks config, model"):
        load_checkpoint(tmp_path / "partial.pt")
    with pytest.raises(UserError, match="checkpoint is for task 'toy', not 'stereo'"):
        load_checkpoint(out / "best.pt", expected_task="stereo")
    with pytest.raises(UserError, match="is a folder"):
        load_checkpoint(out)


def test_load_model_from_checkpoint_rebuilds_the_trained_model(trained):
    out, metrics = trained
    task, model, ckpt = load_model_from_checkpoint(out / "last.pt", task_name="toy")
    assert type(task).__name__ == "ToyTask" and not model.training
    assert task.cfg.data.separation == 1.0  # the config came from inside the checkpoint
    assert evaluate(task, model, "val", "cpu", batch_size=16)["accuracy"] == pytest.approx(metrics["val/accuracy"])
    task2, model2, _ = load_model_from_checkpoint(out / "last.pt", overrides=["data.val_size=32"])
    assert len(task2.build_dataset("val")) == 32
    with pytest.raises(UserError, match="weights do not fit"):
        load_model_from_checkpoint(out / "last.pt", overrides=["model.hidden=8"])


def test_eval_cli_writes_json_and_fails_cleanly(trained, tmp_path, capsys):
    out, metrics = trained
    assert cli_main(["eval", "toy", "--checkpoint", str(out / "last.pt"), "--json", str(tmp_path / "m.json"),
                     "--split", "val"]) == 0
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["task"] == "toy" and report["split"] == "val" and report["epoch"] == 2
    assert report["metrics"]["accuracy"] == pytest.approx(metrics["val/accuracy"])
    assert "accuracy" in capsys.readouterr().out

    bad = tmp_path / "bad.pt"
    bad.write_bytes((out / "last.pt").read_bytes()[:1000])
    for task, path, message in [("toy", tmp_path / "nope.pt", "checkpoint not found"),
                                ("gesture", out / "last.pt", "checkpoint is for task 'toy', not 'gesture'")]:
        assert cli_main(["eval", task, "--checkpoint", str(path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.startswith("eventvision: error:") and err.count("\n") == 1

    # the real process: exit status 2, one line, no traceback
    res = subprocess.run([sys.executable, "-m", "eventvision", "eval", "toy", "--checkpoint", str(bad)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 2 and "corrupt or truncated" in res.stderr
    assert res.stderr.startswith("eventvision: error:") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_task_extra_state_is_saved_and_handed_back_before_the_model_is_built(toy_config, tmp_path):
    import numpy as np

    calls = []

    class GenotypeToy(ToyTask):
        def extra_state(self, model):
            return {"genotype": [[0, 1], [2]], "alphas": np.arange(3.0)}

        def load_extra_state(self, extra):
            calls.append(("extra", extra["genotype"], extra["alphas"].tolist()))

        def build_model(self):
            calls.append(("build",))
            return super().build_model()

    cfg = toy_config("train.epochs=1", "train.val_every=0")
    Trainer(GenotypeToy.from_config(cfg), cfg, verbose=False).fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["extra"]["genotype"] == [[0, 1], [2]]
    calls.clear()
    Trainer(GenotypeToy.from_config(cfg), cfg, resume=True, verbose=False)
    assert calls == [("extra", [[0, 1], [2]], [0.0, 1.0, 2.0]), ("build",)]


def test_load_state_into_lets_a_fine_tune_add_modules_but_nothing_else():
    """train.init_weights may start a model that adds modules (they keep their initialisation); keys the model
    lacks and shape mismatches stay one-line errors."""
    from eventvision.engine.checkpoint import load_state_into

    base = torch.nn.Sequential(torch.nn.Linear(4, 3))
    grown = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    with pytest.raises(UserError, match="2 missing"):
        load_state_into(grown, base.state_dict(), source="base.pt")
    assert load_state_into(grown, base.state_dict(), source="base.pt", allow_missing=True) == ["1.weight", "1.bias"]
    torch.testing.assert_close(grown[0].weight, base[0].weight)
    with pytest.raises(UserError, match="unexpected"):
        load_state_into(base, grown.state_dict(), source="grown.pt", allow_missing=True)
    wide = torch.nn.Sequential(torch.nn.Linear(4, 5))
    with pytest.raises(UserError, match="do not fit"):
        load_state_into(wide, base.state_dict(), source="base.pt", allow_missing=True)


def test_a_checkpoint_written_before_a_config_key_existed_gets_its_default(trained, tmp_path):
    out, _ = trained
    ckpt = load_checkpoint(out / "last.pt")
    del ckpt["config"]["data"]["val_size"]                 # as if the key had been added to the suite since
    ckpt["config"]["data"]["separation"] = 1.0             # a stored value that differs from the default (2.0)
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    task, _, _ = load_model_from_checkpoint(old, task_name="toy")
    assert task.cfg.data.separation == 1.0                 # stored values win over the defaults
    assert len(task.build_dataset("val")) == 256           # the missing key: the task's default
    task, _, _ = load_model_from_checkpoint(old, task_name="toy", overrides=["data.val_size=32"])
    assert len(task.build_dataset("val")) == 32            # and it can be overridden


def test_average_checkpoints_is_the_mean_of_the_weights_and_refuses_other_networks(tmp_path):
    from pathlib import Path

    from torch import nn

    from eventvision.engine.checkpoint import average_checkpoints
    from eventvision.errors import CheckpointError

    def net(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))

    a, b = net(0), net(1)
    b[1].running_mean.fill_(2.0)
    b[1].num_batches_tracked.fill_(7)
    pa = save_checkpoint(tmp_path / "a.pt", task="toy", config={"x": 1}, model=a, step=5)
    pb = save_checkpoint(tmp_path / "b.pt", task="toy", config={"x": 2}, model=b, step=9)
    out = load_checkpoint(average_checkpoints([pa, pb], tmp_path / "soup.pt"))
    for key, value in a.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(out["model"][key], (value + b.state_dict()[key]) / 2)
    assert out["model"]["1.num_batches_tracked"] == a[1].num_batches_tracked     # integer buffers: the first's
    assert out["config"] == {"x": 1} and out["step"] == 5 and out["optimizer"] is None
    other = save_checkpoint(tmp_path / "c.pt", task="toy", config={}, model=nn.Sequential(nn.Conv2d(2, 4, 3)))
    with pytest.raises(CheckpointError, match="same network"):
        average_checkpoints([pa, other], tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    # the script: one line and exit 2 for a bad input, and it never writes over an input
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "average_checkpoints.py"
    proc = subprocess.run([sys.executable, str(script), str(pa), str(pa), str(pb)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "s.pt"), str(pa), str(other)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "same network" in proc.stderr and not (tmp_path / "s.pt").exists()


def test_a_checkpoint_trained_on_a_gpu_is_read_where_there_is_none(trained, tmp_path):
    """A GPU recipe stores device: cuda; eval on a machine without CUDA used to stop on it ("device 'cuda' requested
    but CUDA is not available here"): the training machine's device is no request of the reader. An explicit one is."""
    out, _ = trained
    ckpt = load_checkpoint(out / "last.pt")
    ckpt["config"]["device"] = "cuda:1"
    gpu = tmp_path / "gpu.pt"
    torch.save(ckpt, gpu)
    task, _, _ = load_model_from_checkpoint(gpu, task_name="toy")
    assert task.cfg.device == "auto"
    assert load_model_from_checkpoint(gpu, task_name="toy", overrides=["device=cpu"])[0].cfg.device == "cpu"
    assert cli_main(["eval", "toy", "--checkpoint", str(gpu), "--json", str(tmp_path / "m.json")]) == 0
