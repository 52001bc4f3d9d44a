#!/usr/bin/env bash
# What a session that is lent a GPU runs, in one go and within a deadline (docs/engine.md "CUDA"): the machine's
# versions; run stereo's speed on the GPU beside the CPU and SGBM; the two GPU fine-tunes of
# configs/stereo_refine_gpu_leaves*.yaml (scenes made by 7 processes each) while the CUDA tests run
# (tests/engine/test_cuda.py); then, in the time left, the whole suite with CUDA present (device=auto picks it).
# Logs and the fine-tunes' last.pt go to OUT_DIR. Needs the test extra's packages on PYTHON's path (and the real
# samples where EVENTVISION_SHARED_DATA points, as tests/conftest.py reads them).
#   scripts/gpu_session.sh OUT_DIR [PYTHON] [SECONDS]
set -uo pipefail
out=${1:?usage: scripts/gpu_session.sh OUT_DIR [PYTHON] [SECONDS]}
py=${2:-python3}
deadline=$(( $(date +%s) + ${3:-500} ))
left() { echo $(( deadline - $(date +%s) )); }
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 EVENTVISION_NO_PROGRESS=1
mkdir -p "$out" runs
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $py -c "import torch, numpy, numba, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numpy',
numpy.__version__, 'numba', numba.__version__, 'opencv', cv2.__version__)"
  echo "cpus $(nproc)"; } > "$out/env.txt" 2>&1
timeout 100 $py benchmarks/bench_run_stereo.py --no-hog --device cuda > "$out/bench_run_stereo.txt" 2>&1
# the fine-tunes' train.init_weights: the eleventh session's default (their header), no longer the shipped file; the
# machine may get no git history, so carry runs/ when it cannot be made here
start=runs/stereo_refine_eleventh_session.pt
[ -s "$start" ] || git show 3c32ad4:eventvision/checkpoints/stereo_refine.pt > "$start" 2>/dev/null \
    || { rm -f "$start"; echo "$start: missing and no git history to make it from; the fine-tunes will stop" >> "$out/env.txt"; }
pids=()
for cfg in stereo_refine_gpu_leaves stereo_refine_gpu_leaves_seed3; do
    timeout $(( $(left) - 20 )) $py -m eventvision train stereo --config "configs/$cfg.yaml" > "$out/$cfg.txt" 2>&1 &
    pids+=($!)
done
timeout 200 $py -m pytest -q -p no:cacheprovider --durations=0 tests/engine/test_cuda.py > "$out/test_cuda.txt" 2>&1
wait "${pids[@]}"
for cfg in stereo_refine_gpu_leaves stereo_refine_gpu_leaves_seed3; do
    cp "runs/$cfg/last.pt" "$out/$cfg.pt" 2>/dev/null
done
if [ "$(left)" -gt 30 ]; then
    # a package the machine lacks (hdf5plugin, tonic) fails its own tests, not the whole collection
    timeout $(( $(left) - 10 )) $py -m pytest -q -p no:cacheprovider -n 12 --timeout 120 \
        --continue-on-collection-errors -rfE tests > "$out/suite.txt" 2>&1
fi
echo "done with $(left) s to spare" >> "$out/env.txt"
