"""Spiking transformer building blocks (multi-step, ``[T, N, C, H, W]`` maps or ``[T, N, L, D]`` tokens).

Published structures, scaled by arguments:

* :class:`SPS` -- Spikformer spiking patch splitting: ``num_stages`` x (Conv3x3-BN-SN[-MaxPool])
  then the relative position embedding ``x + SN(BN(Conv3x3(x)))``; ``[T, N, C, H, W] ->
  [T, N, D, H/2^p, W/2^p]`` (``tokens=True``: ``[T, N, L, D]``).
* :class:`SSA` -- Spikformer spiking self-attention: ``Q, K, V = SN(BN(Linear(x)))``,
  ``out = SN_0.5(Q K^T V * scale)`` (no softmax), then ``SN(BN(Linear(out)))``.
* :class:`SDSA` -- Spike-driven Transformer attention with membrane shortcut: the block input is
  a membrane-like real tensor; ``s = SN(x)``, ``Q, K, V = SN(BN(Linear(s)))``,
  ``out = Q * SN_0.5(sum_tokens K * V)`` per head, then ``BN(Linear(out))`` (no SN: the next
  block's first SN fires on the residual sum).
* :class:`QKTokenAttention` -- QKFormer token Q-K attention: ``Q, K = SN(BN(Linear(x)))``,
  ``A = SN_0.5(sum_channels-in-head Q)`` ``[.., L, 1]``, ``out = A * K``, then ``SN(BN(Linear(out)))``.
* :class:`CMLDownsample` -- Conv-BN-MaxPool-SN (pool before the neuron: precise gradients).
* :class:`SpikingMLP` -- ``SN(BN(Linear(x)))`` x2 (Spikformer, ``shortcut="spike"``) or
  ``BN(Linear(SN(BN(Linear(SN(x))))))`` (``shortcut="membrane"``, Spike-driven).
* :class:`SpikformerBlock`, :class:`SpikeDrivenBlock`, :class:`QKFormerBlock` -- residual blocks.
* :class:`SpikeMatMul` -- ``a @ b`` that the energy profiler counts (AC if an operand is spikes).

Every attention block accepts ``[T, N, L, D]`` or ``[T, N, D, H, W]`` (then flattened to
``L = H W`` tokens and returned in the same form). Neurons come from ``make_neuron(neuron,
**neuron_kw)`` (default LIF, tau = 2, hard reset, as in the papers); the attention-internal
neurons use threshold 0.5 as in the official code. Every neuron defaults to ``detach_reset=True``
(the reset term carries no gradient), as every ``MultiStepLIFNode`` of the reference codes:
Spikformer ``ZK-Zhou/spikformer cifar10/model.py`` (SSA, MLP, SPS), Spike-driven Transformer
``BICLab/Spike-Driven-Transformer module/ms_conv.py`` (SDSA, MLP), QKFormer
``zhouchenlin2096/QKFormer cifar10-dvs/model.py`` (token attention, MLP, patch stages) and CML
``zhouchenlin2096/Spikingformer-CML cifar10-dvs/model.py`` (Conv-BN-MaxPool-LIF stages);
``neuron_kw={"detach_reset": False}`` restores the full reset gradient.

The attention products live in small modules (:class:`SSAProduct`, :class:`SDSAProduct`,
:class:`QKTAProduct`, :class:`SpikeMatMul`) with an ``energy_ops(inputs, output)`` method that
``eventvision.spiking.energy`` calls from its forward hook; see that module for what is counted.
"""

from __future__ import annotations

import torch
from torch import nn

from eventvision.spiking.adapters import SeqToANN
from eventvision.spiking.neurons import make_neuron


def _neuron(neuron: str, neuron_kw: dict | None, **override) -> nn.Module:
    kw = {"detach_reset": True}  # every LIF of the four reference codes (module doc)
    kw.update(neuron_kw or {})
    kw.update(override)
    return make_neuron(neuron, **kw)


def _firing_rate(x: torch.Tensor) -> float:
    return float(x.detach().float().mean()) if x.numel() else 0.0


