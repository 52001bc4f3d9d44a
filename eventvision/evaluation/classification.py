"""Classification metrics: top-k per clip and per video (video score = sum of its clip scores),
confusion matrix (and its picture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from eventvision.evaluation.base import Evaluator


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """bool [N]: label among the k highest ``scores`` [N, C] (ties broken by class index)."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(axis=1)


def video_scores(clip_scores: np.ndarray, video_ids: np.ndarray, labels: np.ndarray):
    """Sum clip scores [N, C] per video -> (video ids [V], scores [V, C], labels [V])."""
    ids, inverse = np.unique(video_ids, return_inverse=True)
    summed = np.zeros((len(ids), clip_scores.shape[1]), dtype=np.float64)
    np.add.at(summed, inverse, clip_scores)
    video_labels = np.zeros(len(ids), dtype=np.int64)
    video_labels[inverse] = labels
    return ids, summed, video_labels


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [C, C]: rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def save_confusion_matrix_png(path: str | Path, matrix: np.ndarray, class_names: list[str] | None = None) -> None:
    """Row-normalised confusion matrix as a PNG (written atomically)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eventvision.utils.io import atomic_path

    rows = matrix.sum(1, keepdims=True).clip(min=1)
    norm = matrix / rows
    n = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * n, 1.0 + 0.5 * n), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    names = class_names or [str(i) for i in range(n)]
    ax.set_xticks(range(n), names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


class ClassificationEvaluator(Evaluator):
    """Accumulates clip scores; ``evaluate`` -> top1/top5 (%) per clip and, with video ids, per video.

    ``process(batch, logits)``: ``batch["label"]`` [N] and optional ``batch["video_id"]`` [N];
    ``logits`` [N, C] (softmax is applied before summing per video, as multi-view testing does).
    """

    def __init__(self, num_classes: int, topk: tuple[int, ...] = (1, 5), class_names: list[str] | None = None):
        self.num_classes, self.topk, self.class_names = num_classes, topk, class_names
        self.reset()

    def reset(self) -> None:
        self.scores: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.video_ids: list[np.ndarray] = []

    def process(self, inputs, outputs) -> None:
        logits = outputs.detach().float().cpu()
        self.scores.append(torch.softmax(logits, dim=1).numpy())
        self.labels.append(inputs["label"].detach().cpu().numpy().astype(np.int64))
        if "video_id" in inputs:
            self.video_ids.append(np.asarray(inputs["video_id"].detach().cpu().numpy() if torch.is_tensor(
                inputs["video_id"]) else inputs["video_id"]))

    def state(self):
        return self.scores, self.labels, self.video_ids

    def merge(self, states) -> None:
        self.reset()
        for scores, labels, video_ids in states:
            self.scores += scores
            self.labels += labels
            self.video_ids += video_ids

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.scores:
            return np.zeros((0, self.num_classes)), np.zeros(0, dtype=np.int64)
        return np.concatenate(self.scores), np.concatenate(self.labels)

    def confusion(self) -> np.ndarray:
        scores, labels = self.arrays()
        return confusion_matrix(scores.argmax(1), labels, self.num_classes)

    def save_pictures(self, out_dir: str | Path) -> list[Path]:
        path = Path(out_dir) / "confusion_matrix.png"
        save_confusion_matrix_png(path, self.confusion(), self.class_names)
        return [path]

    def evaluate(self) -> dict[str, float]:
        scores, labels = self.arrays()
        if len(labels) == 0:
            return {}
        metrics = {f"top{k}": 100.0 * float(topk_correct(scores, labels, k).mean()) for k in self.topk}
        if self.video_ids:
            _, vscores, vlabels = video_scores(scores, np.concatenate(self.video_ids), labels)
            metrics.update({f"video_top{k}": 100.0 * float(topk_correct(vscores, vlabels, k).mean())
                            for k in self.topk})
        return metrics
