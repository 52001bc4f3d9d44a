"""Pure pieces of the engine: the sharded batch sampler, LR schedules, optimisers, RNG snapshots."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from eventvision.engine.optim import build_optimizer, build_scheduler, lr_factor
from eventvision.engine.rng import get_rng_state, seed_everything, set_rng_state
from eventvision.engine.sampling import GlobalBatchSampler, ShardSampler
from eventvision.errors import UserError


def test_rank_shards_of_a_global_batch_union_to_the_single_process_batch():
    single = GlobalBatchSampler(50, batch_size=8, seed=3)
    ranks = [GlobalBatchSampler(50, batch_size=8, seed=3, rank=r, world_size=2) for r in range(2)]
    for epoch in range(2):
        for s in (single, *ranks):
            s.set_epoch(epoch)
        whole = list(single)
        parts = [list(r) for r in ranks]
        assert len(whole) == len(parts[0]) == len(parts[1]) == 7  # 6 full + a last batch of 2
        for j, batch in enumerate(whole):
            assert sorted(parts[0][j] + parts[1][j]) == sorted(batch)
            assert len(parts[0][j]) == len(parts[1][j])
        assert sorted(i for b in whole for i in b) == list(range(50))  # every sample once per epoch
    single.set_epoch(0)
    first = list(single)
    single.set_epoch(1)
    assert list(single) != first  # reshuffled per epoch ...
    single.set_epoch(0)
    assert list(single) == first  # ... as a pure function of (seed, epoch)


def test_start_batch_skips_exactly_the_done_batches_and_last_batch_rules():
    s = GlobalBatchSampler(20, batch_size=4, seed=0)
    s.set_epoch(5)
    full = list(s)
    s.set_epoch(5, start_batch=3)
    assert list(s) == full[3:] and len(s) == 2
    assert GlobalBatchSampler(21, batch_size=4, drop_last=True).num_batches() == 5
    assert GlobalBatchSampler(21, batch_size=4).num_batches() == 6
    # a last global batch smaller than the world size would leave a rank empty: dropped
    assert GlobalBatchSampler(21, batch_size=4, world_size=2).num_batches() == 5
    assert list(GlobalBatchSampler(5, batch_size=4, shuffle=False)) == [[0, 1, 2, 3], [4]]
    with pytest.raises(UserError, match="multiple of the 3 processes"):
        GlobalBatchSampler(20, batch_size=4, world_size=3)
    with pytest.raises(UserError, match="dataset is empty"):
        GlobalBatchSampler(0, batch_size=4)
    assert list(ShardSampler(7, rank=1, world_size=3)) == [1, 4] and len(ShardSampler(7, rank=0, world_size=3)) == 3


def test_lr_factor_cosine_step_warmup():
    cos = dict(name="cosine", total_steps=100)
    assert lr_factor(0, **cos) == 1.0 and lr_factor(50, **cos) == pytest.approx(0.5)
    assert lr_factor(100, **cos) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(100, **cos, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert lr_factor(25, **cos) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    warm = dict(name="cosine", total_steps=110, warmup_steps=10, warmup_factor=0.0)
    assert [lr_factor(i, **warm) for i in (0, 5, 10)] == pytest.approx([0.0, 0.5, 1.0])
    assert lr_factor(60, **warm) == pytest.approx(0.5)
    step = dict(name="step", total_steps=100, step_size_steps=30, gamma=0.1)
    assert [lr_factor(i, **step) for i in (0, 29, 30, 65)] == pytest.approx([1, 1, 0.1, 0.01])
    assert lr_factor(99, name="none", total_steps=100) == 1.0


def test_scheduler_converts_epochs_to_steps_and_optimizers_from_config():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([w], {"name": "sgd", "lr": 0.5, "momentum": 0.9, "weight_decay": 0.0})
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    sched = build_scheduler(opt, {"name": "step", "step_size": 2, "gamma": 0.5}, steps_per_epoch=3, epochs=6)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5] * 6 + [0.25])
    adamw = build_optimizer([{"params": [w], "lr": 1.0}], {"name": "adamw", "lr": 0.1, "betas": [0.8, 0.9]})
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["lr"] == 1.0
    assert adamw.param_groups[0]["betas"] == (0.8, 0.9)
    with pytest.raises(UserError, match="no trainable parameters"):
        build_optimizer([], {"name": "adam"})
    with pytest.raises(UserError, match="scheduler.name 'poly'"):
        build_scheduler(opt, {"name": "poly"}, steps_per_epoch=1, epochs=1)


def test_rng_snapshot_restores_python_numpy_torch():
    seed_everything(11)
    state = get_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3), np.random.randn())
    random.random(), np.random.rand(), torch.rand(5)
    set_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(3), np.random.randn())
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2]) and first[3] == again[3]
    # the snapshot survives a weights_only torch.save/load round trip
    import io
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    set_rng_state(torch.load(buf, weights_only=True))
    assert random.random() == first[0]


def test_a_trainer_applies_train_threads(monkeypatch, tmp_path, toy_overrides):
    from eventvision.config import load_config
    from eventvision.engine import Trainer
    from eventvision.errors import ConfigError

    before = torch.get_num_threads()
    try:
        for asked, omp, want in ((1, None, 1), (0, None, 1), (0, "3", 3)):
            monkeypatch.setattr("eventvision.engine.trainer.free_cores", lambda: 1)   # a busy machine
            if omp:
                monkeypatch.setenv("OMP_NUM_THREADS", omp)
            else:
                monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
            torch.set_num_threads(3)
            cfg = load_config("toy/default", toy_overrides + [f"train.threads={asked}", f"output_dir={tmp_path}"])
            Trainer.from_config(cfg, "toy", verbose=False)
            assert torch.get_num_threads() == want, (asked, omp)
        with pytest.raises(ConfigError, match="threads"):
            load_config("toy/default", ["train.threads=-2"])
    finally:
        torch.set_num_threads(before)
