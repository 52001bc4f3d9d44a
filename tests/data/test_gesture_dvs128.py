"""DVS128 Gesture readers on files written here in the exact published layouts."""

from __future__ import annotations

import numpy as np
import pytest

from eventvision.data.gesture import dvs128
from eventvision.data.gesture.datasets import DVS128GestureEvents, GestureFrameDataset
from eventvision.errors import DatasetNotFoundError, FileFormatError, InvalidValueError, UserError


def _aedat31_bytes(x, y, t, p, *, valid=None, packet_size=3) -> bytes:
    """Encode polarity events as AEDAT 3.1: text header, then 28-byte packet headers + 8-byte events."""
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    out = [header]
    valid = np.ones(len(x), bool) if valid is None else valid
    # an IMU-like packet of another type that the reader must skip
    other = np.zeros(4, dtype="<u4").tobytes()
    out.append(np.array([(2, 1, 8, 4, 0, 2, 2, 2)], dtype=dvs128.AEDAT3_PACKET_HEADER).tobytes() + other)
    for start in range(0, len(x), packet_size):
        sl = slice(start, start + packet_size)
        n = len(x[sl])
        overflow = int(t[sl][0] >> 31)
        data = (x[sl].astype(np.uint32) << 17) | (y[sl].astype(np.uint32) << 2) | \
               (p[sl].astype(np.uint32) << 1) | valid[sl].astype(np.uint32)
        ts = (t[sl] & 0x7FFFFFFF).astype(np.uint32)
        words = np.stack([data, ts], 1).astype("<u4")
        hdr = np.array([(1, 1, 8, 4, overflow, n, n, int(valid[sl].sum()))], dtype=dvs128.AEDAT3_PACKET_HEADER)
        out.append(hdr.tobytes() + words.tobytes())
    return b"".join(out)


def _write_original(root, users=("user01_fluorescent", "user02_led"), test_users=("user02_led",)):
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = {}
    for user in users:
        n = 400
        t = np.sort(rng.integers(0, 3_000_000, n)).astype(np.int64)
        x, y, p = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
        (folder / f"{user}.aedat").write_bytes(_aedat31_bytes(x, y, t, p))
        (folder / f"{user}_labels.csv").write_text(
            "class,startTime_usec,endTime_usec\n1,100000,1000000\n11,1000000,2500000\n")
        expected[user] = (x, y, t, p)
    (folder / "trials_to_train.txt").write_text("\n".join(f"{u}.aedat" for u in users if u not in test_users) + "\n")
    (folder / "trials_to_test.txt").write_text("\n".join(f"{u}.aedat" for u in test_users) + "\n")
    return folder, expected


def test_aedat31_decodes_every_field(tmp_path):
    x = np.array([0, 127, 5, 64], np.uint16)
    y = np.array([127, 0, 9, 64], np.uint16)
    t = np.array([10, (1 << 31) + 5, (1 << 31) + 6, (1 << 31) + 900], np.int64)  # crosses a ts overflow
    p = np.array([1, 0, 1, 0])
    valid = np.array([True, True, False, True])
    path = tmp_path / "rec.aedat"
    path.write_bytes(_aedat31_bytes(x, y, t, p, valid=valid, packet_size=1))
    events = dvs128.read_aedat31_polarity(path)
    keep = valid
    assert events["x"].tolist() == x[keep].tolist()
    assert events["y"].tolist() == y[keep].tolist()
    assert events["t"].tolist() == t[keep].tolist()
    assert events["p"].tolist() == [1, -1, -1]


def test_aedat31_truncated_and_wrong_files(tmp_path):
    good = _aedat31_bytes(np.array([1, 2]), np.array([3, 4]), np.array([5, 6]), np.array([0, 1]))
    path = tmp_path / "cut.aedat"
    path.write_bytes(good[:-5])
    with pytest.raises(UserError, match="truncated"):
        dvs128.read_aedat31_polarity(path)
    path.write_bytes(b"not an aedat file")
    with pytest.raises(UserError, match="AEDAT 3"):
        dvs128.read_aedat31_polarity(path)


