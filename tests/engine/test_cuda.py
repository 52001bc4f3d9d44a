"""The CUDA paths, on a machine with a GPU (skipped elsewhere; CI has none): every model answers on the GPU what it
answers on the CPU, training with fp16 autocast learns, a run resumes on the GPU, checkpoints move between devices,
``run stereo`` uses the GPU and writes the CPU's disparities, the synthetic prefill feeds a GPU run.

``EVENTVISION_TEST_GPU`` names the device compared with the CPU (default ``cuda``); ``cpu`` runs these tests without
a GPU to check the tests themselves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import eventvision
from eventvision.cli.main import main
from eventvision.config import load_config
from eventvision.engine import Trainer, evaluate
from eventvision.engine.checkpoint import load_checkpoint, load_model_from_checkpoint
from eventvision.tasks.stereo import StereoTask
from eventvision.tasks.toy import ToyTask

GPU = os.environ.get("EVENTVISION_TEST_GPU", "cuda")
CHECKPOINTS = Path(eventvision.__file__).parent / "checkpoints"

pytestmark = pytest.mark.skipif(GPU.startswith("cuda") and not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (set EVENTVISION_TEST_GPU=cpu to dry-run these tests)")


@pytest.fixture(autouse=True)
def full_fp32():
    """cuDNN's default TF32 convolutions keep 10 mantissa bits: comparing with the CPU needs full fp32."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _same_metrics(task, model, *, rel: float, abs_: float) -> dict:
    """``evaluate`` of ``model`` on the CPU and on the GPU -> the GPU's metrics, after checking they agree."""
    on_cpu = evaluate(task, model.to("cpu"), "val", "cpu", batch_size=2)
    on_gpu = evaluate(task, model.to(GPU), "val", GPU, batch_size=2)
    assert on_cpu.keys() == on_gpu.keys()
    for key, value in on_cpu.items():
        assert np.isfinite(on_gpu[key]), key
        assert on_gpu[key] == pytest.approx(value, rel=rel, abs=abs_), key
    return on_gpu


def test_shipped_stereo_model_gives_the_cpu_disparities():
    task, model, _ = load_model_from_checkpoint(
        CHECKPOINTS / "stereo_refine.pt", task_name="stereo",
        overrides=["data.synthetic.width=256", "data.synthetic.height=160", "data.synthetic.num_val=4",
                   "data.synthetic.family=all"])
    batch = task.collate([task.build_dataset("val")[i] for i in range(2)])
    with torch.no_grad():
        on_cpu = task.predict(model.to("cpu"), batch)
        on_gpu = task.predict(model.to(GPU), {k: v.to(GPU) if torch.is_tensor(v) else v for k, v in batch.items()})
    assert on_gpu.device.type == torch.device(GPU).type
    diff = (on_gpu.cpu() - on_cpu).abs()
    assert float(diff.max()) < 1e-2 and float(diff.mean()) < 1e-4                 # px
    _same_metrics(task, model, rel=1e-4, abs_=1e-4)


def test_spiking_stereo_network_gives_the_cpu_disparities():
    """SpikeDHS (spiking feature net, T = 2): a spike flips only where a membrane sits within rounding of the
    threshold, so nearly every pixel agrees exactly."""
    torch.manual_seed(0)
    cfg = load_config("stereo/small", ["data.synthetic.width=48", "data.synthetic.height=32",
                                       "data.synthetic.num_val=4", "model.max_disp=24", "data.max_disparity=23.0",
                                       "model.time_steps=2"])
    task = StereoTask(cfg)
    model = task.build_model().eval()
    batch = task.collate([task.build_dataset("val")[i] for i in range(2)])
    with torch.no_grad():
        task.reset(model)
        on_cpu = task.predict(model.to("cpu"), batch)
        task.reset(model)
        on_gpu = task.predict(model.to(GPU), {k: v.to(GPU) if torch.is_tensor(v) else v for k, v in batch.items()})
    close = (on_gpu.cpu() - on_cpu).abs() < 1e-3
    assert float(close.float().mean()) > 0.99


def test_shipped_gesture_model_and_an_action_model_classify_as_on_the_cpu():
    task, model, _ = load_model_from_checkpoint(CHECKPOINTS / "gesture_small.pt", task_name="gesture",
                                                overrides=["data.synthetic_val=11"])
    _same_metrics(task, model, rel=0, abs_=1.01 / 11)          # at most one of 11 clips decided otherwise
    from eventvision.tasks.action import ActionTask
    torch.manual_seed(0)
    task = ActionTask.from_config(load_config("action/small", [
        "data.synthetic_videos=2", "data.synthetic_frames=40", "data.num_frames=4", "data.image_size=32"]))
    _same_metrics(task, task.build_model().eval(), rel=0, abs_=0.51)   # two videos: at most one otherwise


