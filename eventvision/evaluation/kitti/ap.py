"""KITTI detection AP with the semantics of kitti-object-eval-python (traveller59 / OpenPCDet ``eval.py``).

Per class and difficulty (easy/moderate/hard = index 0/1/2):

- ground truth: same class -> valid; ``Van`` for Car and ``Person_sitting`` for Pedestrian -> ignored;
  other classes -> not considered. A valid GT is *ignored* when occluded > (0, 1, 2)[d], truncated >
  (0.15, 0.3, 0.5)[d] (tracking labels hold truncation levels 0/1/2, read verbatim as the reference
  tools do) or bbox height <= (40, 25, 25)[d] px; ``DontCare`` boxes feed the 2D (bbox) rule only.
- detections: bbox height < min height -> ignored; other class -> not considered.
- matching per frame (``compute_statistics``): each non-ignored GT takes the highest-scoring unassigned
  detection with overlap > threshold (first pass, collects TP scores), or, at a score threshold, the
  highest-overlap valid detection (an ignored detection only when no valid one matches). A detection
  matched to an ignored GT, or an ignored detection, is neither TP nor FP; for bbox, an unmatched
  detection whose area lies > threshold inside a DontCare box is not a FP.
- 41 score thresholds from the TP scores (``get_thresholds``: sampled so recall steps by 1/40),
  precision at each, interpolated as the max over higher recall; R11 = mean of points 0, 4, .., 40,
  R40 = mean of points 1..40, x100. AOS: sum of (1 + cos(Δalpha)) / 2 over TPs / (TP + FP).
- a class/difficulty with no valid GT gets no thresholds and hence AP 0 (as the reference).

IoU thresholds: ``strict`` 0.7/0.5/0.5 (Car/Pedestrian/Cyclist) for bbox, BEV and 3D; ``loose``
0.7/0.5/0.5 for bbox and 0.5/0.25/0.25 for BEV and 3D (the reference's second row).

Frames are :data:`eventvision.formats.kitti.OBJECT_DTYPE` arrays, one per image, ground truth and
detections aligned by index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numba
import numpy as np

from eventvision.evaluation.base import Evaluator
from eventvision.formats.kitti import CLASSES, OBJECT_DTYPE
from eventvision.geometry.boxes3d import bev_from_boxes3d, boxes3d_from_objects
from eventvision.geometry.rotated_iou import frames_overlap

N_SAMPLE_PTS = 41
DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
METRICS = ("bbox", "bev", "3d")

#: minimum overlaps per setting -> metric -> class (reference: overlap_0_7 / overlap_0_5 tables)
MIN_OVERLAPS = {
    "strict": {m: {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5, "Van": 0.7, "Person_sitting": 0.5}
               for m in METRICS},
    "loose": {"bbox": {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5, "Van": 0.7, "Person_sitting": 0.5},
              "bev": {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25, "Van": 0.5, "Person_sitting": 0.25},
              "3d": {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25, "Van": 0.5, "Person_sitting": 0.25}},
}
#: GT types ignored (neither TP nor FP when matched) for a class
_RELATED = {"car": "van", "pedestrian": "person_sitting"}


def ap_r11(precision: np.ndarray) -> np.ndarray:
    """AP (percent) over the 11 recall points 0, 0.1, .., 1 = precision[..., 0::4] (41-point array)."""
    return np.asarray(precision)[..., 0::4].sum(axis=-1) / 11.0 * 100.0


def ap_r40(precision: np.ndarray) -> np.ndarray:
    """AP (percent) over the 40 recall points 1/40 .. 1 = precision[..., 1:] (41-point array)."""
    return np.asarray(precision)[..., 1:].sum(axis=-1) / 40.0 * 100.0


def get_thresholds(scores: np.ndarray, num_gt: int, num_sample_pts: int = N_SAMPLE_PTS) -> np.ndarray:
    """Score thresholds at which recall passes the sample points 0, 1/40, .. (reference ``get_thresholds``).

    scores: TP scores of all frames (any order). Returns thresholds in decreasing order (<= 41).
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    out = []
    current = 0.0
    n = len(scores)
    for i, score in enumerate(scores):
        l_recall = (i + 1) / num_gt
        r_recall = (i + 2) / num_gt if i < n - 1 else l_recall
        if (r_recall - current) < (current - l_recall) and i < n - 1:
            continue
        out.append(score)
        current += 1.0 / (num_sample_pts - 1.0)
    return np.asarray(out, dtype=np.float64)


