"""StereoTask: config checks, masked loss, energy, and training that beats the trivial predictor."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from eventvision.config import load_config
from eventvision.errors import ConfigError, UserError
from eventvision.tasks import get_task_class
from eventvision.models.stereo.loss import disparity_loss, matching_loss
from eventvision.tasks.stereo import StereoTask, constant_baseline_epe

# a CPU-quick variant of stereo/small: 32x48 plain scenes of one textured plane (plus at most one patch) at a
# random disparity in [3, 20] px, so that a constant prediction is poor; 5 ms render steps, max disparity 24
QUICK = ["data.synthetic.width=48", "data.synthetic.height=32", "data.synthetic.num_train=256",
         "data.synthetic.num_val=16", "data.synthetic.num_patches=[0,1]", "data.synthetic.patch_disparity=[3.0,20.0]",
         "data.synthetic.background_disparity=[3.0,20.0]", "data.synthetic.frame_dt_us=5000",
         "data.synthetic.family=plain", "model.max_disp=24", "data.max_disparity=23.0",
         "train.tensorboard=false", "device=cpu"]


def test_registered_and_configs_resolve():
    assert get_task_class("stereo") is StereoTask
    for name in ("stereo/default", "stereo/small", "stereo/full", "stereo/refine"):
        StereoTask(load_config(name))
    cfg = load_config("stereo/small")
    assert cfg.model.max_disp == 63 and cfg.data.window_ms == 50.0 and cfg.data.num_bins == 5
    assert load_config("stereo/full").model.fea_filter_multiplier == 8


@pytest.mark.parametrize("overrides, match", [
    (["data.num_bins=3"], "num_bins"),
    (["data.max_disparity=70.0"], "max_disp"),
    (["data.dataset=kitti"], "synthetic, dsec, mvsec"),
    (["model.arch=cnn"], "arch"),
    (["model.arch=sgbm_refine", "model.sgbm.mode=fast"], "mode"),
    (["model.arch=sgbm_refine", "model.refine.encoder=snn"], "encoder"),
])
def test_bad_config(overrides, match):
    with pytest.raises(UserError, match=match):
        StereoTask(load_config("stereo/small", overrides))


def test_real_dataset_without_root_says_where_to_get_it():
    task = StereoTask(load_config("stereo/small", ["data.dataset=mvsec"]))
    with pytest.raises(UserError, match="mvsec/download"):
        task.build_dataset("train")


def test_loss_ignores_invalid_pixels():
    pred = torch.tensor([[[1.0, 5.0, 3.0, 100.0]]], requires_grad=True)
    gt = torch.tensor([[[2.0, float("nan"), 3.5, 30.0]]])                 # 30 > max_disparity: ignored
    loss = disparity_loss(pred, gt, 23.0, "l1")
    assert loss.item() == pytest.approx((1.0 + 0.5) / 2)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 0, 1] == 0 and pred.grad[0, 0, 3] == 0
    sl1 = disparity_loss(pred.detach(), gt, 23.0)                           # smooth L1: 0.5 + 0.5*0.5^2
    assert sl1.item() == pytest.approx((0.5 + 0.125) / 2)


def test_matching_loss_is_the_triangle_cross_entropy_over_valid_pixels():
    logits = torch.tensor([0.5, 2.0, 1.0, -1.0]).view(1, 4, 1, 1).expand(1, 4, 2, 3).contiguous()
    logits.requires_grad_(True)
    gt = torch.full((1, 8, 12), 6.0)                   # between the 4 px and 8 px levels: weights 0.5 / 0.5
    gt[0, :2] = float("nan")
    gt[0, 2, :4] = 40.0                                # beyond max_disparity: ignored
    logp = torch.log_softmax(torch.tensor([0.5, 2.0, 1.0, -1.0]), 0)
    loss = matching_loss(logits, gt, 23.0, step=4.0)
    assert loss.item() == pytest.approx(float(-0.5 * (logp[1] + logp[2])), rel=1e-5)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    gt[0, 5, 5] = 4.0                                  # exactly on a level: one-hot
    one = matching_loss(logits.detach()[..., :1, :1], gt[..., 5:6, 5:6], 23.0, step=4.0)
    assert one.item() == pytest.approx(float(-logp[1]), rel=1e-5)
    assert matching_loss(logits.detach(), torch.full((1, 8, 12), float("nan")), 23.0, step=4.0).item() == 0.0


def test_refine_training_step_supervises_the_matching_branch_directly():
    """With model.refine.correlation the task adds loss.matching_weight x the branch's cross-entropy, so its
    features learn from the first step although the branch's output starts gated off."""
    cfg = load_config("stereo/refine", ["data.synthetic.width=64", "data.synthetic.height=40", "data.crop=[]",
                                        "data.synthetic.num_train=2", "model.refine.correlation=16",
                                        "model.refine.correlation_channels=4", "device=cpu"])
    task = StereoTask(cfg)
    model = task.build_model().train()
    batch = task.collate([task.build_dataset("train")[i] for i in range(2)])
    assert batch["right"].shape == batch["left"].shape
    loss, logs = task.training_step(model, batch)
    pred = task.predict(model, batch)
    assert loss.item() > disparity_loss(pred, batch["disparity"], 62.0, "smooth_l1").item() + 0.1
    loss.backward()
    assert model.match_features[0][0].weight.grad.abs().sum() > 0
    task.cfg.loss.matching_weight = 0.0
    assert task.training_step(model, batch)[0].item() == pytest.approx(
        disparity_loss(pred, batch["disparity"], 62.0, "smooth_l1").item(), rel=1e-4)


