"""Choose between stereo checkpoints on validation data only: the selection rule of docs/stereo.md ("Seventh session",
"Eighth session", "Ninth session") as one command.

    python benchmarks/select_stereo_checkpoint.py CANDIDATE.pt [...] [--default DEFAULT.pt] [--sets v1,v2,v3,v2g,v4]
        [--margin 0.01] [--out runs/selection] [--jobs 2]

Validation sets (none of them a test set; every clip seed shifted by ``--split val``):

* **v1**: the generator's full-frame validation at 346x260 (``eventvision eval stereo --method both --split val``,
  scene starts, no rotation, no ground, no speed cap, seed 0: whatever a checkpoint's training changed about the
  scenes is reset, so every checkpoint sees the same scenes);
* **v2**: 30 clips made another way (``eval_stereo_generalization.py --split val --sets independent --clips 10``);
* **v3**: continuous 1.5 s streams of the 12 families (``--split val --sets long --clips 1``);
* **v2g**: 30 clips made another way with a ground plane (``--sets independent_ground --clips 10``): in the rule since
  the ninth session (nearly every real recording has a road; the seventh and eighth sessions scored ``v1,v2,v3``);
* **v4**: the 12 families' val clips written in the DSEC layout at 640x480 (``--split val --sets dsec --clips 2``: raw
  sensor coordinates, rectification maps, f = 570 px), since the fourteenth session: every other set is at 346x260,
  so a round that costs at the DSEC size (the test set's `edges` family lost 4.59 -> 5.50 -> 6.24 px over three
  rounds) went unseen. In the default ``--sets`` since then; the rules of the ninth to thirteenth sessions, whose
  commands in stereo_refine.json name no ``--sets``, re-run as they were with ``--sets v1,v2,v3,v2g``.

Score = the mean over the sets of a checkpoint's EPE over all GT pixels relative to the default's (the default scores
1). A candidate replaces the default only if its score is below ``1 - margin`` and it beats SGBM on SGBM's pixels on
every set but v1; of those, the lowest score wins. Each evaluation's JSON is kept in ``--out`` under the checkpoint's
name and content hash, so adding a candidate later re-runs only that candidate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from eval_stereo_generalization import held_out_scene_overrides  # noqa: E402
#: the families of v3 (the 12 of the test tables, without the later `ground`)
V3_FAMILIES = "mixed,fronto,slanted,clutter,dots,smooth,edges,low_texture,fast,noisy,plain,rotating"
#: overrides that reset what a training may have changed about the val scenes (the held-out scenes of
#: eval_stereo_generalization.py, one definition), so that every checkpoint is scored on the same val scenes
SCENE_RESETS = held_out_scene_overrides()
#: v1's overrides: full frames at the MVSEC focal length, on the same scenes for every checkpoint
V1_OVERRIDES = ("data.crop=null", "data.synthetic.focal_px=226") + SCENE_RESETS
#: eval_stereo_generalization.py arguments of the other sets: (set name, clips, extra arguments)
GENERALIZATION_SETS = {"v2": ("independent", 10, ()), "v3": ("long", 1, ("--families", V3_FAMILIES)),
                       "v2g": ("independent_ground", 10, ()), "v4": ("dsec", 2, ("--families", V3_FAMILIES))}
SETS = ("v1",) + tuple(GENERALIZATION_SETS)


@dataclass(frozen=True)
class SetResult:
    """One checkpoint on one validation set: EPE (px) over all GT pixels, on SGBM's pixels, and SGBM's own there."""

    epe: float
    epe_on_sgbm: float
    sgbm_epe: float


def command(set_name: str, checkpoint: Path, out_json: Path) -> list[str]:
    """The command line that writes ``checkpoint``'s result on ``set_name`` to ``out_json``."""
    if set_name == "v1":
        return [sys.executable, "-m", "eventvision", "eval", "stereo", "--method", "both", "--checkpoint",
                str(checkpoint), "--split", "val", "--json", str(out_json), *V1_OVERRIDES]
    name, clips, extra = GENERALIZATION_SETS[set_name]
    return [sys.executable, str(ROOT / "benchmarks" / "eval_stereo_generalization.py"), "--checkpoint",
            str(checkpoint), "--split", "val", "--sets", name, "--clips", str(clips), *extra, "--json", str(out_json)]


