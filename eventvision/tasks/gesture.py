"""DVS128 Gesture classification task (PLIF net, Spikformer-style transformer or SVFormer on event frames).

Batches: ``{"frames": float32 [N, T, 2, R, R], "label": int64 [N]}``; ``predict`` returns class
scores [N, 11] (firing rates for the PLIF net, logits for the transformers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.data.gesture import dvs128
from eventvision.data.gesture.datasets import DVS128GestureEvents, GestureFrameDataset, SyntheticGestureEvents
from eventvision.errors import ConfigError
from eventvision.evaluation.classification import ClassificationEvaluator
from eventvision.simulate.gesture_scenes import GESTURE_CLASSES
from eventvision.tasks.base import SPLITS, Task, check_split


def build_gesture_model(model_cfg, *, num_frames: int, resolution: int,
                        num_classes: int = dvs128.NUM_CLASSES) -> nn.Module:
    """Build the gesture model named by ``model_cfg.name`` (input [N, T, 2, R, R])."""
    name = model_cfg.name
    if name == "plif_net":
        from eventvision.models.gesture.plif_net import PLIFGestureNet
        return PLIFGestureNet(num_classes=num_classes, resolution=resolution, channels=model_cfg.channels,
                              num_blocks=model_cfg.num_blocks, hidden=model_cfg.hidden, voting=model_cfg.voting,
                              dropout=model_cfg.dropout, neuron=model_cfg.neuron, tau=model_cfg.tau)
    if name == "spikformer":
        from eventvision.models.gesture.spikformer import SpikformerGesture
        return SpikformerGesture(num_classes=num_classes, resolution=resolution, embed_dim=model_cfg.embed_dim,
                                 num_layers=model_cfg.num_layers, num_heads=model_cfg.num_heads,
                                 mlp_ratio=model_cfg.mlp_ratio, attention=model_cfg.attention,
                                 neuron=model_cfg.neuron)
    if name == "svformer":
        from eventvision.models.action.svformer import SVFormer
        return SVFormer.from_config(model_cfg, num_classes=num_classes, in_channels=2, num_frames=num_frames,
                                    image_size=resolution)
    raise ConfigError(f"model.name: unknown gesture model '{name}'; choose plif_net, spikformer or svformer")


class GestureTask(Task):
    name = "gesture"
    default_config = "gesture/small"
    best_metric = "top1"
    class_names = list(GESTURE_CLASSES)

    def build_model(self) -> nn.Module:
        data = self.cfg.data
        return build_gesture_model(self.cfg.model, num_frames=data.num_frames, resolution=data.resolution)

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        data = self.cfg.data
        stream = SPLITS.index(check_split(self.name, split))
        if data.dataset == "synthetic":
            count = data.synthetic_train if split == "train" else data.synthetic_val
            seed = data.seed * 10 + stream  # disjoint train/val/test scenes
            # rendered at the model's size
            source = SyntheticGestureEvents(count, seed=seed, sensor_size=data.resolution)
        elif data.dataset == "dvs128":
            if not data.root:
                raise ConfigError("data.root is empty: set data.root=/path/to/DvsGesture "
                                  f"({dvs128.DOWNLOAD_HINT})")
            # DVS128 Gesture has train and test trials only: validation uses the test trials (as SpikingJelly)
            source = DVS128GestureEvents(data.root, "train" if split == "train" else "test")
        else:
            raise ConfigError(f"data.dataset: unknown gesture dataset '{data.dataset}'; "
                              f"choose synthetic or dvs128")
        return GestureFrameDataset(source, num_frames=data.num_frames, resolution=data.resolution,
                                   split_by=data.split_by)

    def build_evaluator(self) -> ClassificationEvaluator:
        return ClassificationEvaluator(num_classes=dvs128.NUM_CLASSES, class_names=self.class_names)

    def predict(self, model: nn.Module, batch) -> torch.Tensor:
        return model(batch["frames"])

    def training_step(self, model: nn.Module, batch):
        scores = self.predict(model, batch)
        labels = batch["label"]
        if self.cfg.model.loss == "mse":
            loss = F.mse_loss(scores, F.one_hot(labels, scores.shape[1]).to(scores.dtype))
        else:
            loss = F.cross_entropy(scores, labels)
        accuracy = (scores.argmax(1) == labels).float().mean().item() * 100.0
        return loss, {"acc": accuracy}
