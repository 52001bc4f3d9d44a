import cv2
import numpy as np
import pytest

from eventvision.data.action.synthetic import render_action_video
from eventvision.data.action.ucf101 import ntu60_records, ucf101_classes, ucf101_records
from eventvision.data.action.video import (VideoClipDataset, clip_indices, crop_offsets, evenly_spaced_starts,
                                           read_video)
from eventvision.errors import DatasetNotFoundError


def _write_avi(path, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (frames.shape[2], frames.shape[1]))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def test_clip_sampling_rules():
    assert clip_indices(100, num_frames=4, stride=4, start=10).tolist() == [10, 14, 18, 22]
    assert clip_indices(12, num_frames=4, stride=4, start=2).tolist() == [2, 6, 10, 11]  # clamps at the end
    # span of a 16x4 clip is 61 frames; 5 clips over 121 frames -> starts 0, 15, 30, 45, 60
    assert evenly_spaced_starts(121, num_frames=16, stride=4, num_clips=5).tolist() == [0, 15, 30, 45, 60]
    assert crop_offsets(224, 298, 224, 3) == [(0, 0), (0, 37), (0, 74)]


def test_ucf101_layout_and_multiview(tmp_path):
    root = tmp_path / "ucf"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g08_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\n")
    for rel, label in [("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0), ("Archery/v_Archery_g08_c01.avi", 1),
                       ("Archery/v_Archery_g01_c01.avi", 1)]:
        _write_avi(root / "UCF-101" / rel, render_action_video(label, num_frames=30, size=48, seed=1))
    assert ucf101_classes(root) == ["ApplyEyeMakeup", "Archery"]
    train = ucf101_records(root, split="train")
    test = ucf101_records(root, split="test")
    assert [r.label for r in train] == [0, 1] and [r.label for r in test] == [1]
    video = read_video(test[0].path)
    assert video.shape == (30, 48, 48, 3)
    ds = VideoClipDataset(test, lambda r: read_video(r.path), train=False, num_frames=4, stride=2, image_size=32,
                          num_clips=2, num_crops=3)
    assert len(ds) == 6
    sample = ds[5]
    assert sample["video"].shape == (4, 3, 32, 32) and int(sample["video_id"]) == 0 and int(sample["label"]) == 1
    with pytest.raises(DatasetNotFoundError, match="UCF101"):
        ucf101_records(tmp_path / "missing", split="train")


def test_ntu_cross_subject_and_cross_view(tmp_path):
    folder = tmp_path / "nturgb+d_rgb"
    folder.mkdir()
    names = ["S001C001P001R001A001_rgb.avi", "S001C002P003R001A002_rgb.avi", "S001C003P002R002A060_rgb.avi",
             "S018C001P008R001A061_rgb.avi"]
    for n in names:
        (folder / n).write_bytes(b"")
    xsub_train = ntu60_records(tmp_path, split="train", benchmark="xsub")
    assert [r.path.name for r in xsub_train] == [names[0], names[2]]  # performers 1, 2 train; 3 test; A061 dropped
    assert [r.label for r in xsub_train] == [0, 59]
    xview_test = ntu60_records(tmp_path, split="test", benchmark="xview")
    assert [r.path.name for r in xview_test] == [names[0]]  # camera 1 is the cross-view test camera


def test_synthetic_videos_are_deterministic_and_distinct():
    a = render_action_video(0, num_frames=10, size=32, seed=3)
    assert np.array_equal(a, render_action_video(0, num_frames=10, size=32, seed=3))
    assert not np.array_equal(a[0], a[-1])  # it moves