def read_result(set_name: str, path: Path) -> SetResult:
    """A set's JSON (``eventvision eval --json`` for v1, the generalization benchmark's for the others)."""
    data = json.loads(Path(path).read_text())
    if set_name == "v1":
        return SetResult(data["metrics"]["epe"], data["learned_on_sgbm_pixels"]["epe"], data["sgbm"]["epe"])
    row = data["sets"][GENERALIZATION_SETS[set_name][0]]["all"]
    return SetResult(row["model_epe"], row["model_epe_on_sgbm_pixels"], row["sgbm_epe"])


def score(results: dict[str, dict[str, SetResult]], default: str, margin: float) -> tuple[list[tuple], str]:
    """``results[checkpoint][set]`` -> (rows ``(score, checkpoint, beats SGBM on SGBM's px)`` sorted by score, the
    chosen checkpoint): the default unless a candidate scores below ``1 - margin`` relative to it and beats SGBM on
    SGBM's pixels on every set but v1."""
    base = results[default]
    rows = []
    for name, sets in results.items():
        ratio = sum(sets[s].epe / base[s].epe for s in base) / len(base)
        beats = all(r.epe_on_sgbm < r.sgbm_epe for s, r in sets.items() if s != "v1")
        rows.append((ratio, name, beats))
    rows.sort()
    eligible = [r for r in rows if r[1] != default and r[2] and r[0] < 1.0 - margin]
    return rows, eligible[0][1] if eligible else default


def file_tag(path: Path) -> str:
    """``<stem>-<first 10 hex of the file's SHA-256>``: a checkpoint's results stay with its exact weights."""
    return f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:10]}"


def main(argv: list[str] | None = None) -> int:
    from eventvision.errors import CheckpointError, InvalidValueError
    from eventvision.inference.stereo import BUNDLED_CHECKPOINT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+", help="checkpoints to weigh against the default")
    parser.add_argument("--default", default=str(BUNDLED_CHECKPOINT), help="the checkpoint to beat (default: bundled)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--margin", type=float, default=0.01, help="a candidate must score below 1 - margin")
    parser.add_argument("--out", default="runs/selection", help="folder for each evaluation's JSON and log")
    parser.add_argument("--jobs", type=int, default=1, help="evaluations at once (one thread each)")
    args = parser.parse_args(argv)
    sets = args.sets.split(",")
    unknown = sorted(set(sets) - set(SETS))
    if unknown or not sets:
        raise InvalidValueError(f"--sets: unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    if not 0 <= args.margin < 1:
        raise InvalidValueError(f"--margin must lie in [0, 1), got {args.margin}")
    paths = [Path(p) for p in dict.fromkeys([args.default, *args.candidates])]
    for path in paths:
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint not found; give the .pt files written by eventvision train "
                                  "(runs/<name>/best.pt) or benchmarks/average_checkpoints.py")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tags = {path: file_tag(path) for path in paths}
    todo = [(s, p) for p in paths for s in sets if not (out / f"{tags[p]}.{s}.json").is_file()]
    env = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}

    def run(job: tuple[str, Path]) -> None:
        set_name, path = job
        target = out / f"{tags[path]}.{set_name}.json"
        log = out / f"{tags[path]}.{set_name}.log"
        print(f"evaluating {path} on {set_name} ...", file=sys.stderr, flush=True)
        with open(log, "w") as handle:
            done = subprocess.run(command(set_name, path.resolve(), target), cwd=ROOT, stdout=handle,
                                  stderr=subprocess.STDOUT, env={**os.environ, **env})
        if done.returncode != 0 or not target.is_file():
            raise InvalidValueError(f"{path}: the {set_name} evaluation failed (exit {done.returncode}); see {log}")

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(run, todo))
    results = {str(p): {s: read_result(s, out / f"{tags[p]}.{s}.json") for s in sets} for p in paths}
    rows, chosen = score(results, str(paths[0]), args.margin)
    header = " | ".join(f"{s}: all px (SGBM's px; SGBM)" for s in sets)
    print(f"| checkpoint | {header} | score |\n|---|{'---|' * len(sets)}---|")
    for ratio, name, beats in rows:
        cells = " | ".join(f"{r.epe:.3f} ({r.epe_on_sgbm:.2f}; {r.sgbm_epe:.2f})" for r in results[name].values())
        mark = " (default)" if name == str(paths[0]) else ("" if beats else " (loses to SGBM)")
        print(f"| {name}{mark} | {cells} | {ratio:.4f} |")
    print(f"chosen: {chosen}" + (" (the default stays)" if chosen == str(paths[0]) else ""))
    return 0


if __name__ == "__main__":
    from eventvision.errors import exit_with

    exit_with(main)