def test_shipped_detector_finds_the_cpu_boxes(tmp_path):
    task, model, _ = load_model_from_checkpoint(
        CHECKPOINTS / "detect3d_small.pt", task_name="detect3d",
        overrides=[f"data.synthetic_root={tmp_path / 'data'}", "data.synthetic_train_seqs=1",
                   "data.synthetic_val_seqs=1", "data.synthetic_frames=6"])
    _same_metrics(task, model, rel=2e-2, abs_=0.5)          # AP in %: a box at the edge of a threshold may move


def test_toy_trains_on_the_gpu_with_fp16_autocast_and_its_checkpoint_loads_on_the_cpu(toy_config, tmp_path):
    cfg = toy_config(f"device={GPU}", "train.amp=auto", "train.epochs=4")
    trainer = Trainer(ToyTask.from_config(cfg), cfg, verbose=False)
    assert next(trainer.model.parameters()).device.type == torch.device(GPU).type
    on_cuda = torch.device(GPU).type == "cuda"
    assert trainer.amp_dtype is (torch.float16 if on_cuda else None) and trainer.scaler.is_enabled() == on_cuda
    metrics = trainer.fit()
    assert metrics["val/accuracy"] > 0.8
    task, model, _ = load_model_from_checkpoint(tmp_path / "run" / "last.pt", device="cpu")
    assert next(model.parameters()).device.type == "cpu"
    on_cpu = evaluate(task, model, "val", "cpu", batch_size=64)["accuracy"]
    assert on_cpu == pytest.approx(metrics["val/accuracy"], abs=3 / 256)     # fp16 on the GPU, fp32 here


def test_spiking_toy_trains_on_the_gpu(toy_config):
    cfg = toy_config(f"device={GPU}", "model.spiking=true", "train.epochs=3")
    trainer = Trainer(ToyTask.from_config(cfg), cfg, verbose=False)
    assert trainer.fit()["val/accuracy"] > 0.6
    assert torch.as_tensor(trainer.model.lif.v).device.type in ("cpu", torch.device(GPU).type)


def test_a_gpu_run_cut_mid_epoch_resumes_to_the_uninterrupted_weights(toy_config, tmp_path):
    """Dropout draws from the GPU's generator: its state travels in the checkpoint (with deterministic kernels, as
    the toy's are, the weights match)."""
    noisy = [f"device={GPU}", "train.amp=none", "train.epochs=3", "data.jitter=0.3", "model.dropout=0.2"]
    Trainer.from_config(toy_config(*noisy, output_dir=tmp_path / "full"), "toy", verbose=False).fit()
    cut = tmp_path / "cut"
    Trainer.from_config(toy_config(*noisy, "train.max_steps=13", output_dir=cut), "toy", verbose=False).fit()
    assert load_checkpoint(cut / "last.pt")["step"] == 13
    Trainer.from_config(toy_config(*noisy, output_dir=cut), "toy", resume=True, verbose=False).fit()
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(cut / "last.pt")
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (3, 24)
    assert all(torch.allclose(a["model"][k], b["model"][k], atol=1e-6) for k in a["model"])


def test_refine_stereo_trains_on_the_gpu_from_prefilled_scenes(tmp_path):
    cfg = load_config("stereo/refine", [
        "data.synthetic.width=96", "data.synthetic.height=64", "data.crop=[48, 64]", "data.synthetic.num_train=16",
        "data.synthetic.num_val=4", "data.synthetic.prefill_workers=2", f"device={GPU}", "train.epochs=2",
        "train.batch_size=4", "train.tensorboard=false", f"output_dir={tmp_path / 'run'}"])
    trainer = Trainer(StereoTask(cfg), cfg, verbose=False)
    metrics = trainer.fit()
    assert np.isfinite(metrics["val/epe"]) and metrics["epoch"] == 2


def test_run_stereo_on_the_gpu_writes_the_cpu_disparities(tmp_path):
    outs = {}
    for device in ("cpu", GPU):
        out = tmp_path / device.replace(":", "_")
        assert main(["run", "stereo", "--duration-s", "0.3", "--device", device, "--output", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["device"].split(":")[0] == torch.device(device).type
        if summary["device"].startswith("cuda"):        # automatic threads with a GPU: no worker threads, <= 2
            assert not summary["background"] and summary["threads"] <= 2
        with h5py.File(out / "disparity.h5", "r") as f:
            outs[device] = np.asarray(f["disparity"])
    a, b = outs["cpu"], outs[GPU]
    assert a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b))
    assert float(np.nanmean(np.abs(a - b))) < 1e-3                                  # px
