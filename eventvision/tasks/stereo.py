"""Stereo disparity task (SpikeDHS): sign-SBT event windows of both cameras -> disparity map.

Batches (``default_collate`` of :mod:`eventvision.data.stereo.common` samples)::

    {"left": float32 [N, T, 1, H, W], "right": float32 [N, T, 1, H, W],   # T = data.num_bins SBT bins
     "disparity": float32 [N, H, W] (px, NaN invalid), "meta": {...}}

``predict`` returns disparity float32 [N, H, W] in pixels (the model's soft-argmin output). The
training loss is the smooth-L1 between prediction and GT over valid pixels (GT finite and
``< data.max_disparity``), as in GC-Net/PSMNet/LEAStereo. Metrics come from
:mod:`eventvision.evaluation.stereo` (EPE/MAE, nPE, RMSE; depth errors for MVSEC).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from eventvision.errors import ConfigError, InvalidValueError
from eventvision.models.stereo.loss import disparity_loss, matching_loss
from eventvision.models.stereo.refine import MATCHING_STEP_PX
from eventvision.tasks.base import Task
from eventvision.utils.disparity import valid_disparity

DATASETS = ("synthetic", "dsec", "mvsec")
#: stereo networks: the SpikeDHS network (SBT input) or SGBM + learned refinement (time surfaces + SGBM)
ARCHS = ("spikedhs", "sgbm_refine")
#: DGS schedule of the released SpikeDHS (train.py): every 5 epochs each surrogate width b moves to the
#: winner of softmax(alpha) accumulated over at most 200 batches (then clamped to [1, 6])
DGS_EVERY_EPOCHS = 5
DGS_MAX_BATCHES = 200


class StereoTask(Task):
    name = "stereo"
    default_config = "stereo/refine"
    best_metric = "epe"

    def __init__(self, cfg):
        super().__init__(cfg)
        self._epoch = 0          # epochs completed (DGS schedule)
        self._dgs_batches = 0    # batches accumulated in the current DGS cycle
        data, model = cfg.data, cfg.model
        if data.dataset not in DATASETS:
            raise ConfigError(f"data.dataset='{data.dataset}': choose one of {', '.join(DATASETS)}")
        if self.arch not in ARCHS:
            raise ConfigError(f"model.arch='{self.arch}': choose one of {', '.join(ARCHS)}")
        if int(data.num_bins) != int(model.num_bins):
            raise ConfigError(f"data.num_bins={data.num_bins} but model.num_bins={model.num_bins}; set both "
                              f"to the same number of SBT bins")
        if float(data.max_disparity) > int(model.max_disp) - 1:
            raise ConfigError(f"data.max_disparity={data.max_disparity} exceeds what the model can output "
                              f"(model.max_disp - 1 = {int(model.max_disp) - 1}); raise model.max_disp")
        if float(cfg.loss.get("matching_weight", 0.0) or 0.0) < 0:
            raise ConfigError(f"loss.matching_weight={cfg.loss.matching_weight} is negative; use 0 to switch the "
                              f"matching branch's loss off or a positive weight (1.0 measured best)")

    # --- building -----------------------------------------------------------------------------
    @property
    def arch(self) -> str:
        return str(self.cfg.model.get("arch", "spikedhs"))

    def build_model(self) -> nn.Module:
        if self.arch == "sgbm_refine":
            from eventvision.models.stereo.refine import SGBMRefineStereo
            return SGBMRefineStereo.from_config(self.cfg.model)
        from eventvision.models.stereo import SpikeDHSStereo
        return SpikeDHSStereo.from_config(self.cfg.model)

    @property
    def encoding(self) -> dict:
        """The window encoding the model reads (:func:`eventvision.data.stereo.common.make_pair_encoder`)."""
        if self.arch == "sgbm_refine":
            from eventvision.models.stereo.refine import RefineConfig

            # SGBM searches the model's whole output range, whatever range the GT is scored on
            refine = dict(self.cfg.model.get("refine") or {})
            opts = {"offsets": tuple(int(k) for k in refine["offsets"])} if "offsets" in refine else {}
            if RefineConfig.from_options(**refine).needs_right:
                opts["right_image"] = True          # the matching branch and the second pass read both views
            return {"kind": "sgbm_refine", "max_disparity": float(self.cfg.model.max_disp) - 1, **opts,
                    **dict(self.cfg.model.get("sgbm") or {})}
        return {"kind": "sbt"}

    def pair_encoder(self, *, width: int, height: int):
        """Both cameras' events of a window -> the model's inputs, for a ``width`` x ``height`` sensor."""
        from eventvision.data.stereo.common import make_pair_encoder
        return make_pair_encoder(self.encoding, width=width, height=height, num_bins=int(self.cfg.data.num_bins))

    @property
    def window_us(self) -> int:
        return int(round(float(self.cfg.data.window_ms) * 1000))

    def synthetic_config(self):
        from eventvision.data.stereo.synthetic import SyntheticStereoConfig
        return SyntheticStereoConfig.from_config(self.cfg.data.synthetic)

    def build_dataset(self, split: str, *, prefill: bool = True) -> torch.utils.data.Dataset:
        """The split's dataset; a synthetic one with ``data.synthetic.prefill_workers`` > 0 has every scene made up
        front, unless ``prefill`` is False (readers of a few scenes or of raw windows: a checkpoint carries the setting
        of the machine it was trained on)."""
        data = self.cfg.data
        crop = tuple(int(c) for c in data.crop) if data.crop else None
        common = dict(window_us=self.window_us, num_bins=int(data.num_bins), max_disparity=float(data.max_disparity),
                      crop=crop, seed=int(self.cfg.seed), encoding=self.encoding)
        if data.dataset == "synthetic":
            from eventvision.data.stereo.synthetic import SyntheticStereoDataset
            syn = data.synthetic
            count = {"train": syn.num_train, "val": syn.num_val, "test": syn.num_test}.get(split)
            if count is None:
                raise InvalidValueError(f"stereo: unknown split '{split}'; use train, val or test")
            dataset = SyntheticStereoDataset(split=split, num_samples=int(count), scene=self.synthetic_config(),
                                             sizes=synthetic_sizes(syn.get("sizes")), **common)
            workers = int(syn.get("prefill_workers") or 0)    # an int >= 0: checked when the config was read
            return dataset.prefill(workers) if workers and prefill else dataset
        if not data.root:
            where = ("https://dsec.ifi.uzh.ch/dsec-datasets/download/ (see datasets/prepare_dsec.md)"
                     if data.dataset == "dsec" else
                     "https://daniilidis-group.github.io/mvsec/download/ (see datasets/prepare_mvsec.md)")
            raise ConfigError(f"data.root is empty: set data.root=/path/to/{data.dataset} ({where})")
        if data.dataset == "dsec":
            from eventvision.data.stereo.dsec import build_dsec_dataset
            return build_dsec_dataset(data.root, split, val_sequences=tuple(data.val_sequences), **common)
        from eventvision.data.stereo.mvsec import build_mvsec_dataset
        return build_mvsec_dataset(data.root, split, mvsec_split=int(data.split), scene=str(data.scene), **common)

    def build_reading_dataset(self, split: str) -> torch.utils.data.Dataset:
        """The split's dataset without the prefill: its samples are made when read."""
        return self.build_dataset(split, prefill=False)

    def collate(self, samples):
        return torch.utils.data.default_collate(samples)

    def build_evaluator(self):
        from eventvision.evaluation.stereo import StereoEvaluator
        kwargs = {"max_disp": float(self.cfg.data.max_disparity)}
        if self.cfg.data.dataset == "mvsec":
            from eventvision.data.stereo.mvsec import focal_baseline
            kwargs["focal_baseline"] = focal_baseline(str(self.cfg.data.scene))
        return StereoEvaluator(**kwargs)

    # --- steps --------------------------------------------------------------------------------
    def reset(self, model: nn.Module) -> None:
        """Nothing to do: :class:`SpikeDHSStereo` resets its spiking state at the start of every forward
        (each window is an independent sample), the one place for every forward path (training step,
        evaluation, streaming, energy profile)."""

    def predict(self, model: nn.Module, batch) -> torch.Tensor:
        """Disparity float32 [N, H, W] (px)."""
        return model(*self.model_inputs(batch))

    @staticmethod
    def model_inputs(batch) -> tuple:
        """The model's positional inputs: ``(left, right)`` SBT, or ``(left, guide[, right])`` for the SGBM-refine
        network (``right`` with its matching branch)."""
        if "guide" not in batch:
            return batch["left"], batch["right"]
        return (batch["left"], batch["guide"]) + ((batch["right"],) if "right" in batch else ())

    def training_step(self, model: nn.Module, batch):
        gt = batch["disparity"]
        max_d = float(self.cfg.data.max_disparity)
        matching_weight = float(self.cfg.loss.get("matching_weight", 0.0) or 0.0)
        if self.arch == "sgbm_refine" and "right" in batch and matching_weight > 0:
            # the refine network's matching branch is also supervised directly (it starts gated off)
            pred, logits = model(*self.model_inputs(batch), with_matching=True)
            loss = disparity_loss(pred, gt, max_d, str(self.cfg.loss.name)) \
                + matching_weight * matching_loss(logits, gt, max_d, step=MATCHING_STEP_PX)
        else:
            pred = self.predict(model, batch)
            loss = disparity_loss(pred, gt, max_d, str(self.cfg.loss.name))
        dgs_cycle_end = (self._epoch + 1) % DGS_EVERY_EPOCHS == 0
        if self.cfg.model.dgs and dgs_cycle_end and self._dgs_batches < DGS_MAX_BATCHES:
            from eventvision.spiking.surrogate import accumulate_surrogates
            accumulate_surrogates(model)
            self._dgs_batches += 1
        with torch.no_grad():
            mask = valid_disparity(gt, max_d)
            epe = (pred[mask] - gt[mask]).abs().mean().item() if mask.any() else float("nan")
        return loss, {"epe": epe}

    def on_epoch_end(self, model: nn.Module, epoch: int) -> None:
        """DGS (``model.dgs``): after every ``DGS_EVERY_EPOCHS`` epochs move each surrogate width to its
        accumulated winner (:func:`eventvision.spiking.surrogate.recenter_surrogates`)."""
        self._epoch = epoch + 1
        if self.cfg.model.dgs and self._epoch % DGS_EVERY_EPOCHS == 0:
            from eventvision.engine.checkpoint import unwrap
            from eventvision.spiking.surrogate import recenter_surrogates
            recenter_surrogates(unwrap(model))
            self._dgs_batches = 0

    # --- extras -------------------------------------------------------------------------------
    def extra_state(self, model: nn.Module) -> dict:
        """The model's genotype, so a checkpoint trained on a searched genotype file needs no file to load."""
        from eventvision.engine.checkpoint import unwrap
        genotype = getattr(unwrap(model), "genotype", None)
        return {"genotype": genotype.to_dict()} if genotype is not None else {}

    def load_extra_state(self, extra: dict) -> None:
        """Build the model from the checkpoint's embedded genotype (instead of ``model.genotype``, which may
        name a file that does not exist where the checkpoint is used)."""
        if extra.get("genotype"):
            self.cfg.model["genotype"] = dict(extra["genotype"])

    def energy(self, model: nn.Module, batch) -> dict:
        """Energy per inference (45 nm model of eventvision.spiking.energy) on one batch of one sample."""
        from eventvision.spiking.energy import profile_energy
        one = {k: (v[:1] if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        report = profile_energy(model, self.model_inputs(one))
        return {"energy_mj": float(report.energy_mj), "macs": float(report.total_macs), "acs": float(report.total_acs)}


def constant_baseline_epe(train_set, eval_set, max_disparity: float) -> dict:
    """The trivial predictor: the median of all valid training GT disparities, everywhere.

    Returns ``{"median": m, "epe": mean |m - d|, "1pe": % |m - d| > 1}`` over valid eval pixels.
    """
    values = []
    for i in range(len(train_set)):
        d = np.asarray(train_set[i]["disparity"])
        values.append(d[valid_disparity(d, max_disparity)])
    median = float(np.median(np.concatenate(values)))
    err = []
    for i in range(len(eval_set)):
        d = np.asarray(eval_set[i]["disparity"])
        err.append(np.abs(d[valid_disparity(d, max_disparity)] - median))
    err = np.concatenate(err)
    return {"median": median, "epe": float(err.mean()), "1pe": float((err > 1).mean() * 100.0)}


def synthetic_sizes(value) -> tuple[tuple[int, int], ...]:
    """``data.synthetic.sizes`` (a list of ``[width, height]`` px; empty or null = the one ``width``/``height``)
    -> tuple of ``(width, height)``; ConfigError naming the bad entry otherwise."""
    sizes = []
    for item in value or ():
        try:
            width, height = (int(v) for v in item)
        except (TypeError, ValueError):
            raise ConfigError(f"data.synthetic.sizes: each entry must be [width, height] in px, got {item!r}") from None
        sizes.append((width, height))
    return tuple(sizes)