def test_original_layout_samples_and_labels(tmp_path):
    folder, expected = _write_original(tmp_path)
    train = DVS128GestureEvents(str(tmp_path), "train")
    test = DVS128GestureEvents(str(tmp_path), "test")
    assert len(train) == 2 and len(test) == 2
    events, label = train[1]
    x, y, t, p = expected["user01_fluorescent"]
    mask = (t >= 1_000_000) & (t < 2_500_000)
    assert label == 10
    assert events["t"].tolist() == t[mask].tolist()
    assert events["x"].tolist() == x[mask].tolist()
    assert set(events["p"].tolist()) <= {-1, 1}
    assert int((events["p"] > 0).sum()) == int(p[mask].sum())


def test_tonic_layout(tmp_path):
    user = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user03_natural"
    user.mkdir(parents=True)
    arr = np.array([[1, 2, 1, 0.5], [3, 4, 0, 1.25], [5, 6, 1, 2.0]], dtype=np.float64)  # x, y, p, t_ms
    np.save(user / "4.npy", arr)
    np.save(user / "0.npy", arr[:1])
    source = DVS128GestureEvents(str(tmp_path), "train")
    assert [r.label for r in source.records] == [0, 4]
    events, label = source[1]
    assert label == 4
    assert events["t"].tolist() == [500, 1250, 2000]
    assert events["p"].tolist() == [1, -1, 1]
    frames = GestureFrameDataset(source, num_frames=3, resolution=64)[1]["frames"]
    assert frames.shape == (3, 2, 64, 64)
    assert float(frames.sum()) == 3.0
    assert float(frames[1, 0, 2, 1]) == 1.0  # second event: OFF at (x=3, y=4) // 2


def test_tonic_layout_bad_split_names_and_shapes(tmp_path):
    user = tmp_path / "DVSGesture" / "ibmGestureTrain" / "user03_natural"
    user.mkdir(parents=True)
    np.save(user / "2.npy", np.zeros((3, 3)))  # three columns: not (x, y, p, t_ms)
    with pytest.raises(InvalidValueError, match="split must be train, val or test, got 'dev'"):
        DVS128GestureEvents(str(tmp_path), "dev")
    source = DVS128GestureEvents(str(tmp_path), "train")
    with pytest.raises(FileFormatError, match=r"2\.npy: expected an \[N, 4\] array"):
        source[0]
    np.save(user / "11.npy", np.zeros((1, 4)))  # labels are 0..10
    with pytest.raises(FileFormatError, match=r"11\.npy: tonic DVSGesture files are named"):
        DVS128GestureEvents(str(tmp_path), "train")


def test_missing_dataset_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="DvsGesture"):
        DVS128GestureEvents(str(tmp_path / "nothing"), "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="ibmGestureTrain"):
        DVS128GestureEvents(str(tmp_path / "empty"), "train")


def test_real_label_file_with_a_repeated_class_and_rows_out_of_order(shared_data, tmp_path):
    rows = dvs128.read_labels_csv(shared_data / "gesture" / "user01_natural_labels.csv")
    assert len(rows) == 12  # every row is a sample, in file order
    assert [label + 1 for label, _, _ in rows] == [1, 2, 3, 5, 4, 6, 7, 8, 8, 9, 10, 11]
    assert rows[0] == (0, 53036986, 59508469) and rows[-1] == (10, 171367247, 177991967)
    assert rows[7] == (7, 132355007, 141594080) and rows[8] == (7, 142355542, 148751823)
    assert all(start < end for _, start, end in rows)

    for text, match in [("class,startTime_usec,endTime_usec\n12,1,2\n", "class 12 outside"),
                        ("class,startTime_usec,endTime_usec\n1,5,5\n", "empty or negative"),
                        ("class,startTime_usec,endTime_usec\n1,x,5\n", "line 2 is not"),
                        ("class,startTime_usec,endTime_usec\nclass,a,b\n", "line 2 is not")]:
        bad = tmp_path / "bad_labels.csv"
        bad.write_text(text)
        with pytest.raises(FileFormatError, match=match):
            dvs128.read_labels_csv(bad)
