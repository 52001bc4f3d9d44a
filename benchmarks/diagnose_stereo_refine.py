"""Where an SGBM-refine checkpoint's mean error comes from, and how good its matching branch is on its own.

On the task's validation scenes (full frames; the checkpoint's own data config, at ``--focal-px`` px): the share of
GT pixels the model gets wrong by more than 4 px and the share of the error sum they make, and how often the
answer is within 4 px of the truth for the model, for SGBM's filled map (the network's input ``d0``) and for the
matching branch's own winner (the arg-max of its correlation, 4-px levels at 1/4 resolution, upsampled).

    python benchmarks/diagnose_stereo_refine.py [--checkpoint eventvision/checkpoints/stereo_refine.pt]
        [--scenes 22] [--focal-px 226]

docs/stereo.md ("The context stage") quotes its output for the shipped checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_stereo_generalization import GROSS_PX  # noqa: E402  (the same "gross error" as the test-set tables)


def main(argv: list[str] | None = None) -> int:
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(BUNDLED_CHECKPOINT))
    parser.add_argument("--scenes", type=int, default=22, help="val scenes (the families in turn)")
    parser.add_argument("--focal-px", type=float, default=226.0, help="synthetic focal length (226 at 346x260)")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from eventvision.engine import load_model_from_checkpoint
    from eventvision.models.stereo.refine import MATCHING_STEP_PX
    from eventvision.utils.disparity import valid_disparity

    torch.set_num_threads(1)
    task, model, _ = load_model_from_checkpoint(
        args.checkpoint, overrides=["data.crop=null", f"data.synthetic.focal_px={args.focal_px}"])
    if task.arch != "sgbm_refine" or not model.cfg.correlation:
        print(f"{args.checkpoint}: needs an SGBM-refine checkpoint with the matching branch "
              "(model.refine.correlation > 0)", file=sys.stderr)
        return 2
    dataset = task.build_dataset("val")
    max_d = float(task.cfg.data.max_disparity)
    n = gross = 0
    err_sum = gross_sum = 0.0
    within = {"model": 0, "sgbm_filled": 0, "branch_winner": 0, "sgbm_or_branch": 0}
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
    n = max(n, 1)
    print(f"{args.checkpoint}: {min(args.scenes, len(dataset))} val scenes, {n} GT px")
    print(f"model mean error {err_sum / n:.3f} px; {100 * gross / n:.1f} % of the px are off by > {GROSS_PX:g} px "
          f"and make {100 * gross_sum / max(err_sum, 1e-12):.1f} % of the error; the rest average "
          f"{(err_sum - gross_sum) / max(n - gross, 1):.3f} px")
    for name, count in within.items():
        print(f"within {GROSS_PX:g} px of the truth: {name:15s} {100 * count / n:5.1f} %")
    return 0


if __name__ == "__main__":
    from eventvision.errors import exit_with

    exit_with(main)   # a missing or unsuitable checkpoint: one line, exit 2, like the CLI
