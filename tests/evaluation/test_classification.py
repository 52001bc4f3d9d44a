import numpy as np
import torch

from eventvision.evaluation.classification import (ClassificationEvaluator, confusion_matrix, save_confusion_matrix_png,
                                                   topk_correct)


def test_topk_by_hand():
    scores = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])
    labels = np.array([2, 0, 1])
    assert topk_correct(scores, labels, 1).tolist() == [False, True, False]
    # row 3: classes 0 and 1 tie at 0.3; ties go to the lower index, so label 1 misses the top 2
    assert topk_correct(scores, labels, 2).tolist() == [True, True, False]
    assert topk_correct(scores, labels, 3).tolist() == [True, True, True]


def test_multi_view_video_scoring_equals_hand_computation():
    # two videos, video 7 has 3 clips, video 9 has 2 clips; 3 classes
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.2, 0.0],   # video 7, label 1
                           [0.0, 0.0, 3.0], [1.0, 0.0, 0.0]])                   # video 9, label 0
    labels = torch.tensor([1, 1, 1, 0, 0])
    ev = ClassificationEvaluator(num_classes=3, topk=(1, 2))
    ev.process({"label": labels[:2], "video_id": torch.tensor([7, 7])}, logits[:2])
    ev.process({"label": labels[2:], "video_id": torch.tensor([7, 9, 9])}, logits[2:])
    m = ev.evaluate()
    # clips: argmax = 0, 1, 1, 2, 0 -> correct: no, yes, yes, no, yes = 60 %
    assert abs(m["top1"] - 60.0) < 1e-9
    soft = torch.softmax(logits, 1).numpy()
    v7 = soft[:3].sum(0)
    v9 = soft[3:].sum(0)
    expected = (int(v7.argmax() == 1) + int(v9.argmax() == 0)) / 2 * 100
    assert abs(m["video_top1"] - expected) < 1e-9
    assert v7.argmax() == 1 and v9.argmax() == 2  # by hand: video 7 right, video 9 wrong -> 50 %
    assert m["video_top1"] == 50.0 and m["video_top2"] == 100.0


def test_confusion_matrix_and_picture(tmp_path):
    m = confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    path = tmp_path / "cm.png"
    save_confusion_matrix_png(path, m, ["a", "b", "c"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_state_merge_equals_single_evaluator():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(10, 4)), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, 4, 10))
    a, b, full = (ClassificationEvaluator(4) for _ in range(3))
    a.process({"label": labels[:6]}, logits[:6])
    b.process({"label": labels[6:]}, logits[6:])
    full.process({"label": labels}, logits)
    a.merge([a.state(), b.state()])
    assert a.evaluate() == full.evaluate()
