"""The trainer on the toy task: it learns, logs, checkpoints, calls the hooks; AMP choices."""

from __future__ import annotations

import pytest
import torch

import eventvision

from eventvision.engine import Trainer, evaluate, load_checkpoint
from eventvision.engine.logger import read_metrics_csv
from eventvision.engine.trainer import best_mode_for, resolve_amp
from eventvision.errors import UserError
from eventvision.tasks.toy import ToyTask


def test_toy_training_lowers_loss_and_raises_accuracy(toy_config, tmp_path):
    cfg = toy_config("train.epochs=4", "train.log_every=2", "train.tensorboard=true")
    task = ToyTask.from_config(cfg)
    trainer = Trainer(task, cfg, verbose=False)
    before = evaluate(task, trainer.model, "val", "cpu", batch_size=64)
    metrics = trainer.fit()
    after = evaluate(task, trainer.model, "val", "cpu", batch_size=64)

    assert before["accuracy"] < 0.6                       # untrained: near chance (0.25)
    assert after["accuracy"] > 0.8 and after["accuracy"] > before["accuracy"] + 0.3
    assert after["loss"] < 0.6 * before["loss"]
    assert metrics["val/accuracy"] == pytest.approx(after["accuracy"])
    assert metrics["epoch"] == 4 and metrics["step"] == 4 * 8

    rows = read_metrics_csv(tmp_path / "run" / "metrics.csv")
    losses = [r["value"] for r in rows if r["tag"] == "train/loss"]
    assert len(losses) == 16 and losses[-1] < 0.5 * losses[0]
    lrs = [r["value"] for r in rows if r["tag"] == "train/lr"]
    assert lrs[0] == pytest.approx(1e-2, rel=0.01) and lrs[0] > lrs[-1] > 0  # cosine schedule decays
    val = [r["value"] for r in rows if r["tag"] == "val/accuracy"]
    assert len(val) == 4 and val[-1] >= val[0]
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "config.yaml").read_text().count("separation: 1.0") == 1

    best, last = load_checkpoint(tmp_path / "run" / "best.pt"), load_checkpoint(tmp_path / "run" / "last.pt")
    assert last["epoch"] == 4 and last["step"] == 32 and last["task"] == "toy"
    assert best["metrics"]["val/accuracy"] == pytest.approx(max(val))
    assert last["config"]["data"]["separation"] == 1.0
    assert last["code_version"].startswith(eventvision.__version__)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]  # no temp files left


def test_spiking_toy_learns_and_state_is_reset_once_before_every_forward(toy_config):
    cfg = toy_config("model.spiking=true", "train.epochs=3", "train.val_every=3")
    calls = []

    def membrane(model):
        return float(torch.as_tensor(model.lif.v).abs().sum())

    class CountingToy(ToyTask):
        def reset(self, model):
            calls.append("reset")
            super().reset(model)

        def training_step(self, model, batch):
            calls.append(membrane(model))
            return super().training_step(model, batch)

        def predict(self, model, batch):
            calls.append(membrane(model))
            return super().predict(model, batch)

    trainer = Trainer(CountingToy.from_config(cfg), cfg, verbose=False)
    metrics = trainer.fit()
    assert metrics["val/accuracy"] > 0.7
    # one reset per forward (3 epochs x 8 train batches + 8 val batches), always right before it
    assert calls == ["reset", 0.0] * (3 * 8 + 8)
    assert membrane(trainer.model) > 0.0  # no second reset after the step


