"""--resume continues bit for bit on the CPU: interrupted + resumed == uninterrupted (torch.equal)."""

from __future__ import annotations

import shutil

import pytest
import torch

from eventvision.config import load_config
from eventvision.engine import Trainer, load_checkpoint
from eventvision.engine.logger import read_metrics_csv
from eventvision.errors import UserError
from eventvision.tasks.toy import ToyTask

# dropout + train-time jitter draw from the global torch RNG, the shuffle from (seed, epoch):
# all of it has to be restored for the weights to match exactly
NOISY = ["train.epochs=3", "data.jitter=0.3", "model.dropout=0.2", "train.log_every=3"]


def weights(path):
    return load_checkpoint(path)["model"]


def assert_same_state(a_path, b_path):
    a, b = load_checkpoint(a_path), load_checkpoint(b_path)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for i, state in a["optimizer"]["state"].items():
        other = b["optimizer"]["state"][i]
        assert torch.equal(state["exp_avg"], other["exp_avg"]) and torch.equal(state["exp_avg_sq"], other["exp_avg_sq"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"])
    assert a["metrics"] == b["metrics"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, toy_overrides):
    """One uninterrupted run shared by the tests (read only: copy it before resuming into it)."""
    out = tmp_path_factory.mktemp("resume") / "full"
    cfg = load_config("toy/default", toy_overrides + NOISY + [f"output_dir={out}"])
    Trainer.from_config(cfg, "toy", verbose=False).fit()
    return out


def test_stop_mid_epoch_then_resume_matches_uninterrupted(toy_config, tmp_path, reference):
    out = tmp_path / "cut"
    first = Trainer.from_config(toy_config(*NOISY, "train.max_steps=13", output_dir=out), "toy", verbose=False).fit()
    assert first["step"] == 13 and first["epoch"] == 1
    ckpt = load_checkpoint(out / "last.pt")
    assert (ckpt["epoch"], ckpt["batch_in_epoch"], ckpt["step"]) == (1, 5, 13)
    assert not all(torch.equal(ckpt["model"][k], weights(reference / "last.pt")[k]) for k in ckpt["model"])

    Trainer.from_config(toy_config(*NOISY, output_dir=out), "toy", resume=True, verbose=False).fit()
    assert_same_state(reference / "last.pt", out / "last.pt")
    assert_same_state(reference / "best.pt", out / "best.pt")
    # the log continues where it stopped: same rows as the uninterrupted run
    full = [(r["step"], r["tag"], r["value"]) for r in read_metrics_csv(reference / "metrics.csv")
            if not r["tag"].startswith("time/")]
    cut = [(r["step"], r["tag"], r["value"]) for r in read_metrics_csv(out / "metrics.csv")
           if not r["tag"].startswith("time/")]
    assert cut == full


def test_crash_after_an_epoch_then_resume_matches_uninterrupted(toy_config, tmp_path, reference):
    """The run dies inside epoch 2's end-of-epoch hook (after last.pt of epoch 1, before that of epoch 2)."""

    class Crash(Exception):
        pass

    class CrashingToy(ToyTask):
        def on_epoch_end(self, model, epoch):
            if epoch == 1:
                raise Crash

    out = tmp_path / "crash"
    cfg = toy_config(*NOISY, output_dir=out)
    with pytest.raises(Crash):
        Trainer(CrashingToy.from_config(cfg), cfg, verbose=False).fit()
    assert load_checkpoint(out / "last.pt")["epoch"] == 1

    trainer = Trainer(ToyTask.from_config(cfg), cfg, resume=out / "last.pt", verbose=False)
    assert (trainer.epoch, trainer.step) == (1, 8)
    trainer.fit()
    assert_same_state(reference / "last.pt", out / "last.pt")


def test_resume_a_finished_run_is_a_no_op_and_can_extend(toy_config, tmp_path, reference):
    reference = shutil.copytree(reference, tmp_path / "copy")
    before = load_checkpoint(reference / "last.pt")
    metrics = Trainer.from_config(toy_config(*NOISY, output_dir=reference), "toy", resume=True, verbose=False).fit()
    assert metrics["epoch"] == 3 and metrics["step"] == before["step"]
    after = load_checkpoint(reference / "last.pt")
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    extended = Trainer.from_config(toy_config(*NOISY[1:], "train.epochs=4", output_dir=reference), "toy",
                                   resume=True, verbose=False).fit()
    assert extended["epoch"] == 4 and extended["step"] == 4 * 8


def test_resume_errors(toy_config, tmp_path, reference):
    with pytest.raises(UserError, match="nothing to resume"):
        Trainer.from_config(toy_config(output_dir=tmp_path / "empty"), "toy", resume=True, verbose=False)
    with pytest.raises(UserError, match=r"weights do not fit the model built from the config: 4 missing "
                                         r"\(e.g. fc1.weight\); 4 unexpected \(e.g. net.0.weight\)"):
        Trainer.from_config(toy_config(*NOISY, "model.spiking=true", output_dir=reference), "toy", resume=True,
                            verbose=False)
    with pytest.raises(UserError, match=r"weights do not fit.*size mismatch for net.0.weight"):
        Trainer.from_config(toy_config(*NOISY, "model.hidden=16", output_dir=reference), "toy", resume=True,
                            verbose=False)
    with pytest.raises(UserError, match="optimizer state does not fit"):
        Trainer.from_config(toy_config(*NOISY, "train.optimizer.name=sgd", output_dir=reference), "toy",
                            resume=True, verbose=False)


class Killed(Exception):
    pass


def kill_at(step: int):
    """A hook that stops the run right after optimizer step ``step`` like a kill would (no checkpoint)."""
    from eventvision.engine.hooks import HookBase

    class Kill(HookBase):
        def after_step(self):
            if self.trainer.step == step:
                raise Killed

    return Kill()


def rows_of(path):
    return [(r["step"], r["epoch"], r["tag"], r["value"]) for r in read_metrics_csv(path)
            if not r["tag"].startswith("time/")]


def test_repeated_kills_with_auto_resume_leave_the_log_of_an_uninterrupted_run(toy_config, tmp_path, reference):
    """Killed after steps 7, 10 (an epoch end: val logged, last.pt of epoch 1 written at step 8) and 20,
    each time after rows the last checkpoint (every 5 steps) had not seen; resumed each time."""
    out = tmp_path / "killed"
    cfg = toy_config(*NOISY, "train.checkpoint_every=5", output_dir=out)
    for i, step in enumerate((7, 10, 20)):
        with pytest.raises(Killed):
            Trainer(ToyTask.from_config(cfg), cfg, resume=i > 0 or None, hooks=[kill_at(step)], verbose=False).fit()
    Trainer(ToyTask.from_config(cfg), cfg, resume=True, verbose=False).fit()
    assert rows_of(out / "metrics.csv") == rows_of(reference / "metrics.csv")
    assert_same_state(reference / "last.pt", out / "last.pt")


def test_sigkill_then_resume_cuts_the_log_back_to_the_checkpoint(toy_config, toy_overrides, tmp_path, reference):
    import os
    import subprocess
    import sys
    import textwrap

    out = tmp_path / "sigkill"
    overrides = toy_overrides + NOISY + ["train.checkpoint_every=5", f"output_dir={out}"]
    script = textwrap.dedent(f"""
        import os, signal
        from eventvision.config import load_config
        from eventvision.engine import Trainer
        from eventvision.engine.hooks import HookBase

        class Kill(HookBase):
            def after_step(self):
                if self.trainer.step == 7:
                    os.kill(os.getpid(), signal.SIGKILL)

        Trainer.from_config(load_config("toy/default", {overrides!r}), "toy", hooks=[Kill()], verbose=False).fit()
    """)
    env = {**os.environ, "EVENTVISION_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert res.returncode == -9, res.stderr[-2000:]
    assert [r[0] for r in rows_of(out / "metrics.csv") if r[2] == "train/loss"] == [3, 6]
    assert load_checkpoint(out / "last.pt")["step"] == 5
    Trainer.from_config(load_config("toy/default", overrides), "toy", resume=True, verbose=False).fit()
    assert rows_of(out / "metrics.csv") == rows_of(reference / "metrics.csv")


def test_log_truncation_keeps_whole_rows(tmp_path):
    from eventvision.engine.logger import MetricLogger, truncate_rows

    logger = MetricLogger(tmp_path, tensorboard=False, append=False)
    for step in range(1, 5):
        logger.log({"loss": float(step)}, step=step, epoch=0, prefix="train/")
    logger.close()
    path = tmp_path / "metrics.csv"
    with open(path, "ab") as fh:
        fh.write(b"5,0,train/lo")  # a row cut by a kill
    assert truncate_rows(path, None) == 4
    assert truncate_rows(path, 10) == 4
    resumed = MetricLogger(tmp_path, tensorboard=False, append=True, keep_rows=2)
    assert resumed.rows == 2
    resumed.log({"loss": 9.0}, step=3, epoch=0, prefix="train/")
    resumed.close()
    assert [(r["step"], r["value"]) for r in read_metrics_csv(path)] == [(1, 1.0), (2, 2.0), (3, 9.0)]


def test_tensorboard_hides_the_events_a_killed_run_logged_after_its_checkpoint(toy_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb_kill"
    cfg = toy_config(*NOISY, "train.epochs=1", "train.checkpoint_every=5", "train.tensorboard=true",
                     output_dir=out)
    with pytest.raises(Killed):  # logged steps 3 and 6, checkpoint at 5
        Trainer(ToyTask.from_config(cfg), cfg, hooks=[kill_at(7)], verbose=False).fit()
    Trainer(ToyTask.from_config(cfg), cfg, resume=True, verbose=False).fit()
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [3, 6]  # 6 once, from the resumed run
    csv_rows = [r for r in read_metrics_csv(out / "metrics.csv") if r["tag"] == "train/loss"]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([r["value"] for r in csv_rows])


def test_init_weights_starts_from_a_checkpoint_with_a_fresh_schedule(toy_config, tmp_path, reference):
    """train.init_weights (fine-tuning): the model starts at the checkpoint's weights; step, epoch and the
    optimizer start fresh; a checkpoint that does not fit fails with one line."""
    out = tmp_path / "ft"
    trainer = Trainer.from_config(toy_config("train.epochs=1", f"train.init_weights={reference / 'best.pt'}",
                                             output_dir=out), "toy", verbose=False)
    start = trainer.model.state_dict()
    assert all(torch.equal(start[k], weights(reference / "best.pt")[k]) for k in start)
    assert (trainer.step, trainer.epoch) == (0, 0)
    fresh = Trainer.from_config(toy_config("train.epochs=1", output_dir=tmp_path / "fresh"), "toy", verbose=False)
    assert not all(torch.equal(start[k], fresh.model.state_dict()[k]) for k in start)
    trainer.fit()
    assert load_checkpoint(out / "last.pt")["step"] == len(trainer.loader)

    with pytest.raises(UserError, match="not found"):
        Trainer.from_config(toy_config(f"train.init_weights={tmp_path / 'missing.pt'}"), "toy", verbose=False)
