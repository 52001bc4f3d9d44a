"""SeqToANN / MultiStepToANN: folding T into the batch equals applying the ANN step by step."""

import pytest
import torch
from torch import nn

from eventvision.spiking.adapters import MeanOverTime, MultiStepToANN, SeqToANN, ann_to_seq, seq_to_ann


def test_seq_to_ann_equals_per_step_application():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU())
    x = torch.randn(5, 4, 2, 6, 7)
    y = SeqToANN(conv)(x)
    assert y.shape == (5, 4, 3, 6, 7)
    assert torch.allclose(y, torch.stack([conv(x[t]) for t in range(5)]), atol=1e-6)
    assert torch.equal(ann_to_seq(seq_to_ann(x), 5), x)
    with pytest.raises(ValueError, match="multiple of T"):
        ann_to_seq(torch.zeros(7, 2), 5)


def test_multistep_readouts():
    x = torch.arange(24.0).view(3, 2, 4)
    assert torch.equal(MeanOverTime()(x), x.mean(0))
    assert torch.equal(MultiStepToANN(reduce="sum")(x), x.sum(0))
    assert torch.equal(MultiStepToANN(reduce="last")(x), x[2])
    lin = nn.Linear(4, 1)
    assert torch.equal(MultiStepToANN(lin)(x), lin(x.mean(0)))
    with pytest.raises(ValueError):
        MultiStepToANN(reduce="max")


def test_step_batch_norm_keeps_statistics_per_time_step():
    from eventvision.spiking.adapters import StepBatchNorm

    torch.manual_seed(0)
    T, N, C = 3, 4, 2
    x = torch.randn(T, N, C, 5, 6) * torch.arange(1, T + 1).view(T, 1, 1, 1, 1)  # step t has std t+1
    bn = StepBatchNorm(C, T)
    assert bn.weight.shape == (T * C,)
    y = bn(x)
    ref = torch.nn.BatchNorm2d(T * C)(x.transpose(0, 1).reshape(N, T * C, 5, 6))
    ref = ref.view(N, T, C, 5, 6).transpose(0, 1)
    torch.testing.assert_close(y, ref)
    std = y.permute(2, 0, 1, 3, 4).reshape(C, T, -1).std(dim=-1, unbiased=False)  # every (c, t) normalised
    torch.testing.assert_close(std, torch.ones(C, T), atol=1e-3, rtol=0)
    # one momentum-0.1 update from 1: 0.9 + 0.1 * (sample variance of step t, about (t+1)^2)
    torch.testing.assert_close(bn.running_var.view(T, C).mean(1), torch.tensor([1.0, 4.0, 9.0]) * 0.1 + 0.9,
                               atol=0, rtol=0.1)
    tokens = torch.randn(T, N, 7, C)  # channels_last: [T, N, L, C]
    y_tok = StepBatchNorm(C, T, channels_last=True)(tokens)
    torch.testing.assert_close(y_tok, StepBatchNorm(C, T)(tokens.transpose(-2, -1)).transpose(-2, -1))
    with pytest.raises(ValueError, match="T=3"):
        bn(torch.randn(2, N, C, 5, 6))