def test_hooks_are_called_in_order(toy_config):
    from eventvision.engine.hooks import HookBase

    cfg = toy_config("train.epochs=2", "train.val_every=2", "train.log_every=4")
    events = []

    class HookedToy(ToyTask):
        def on_epoch_end(self, model, epoch):
            events.append(("task", epoch))

    class Recorder(HookBase):
        def before_train(self):
            events.append(("before_train", self.trainer.step))

        def before_epoch(self):
            events.append(("before_epoch", self.trainer.epoch))

        def after_step(self):
            if self.trainer.step % 4 == 0:
                events.append(("step", self.trainer.step, sorted(self.trainer.step_scalars)))

        def after_epoch(self):
            val = self.trainer.metrics.get("val/accuracy")
            events.append(("epoch", self.trainer.epoch, None if val is None else round(val, 6)))

        def after_train(self):
            events.append(("after_train", self.trainer.step))

    trainer = Trainer(HookedToy.from_config(cfg), cfg, hooks=[Recorder()], verbose=False)
    metrics = trainer.fit()
    step = ["accuracy", "loss"]
    assert events == [("before_train", 0), ("before_epoch", 0), ("step", 4, step), ("step", 8, step),
                      ("task", 0), ("epoch", 1, None), ("before_epoch", 1), ("step", 12, step),
                      ("step", 16, step), ("task", 1), ("epoch", 2, round(metrics["val/accuracy"], 6)),
                      ("after_train", 16)]


def test_task_contract_declares_every_hook_the_engine_calls(toy_config):
    from eventvision.tasks.base import Task

    cfg = toy_config()
    task = ToyTask.from_config(cfg)
    model = task.build_model()
    assert Task.best_metric == "" and Task.best_mode == "" and ToyTask.best_metric == "accuracy"
    assert task.param_groups(model) == [p for p in model.parameters() if p.requires_grad]
    assert task.on_epoch_end(model, 0) is None and task.load_extra_state({"x": 1}) is None
    assert task.extra_state(model) == {}


def test_same_seed_same_weights_and_grad_clip(toy_config, tmp_path):
    def run(name, *extra):
        trainer = Trainer.from_config(toy_config("train.epochs=1", "train.val_every=0", *extra,
                                                 output_dir=tmp_path / name), "toy", verbose=False)
        trainer.fit()
        return {k: v.clone() for k, v in trainer.model.state_dict().items()}

    a, b = run("a"), run("b")
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = run("c", "seed=1")
    assert not all(torch.equal(a[k], c[k]) for k in a)
    d = run("d", "train.grad_clip=1e-3")
    assert not all(torch.equal(a[k], d[k]) for k in a)


def test_bf16_autocast_on_cpu_trains(toy_config):
    trainer = Trainer.from_config(toy_config("train.amp=bf16", "train.epochs=2"), "toy", verbose=False)
    assert trainer.amp_dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    assert trainer.fit()["val/accuracy"] > 0.6


def test_amp_and_best_mode_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_amp("auto", cpu) is None and resolve_amp("auto", cuda) is torch.float16
    assert resolve_amp("bf16", cpu) is torch.bfloat16 and resolve_amp("none", cuda) is None
    with pytest.raises(UserError, match="needs a CUDA device"):
        resolve_amp("fp16", cpu)
    with pytest.raises(UserError, match="not one of"):
        resolve_amp("fp8", cpu)
    assert best_mode_for("EPE") == "min" and best_mode_for("val_loss") == "min" and best_mode_for("top1") == "max"


def test_config_errors_are_user_errors(toy_config):
    with pytest.raises(UserError, match="train.best_metric 'nope'"):
        Trainer.from_config(toy_config("train.epochs=1", "train.best_metric=nope"), "toy", verbose=False).fit()
    with pytest.raises(UserError, match="train.optimizer.name.*'lion'"):
        Trainer.from_config(toy_config("train.optimizer.name=lion"), "toy", verbose=False)
    with pytest.raises(UserError, match="fewer than one batch"):
        Trainer.from_config(toy_config("data.train_size=10", "train.drop_last=true"), "toy", verbose=False)
    with pytest.raises(UserError, match=r"train.optimizer: Invalid learning rate: -1.0"):
        Trainer.from_config(toy_config("train.optimizer.lr=-1"), "toy", verbose=False)

    class NanToy(ToyTask):
        def training_step(self, model, batch):
            loss, scalars = super().training_step(model, batch)
            return loss * float("nan"), scalars

    cfg = toy_config("train.epochs=1")
    with pytest.raises(UserError, match="training loss became nan at epoch 1, step 1"):
        Trainer(NanToy.from_config(cfg), cfg, verbose=False).fit()
