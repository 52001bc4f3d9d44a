import pytest
import torch
from torch import nn

from eventvision.models.conv import Conv3d, fuse_conv_bn


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


def test_fuse_conv_bn_keeps_outputs_and_removes_batchnorm():
    from eventvision.models.stereo.refine import SGBMRefineStereo

    torch.manual_seed(0)
    model = SGBMRefineStereo(max_disp=63, correlation=4)
    with torch.no_grad():                   # trained-looking statistics and a non-zero head
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
        model.head[-1].weight.normal_(std=0.1)
        model.match_proj[-1].weight.normal_(std=0.1)
    model.eval()
    norms = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    left = torch.randint(0, 255, (1, 3, 32, 48), dtype=torch.uint8)
    right = torch.randint(0, 255, (1, 3, 32, 48), dtype=torch.uint8)
    guide = torch.rand(1, 9, 32, 48) * 20
    with torch.no_grad():
        before = model(left, guide, right)
        assert fuse_conv_bn(model) is model
        after = model(left, guide, right)
    # only the head's input normalisation (no conv before it) stays
    assert [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)] == ["head.0"] != norms
    assert (before - guide[:, 0]).abs().max() > 0.5       # the network does change SGBM's answer here
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-4)


def test_fuse_conv_bn_refuses_a_model_in_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)))