# ------------------------------------------------------------------------------------ numba matching

@numba.njit(cache=True)
def _frame_statistics(ov, ng, nd, ig_gt, ig_dt, score, gt_alpha, dt_alpha, dcov, ndc, use_dc,
                      min_overlap, thresh, compute_fp, compute_aos, tp_scores, assigned, below):
    """compute_statistics of one frame. ov: flat [nd, ng] (dt-major); dcov flat [nd, ndc] (dt area
    inside DontCare). Writes TP scores into tp_scores; assigned/below: bool scratch (>= nd).
    Returns (tp, fp, fn, similarity, n_tp_scores)."""
    NO_DETECTION = -10000000.0
    for j in range(nd):
        assigned[j] = False
        below[j] = compute_fp and score[j] < thresh
    tp = 0
    fp = 0
    fn = 0
    n_thr = 0
    sim_sum = 0.0
    n_delta = 0
    for i in range(ng):
        if ig_gt[i] == -1:
            continue
        det_idx = -1
        valid = NO_DETECTION
        max_overlap = 0.0
        assigned_ignored = False
        for j in range(nd):
            if ig_dt[j] == -1 or assigned[j] or below[j]:
                continue
            o = ov[j * ng + i]
            if not compute_fp and o > min_overlap and score[j] > valid:
                det_idx = j
                valid = score[j]
            elif compute_fp and o > min_overlap and (o > max_overlap or assigned_ignored) and ig_dt[j] == 0:
                max_overlap = o
                det_idx = j
                valid = 1.0
                assigned_ignored = False
            elif compute_fp and o > min_overlap and valid == NO_DETECTION and ig_dt[j] == 1:
                det_idx = j
                valid = 1.0
                assigned_ignored = True
        if valid == NO_DETECTION and ig_gt[i] == 0:
            fn += 1
        elif valid != NO_DETECTION and (ig_gt[i] == 1 or ig_dt[det_idx] == 1):
            assigned[det_idx] = True
        elif valid != NO_DETECTION:
            tp += 1
            tp_scores[n_thr] = score[det_idx]
            n_thr += 1
            if compute_aos:
                sim_sum += (1.0 + np.cos(gt_alpha[i] - dt_alpha[det_idx])) / 2.0
                n_delta += 1
            assigned[det_idx] = True
    similarity = 0.0
    if compute_fp:
        for j in range(nd):
            if not (assigned[j] or ig_dt[j] == -1 or ig_dt[j] == 1 or below[j]):
                fp += 1
        nstuff = 0
        if use_dc:
            for d in range(ndc):
                for j in range(nd):
                    if assigned[j] or ig_dt[j] == -1 or ig_dt[j] == 1 or below[j]:
                        continue
                    if dcov[j * ndc + d] > min_overlap:
                        assigned[j] = True
                        nstuff += 1
        fp -= nstuff
        if compute_aos:
            similarity = sim_sum if (tp > 0 or fp > 0) else -1.0
    return tp, fp, fn, similarity, n_thr


