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