def test_energy_per_inference_is_positive():
    task = StereoTask(load_config("stereo/small", QUICK))
    model = task.build_model()
    batch = task.collate([task.build_dataset("val")[0]])
    energy = task.energy(model, batch)
    assert energy["energy_mj"] > 0 and energy["macs"] > 0 and energy["acs"] > 0   # spiking layers count ACs


def test_training_beats_constant_median(tmp_path, single_thread):
    """~400 steps of the small architecture; its all-ANN variant (the spiking one needs ~10x more steps than
    a CPU test can afford: see docs/stereo.md) must end far below the constant-median predictor."""
    from eventvision.engine import Trainer
    from eventvision.engine.evaluate import evaluate

    cfg = load_config("stereo/small", QUICK + ["model.feature=ann", "model.matching=ann", "train.epochs=7",
                                              "train.batch_size=4", "train.optimizer.lr=3e-3",
                                              "train.val_every=0", f"output_dir={tmp_path}"])
    task = StereoTask(cfg)
    trainer = Trainer.from_config(cfg, task, verbose=False)
    before = evaluate(task, trainer.model, "val", "cpu")
    trainer.fit()
    metrics = evaluate(task, trainer.model, "val", "cpu")
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    losses = [float(r["value"]) for r in rows if r["tag"] == "train/loss"]
    assert len(losses) >= 2 and losses[-1] < 0.7 * losses[0], losses           # the loss falls ...
    assert metrics["epe"] < 0.7 * before["epe"], (before, metrics)             # ... and the error improves
    trivial = constant_baseline_epe(trainer.train_set, task.build_dataset("val"), cfg.data.max_disparity)
    assert math.isfinite(metrics["epe"]) and metrics["valid_pixels"] > 10_000
    assert trivial["epe"] > 3.0
    assert metrics["epe"] < 0.6 * trivial["epe"], (metrics, trivial)


def test_checkpoint_carries_its_genotype_and_evaluates_from_another_folder(tmp_path, monkeypatch, single_thread):
    """A model trained on a searched genotype file: its checkpoint embeds the genotype, so `eval stereo`
    works from a folder where the file (a relative path in the stored config) does not exist."""
    from eventvision.cli.main import main
    from eventvision.engine.checkpoint import save_checkpoint
    from eventvision.models.stereo import SPIKEDHS_MVSEC, Genotype, StageGenotype, save_genotype

    searched = Genotype(feature=StageGenotype(cell=((0, "snn_b3"), (1, "skip"), (2, "snn_b5"), (4, "snn_b3"),
                                                    (5, "skip"), (8, "snn_b3")), path=(0, 1)),
                        matching=SPIKEDHS_MVSEC.matching)
    train_dir, other = tmp_path / "train", tmp_path / "elsewhere"
    train_dir.mkdir()
    other.mkdir()
    monkeypatch.chdir(train_dir)
    save_genotype("genotype.yaml", searched)
    cfg = load_config("stereo/small", QUICK + ["model.genotype=genotype.yaml", "model.fea_filter_multiplier=1",
                                              "model.mat_filter_multiplier=1", "data.synthetic.num_val=2"])
    task = StereoTask(cfg)
    model = task.build_model()
    assert model.genotype == searched
    save_checkpoint(train_dir / "best.pt", task="stereo", config=cfg, model=model, extra=task.extra_state(model))
    monkeypatch.chdir(other)
    assert main(["eval", "stereo", "--checkpoint", str(train_dir / "best.pt"), "--json", "m.json"]) == 0
    assert (other / "m.json").is_file()


def test_sgbm_refine_training_improves_on_sgbm(tmp_path, single_thread):
    """The SGBM-refine network starts as SGBM with its holes filled (zero-initialised last layer); a short
    training on synthetic scenes must lower the loss and the validation error below that starting point."""
    from eventvision.engine import Trainer
    from eventvision.engine.evaluate import evaluate

    cfg = load_config("stereo/refine", [
        "data.synthetic.width=96", "data.synthetic.height=64", "data.crop=[]", "data.synthetic.num_train=96",
        "data.synthetic.num_val=12", "data.synthetic.frame_dt_us=4000", "model.refine.channels=[8,12,16]",
        "train.epochs=12", "train.batch_size=8", "train.optimizer.lr=3e-3", "train.val_every=0",
        "train.tensorboard=false", "device=cpu", f"output_dir={tmp_path}"])
    task = StereoTask(cfg)
    trainer = Trainer.from_config(cfg, task, verbose=False)
    before = evaluate(task, trainer.model, "val", "cpu")       # = filled SGBM
    trainer.fit()
    after = evaluate(task, trainer.model, "val", "cpu")
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    losses = [float(r["value"]) for r in rows if r["tag"] == "train/loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert after["epe"] < 0.85 * before["epe"], (before, after)


def test_dgs_schedule_moves_widths_every_five_epochs():
    from eventvision.spiking.surrogate import DGSSurrogate

    task = StereoTask(load_config("stereo/small", QUICK + ["model.dgs=true", "model.fea_filter_multiplier=1",
                                                          "model.mat_filter_multiplier=1"]))
    model = task.build_model()
    dgs = [m for m in model.modules() if isinstance(m, DGSSurrogate)]
    assert dgs
    with torch.no_grad():
        for m in dgs:
            m.alpha.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 3.0]))     # +0.4 wins
            m.accumulate()
    for epoch in range(4):
        task.on_epoch_end(model, epoch)
    assert all(float(m.width) == pytest.approx(3.0) for m in dgs)      # not before 5 epochs
    task.on_epoch_end(model, 4)
    assert all(float(m.width) == pytest.approx(3.4) for m in dgs)


def test_negative_matching_weight_is_refused():
    cfg = load_config("stereo/refine", ["loss.matching_weight=-0.5", "device=cpu"])
    with pytest.raises(ConfigError, match="matching_weight"):
        StereoTask(cfg)
