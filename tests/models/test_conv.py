import pytest
import torch
from torch import nn

from eventvision.models.conv import Conv3d


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv3d_equals_torch_conv3d_with_gradients(batch, stride):
    torch.manual_seed(0)
    ours = Conv3d(4, 6, 3, stride=stride, padding=1)
    ref = nn.Conv3d(4, 6, 3, stride=stride, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(batch, 4, 5, 9, 11, requires_grad=True)
    y_ours, y_ref = ours(x), ref(x)
    assert torch.allclose(y_ours, y_ref, atol=1e-5)
    (gx_ours,) = torch.autograd.grad(y_ours.square().sum(), x)
    (gx_ref,) = torch.autograd.grad(y_ref.square().sum(), x)
    assert torch.allclose(gx_ours, gx_ref, atol=1e-4)


def test_conv3d_single_sample_takes_onednn_on_cpu():
    conv = Conv3d(16, 16, 3, padding=1).eval()
    with torch.profiler.profile() as prof, torch.inference_mode():
        conv(torch.randn(1, 16, 4, 20, 20))
    kernels = {e.key for e in prof.key_averages()}
    assert "aten::mkldnn_convolution" in kernels and "aten::slow_conv3d_forward" not in kernels
