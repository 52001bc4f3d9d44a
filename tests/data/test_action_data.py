import cv2
import numpy as np
import pytest

from eventvision.data.action.synthetic import render_action_video
from eventvision.data.action.ucf101 import ntu60_records, ntu_code, ucf101_classes, ucf101_records
from eventvision.data.action.video import (
    MEAN,
    STD,
    VideoClipDataset,
    clip_indices,
    clip_start,
    crop_offsets,
    multiview_samples,
    read_video,
    resize_short_side,
)
from eventvision.errors import DatasetNotFoundError, FileFormatError


def record_of(path):
    from eventvision.data.action.video import VideoRecord
    return VideoRecord(path, 0, 0)


def _write_avi(path, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (frames.shape[2], frames.shape[1]))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()


def test_clip_sampling_rules_are_the_released_svformer_ones():
    # linspace(start, start + stride*T - 1, T) in float32, truncated, clamped (decoder.py, decord path)
    assert clip_indices(100, num_frames=4, stride=4, start=10).tolist() == [10, 15, 20, 25]
    assert clip_indices(12, num_frames=4, stride=4, start=2).tolist() == [2, 7, 11, 11]  # clamps at the end
    # offset sampling: clip i starts at i * floor((F - stride*T) / (clips - 1)); one clip: the centre
    starts = [clip_start(121, num_frames=16, stride=4, clip=i, num_clips=5) for i in range(5)]
    assert starts == [0, 14, 28, 42, 56]
    assert clip_start(121, num_frames=16, stride=4, clip=0, num_clips=1) == 28
    assert clip_start(40, num_frames=16, stride=4, clip=4, num_clips=5) == 0  # a short video: every clip at 0
    # uniform_crop: start / ceil((L - S) / 2) / end of the long side
    assert crop_offsets(224, 299, 224, 3) == [(0, 0), (0, 38), (0, 75)]
    assert crop_offsets(300, 224, 224, 3) == [(0, 0), (38, 0), (76, 0)]
    assert crop_offsets(224, 299, 224, 1) == [(0, 38)]
    # short side to S, long side floor(long * S / short)
    assert resize_short_side(np.zeros((1, 240, 320, 3), np.uint8), 224).shape == (1, 224, 298, 3)
    assert resize_short_side(np.zeros((1, 1080, 1920, 3), np.uint8), 224).shape == (1, 224, 398, 3)


def test_real_ucf101_clip_through_the_5x3_test_sampling(shared_data):
    path = shared_data / "video" / "ucf101_apply_eye_makeup.avi"
    video = read_video(path)
    assert video.shape == (164, 240, 320, 3) and video.dtype == np.uint8
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == 25.0
    frames = resize_short_side(video, 224)
    assert frames.shape == (164, 224, 298, 3)
    assert np.array_equal(read_video(path, short_side=224), frames)  # resizing while decoding: same frames
    views = multiview_samples(164, 224, 298, num_frames=16, stride=4, image_size=224, num_clips=5,
                              num_crops=3)
    assert len(views) == 15
    # delta = 164 - 64 = 100 -> starts 0, 25, 50, 75, 100; each clip spans 64 frames (every 4.2th)
    assert views[0][0].tolist() == [0, 4, 8, 12, 16, 21, 25, 29, 33, 37, 42, 46, 50, 54, 58, 63]
    assert views[3][0].tolist() == [25, 29, 33, 37, 41, 46, 50, 54, 58, 62, 67, 71, 75, 79, 83, 88]
    assert [int(v[0][0]) for v in views[::3]] == [0, 25, 50, 75, 100]
    assert views[-1][0].tolist()[-1] == 163
    # crops along the 298-px long side: left, ceil(74 / 2) = 37, right
    assert [v[1] for v in views[:3]] == [(0, 0), (0, 37), (0, 74)]
    ds = VideoClipDataset([record_of(path)], lambda r: read_video(r.path, short_side=224), train=False,
                          num_frames=16, stride=4, image_size=224, num_clips=5, num_crops=3)
    assert len(ds) == 15
    sample = ds[4]  # clip 1, centre crop
    expected = (frames[views[4][0], 0:224, 37:261].astype(np.float32) / 255.0 - MEAN) / STD
    assert sample["video"].shape == (16, 3, 224, 224)
    np.testing.assert_allclose(sample["video"].numpy(), expected.transpose(0, 3, 1, 2), atol=1e-6)


def test_real_ntu_sample_by_its_file_name(shared_data, tmp_path):
    source = shared_data / "video" / "ntu_S001C001P001R001A001_rgb.avi"
    assert ntu_code(source.name) == {"setup": 1, "camera": 1, "performer": 1, "replication": 1, "action": 1}
    assert ntu_code("S001C001P001R001A001_depth.avi") is None
    folder = tmp_path / "nturgb+d_rgb"
    folder.mkdir()
    (folder / source.name).symlink_to(source)
    train = ntu60_records(tmp_path, split="train", benchmark="xsub")  # performer 1 is a training subject
    assert [(r.path.name, r.label) for r in train] == [(source.name, 0)]  # A001 "drink water" -> class 0
    xview_test = ntu60_records(tmp_path, split="test", benchmark="xview")
    assert [r.label for r in xview_test] == [0]  # camera 1 is a cross-view test camera
    video = read_video(train[0].path, short_side=224)  # 1920x1080 decoded straight to 398x224
    assert video.shape == (103, 224, 398, 3)


def test_ucf101_layout_and_multiview(tmp_path):
    root = tmp_path / "ucf"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
                                           "Archery/v_Archery_g08_c01.avi 2\n")
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


def test_bad_class_index_file_is_one_line(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\nArchery\n")
    with pytest.raises(FileFormatError, match="line 2 is not"):
        ucf101_classes(tmp_path)


def test_synthetic_videos_are_deterministic_and_distinct():
    a = render_action_video(0, num_frames=10, size=32, seed=3)
    assert np.array_equal(a, render_action_video(0, num_frames=10, size=32, seed=3))
    assert not np.array_equal(a[0], a[-1])  # it moves