@numba.njit(cache=True)
def _collect_tp_scores(ov, ov_off, gt_off, dt_off, ig_gt, ig_dt, score, gt_alpha, dt_alpha,
                       dcov, dcov_off, dc_off, use_dc, min_overlap):
    nf = gt_off.shape[0] - 1
    out = np.empty(gt_off[nf], dtype=np.float64)
    buf = np.empty(gt_off[nf] + 1, dtype=np.float64)
    assigned = np.empty(dt_off[nf] + 1, dtype=np.bool_)
    below = np.empty(dt_off[nf] + 1, dtype=np.bool_)
    n = 0
    for f in range(nf):
        g0, g1, d0, d1 = gt_off[f], gt_off[f + 1], dt_off[f], dt_off[f + 1]
        res = _frame_statistics(ov[ov_off[f]:ov_off[f + 1]], g1 - g0, d1 - d0, ig_gt[g0:g1], ig_dt[d0:d1],
                                score[d0:d1], gt_alpha[g0:g1], dt_alpha[d0:d1], dcov[dcov_off[f]:dcov_off[f + 1]],
                                dc_off[f + 1] - dc_off[f], use_dc, min_overlap, 0.0, False, False, buf,
                                assigned, below)
        k = res[4]
        out[n:n + k] = buf[:k]
        n += k
    return out[:n]


@numba.njit(cache=True)
def _pr_table(ov, ov_off, gt_off, dt_off, ig_gt, ig_dt, score, gt_alpha, dt_alpha, dcov, dcov_off, dc_off,
              use_dc, min_overlap, thresholds, compute_aos):
    """[T, 4] sums of (tp, fp, fn, similarity) over frames at each score threshold."""
    nf = gt_off.shape[0] - 1
    nt = thresholds.shape[0]
    pr = np.zeros((nt, 4), dtype=np.float64)
    max_g = 1
    max_d = 1
    max_c = 1
    for f in range(nf):
        max_g = max(max_g, gt_off[f + 1] - gt_off[f])
        max_d = max(max_d, dt_off[f + 1] - dt_off[f])
        max_c = max(max_c, dc_off[f + 1] - dc_off[f])
    buf = np.empty(max_g + 1, dtype=np.float64)
    assigned = np.empty(max_d, dtype=np.bool_)
    below = np.empty(max_d, dtype=np.bool_)
    # per-frame compact copies without the entries marked -1 (never matched, never counted): same result
    gi = np.empty(max_g, dtype=np.int64)
    di = np.empty(max_d, dtype=np.int64)
    c_ov = np.empty(max_g * max_d, dtype=np.float64)
    c_dcov = np.empty(max_d * max_c, dtype=np.float64)
    c_ig_gt = np.empty(max_g, dtype=np.int64)
    c_ig_dt = np.empty(max_d, dtype=np.int64)
    c_score = np.empty(max_d, dtype=np.float64)
    c_gt_alpha = np.empty(max_g, dtype=np.float64)
    c_dt_alpha = np.empty(max_d, dtype=np.float64)
    for f in range(nf):
        g0, g1, d0, d1 = gt_off[f], gt_off[f + 1], dt_off[f], dt_off[f + 1]
        ng_all = g1 - g0
        ndc = dc_off[f + 1] - dc_off[f]
        ng = 0
        for i in range(g0, g1):
            if ig_gt[i] != -1:
                gi[ng] = i - g0
                ng += 1
        nd = 0
        for j in range(d0, d1):
            if ig_dt[j] != -1:
                di[nd] = j - d0
                nd += 1
        if ng == 0 and nd == 0:
            continue
        for a in range(ng):
            c_ig_gt[a] = ig_gt[g0 + gi[a]]
            c_gt_alpha[a] = gt_alpha[g0 + gi[a]]
        for b in range(nd):
            j = d0 + di[b]
            c_ig_dt[b] = ig_dt[j]
            c_score[b] = score[j]
            c_dt_alpha[b] = dt_alpha[j]
            for a in range(ng):
                c_ov[b * ng + a] = ov[ov_off[f] + di[b] * ng_all + gi[a]]
            for c in range(ndc):
                c_dcov[b * ndc + c] = dcov[dcov_off[f] + di[b] * ndc + c]
        for t in range(nt):
            tp, fp, fn, sim, _ = _frame_statistics(
                c_ov, ng, nd, c_ig_gt, c_ig_dt, c_score, c_gt_alpha, c_dt_alpha, c_dcov, ndc,
                use_dc, min_overlap, thresholds[t], True, compute_aos, buf, assigned, below)
            pr[t, 0] += tp
            pr[t, 1] += fp
            pr[t, 2] += fn
            if sim != -1.0:
                pr[t, 3] += sim
    return pr