class LinearBN(nn.Module):
    """``BN(Linear(x))`` on tokens ``[..., D_in] -> [..., D_out]`` (BN over the feature axis)."""

    def __init__(self, d_in: int, d_out: int, bias: bool = False):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=bias)
        self.bn = nn.BatchNorm1d(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        return self.bn(y.reshape(-1, y.shape[-1])).view(y.shape)


def _to_tokens(x: torch.Tensor) -> tuple[torch.Tensor, tuple | None]:
    """``[T, N, D, H, W] -> [T, N, H*W, D]`` (tokens unchanged); returns the map shape to undo."""
    if x.dim() == 5:
        T, N, D, H, W = x.shape
        return x.flatten(3).transpose(2, 3), (H, W)
    if x.dim() != 4:
        raise ValueError(f"expected [T, N, L, D] tokens or [T, N, C, H, W] maps, got shape {tuple(x.shape)}")
    return x, None


def _from_tokens(x: torch.Tensor, hw: tuple | None) -> torch.Tensor:
    if hw is None:
        return x
    T, N, L, D = x.shape
    return x.transpose(2, 3).reshape(T, N, D, *hw)


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[T, N, L, D] -> [T, N, heads, L, D/heads]``."""
    T, N, L, D = x.shape
    return x.view(T, N, L, num_heads, D // num_heads).transpose(2, 3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    T, N, Hh, L, dh = x.shape
    return x.transpose(2, 3).reshape(T, N, L, Hh * dh)


class SSAProduct(nn.Module):
    """``(Q K^T V) * scale`` on ``[T, N, heads, L, d_h]`` spikes, no softmax.

    Evaluated in the cheaper association: ``Q (K^T V)`` when ``L > d_h`` ("kv_first"), else
    ``(Q K^T) V`` ("qk_first"); both are exact for spike (0/1) inputs. ``energy_ops`` counts ACs
    for the order actually used (see ``eventvision.spiking.energy``).
    """

    def __init__(self, scale: float = 0.125):
        super().__init__()
        self.scale = float(scale)

    @staticmethod
    def order(L: int, d_h: int) -> str:
        return "kv_first" if L > d_h else "qk_first"

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        L, d_h = q.shape[-2], q.shape[-1]
        if self.order(L, d_h) == "kv_first":
            out = q @ (k.transpose(-2, -1) @ v)
        else:
            out = (q @ k.transpose(-2, -1)) @ v
        return out * self.scale

    def energy_ops(self, inputs, output) -> dict:
        q, k, v = inputs[:3]
        T, N, Hh, L, d_h = q.shape
        fq, fk, fv = _firing_rate(q), _firing_rate(k), _firing_rate(v)
        if self.order(L, d_h) == "kv_first":
            per = L * d_h * d_h * (min(fk, fv) + fq)
        else:
            per = L * L * d_h * (min(fq, fk) + fv)
        return {"macs": 0.0, "acs": T * N * Hh * per, "fr_in": (fq + fk + fv) / 3.0,
                "detail": f"{self.order(L, d_h)} frQ={fq:.3f} frK={fk:.3f} frV={fv:.3f}"}


class SDSAProduct(nn.Module):
    """``sum_tokens(K * V)`` per channel ``[T, N, heads, L, d_h] -> [T, N, heads, 1, d_h]``.

    The Hadamard products of spike tensors are masks (0 ops); the token sum costs one AC per
    nonzero addend: ``ACs = numel(K*V) * fr(K*V)``.
    """

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return (k * v).sum(dim=-2, keepdim=True)

    def energy_ops(self, inputs, output) -> dict:
        k, v = inputs[:2]
        kv = k * v
        fr = _firing_rate(kv)
        return {"macs": 0.0, "acs": kv.numel() * fr, "fr_in": (_firing_rate(k) + _firing_rate(v)) / 2.0,
                "detail": f"fr(K*V)={fr:.3f}"}


class QKTAProduct(nn.Module):
    """``sum_channels-in-head Q`` ``[T, N, heads, L, d_h] -> [T, N, heads, L, 1]`` (QKFormer token
    attention score before its neuron): one AC per nonzero Q element, ``ACs = numel(Q) * fr(Q)``."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return q.sum(dim=-1, keepdim=True)

    def energy_ops(self, inputs, output) -> dict:
        q = inputs[0]
        fr = _firing_rate(q)
        return {"macs": 0.0, "acs": q.numel() * fr, "fr_in": fr, "detail": f"frQ={fr:.3f}"}


class SpikeMatMul(nn.Module):
    """``a @ b`` with energy accounting, for attention written with plain matrix products
    (e.g. SVFormer's ``Q (K^T V)``). If ``a`` is binary, ``ACs = fr(a) * ops``; else if ``b`` is
    binary, ``ACs = fr(b) * ops``; else ``MACs = ops``, with ``ops = numel(a @ b) * a.shape[-1]``.
    """

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b

    def energy_ops(self, inputs, output) -> dict:
        from eventvision.spiking.energy import is_binary

        a, b = inputs[:2]
        ops = float(output.numel()) * a.shape[-1]
        for x in (a, b):
            if is_binary(x):
                fr = _firing_rate(x)
                return {"macs": 0.0, "acs": fr * ops, "fr_in": fr, "detail": "spike operand"}
        return {"macs": ops, "acs": 0.0, "fr_in": None, "detail": "dense"}


class SSA(nn.Module):
    """Spikformer spiking self-attention on ``[T, N, L, D]`` (or maps ``[T, N, D, H, W]``).

    ``out = SN(BN(Linear(SN_0.5(Q K^T V * scale))))`` with ``Q, K, V = SN(BN(Linear(x)))``.
    Output spikes of the input's shape.
    """

    def __init__(self, dim: int, num_heads: int = 8, scale: float = 0.125, neuron: str = "lif",
                 neuron_kw: dict | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q, self.k, self.v = LinearBN(dim, dim), LinearBN(dim, dim), LinearBN(dim, dim)
        self.q_sn, self.k_sn, self.v_sn = (_neuron(neuron, neuron_kw) for _ in range(3))
        self.product = SSAProduct(scale)
        self.attn_sn = _neuron(neuron, neuron_kw, v_threshold=0.5)
        self.proj = LinearBN(dim, dim, bias=True)
        self.proj_sn = _neuron(neuron, neuron_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, hw = _to_tokens(x)
        q = _heads(self.q_sn(self.q(x)), self.num_heads)
        k = _heads(self.k_sn(self.k(x)), self.num_heads)
        v = _heads(self.v_sn(self.v(x)), self.num_heads)
        out = self.attn_sn(_merge_heads(self.product(q, k, v)))
        return _from_tokens(self.proj_sn(self.proj(out)), hw)


class SDSA(nn.Module):
    """Spike-driven self-attention (Yao et al. 2023) with membrane shortcut.

    Input: membrane-like real tokens ``[T, N, L, D]`` (or maps). ``s = SN(x)``; ``Q, K, V =
    SN(BN(Linear(s)))``; ``out = Q * SN_0.5(sum_tokens K * V)`` per head; returns
    ``BN(Linear(out))`` (real-valued, to be added to ``x``).
    """

    def __init__(self, dim: int, num_heads: int = 8, neuron: str = "lif", neuron_kw: dict | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.in_sn = _neuron(neuron, neuron_kw)
        self.q, self.k, self.v = LinearBN(dim, dim), LinearBN(dim, dim), LinearBN(dim, dim)
        self.q_sn, self.k_sn, self.v_sn = (_neuron(neuron, neuron_kw) for _ in range(3))
        self.product = SDSAProduct()
        self.kv_sn = _neuron(neuron, neuron_kw, v_threshold=0.5)
        self.proj = LinearBN(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, hw = _to_tokens(x)
        s = self.in_sn(x)
        q = _heads(self.q_sn(self.q(s)), self.num_heads)
        k = _heads(self.k_sn(self.k(s)), self.num_heads)
        v = _heads(self.v_sn(self.v(s)), self.num_heads)
        kv = self.kv_sn(self.product(k, v))  # [T, N, heads, 1, d_h]
        out = _merge_heads(q * kv)
        return _from_tokens(self.proj(out), hw)


class QKTokenAttention(nn.Module):
    """QKFormer token Q-K attention on spikes ``[T, N, L, D]`` (or maps).

    ``Q, K = SN(BN(Linear(x)))``; ``A = SN_0.5(sum over each head's channels of Q)``
    ``[T, N, heads, L, 1]``; ``out = SN(BN(Linear(A * K)))`` (spikes).
    """

    def __init__(self, dim: int, num_heads: int = 8, neuron: str = "lif", neuron_kw: dict | None = None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q, self.k = LinearBN(dim, dim), LinearBN(dim, dim)
        self.q_sn, self.k_sn = _neuron(neuron, neuron_kw), _neuron(neuron, neuron_kw)
        self.product = QKTAProduct()
        self.attn_sn = _neuron(neuron, neuron_kw, v_threshold=0.5)
        self.proj = LinearBN(dim, dim, bias=True)
        self.proj_sn = _neuron(neuron, neuron_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, hw = _to_tokens(x)
        q = _heads(self.q_sn(self.q(x)), self.num_heads)
        k = _heads(self.k_sn(self.k(x)), self.num_heads)
        a = self.attn_sn(self.product(q))  # [T, N, heads, L, 1]
        out = _merge_heads(a * k)
        return _from_tokens(self.proj_sn(self.proj(out)), hw)


class SpikingMLP(nn.Module):
    """Spiking MLP on tokens (or maps).

    ``shortcut="spike"`` (Spikformer/QKFormer): ``SN(BN(Linear2(SN(BN(Linear1(x))))))``, spikes out.
    ``shortcut="membrane"`` (Spike-driven): ``BN(Linear2(SN(BN(Linear1(SN(x))))))``, real out.
    """

    def __init__(self, dim: int, hidden: int | None = None, shortcut: str = "spike", neuron: str = "lif",
                 neuron_kw: dict | None = None):
        super().__init__()
        if shortcut not in ("spike", "membrane"):
            raise ValueError(f"shortcut must be 'spike' or 'membrane', got {shortcut!r}")
        hidden = hidden or 4 * dim
        self.shortcut = shortcut
        self.in_sn = _neuron(neuron, neuron_kw) if shortcut == "membrane" else nn.Identity()
        self.fc1 = LinearBN(dim, hidden, bias=True)
        self.sn1 = _neuron(neuron, neuron_kw)
        self.fc2 = LinearBN(hidden, dim, bias=True)
        self.sn2 = _neuron(neuron, neuron_kw) if shortcut == "spike" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, hw = _to_tokens(x)
        y = self.sn2(self.fc2(self.sn1(self.fc1(self.in_sn(x)))))
        return _from_tokens(y, hw)


class _AttentionMLPBlock(nn.Module):
    """``x = x + Attention(x); x = x + MLP(x)``; subclasses choose the attention and the MLP shortcut."""

    attention: type[nn.Module]
    mlp_shortcut = "spike"

    def __init__(self, dim: int, num_heads: int = 8, mlp_ratio: float = 4.0, neuron: str = "lif",
                 neuron_kw: dict | None = None):
        super().__init__()
        self.attn = self.attention(dim, num_heads, neuron=neuron, neuron_kw=neuron_kw)
        self.mlp = SpikingMLP(dim, int(dim * mlp_ratio), self.mlp_shortcut, neuron, neuron_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SpikformerBlock(_AttentionMLPBlock):
    """``x = x + SSA(x); x = x + MLP(x)`` (Spikformer)."""

    attention = SSA


class SpikeDrivenBlock(_AttentionMLPBlock):
    """``x = x + SDSA(x); x = x + MLP(x)`` with membrane shortcuts (Spike-driven Transformer)."""

    attention = SDSA
    mlp_shortcut = "membrane"


class QKFormerBlock(_AttentionMLPBlock):
    """``x = x + QKTA(x); x = x + MLP(x)`` (QKFormer's token-attention block)."""

    attention = QKTokenAttention


class ConvBNSN(nn.Module):
    """``SN(BN(Conv2d(x)))`` on ``[T, N, C, H, W]``, with an optional MaxPool after the neuron
    (Spikformer SPS order) -- use :class:`CMLDownsample` for pool-before-neuron."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, pool: bool = False, neuron: str = "lif",
                 neuron_kw: dict | None = None):
        super().__init__()
        self.conv = SeqToANN(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out))
        self.sn = _neuron(neuron, neuron_kw)
        self.pool = SeqToANN(nn.MaxPool2d(3, 2, 1)) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.sn(self.conv(x)))


class CMLDownsample(nn.Module):
    """CML downsampling: ``SN(MaxPool(BN(Conv3x3(x))))``, ``[T, N, C, H, W] -> [T, N, C', H/2, W/2]``.

    Pooling before the neuron keeps the surrogate gradient at the pooled (max) location exact
    (Zhou et al. 2023, "Enhancing ... by Improved Downsampling with Precise Gradient Backpropagation").
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, neuron: str = "lif", neuron_kw: dict | None = None):
        super().__init__()
        self.body = SeqToANN(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                             nn.MaxPool2d(3, 2, 1))
        self.sn = _neuron(neuron, neuron_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sn(self.body(x))


class SPS(nn.Module):
    """Spikformer spiking patch splitting.

    ``num_stages`` Conv3x3-BN-SN stages with channels ``D/2^(num_stages-1) ... D/2, D``; the last
    ``num_pools`` stages end in MaxPool(3, 2, 1) (Spikformer: 2 for 32x32 CIFAR, 4 for 128x128
    DVS); then ``x + SN(BN(Conv3x3(x)))`` (relative position embedding, values in {0, 1, 2}).
    ``[T, N, C, H, W] -> [T, N, D, H/2^p, W/2^p]``, or ``[T, N, L, D]`` with ``tokens=True``.
    """

    def __init__(self, in_channels: int = 2, embed_dim: int = 256, num_stages: int = 4, num_pools: int = 2,
                 tokens: bool = False, neuron: str = "lif", neuron_kw: dict | None = None):
        super().__init__()
        if not 1 <= num_pools <= num_stages:
            raise ValueError(f"num_pools must be in [1, num_stages={num_stages}], got {num_pools}")
        chans = [max(embed_dim // 2 ** (num_stages - 1 - i), 1) for i in range(num_stages)]
        stages, c = [], in_channels
        for i, co in enumerate(chans):
            stages.append(ConvBNSN(c, co, pool=i >= num_stages - num_pools, neuron=neuron, neuron_kw=neuron_kw))
            c = co
        self.stages = nn.Sequential(*stages)
        self.rpe = ConvBNSN(embed_dim, embed_dim, neuron=neuron, neuron_kw=neuron_kw)
        self.tokens = tokens
        self.downsample = 2 ** num_pools

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)
        x = x + self.rpe(x)
        return _to_tokens(x)[0] if self.tokens else x
