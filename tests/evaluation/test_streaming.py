"""Streaming pairing (fixed / simulated / measured emission), copy and Kalman forecasting, sAP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.evaluation import streaming as st
from eventvision.evaluation.kitti import ap
from eventvision.formats import kitti as io
from eventvision.geometry import boxes3d as boxes
from eventvision.evaluation.kitti.synthetic import jitter_predictions


def test_fixed_latency_pairs_two_frames_back():
    sched = st.fixed_latency_schedule(10, 150.0)  # 1.5 frames
    np.testing.assert_array_equal(st.pair_outputs(sched, 10), [-1, -1, 0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(st.pair_outputs(st.fixed_latency_schedule(5, 0.0), 5), np.arange(5))
    np.testing.assert_array_equal(st.pair_outputs(st.fixed_latency_schedule(5, 100.0), 5), [-1, 0, 1, 2, 3])


def test_simulated_schedule_skips_frames():
    # 150 ms per run: runs on frames 0 (0->150), 1 (150->300), 3 (300->450), 4 (450->600), 6, 7, 9
    s = st.simulated_schedule(10, [150.0])
    np.testing.assert_array_equal(s.frame, [0, 1, 3, 4, 6, 7, 9])
    np.testing.assert_allclose(s.time_ms, [150, 300, 450, 600, 750, 900, 1050])
    np.testing.assert_array_equal(st.pair_outputs(s, 10), [-1, -1, 0, 1, 1, 2, 3, 3, 4, 5])
    # fast runs wait for the next frame; latencies are used in order, cyclically
    s = st.simulated_schedule(6, [30.0, 250.0])
    np.testing.assert_array_equal(s.frame, [0, 1, 3, 4])
    np.testing.assert_allclose(s.time_ms, [30, 350, 380, 650])
    with pytest.raises(UserError):
        st.simulated_schedule(5, [])


def test_emission_file_formats(tmp_path):
    txt = tmp_path / "emission.txt"
    txt.write_text("# seq frame_index emission_time_ms\n0001 0 120.5\n0001 2 260\n\n0006 0 80\n")
    sched = st.read_emission_file(txt)
    np.testing.assert_array_equal(sched["0001"].frame, [0, 2])
    np.testing.assert_allclose(sched["0001"].time_ms, [120.5, 260.0])
    np.testing.assert_array_equal(st.pair_outputs(sched["0001"], 4), [-1, -1, 0, 1])
    js = tmp_path / "emission.json"
    js.write_text(json.dumps({"0001": [[0, 120.5], [2, 260]]}))
    np.testing.assert_array_equal(st.read_emission_file(js)["0001"].frame, [0, 2])
    clipped = st.clip_schedule(sched["0001"], 2, 10)
    np.testing.assert_array_equal(clipped.frame, [0]) and np.testing.assert_allclose(clipped.time_ms, [60.0])
    bad = tmp_path / "bad.txt"
    bad.write_text("0001 0\n")
    with pytest.raises(UserError, match="bad.txt:1"):
        st.read_emission_file(bad)
    bad.write_text("0001 3 250\n")  # emitted before frame 3 exists (300 ms)
    with pytest.raises(UserError, match="before it is captured"):
        st.read_emission_file(bad)
    lat = tmp_path / "lat.txt"
    lat.write_text("120\n# comment\n95.5\n")
    np.testing.assert_allclose(st.read_latency_file(lat), [120, 95.5])


def _real(shared_data, seq):
    gt = io.read_sequence_labels(shared_data / "kitti_tracking", seq)
    n = int(gt["frame"].max()) + 1
    return io.split_frames(gt, n), io.split_frames(jitter_predictions(gt, seed=3, pos_std_m=0.1), n), n


def test_latency_zero_equals_offline(shared_data):
    gt, pred, n = _real(shared_data, "0001")
    for strategy in ("copy", "kf"):
        streamed = st.stream_predictions(pred, st.fixed_latency_schedule(n, 0.0), n, strategy=strategy)
        for a, b in zip(streamed, pred):
            np.testing.assert_array_equal(a, b)
    offline = ap.kitti_eval(gt, pred)
    streaming = ap.kitti_eval(gt, st.stream_predictions(pred, st.fixed_latency_schedule(n, 0.0), n))
    assert streaming == offline
    assert 30.0 < offline["Car"]["3d"]["R40"][1] < 100.0


def test_latency_150_copies_two_frames_back(shared_data):
    gt, pred, n = _real(shared_data, "0001")
    streamed = st.stream_predictions(pred, st.fixed_latency_schedule(n, 150.0), n)
    assert len(streamed[0]) == 0 and len(streamed[1]) == 0
    for i in range(2, n):
        assert (streamed[i]["frame"] == i).all()
        np.testing.assert_array_equal(streamed[i]["location"], pred[i - 2]["location"])
        np.testing.assert_array_equal(streamed[i]["score"], pred[i - 2]["score"])
    off = ap.kitti_eval(gt, pred)["Car"]["3d"]["R40"][1]
    late = ap.kitti_eval(gt, streamed)["Car"]["3d"]["R40"][1]
    assert late < off


def _moving_car_clip(n=60, step_m=0.5):
    """One car driving along camera x at step_m per frame, 20 m ahead; predictions = GT with track id."""
    frames = []
    for i in range(n):
        frames.append(io.make_objects(frame=i, track_id=7, type="Car", alpha=0.0, score=0.9,
                                      bbox=[500.0, 150.0, 600.0, 220.0], dimensions=[1.5, 1.6, 3.9],
                                      location=[-15.0 + step_m * i, 1.6, 20.0], rotation_y=0.0))
    return frames


def test_kalman_forecast_recovers_constant_velocity():
    gt = _moving_car_clip()
    sched = st.fixed_latency_schedule(len(gt), 150.0)
    copy = st.stream_predictions(gt, sched, len(gt), strategy="copy")
    kf = st.stream_predictions(gt, sched, len(gt), strategy="kf")
    # copy lags 2 frames = 1.0 m; the filter converges on 5 m/s and forecasts the GT position
    np.testing.assert_allclose(copy[30]["location"][0, 0] - gt[30]["location"][0, 0], -1.0)
    assert abs(kf[30]["location"][0, 0] - gt[30]["location"][0, 0]) < 0.02
    assert (kf[30]["rotation_y"] == gt[30]["rotation_y"]).all()
    res_copy = ap.evaluate_kitti(gt, copy, classes=["Car"], metrics=("bev",))
    res_kf = ap.evaluate_kitti(gt, kf, classes=["Car"], metrics=("bev",))
    assert ap.ap_r40(res_copy.precision[("Car", "bev")])[0] == 0.0  # BEV IoU 2.9/4.9 < 0.7
    assert ap.ap_r40(res_kf.precision[("Car", "bev")])[0] > 80.0


def test_kalman_dates_a_next_frame_forecaster_one_period_later():
    """Outputs computed on frame f that describe frame f + 1 (StreamDSGN): with horizon_frames=1 the filter
    forecasts the GT position; treated as frame-f boxes (0) it overshoots by one frame of motion."""
    gt = _moving_car_clip()
    forecasts = [gt[min(f + 1, len(gt) - 1)] for f in range(len(gt))]   # perfect next-frame boxes
    sched = st.fixed_latency_schedule(len(gt), 150.0)
    ahead = st.stream_predictions(forecasts, sched, len(gt), strategy="kf", horizon_frames=1)
    naive = st.stream_predictions(forecasts, sched, len(gt), strategy="kf")
    assert abs(ahead[30]["location"][0, 0] - gt[30]["location"][0, 0]) < 0.02
    np.testing.assert_allclose(naive[30]["location"][0, 0] - gt[30]["location"][0, 0], 0.5, atol=0.02)
    # an output already describing the GT frame is not moved (50 ms latency: frame i - 1 forecasts i)
    early = st.stream_predictions(forecasts, st.fixed_latency_schedule(len(gt), 50.0), len(gt), strategy="kf",
                                  horizon_frames=1)
    np.testing.assert_allclose(early[30]["location"], gt[30]["location"])
    with pytest.raises(Exception, match="horizon_frames"):
        st.stream_predictions(forecasts, sched, len(gt), strategy="kf", horizon_frames=-1)


def test_kalman_moves_2d_box_with_projection(shared_data):
    calib = io.read_sequence_calib(shared_data / "kitti_tracking", "0001")
    box = np.array([[-2.0, 1.6, 15.0, 3.9, 1.5, 1.6, 0.3]])
    obj = io.make_objects(type="Car", track_id=1, bbox=boxes.project_boxes_2d(box, calib.P2),
                          dimensions=[1.5, 1.6, 3.9], location=box[:, :3], rotation_y=0.3)
    new_loc = np.array([[-1.0, 1.6, 13.0]])
    moved = st._moved(obj, new_loc, calib.P2)
    box2 = box.copy()
    box2[0, :3] = new_loc
    np.testing.assert_allclose(moved["bbox"], boxes.project_boxes_2d(box2, calib.P2), atol=6.0)
    assert moved["alpha"][0] == pytest.approx(boxes.alpha_from_rotation_y(0.3, -1.0, 13.0))


def test_kf_beats_copy_on_real_tracks(shared_data):
    gt, _, n = _real(shared_data, "0001")
    dets = [f[f["type"] != "DontCare"] for f in gt]  # GT boxes with their track ids, 1.5 frames late
    calib = io.read_sequence_calib(shared_data / "kitti_tracking", "0001")
    sched = st.fixed_latency_schedule(n, 150.0)
    copy = ap.kitti_eval(gt, st.stream_predictions(dets, sched, n, strategy="copy"), classes=["Car"])
    kf = ap.kitti_eval(gt, st.stream_predictions(dets, sched, n, strategy="kf", P2=calib.P2), classes=["Car"])
    assert kf["Car"]["3d"]["R40"][1] > copy["Car"]["3d"]["R40"][1] + 5.0
    assert kf["Car"]["bbox"]["R40"][1] > copy["Car"]["bbox"]["R40"][1]


def test_sampled_schedule_draws_measured_latencies_deterministically():
    lat = [50.0, 150.0, 230.0]
    a = st.sampled_schedule(30, lat, np.random.default_rng(7))
    b = st.sampled_schedule(30, lat, np.random.default_rng(7))
    np.testing.assert_array_equal(a.frame, b.frame) and np.testing.assert_array_equal(a.time_ms, b.time_ms)
    # every run's latency is one of the measured values; frames skipped as in the single-detector rule
    start = np.r_[0.0, [max(t, (f + 1) * 100.0) for f, t in zip(a.frame[:-1], a.time_ms[:-1])]]
    assert set(np.round(a.time_ms - start, 6)) <= set(lat)
    np.testing.assert_array_equal(a.frame[1:], np.minimum(np.floor(start[1:] / 100.0 + 1e-9), 29).astype(int))
    assert a.frame[-1] == 29  # the release always processes the clip's last frame
    # 350 ms every run on 6 frames: 0 (-> 350), 3 (-> 700), then the start at 700 is past frame 5: frame 5
    one = st.sampled_schedule(6, [350.0], np.random.default_rng(0))
    assert one.frame.tolist() == [0, 3, 5] and one.time_ms.tolist() == [350.0, 700.0, 1050.0]
    assert st.simulated_schedule(6, [350.0]).frame.tolist() == [0, 3]  # in-order measured latencies: as run
    c = st.sampled_schedule(30, lat, np.random.default_rng(8))
    assert not np.array_equal(a.time_ms, c.time_ms)
    # a source draws all clips from one generator seeded once
    src = st.SampledLatencies(tuple(lat), seed=7)
    rng = np.random.default_rng(src.seed)
    np.testing.assert_array_equal(src.schedule("0001", 0, 30, rng).time_ms, a.time_ms)


def test_latency_sources_and_the_one_check():
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(st.FixedLatency(150.0).schedule("0001", 10, 15, rng).time_ms, [150, 250, 350, 450, 550])
    np.testing.assert_array_equal(st.MeasuredLatencies((150.0,)).schedule("0001", 0, 10, rng).frame,
                                  [0, 1, 3, 4, 6, 7, 9])
    em = st.EmissionTimes({"0001": st.Schedule(np.array([0, 5]), np.array([120.0, 560.0]))})
    np.testing.assert_allclose(em.schedule("0001", 5, 9, rng).time_ms, [60.0])
    with pytest.raises(UserError, match="0002"):
        em.schedule("0002", 0, 5, rng)
    for bad in ([], [np.nan], [-1.0], [np.inf]):
        with pytest.raises(UserError):
            st.check_latencies_ms(bad)
    with pytest.raises(UserError):
        st.FixedLatency(-5.0)
    assert st.next_run(250.0, 0) == (250.0, 2) and st.next_run(30.0, 3) == (400.0, 4)


def _car(x, z, ry=0.0, frame=0):
    return io.make_objects(frame=frame, type="Car", bbox=(100, 100, 200, 200), dimensions=(1.5, 1.6, 3.9),
                           location=(x, 1.6, z), rotation_y=ry, score=0.9)


def test_release_kalman_rules():
    """pcdet/datasets/kitti_streaming/kalman_filter.py with R_fac 40: transition, matching, update."""
    kf = st.StreamDSGNKalman()
    z0 = np.array([[1.0, 1.6, 20.0, 0.0, 1.0]])  # cos 0, sin 1
    np.testing.assert_allclose(kf.step(z0, np.array(["Car"]), 100.0), z0)  # first call: the observation
    np.testing.assert_allclose(kf.cov[0], 40 * np.eye(5))
    # dt = 2 ms: F moves y by dt * sin = 2 m -> within 4 m of the new observation -> Kalman update
    z1 = np.array([[1.0, 1.6, 20.0, 0.0, 1.0]])
    F = np.eye(5)
    F[0, 3] = F[1, 4] = 2.0
    pred = F @ z0[0]
    P = F @ (40 * np.eye(5)) @ F.T + np.diag([4.0, 4.0, 4.0, 2.0, 2.0])
    K = P @ np.linalg.inv(P + 40 * np.eye(5))
    want = pred + K @ (z1[0] - pred)
    np.testing.assert_allclose(kf.step(z1, np.array(["Car"]), 2.0)[0], want)
    np.testing.assert_allclose(kf.cov[0], (np.eye(5) - K) @ P)
    # another class, or farther than 4 m after prediction: restart from the observation with P = 40 I
    np.testing.assert_allclose(kf.step(z1, np.array(["Pedestrian"]), 2.0), z1)
    kf.step(z1, np.array(["Car"]), 0.0)
    np.testing.assert_allclose(kf.step(z1, np.array(["Car"]), 100.0), z1)  # predicted 100 m away
    np.testing.assert_allclose(kf.cov[0], 40 * np.eye(5))
    # Hungarian: two cars swap nothing, each matched to its own prediction
    kf2 = st.StreamDSGNKalman()
    two = np.array([[0.0, 1.6, 10.0, 1.0, 0.0], [3.0, 1.6, 10.0, 1.0, 0.0]])
    kf2.step(two, np.array(["Car", "Car"]), 0.0)
    out = kf2.step(two[::-1].copy(), np.array(["Car", "Car"]), 0.0)
    np.testing.assert_allclose(out[:, 0], [3.0, 0.0], atol=1e-9)


def test_kf_streamdsgn_copies_the_last_output_without_forecast():
    frames = [_car(0.0, 20.0, ry=0.0, frame=i) for i in range(6)]
    sched = st.Schedule(np.array([0, 1, 2]), np.array([100.0, 199.0, 250.0]))
    out = st.stream_predictions(frames, sched, 6, strategy="kf-streamdsgn")
    assert len(out[0]) == 0  # nothing emitted before 100 ms
    # frame 1 (t = 100 ms) pairs output 0 (source frame 0, dt = 100 ms): first filter call -> the observation
    np.testing.assert_allclose(out[1]["location"][0], [0.0, 1.6, 20.0])
    # from frame 3 on the last output (source frame 2) is copied without forecast
    for i in (3, 4, 5):
        np.testing.assert_allclose(out[i]["location"], frames[2]["location"])
        assert out[i]["frame"][0] == i
    copy = st.stream_predictions(frames, sched, 6, strategy="copy")
    assert all(np.array_equal(a["location"], b["location"]) for a, b in zip(out[3:], copy[3:]))


def test_kf_streamdsgn_equals_copy_at_10hz_on_real_tracks(shared_data):
    """With the release's transition matrix and dt in ms no prediction comes within 4 m of a detection at
    10 Hz, so the release's forecaster returns the detections unchanged (documented in docs/kitti_sap.md)."""
    gt = io.read_sequence_labels(shared_data / "kitti_tracking", "0006")
    n = int(gt["frame"].max()) + 1
    pred = io.split_frames(jitter_predictions(gt, seed=1, pos_std_m=0.1), n)
    sched = st.sampled_schedule(n, [60.0, 140.0, 230.0], np.random.default_rng(0))
    a = st.stream_predictions(pred, sched, n, strategy="kf-streamdsgn")
    b = st.stream_predictions(pred, sched, n, strategy="copy")
    assert sum(len(f) for f in a) > 500
    for fa, fb in zip(a, b):
        np.testing.assert_allclose(fa["location"], fb["location"], atol=1e-9)
        np.testing.assert_allclose(np.cos(fa["rotation_y"]), np.cos(fb["rotation_y"]), atol=1e-9)