# ------------------------------------------------------------------------------------ data preparation

@dataclass(frozen=True)
class _Flat:
    """All frames concatenated: objects plus offsets [F+1]."""

    objects: np.ndarray
    offsets: np.ndarray
    names: np.ndarray  # lower-case type names
    height: np.ndarray  # bbox height px
    boxes3d: np.ndarray  # [N, 7]


def _flatten(frames: Sequence[np.ndarray]) -> _Flat:
    counts = np.array([len(f) for f in frames], dtype=np.int64)
    offsets = np.zeros(len(frames) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    objects = np.zeros(int(offsets[-1]), dtype=OBJECT_DTYPE)
    for f, o0, o1 in zip(frames, offsets[:-1], offsets[1:]):
        if o1 > o0:
            objects[o0:o1] = f
    names = np.char.lower(objects["type"].astype(str))
    height = objects["bbox"][:, 3] - objects["bbox"][:, 1]
    return _Flat(objects, offsets, names, height, boxes3d_from_objects(objects))


def _clean(gt: _Flat, dt: _Flat, cls: str, difficulty: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference ``clean_data`` over all frames -> (ignored_gt [G], ignored_dt [D], num_valid_gt)."""
    name = cls.lower()
    valid = np.where(gt.names == name, 1, np.where(gt.names == _RELATED.get(name, "\0"), 0, -1))
    hard = ((gt.objects["occluded"] > MAX_OCCLUSION[difficulty])
            | (gt.objects["truncated"] > MAX_TRUNCATION[difficulty])
            | (gt.height <= MIN_HEIGHT[difficulty]))
    ig_gt = np.full(len(valid), -1, dtype=np.int64)
    ig_gt[(valid == 0) | ((valid == 1) & hard)] = 1
    ig_gt[(valid == 1) & ~hard] = 0
    dt_h = np.abs(dt.height)
    ig_dt = np.where(dt_h < MIN_HEIGHT[difficulty], 1, np.where(dt.names == name, 0, -1)).astype(np.int64)
    return ig_gt, ig_dt, int(((valid == 1) & ~hard).sum())


@dataclass(frozen=True)
class KittiEvalResult:
    """precision / aos / recall: {(class, metric): float64 [3 difficulties, 41]} (interpolated, as the
    reference); min_overlaps: {(class, metric): float}; num_valid_gt: {(class, difficulty): int}."""

    classes: tuple[str, ...]
    metrics: tuple[str, ...]
    overlap: str
    precision: dict = field(repr=False)
    recall: dict = field(repr=False)
    aos: dict = field(repr=False)
    min_overlaps: dict = field(repr=False)
    num_valid_gt: dict = field(repr=False)

    def to_dict(self) -> dict:
        """{CLASS: {"bbox"|"bev"|"3d"[|"aos"]: {"R11": [easy, mod, hard], "R40": [...]}}} (percent)."""
        out: dict = {}
        for cls in self.classes:
            out[cls] = {}
            for metric in self.metrics:
                prec = self.precision[(cls, metric)]
                out[cls][metric] = {"R11": [float(v) for v in ap_r11(prec)], "R40": [float(v) for v in ap_r40(prec)]}
            if (cls, "bbox") in self.aos:
                a = self.aos[(cls, "bbox")]
                out[cls]["aos"] = {"R11": [float(v) for v in ap_r11(a)], "R40": [float(v) for v in ap_r40(a)]}
        return out


def _auto_aos(dt_frames: Sequence[np.ndarray]) -> bool:
    # reference: alpha of the first detection of the first non-empty frame != -10
    for f in dt_frames:
        if len(f):
            return bool(f["alpha"][0] != -10)
    return False


def evaluate_kitti(gt_frames: Sequence[np.ndarray], dt_frames: Sequence[np.ndarray], *,
                   classes: Sequence[str] = CLASSES, metrics: Sequence[str] = METRICS,
                   overlap: str = "strict", compute_aos: bool | None = None) -> KittiEvalResult:
    """KITTI AP of detections ``dt_frames`` against ``gt_frames`` (lists of OBJECT_DTYPE arrays, aligned)."""
    if len(gt_frames) != len(dt_frames):
        raise ValueError(f"{len(gt_frames)} ground-truth frames but {len(dt_frames)} detection frames")
    if overlap not in MIN_OVERLAPS:
        raise ValueError(f"overlap must be one of {sorted(MIN_OVERLAPS)}, got {overlap!r}")
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metrics {bad}; use {METRICS}")
    if compute_aos is None:
        compute_aos = _auto_aos(dt_frames)
    gt, dt = _flatten(gt_frames), _flatten(dt_frames)
    dc_mask = gt.objects["type"] == "DontCare"
    frame_of_gt = np.repeat(np.arange(len(gt_frames)), np.diff(gt.offsets))
    dc_counts = np.bincount(frame_of_gt[dc_mask], minlength=len(gt_frames)).astype(np.int64)
    dc_off = np.zeros(len(gt_frames) + 1, dtype=np.int64)
    np.cumsum(dc_counts, out=dc_off[1:])
    dc_boxes = gt.objects["bbox"][dc_mask]
    dcov, dcov_off = frames_overlap("bbox", dt.objects["bbox"], dt.offsets, dc_boxes, dc_off, criterion=0)

    boxes = {"bbox": (dt.objects["bbox"], gt.objects["bbox"]),
             "bev": (bev_from_boxes3d(dt.boxes3d), bev_from_boxes3d(gt.boxes3d)),
             "3d": (dt.boxes3d, gt.boxes3d)}
    score = np.ascontiguousarray(dt.objects["score"], dtype=np.float64)
    gt_alpha = np.ascontiguousarray(gt.objects["alpha"], dtype=np.float64)
    dt_alpha = np.ascontiguousarray(dt.objects["alpha"], dtype=np.float64)
    precision, recall, aos, mins, nvalid = {}, {}, {}, {}, {}
    for metric in metrics:
        ov, ov_off = frames_overlap(metric, boxes[metric][0], dt.offsets, boxes[metric][1], gt.offsets)
        use_dc = metric == "bbox"
        for cls in classes:
            min_overlap = MIN_OVERLAPS[overlap][metric][cls]
            mins[(cls, metric)] = min_overlap
            prec = np.zeros((3, N_SAMPLE_PTS))
            rec = np.zeros((3, N_SAMPLE_PTS))
            orient = np.zeros((3, N_SAMPLE_PTS))
            for d in range(3):
                ig_gt, ig_dt, num_valid = _clean(gt, dt, cls, d)
                nvalid[(cls, DIFFICULTIES[d])] = num_valid
                args = (ov, ov_off, gt.offsets, dt.offsets, ig_gt, ig_dt, score, gt_alpha, dt_alpha,
                        dcov, dcov_off, dc_off, use_dc, min_overlap)
                tp_scores = _collect_tp_scores(*args)
                if num_valid == 0 or len(tp_scores) == 0:
                    continue
                thresholds = get_thresholds(tp_scores, num_valid)
                pr = _pr_table(*args, thresholds, bool(compute_aos and use_dc))
                n = len(thresholds)
                with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 -> NaN, as the reference
                    prec[d, :n] = pr[:, 0] / (pr[:, 0] + pr[:, 1])
                    rec[d, :n] = pr[:, 0] / (pr[:, 0] + pr[:, 2])
                    if compute_aos and use_dc:
                        orient[d, :n] = pr[:, 3] / (pr[:, 0] + pr[:, 1])
                # interpolation: max over the higher-recall (later) points
                prec[d, :n] = np.maximum.accumulate(prec[d, :n][::-1])[::-1]
                rec[d, :n] = np.maximum.accumulate(rec[d, :n][::-1])[::-1]
                orient[d, :n] = np.maximum.accumulate(orient[d, :n][::-1])[::-1]
            precision[(cls, metric)], recall[(cls, metric)] = prec, rec
            if compute_aos and use_dc:
                aos[(cls, metric)] = orient
    return KittiEvalResult(tuple(classes), tuple(metrics), overlap, precision, recall, aos, mins, nvalid)


def kitti_eval(gt_frames: Sequence[np.ndarray], dt_frames: Sequence[np.ndarray], *,
               classes: Sequence[str] = CLASSES, metrics: Sequence[str] = METRICS, overlap: str = "strict",
               compute_aos: bool | None = None) -> dict:
    """KITTI AP as DESIGN's nested dict {CLASS: {metric: {"R11": [e, m, h], "R40": [e, m, h]}}} (percent)."""
    return evaluate_kitti(gt_frames, dt_frames, classes=classes, metrics=metrics, overlap=overlap,
                          compute_aos=compute_aos).to_dict()


class KittiAPEvaluator(Evaluator):
    """Evaluator (reset/process/evaluate) accumulating frames; ``process(gt_frames, dt_frames)`` takes
    lists of OBJECT_DTYPE arrays. ``evaluate`` -> flat {"Car/3d/R40/moderate": AP, ...}."""

    def __init__(self, *, classes: Sequence[str] = CLASSES, metrics: Sequence[str] = METRICS,
                 overlap: str = "strict"):
        self.classes, self.metrics, self.overlap = tuple(classes), tuple(metrics), overlap
        self.reset()

    @classmethod
    def from_config(cls, cfg) -> "KittiAPEvaluator":
        return cls(classes=tuple(cfg.get("classes", CLASSES)), metrics=tuple(cfg.get("metrics", METRICS)),
                   overlap=cfg.get("overlap", "strict"))

    def reset(self) -> None:
        self._gt: list[np.ndarray] = []
        self._dt: list[np.ndarray] = []

    def process(self, inputs, outputs) -> None:
        gts, dts = list(inputs), list(outputs)
        if len(gts) != len(dts):
            raise ValueError(f"{len(gts)} ground-truth frames but {len(dts)} detection frames")
        self._gt += gts
        self._dt += dts

    def evaluate(self) -> dict[str, float]:
        nested = kitti_eval(self._gt, self._dt, classes=self.classes, metrics=self.metrics, overlap=self.overlap)
        flat = {}
        for cls, per_metric in nested.items():
            for metric, aps in per_metric.items():
                for kind, values in aps.items():
                    for diff, v in zip(DIFFICULTIES, values):
                        flat[f"{cls}/{metric}/{kind}/{diff}"] = v
        return flat

    def save_pictures(self, out_dir) -> list:
        """PR curves per class (``pr_<Class>.png``) and BEV overlays of the busiest frames (``bev_<i>.png``)."""
        from eventvision.evaluation.kitti.plots import save_bev_frames, save_pr_curves

        res = evaluate_kitti(self._gt, self._dt, classes=self.classes, metrics=self.metrics, overlap=self.overlap)
        return save_pr_curves({"offline": res}, out_dir) + save_bev_frames(self._gt, self._dt, out_dir)

    def state(self):
        return self._gt, self._dt

    def merge(self, states) -> None:
        self.reset()
        for gts, dts in states:
            self._gt += gts
            self._dt += dts


def format_ap_table(results: dict) -> str:
    """Readable table of ``{mode: KittiEvalResult.to_dict()}``: one block per mode, rows class/metric, columns
    R40 and R11 easy/mod/hard (percent)."""
    lines = []
    for mode, per_class in results.items():
        lines.append(f"{mode} AP (percent)")
        lines.append(f"  {'class':<11}{'metric':<7}{'R40 easy':>9}{'mod':>7}{'hard':>7}   "
                     f"{'R11 easy':>9}{'mod':>7}{'hard':>7}")
        for cls, per_metric in per_class.items():
            for metric, ap in per_metric.items():
                r40 = "".join(f"{v:7.2f}" for v in ap["R40"])
                r11 = "".join(f"{v:7.2f}" for v in ap["R11"])
                lines.append(f"  {cls:<11}{metric:<7}  {r40}     {r11}")
    return "\n".join(lines)
