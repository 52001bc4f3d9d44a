"""Where an SGBM-refine checkpoint's mean error comes from, and how good its matching branch is on its own.

On the task's validation scenes (full frames; the checkpoint's own data config, at ``--focal-px`` px): the share of
GT pixels the model gets wrong by more than 4 px and the share of the error sum they make, and how often the
answer is within 4 px of the truth for the model, for SGBM's filled map (the network's input ``d0``) and for the
matching branch's own winner (the arg-max of its correlation, 4-px levels at 1/4 resolution, upsampled).

Then, by the value SGBM answered (on the pixels it answers), how often that answer is a wrong match (off by more
than 4 px), SGBM's and the model's mean error there and the model's mean signed error (negative: it moved the
answers towards smaller disparities): what the network learned to trust; and what SGBM's wrong answers of 45 px
or more are (``classify_wrong_answers``): trails of surfaces that moved on within the window, occlusion borders, or
false matches where no surface near there had that disparity. ``--set kitti`` prints that table for
the real scene of ``benchmarks/stereo_kitti.py`` (the kitti test set's clips) instead of the val scenes.

    python benchmarks/diagnose_stereo_refine.py [--checkpoint eventvision/checkpoints/stereo_refine.pt]
        [--scenes 22] [--focal-px 226] [--set val|kitti]

docs/stereo.md ("The context stage", "Near objects") quotes its output for the shipped checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# the same "gross error" as the test-set tables, and their kitti windows and prediction
from eval_stereo_generalization import CLIP_US, GROSS_PX, kitti_windows, predict  # noqa: E402
from select_stereo_checkpoint import SCENE_RESETS  # noqa: E402

#: bins of SGBM's answer (px) for the trust table
ANSWER_BINS_PX = (0.0, 10.0, 20.0, 35.0, 45.0, 55.0, 64.0)


class TrustTable:
    """Per bin of SGBM's answer (``ANSWER_BINS_PX``), on the pixels with GT where SGBM answers: pixel count, SGBM's
    wrong matches (off by more than ``GROSS_PX``), SGBM's and the model's error sums, the model's signed error sum."""

    def __init__(self):
        self.sums = np.zeros((5, len(ANSWER_BINS_PX) - 1))

    def add(self, pred: np.ndarray, sgbm: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> None:
        """One window: ``pred``, ``sgbm`` (NaN where SGBM has no answer), ``gt`` ``[H, W]`` px, ``valid`` bool."""
        answered = valid & np.isfinite(sgbm)
        bins = np.digitize(sgbm[answered], ANSWER_BINS_PX[1:-1])
        e_sgbm = np.abs(sgbm[answered] - gt[answered])
        signed = pred[answered] - gt[answered]
        for row, values in enumerate((np.ones_like(e_sgbm), e_sgbm > GROSS_PX, e_sgbm, np.abs(signed), signed)):
            self.sums[row] += np.bincount(bins, weights=values.astype(np.float64), minlength=self.sums.shape[1])

    def lines(self) -> list[str]:
        out = []
        for j, (lo, hi) in enumerate(zip(ANSWER_BINS_PX[:-1], ANSWER_BINS_PX[1:])):
            n, wrong, e_sgbm, e_model, signed = self.sums[:, j]
            if n:
                out.append(f"SGBM answer {lo:2.0f}-{hi:2.0f} px: {int(n):8d} px, SGBM off by > {GROSS_PX:g} px on "
                           f"{100 * wrong / n:5.1f} %, SGBM {e_sgbm / n:5.2f} px, model {e_model / n:5.2f} px "
                           f"(signed {signed / n:+5.2f})")
        return out


#: SGBM answers at least this large (px) are the "large answers" whose wrong matches are classified
LARGE_ANSWER_PX = 45.0


def classify_wrong_answers(sgbm: np.ndarray, gt: np.ndarray, earlier_gts: list[np.ndarray],
                           min_answer: float = LARGE_ANSWER_PX) -> dict[str, int]:
    """SGBM's wrong matches (off by more than ``GROSS_PX``) among its answers >= ``min_answer`` px, by cause:
    ``trail``: some surface had that disparity at that pixel at one of the ``earlier_gts`` times (a moving surface's
    events from earlier in the window, matched right, scored against the GT at the window's end); ``border``: a GT
    pixel within 2 px has it (an occlusion border, "foreground fattening"); ``false_match``: neither, no surface
    near there had that disparity. All maps ``[H, W]`` px, NaN = no answer / no GT -> pixel counts."""
    from scipy import ndimage

    wrong = np.isfinite(sgbm) & np.isfinite(gt) & (sgbm >= min_answer) & (np.abs(sgbm - gt) > GROSS_PX)
    closest = np.full(gt.shape, np.inf)
    for earlier in earlier_gts:
        closest = np.fmin(closest, np.where(np.isfinite(earlier), np.abs(sgbm - earlier), np.inf))
    trail = wrong & (closest <= GROSS_PX)
    filled = np.nan_to_num(gt, nan=-np.inf)
    near_max = ndimage.maximum_filter(filled, size=5)      # a border's nearer side: the larger disparity
    near_min = -ndimage.maximum_filter(-np.where(np.isfinite(gt), gt, np.inf), size=5)
    border = wrong & ~trail & ((np.abs(near_max - sgbm) <= GROSS_PX) | (np.abs(near_min - sgbm) <= GROSS_PX))
    return {"wrong": int(wrong.sum()), "trail": int(trail.sum()), "border": int(border.sum()),
            "false_match": int((wrong & ~trail & ~border).sum())}


def _sgbm_answer(guide: np.ndarray) -> np.ndarray:
    """SGBM's answer from a refine guide ``[2 + K, H, W]`` (filled disparity, answered mask, costs): ``[H, W]`` px,
    NaN where SGBM did not answer (the hole filling's values)."""
    return np.where(np.asarray(guide[1]) > 0.5, np.asarray(guide[0], dtype=np.float32), np.nan)


def main(argv: list[str] | None = None) -> int:
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_CHECKPOINT))
    parser.add_argument("--scenes", type=int, default=22, help="val scenes (the families in turn)")
    parser.add_argument("--focal-px", type=float, default=226.0, help="synthetic focal length (226 at 346x260)")
    parser.add_argument("--set", choices=("val", "kitti"), default="val",
                        help="kitti: only the trust table, on the real scene's clips (--scenes of them)")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from eventvision.engine import load_model_from_checkpoint
    from eventvision.models.stereo.refine import MATCHING_STEP_PX
    from eventvision.utils.disparity import valid_disparity

    torch.set_num_threads(1)
    # the val scenes of the earlier tables whatever the checkpoint's training changed about them, as the selection's v1
    task, model, _ = load_model_from_checkpoint(
        args.checkpoint, overrides=["data.crop=null", f"data.synthetic.focal_px={args.focal_px}", *SCENE_RESETS])
    if task.arch != "sgbm_refine" or not model.cfg.correlation:
        print(f"{args.checkpoint}: needs an SGBM-refine checkpoint with the matching branch "
              "(model.refine.correlation > 0)", file=sys.stderr)
        return 2
    max_d = float(task.cfg.data.max_disparity)
    trust = TrustTable()
    if args.set == "kitti":
        for clip, _, _, inputs in kitti_windows(task, args.scenes):    # the kitti test set's clips
            gt = clip.disparity_at(CLIP_US)
            trust.add(predict(task, model, inputs), _sgbm_answer(inputs["guide"]), gt, valid_disparity(gt, max_d))
        print(f"{args.checkpoint}: {args.scenes} clips of the real scene (benchmarks/stereo_kitti.py)")
        print("\n".join(trust.lines()))
        return 0
    dataset = task.build_dataset("val")
    n = gross = 0
    err_sum = gross_sum = 0.0
    within = {"model": 0, "sgbm_filled": 0, "branch_winner": 0, "sgbm_or_branch": 0}
    causes = {"wrong": 0, "trail": 0, "border": 0, "false_match": 0}
    for i in range(min(args.scenes, len(dataset))):
        batch = task.collate([dataset[i]])
        gt = batch["disparity"][0].numpy()
        with torch.no_grad():
            pred, logits = model(*task.model_inputs(batch), with_matching=True)
        winner = logits.argmax(1, keepdim=True).float() * MATCHING_STEP_PX
        winner = F.interpolate(winner, size=gt.shape, mode="nearest")[0, 0].numpy()
        valid = valid_disparity(gt, max_d)
        e = np.abs(pred[0].numpy() - gt)[valid]
        close_sgbm = np.abs(batch["guide"][0, 0].numpy() - gt)[valid] <= GROSS_PX
        close_branch = np.abs(winner - gt)[valid] <= GROSS_PX
        n += e.size
        err_sum += float(e.sum())
        gross += int((e > GROSS_PX).sum())
        gross_sum += float(e[e > GROSS_PX].sum())
        within["model"] += int((e <= GROSS_PX).sum())
        within["sgbm_filled"] += int(close_sgbm.sum())
        within["branch_winner"] += int(close_branch.sum())
        within["sgbm_or_branch"] += int((close_sgbm | close_branch).sum())
        answer = _sgbm_answer(batch["guide"][0].numpy())
        trust.add(pred[0].numpy(), answer, gt, valid)
        begin, _, t1 = dataset.window_times(i)
        scene = dataset.scene_of(i)
        earlier = [scene.disparity(int(t)) for t in np.linspace(begin, t1, 13)[:-1]]   # 12 moments, warm-up included
        for key, count in classify_wrong_answers(answer, np.where(valid, gt, np.nan), earlier).items():
            causes[key] += count
    n = max(n, 1)
    print(f"{args.checkpoint}: {min(args.scenes, len(dataset))} val scenes, {n} GT px")
    print(f"model mean error {err_sum / n:.3f} px; {100 * gross / n:.1f} % of the px are off by > {GROSS_PX:g} px "
          f"and make {100 * gross_sum / max(err_sum, 1e-12):.1f} % of the error; the rest average "
          f"{(err_sum - gross_sum) / max(n - gross, 1):.3f} px")
    for name, count in within.items():
        print(f"within {GROSS_PX:g} px of the truth: {name:15s} {100 * count / n:5.1f} %")
    print("\n".join(trust.lines()))
    wrong = max(causes["wrong"], 1)
    print(f"SGBM's wrong answers >= {LARGE_ANSWER_PX:g} px ({causes['wrong']} px): "
          + ", ".join(f"{key.replace('_', ' ')} {100 * causes[key] / wrong:.0f} %"
                      for key in ("trail", "border", "false_match")))
    return 0


if __name__ == "__main__":
    from eventvision.errors import exit_with

    exit_with(main)   # a missing or unsuitable checkpoint: one line, exit 2, like the CLI
