"""Video action recognition with SVFormer (UCF101, NTU RGB+D 60, synthetic videos).

Batches: ``{"video": float32 [N, T, 3, S, S], "label": int64 [N], "video_id": int64 [N]}``;
``predict`` -> logits [N, classes]. The evaluator reports per-clip and per-video top-1/top-5
(video score = sum of the softmaxed clip scores over the multi-view test).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from eventvision.data.action.synthetic import SYNTHETIC_ACTIONS, render_action_video
from eventvision.data.action.ucf101 import ntu60_records, ucf101_classes, ucf101_records
from eventvision.data.action.video import VideoClipDataset, VideoRecord, read_video
from eventvision.errors import ConfigError
from eventvision.evaluation.classification import ClassificationEvaluator
from eventvision.models.action.svformer import SVFormer
from eventvision.tasks.base import SPLITS, Task, check_split

NUM_CLASSES = {"ucf101": 101, "ntu60": 60, "synthetic": len(SYNTHETIC_ACTIONS)}


class ActionTask(Task):
    name = "action"
    default_config = "action/small"
    best_metric = "top1"

    @property
    def num_classes(self) -> int:
        dataset = self.cfg.data.dataset
        if dataset not in NUM_CLASSES:
            raise ConfigError(f"data.dataset: unknown action dataset '{dataset}'; "
                              f"choose {', '.join(NUM_CLASSES)}")
        return NUM_CLASSES[dataset]

    @property
    def class_names(self) -> list[str]:
        data = self.cfg.data
        if data.dataset == "synthetic":
            return list(SYNTHETIC_ACTIONS)
        if data.dataset == "ucf101":
            return ucf101_classes(data.root)
        return [f"A{i + 1:03d}" for i in range(60)]

    def build_model(self) -> nn.Module:
        data = self.cfg.data
        return SVFormer.from_config(self.cfg.model, num_classes=self.num_classes, in_channels=3,
                                    num_frames=data.num_frames, image_size=data.image_size)

    def _records(self, split: str) -> tuple[list[VideoRecord], object]:
        data = self.cfg.data
        stream = SPLITS.index(check_split(self.name, split))
        if data.dataset == "synthetic":
            offset = 1_000_000 * stream  # disjoint train/val/test videos
            records = [VideoRecord(None, i % self.num_classes, i) for i in range(data.synthetic_videos)]
            load = functools.partial(_render_synthetic, num_frames=data.synthetic_frames,
                                     seed_offset=offset + data.seed)
            return records, load
        if not data.root:
            raise ConfigError(f"data.root is empty: set data.root=/path/to/{data.dataset}")
        # UCF101 and NTU publish train and test lists only: validation uses the test list (val_clips x
        # val_crops views, fewer than the test's)
        split_name = "train" if split == "train" else "test"
        if data.dataset == "ucf101":
            records = ucf101_records(data.root, split=split_name, fold=data.fold)
        else:
            records = ntu60_records(data.root, split=split_name, benchmark=data.benchmark)
        return records, functools.partial(_read_record, short_side=data.image_size)

    def build_dataset(self, split: str) -> torch.utils.data.Dataset:
        data = self.cfg.data
        records, load = self._records(split)
        test = split == "test"
        clips, crops = (data.test_clips, data.test_crops) if test else (data.val_clips, data.val_crops)
        return VideoClipDataset(records, load, train=split == "train", num_frames=data.num_frames,
                                stride=data.stride, image_size=data.image_size, num_clips=clips,
                                num_crops=crops, seed=self.cfg.seed)

    def build_evaluator(self) -> ClassificationEvaluator:
        return ClassificationEvaluator(num_classes=self.num_classes, class_names=self.class_names)

    def predict(self, model: nn.Module, batch) -> torch.Tensor:
        return model(batch["video"])

    def training_step(self, model: nn.Module, batch):
        logits = self.predict(model, batch)
        loss = F.cross_entropy(logits, batch["label"])
        accuracy = (logits.argmax(1) == batch["label"]).float().mean().item() * 100.0
        return loss, {"acc": accuracy}


def _render_synthetic(record: VideoRecord, *, num_frames: int, seed_offset: int):
    return render_action_video(record.label, num_frames=num_frames, seed=seed_offset + record.video_id)


def _read_record(record: VideoRecord, *, short_side: int):
    return read_video(record.path, short_side=short_side)
