"""Speed of the SGBM-refine pieces at 346x260, each against the named alternative, in the same run.

* network: the bundled ``stereo_refine.pt`` as ``LearnedStereo`` runs it on a CPU (BatchNorm folded into the
  convs, ``SGBMRefineStereo.for_cpu_inference``: channels-last weights except the 1x1 convs reading the
  full-resolution inputs, and the full-resolution input stacks and correction heads as numba kernels) vs the
  same without the numba kernels (torch ops only), with every weight channels-last, with BatchNorm kept
  (channels-last), and in the default NCHW layout, one torch thread, median over three rounds of the mean of
  ``--repeats`` forwards after a warm-up;
* SGBM: OpenCV's 3-way variant (the refine encoder's ``model.sgbm.mode``) vs full SGBM (the ``--method sgbm``
  yardstick), on the time surfaces of a synthetic 346x260 window;
* second pass (``model.refine.second_pass``, when the checkpoint has it): the network as run vs the same weights
  without the second head (the first answer), and its cost profile
  (:func:`eventvision.matching.refine_inputs.cost_profile_torch`) with the numba kernel (the CPU default) vs
  one ``grid_sample`` (the path off the CPU);
* with ``--compare CKPT``: that SGBM-refine checkpoint's network, folded and channels-last like the bundled one, on
  the same inputs, against the bundled one (e.g. a variant with more matching capacity).

    python benchmarks/bench_refine.py [--repeats 20] [--compare runs/stereo_refine_cpu_context/best.pt]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def mean_ms(fn, repeats: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t) / repeats * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--compare", help="another SGBM-refine checkpoint whose network to time against the bundled one")
    args = ap.parse_args(argv)
    import torch

    from eventvision.matching.sgbm import event_image_pair, sgbm_disparity
    from eventvision.simulate.stereo_scenes import StereoCamera, StereoScene

    torch.set_num_threads(1)
    cam = StereoCamera(width=346, height=260, focal_px=226.0, baseline_m=0.1)
    left, right = StereoScene.random(cam, seed=5).events(60_000, frame_dt_us=2000)
    img_l, img_r = event_image_pair(left, right, width=346, height=260, t_start=10_000, t_end=60_000)
    sgbm_ms = {m: mean_ms(lambda m=m: sgbm_disparity(img_l, img_r, max_disparity=62, mode=m), args.repeats)
               for m in ("3way", "sgbm")}
    from eventvision.engine.checkpoint import load_model_from_checkpoint
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT
    from eventvision.models.conv import fuse_conv_bn
    from eventvision.models.stereo.refine import SGBMRefineStereo

    _, model, _ = load_model_from_checkpoint(BUNDLED_CHECKPOINT, device="cpu", task_name="stereo")
    model.eval()
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    fused_all_cl = fuse_conv_bn(copy.deepcopy(model)).to(memory_format=torch.channels_last)
    fused = fuse_conv_bn(copy.deepcopy(model)).for_cpu_inference()
    torch_ops = copy.deepcopy(fused)
    torch_ops.fused_cpu_inference = False
    other = None
    if args.compare:
        _, other, _ = load_model_from_checkpoint(args.compare, device="cpu", task_name="stereo")
        if not isinstance(other, SGBMRefineStereo) or tuple(other.cfg.offsets) != tuple(model.cfg.offsets) \
                or other.cfg.needs_right != model.cfg.needs_right:
            print(f"{args.compare}: --compare needs an SGBM-refine checkpoint with the bundled one's inputs "
                  "(same offsets, right view alike)", file=sys.stderr)
            return 2
        other = fuse_conv_bn(other.eval()).for_cpu_inference()
    inputs = (torch.from_numpy(img_l.transpose(2, 0, 1).copy())[None],
              torch.rand(1, 2 + len(model.cfg.offsets), 260, 346) * 30)
    if model.cfg.needs_right:
        inputs += (torch.from_numpy(img_r.transpose(2, 0, 1).copy())[None],)
    with torch.inference_mode():
        # three rounds over the variants, median per variant: a change of the machine's speed hits all alike
        variants = {"nchw": model, "channels_last": cl, "fused": fused, "torch_ops": torch_ops,
                    "fused_all_cl": fused_all_cl}
        rounds = [{k: mean_ms(lambda net=net: net(*inputs), args.repeats) for k, net in variants.items()}
                  for _ in range(3)]
        net_ms = {k: statistics.median(r[k] for r in rounds) for k in variants}
        if other is not None:   # alternate the two, so a change of the machine's speed hits both alike
            pairs = [(mean_ms(lambda: fused(*inputs), args.repeats), mean_ms(lambda: other(*inputs), args.repeats))
                     for _ in range(3)]
    print("346x260, 1 torch thread")
    print(f"refine network (matching branch: {model.cfg.correlation or 'off'}): as run (BN folded, CPU layout, "
          f"numba kernels) {net_ms['fused']:.1f} ms; the same with torch ops only {net_ms['torch_ops']:.1f} ms, "
          f"BN folded with all weights channels-last {net_ms['fused_all_cl']:.1f} ms, channels-last "
          f"{net_ms['channels_last']:.1f} ms, NCHW {net_ms['nchw']:.1f} ms -> "
          + " / ".join(f"{net_ms[k] / net_ms['fused']:.2f}x" for k in ("torch_ops", "fused_all_cl", "channels_last",
                                                                      "nchw")))
    if other is not None:
        base, comp = (statistics.median(x) for x in zip(*pairs))
        print(f"{args.compare}: network {comp:.1f} ms vs the bundled {base:.1f} ms (both BN folded, CPU layout, "
              f"medians of 3 alternating means) -> {comp / base:.2f}x")
    print(f"SGBM: 3-way {sgbm_ms['3way']:.1f} ms, full SGBM {sgbm_ms['sgbm']:.1f} ms "
          f"-> {sgbm_ms['sgbm'] / sgbm_ms['3way']:.2f}x")
    if model.cfg.second_pass:
        from eventvision.matching.refine_inputs import cost_profile_torch

        first = SGBMRefineStereo(**{**vars(model.cfg), "second_pass": False})
        first.load_state_dict(model.state_dict(), strict=False)       # the second head's tensors are left out
        first = fuse_conv_bn(first.eval()).for_cpu_inference()
        d = inputs[1][:, :1]
        with torch.inference_mode():
            pass_ms = {"without": mean_ms(lambda: first(*inputs), args.repeats),
                       **{b: mean_ms(lambda b=b: cost_profile_torch(inputs[0], inputs[2], d, model.cfg.offsets,
                                                                    backend=b), args.repeats)
                          for b in ("numba", "grid_sample")}}
        print(f"second pass: network {net_ms['fused']:.1f} ms vs {pass_ms['without']:.1f} ms without it "
              f"(+{net_ms['fused'] - pass_ms['without']:.1f} ms); its cost profile numba {pass_ms['numba']:.1f} ms, "
              f"grid_sample {pass_ms['grid_sample']:.1f} ms -> {pass_ms['grid_sample'] / pass_ms['numba']:.2f}x")
    return 0


if __name__ == "__main__":
    from eventvision.errors import exit_with

    exit_with(main)   # a missing or unsuitable checkpoint: one line, exit 2, like the CLI
