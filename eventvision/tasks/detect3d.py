"""Streaming stereo 3D detection task (DSGN-like baseline / StreamDSGN), for the shared engine and CLI.

Batches come from :func:`eventvision.data.detect3d.collate_detect3d`: ``left``/``right``/``prev_left``/
``prev_right`` [N, C, H, W], ``P2``/``P3`` [N, 3, 4], per-sample ``targets`` (boxes of frame t+1, grid frame),
``history`` (boxes at t, t−1, t−2) and ``gt_objects`` (KITTI objects of t+1). ``predict`` returns per sample
``{"boxes" [K, 7] grid frame, "scores" [K], "labels" [K]}``; the evaluator turns them into KITTI objects and
scores KITTI AP (``eventvision.evaluation.kitti.ap``) against frame t+1.

Data: ``data.dataset: synthetic`` renders (once, cached under ``data.synthetic_root``) KITTI-layout sequences
with ``eventvision.simulate.kitti_scenes``; ``kitti`` reads a KITTI Tracking root with StreamDSGN's 40-frame
alternating patch split.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from eventvision.data.detect3d.kitti_tracking import KittiTrackingStereo, collate_detect3d
from eventvision.engine.checkpoint import unwrap
from eventvision.errors import ConfigError
from eventvision.evaluation.base import Evaluator
from eventvision.evaluation.kitti.ap import KittiAPEvaluator
from eventvision.formats.kitti import to_kitti_pixel_scale
from eventvision.models.detect3d import StereoDetector3D
from eventvision.models.detect3d.postprocess import detections_to_objects
from eventvision.tasks.base import Task


class Detect3DEvaluator(Evaluator):
    """Detections (grid frame) + batch -> KITTI objects with P2 -> :class:`KittiAPEvaluator` (flat
    ``"Car/3d/R40/moderate"`` percent keys). 2D boxes of both sides are rescaled to KITTI's 375-px image
    height first (:func:`to_kitti_pixel_scale`) so difficulty levels hold for down-scaled renders."""

    def __init__(self, *, overlap: str = "strict", classes=("Car", "Pedestrian", "Cyclist")):
        self.kitti = KittiAPEvaluator(classes=classes, overlap=overlap)

    def reset(self) -> None:
        self.kitti.reset()

    def process(self, inputs, outputs) -> None:
        dts, gts = [], []
        for i, det in enumerate(outputs):
            size = tuple(inputs["image_size"][i])
            objs = detections_to_objects(det["boxes"].cpu().numpy(), det["scores"].cpu().numpy(),
                                         det["labels"].cpu().numpy(), inputs["P2"][i].cpu().numpy(), size,
                                         frame=int(inputs["frame"][i]) + 1)
            dts.append(to_kitti_pixel_scale(objs, size[1]))
            gts.append(to_kitti_pixel_scale(inputs["gt_objects"][i], size[1]))
        self.kitti.process(gts, dts)

    def evaluate(self) -> dict[str, float]:
        return self.kitti.evaluate()

    def save_pictures(self, out_dir):
        return self.kitti.save_pictures(out_dir)

    def state(self):
        return self.kitti.state()

    def merge(self, states) -> None:
        self.kitti.merge(states)


def synthetic_sequence_seed(data_seed: int, name: str) -> int:
    """Render seed of synthetic sequence ``name`` ("0042") of a data set with ``data.seed``: the same sequence
    whichever split or command renders it."""
    return int(data_seed) * 100_003 + int(name)


def ensure_synthetic_dataset(data_cfg, splits: tuple[str, ...] = ("train", "val")
                             ) -> tuple[Path, list[str], list[str]]:
    """Render the sequences of ``splits`` of the synthetic KITTI-layout set described by ``data_cfg`` that are not
    there yet (a ``synthetic.json`` records the parameters and the sequences done; evaluating needs only the val
    ones); returns (root, train sequences, val sequences)."""
    from eventvision.simulate.kitti_scenes import SceneConfig, write_sequence

    root = Path(data_cfg.synthetic_root)
    n_train, n_val = int(data_cfg.synthetic_train_seqs), int(data_cfg.synthetic_val_seqs)
    params = {"seed": int(data_cfg.seed), "frames": int(data_cfg.synthetic_frames),
              "objects": int(data_cfg.synthetic_objects),
              "image_scale": float(data_cfg.image_scale), "class_probs": list(data_cfg.synthetic_class_probs),
              "calib": str(data_cfg.synthetic_calib or ""), "supersample": int(data_cfg.synthetic_supersample),
              "z_range": list(data_cfg.synthetic_z_range), "depth_maps": True}
    names = [f"{i:04d}" for i in range(n_train + n_val)]
    marker = root / "synthetic.json"
    done = json.loads(marker.read_text()) if marker.is_file() else {}
    if done.get("params") != params:
        done = {"params": params, "sequences": []}
    cfg = SceneConfig(num_frames=params["frames"], num_objects=params["objects"], image_scale=params["image_scale"],
                      class_probs=tuple(params["class_probs"]), supersample=params["supersample"],
                      z_range=tuple(params["z_range"]))
    from eventvision.utils.io import atomic_write_text
    from eventvision.utils.progress import progress
    wanted = (names[:n_train] if "train" in splits else []) + (names[n_train:] if "val" in splits else [])
    for name in progress([n for n in wanted if n not in done["sequences"]], desc="render synthetic KITTI", unit="seq"):
        write_sequence(root, name, synthetic_sequence_seed(params["seed"], name), cfg, params["calib"] or None)
        done["sequences"].append(name)
        atomic_write_text(marker, json.dumps(done))
    return root, names[:n_train], names[n_train:]


class Detect3DTask(Task):
    name = "detect3d"
    default_config = "detect3d/small"
    best_metric = "Car/3d/R40/moderate"

    def build_model(self) -> nn.Module:
        return StereoDetector3D.from_config(self.cfg.model)

    def dataset_args(self, split: str) -> dict:
        d = self.cfg.data
        m = self.cfg.model
        common = dict(grid_x=tuple(m.x_range), grid_y=tuple(m.y_range), input_kind=d.input, event_bins=d.event_bins,
                      event_contrast=d.event_contrast, seed=d.seed, patch_len=d.patch_len)
        if d.dataset == "synthetic":
            root, train, val = ensure_synthetic_dataset(d, ("train",) if split == "train" else ("val",))
            return dict(root=root, split="all", split_mode="sequence", sequences=train if split == "train" else val,
                        **common)
        if d.dataset == "kitti":
            if not d.root:
                raise ConfigError("data.root is empty: set data.root=/path/to/KITTI_tracking (folder with "
                                  "training/image_02, image_03, calib, label_02)")
            seqs = [str(s) for s in d.sequences] or None
            return dict(root=d.root, split=split, split_mode="patch", sequences=seqs, **common)
        raise ConfigError(f"unknown detect3d dataset '{d.dataset}'; choose synthetic or kitti")

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        return KittiTrackingStereo(**self.dataset_args(split))

    def collate(self, samples):
        return collate_detect3d(samples)

    def build_evaluator(self) -> Evaluator:
        return Detect3DEvaluator(overlap=self.cfg.eval.overlap)

    def training_step(self, model: nn.Module, batch):
        out = model(batch)
        loss, parts = unwrap(model).loss(out, batch)
        return loss, parts

    def predict(self, model: nn.Module, batch) -> list[dict]:
        m = unwrap(model)
        return m.decode(model(batch))

    def reset(self, model: nn.Module) -> None:
        unwrap(model).reset_stream()
