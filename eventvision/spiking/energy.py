"""Energy / operation profiler for (hybrid) spiking networks.

``profile_energy(model, inputs_or_callable, convention=...)`` runs one inference forward with
forward hooks and returns an :class:`EnergyReport` (per layer and total, per sample). Two counting
conventions, because published mJ figures use one or the other:

``convention="spikformer"`` (default) -- the estimate of the Spikformer, Spike-driven Transformer
and QKFormer papers: conv, linear and attention products; BN folded, neuron updates free.
``convention="syops"`` -- what iCGY96/syops-counter (``syops/ops.py``) counts, used e.g. by SVFormer
(its README credits syops-counter); see :func:`syops_layer_ops`.

What ``"spikformer"`` counts, exactly:

* ``nn.Conv1d/2d/3d`` (and SpikingJelly's multi-step subclasses):
  ``ops = out.numel() * (C_in / groups) * prod(kernel)`` (bias additions not counted).
  ``nn.ConvTranspose1d/2d/3d``: ``ops = in.numel() * (C_out / groups) * prod(kernel)``.
  ``nn.Linear``: ``ops = out.numel() * in_features``.
* **spike-fed or not** is decided per call by a binary-input detector: the layer's input tensor
  has only values in {0, 1}. Not spike-fed: ``MACs = ops``. Spike-fed: ``ACs = fr_in * ops`` with
  ``fr_in`` the fraction of ones in that input (the usual firing-rate scaling, Spikformer /
  Spike-driven Transformer energy estimates). Inputs such as a residual sum of spikes
  ({0, 1, 2}) or signed event frames ({-1, 0, 1}) are not binary and count as MACs.
* attention products: any module with an ``energy_ops(inputs, output) -> {"macs", "acs",
  "fr_in", "detail"}`` method (``eventvision.spiking.blocks``: ``SSAProduct``, ``SDSAProduct``,
  ``QKTAProduct``, ``SpikeMatMul``). For SSA (``Q K^T V``, no softmax, T steps, H heads, L tokens,
  head width d_h) the product is evaluated as ``Q (K^T V)`` when ``L > d_h`` and we count
  ``ACs = T H L d_h^2 (min(fr_K, fr_V) + fr_Q)``; otherwise ``(Q K^T) V`` and
  ``ACs = T H L^2 d_h (min(fr_Q, fr_K) + fr_V)``. DESIGN.md writes the first as
  ``T H N^2 d_h^2 (...)``; for ``K^T V`` first the count is linear in the number of tokens, as here.
  SDSA: Hadamard products of spike tensors are masks (0 ops); the token sum of ``K * V`` costs one
  AC per nonzero addend. QKFormer token attention: the channel sum of Q costs one AC per nonzero
  Q element, ``A * K`` is a mask.
* spiking neurons (ours, SpikingJelly's): output firing rate per layer (mean of the spike output
  over all steps and elements); membrane updates are not counted (convention of the papers).
* BatchNorm (foldable into the preceding conv), pooling, element-wise additions and any
  ``torch.matmul`` not wrapped in an ``energy_ops`` module are not counted.

What ``"syops"`` counts (syops-counter's per-layer rules; a layer call is spike-fed when its tested
tensor has at most two distinct values, all in [0, 1] -- syops-counter's ``spike_rate`` -- and then
counts ``ACs = rate * ops``, else ``MACs = ops``):

* Conv/ConvTranspose: ``N * prod(out spatial) * prod(kernel) * C_in * C_out / groups`` plus, with a
  bias, ``C_out * N * prod(out spatial)`` (the output positions also for transposed convs);
* Linear: ``in.numel() * out_features`` plus ``out_features`` once with a bias;
* BatchNorm/InstanceNorm/GroupNorm: ``in.numel()``, twice with an affine transform;
* pooling (max/avg/adaptive): ``in.numel()``; ReLU/PReLU/ELU/LeakyReLU/ReLU6/GELU and Upsample:
  ``out.numel()`` (the spike test looks at the first sample of the output, as there);
* spiking neurons: ``in.numel()`` ACs (one membrane update per neuron and step), whatever the input;
* attention products, element-wise additions and bare tensor functions: nothing (syops-counter only
  sees modules of its table). syops-counter matches the exact class, so SpikingJelly's ``layer.*``
  subclasses of the torch layers need its ``custom_modules_hooks``; here subclasses count too.

Energy ``E = e_mac * MACs + e_ac * ACs`` with ``e_mac = 4.6 pJ`` and ``e_ac = 0.9 pJ`` (32-bit
float, 45 nm, Horowitz 2014), configurable. Counts are per sample: totals over the forward call
divided by ``batch_size`` (the number of samples in the input you pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from eventvision.spiking.neurons import is_spiking_neuron

E_MAC_PJ = 4.6
E_AC_PJ = 0.9

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVT = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def is_binary(x: torch.Tensor) -> bool:
    """True if every value of ``x`` is 0 or 1 (the spike-fed detector); empty tensors are not."""
    if x.numel() == 0:
        return False
    if x.dtype == torch.bool:
        return True
    return bool(((x == 0) | (x == 1)).all())


def layer_ops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> float:
    """Multiply-accumulates of one call of a Conv/ConvTranspose/Linear layer (see module doc)."""
    if isinstance(module, _CONVT):
        return float(inp.numel()) * (module.out_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, _CONV):
        return float(out.numel()) * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return float(out.numel()) * module.in_features
    raise TypeError(f"no op count for {type(module).__name__}")


CONVENTIONS = ("spikformer", "syops")

_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d,
         nn.InstanceNorm3d, nn.GroupNorm)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
         nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.AdaptiveAvgPool1d,
         nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
_ACT = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.GELU, nn.Upsample)


def syops_spike_rate(x: torch.Tensor) -> tuple[bool, float]:
    """syops-counter's spike test: (True, mean) if ``x`` has at most two distinct values, all in
    [0, 1] (so an all-0.5 tensor passes), else (False, 1.0)."""
    if x.numel() and x.unique().numel() <= 2 and float(x.max()) <= 1 and float(x.min()) >= 0:
        return True, float(x.detach().float().mean())
    return False, 1.0


def syops_layer_ops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(ops, tensor whose spike test decides AC vs MAC) of one call, by syops-counter's rules."""
    if isinstance(module, _CONV + _CONVT):
        positions = out.shape[0] * math.prod(out.shape[2:])
        taps = math.prod(module.kernel_size) * module.in_channels * (module.out_channels // module.groups)
        ops = positions * taps
        bias = module.out_channels * positions if module.bias is not None else 0
        return float(ops + bias), inp
    if isinstance(module, nn.Linear):
        return float(inp.numel() * out.shape[-1] + (out.shape[-1] if module.bias is not None else 0)), inp
    if isinstance(module, _NORM):
        return float(inp.numel() * (2 if module.affine else 1)), inp
    if isinstance(module, _POOL):
        return float(inp.numel()), inp
    if isinstance(module, _ACT):
        return float(out.numel()), out[0]
    raise TypeError(f"no syops rule for {type(module).__name__}")


@dataclass(frozen=True)
class EnergyRow:
    """One profiled layer, counts per sample. ``op``: "MAC", "AC", "MAC+AC" (mixed calls),
    "attention" or "neuron". ``fr_in``: input firing rate of spike-fed calls; ``fr_out``: the
    output firing rate of a neuron layer."""

    name: str
    layer: str
    op: str
    macs: float
    acs: float
    fr_in: float | None
    fr_out: float | None
    calls: int
    detail: str = ""
    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ

    @property
    def energy_pj(self) -> float:
        return self.e_mac_pj * self.macs + self.e_ac_pj * self.acs


@dataclass(frozen=True)
class EnergyReport:
    """Per-layer rows and totals (per sample); ``energy_mj`` = total energy in millijoules."""

    rows: tuple[EnergyRow, ...]
    batch_size: int
    e_mac_pj: float = E_MAC_PJ
    e_ac_pj: float = E_AC_PJ
    convention: str = "spikformer"

    @property
    def total_macs(self) -> float:
        return sum(r.macs for r in self.rows)

    @property
    def total_acs(self) -> float:
        return sum(r.acs for r in self.rows)

    @property
    def energy_pj(self) -> float:
        return self.e_mac_pj * self.total_macs + self.e_ac_pj * self.total_acs

    @property
    def energy_mj(self) -> float:
        return self.energy_pj * 1e-9

    @property
    def firing_rates(self) -> dict[str, float]:
        """Output firing rate of every spiking layer, by module name."""
        return {r.name: r.fr_out for r in self.rows if r.op == "neuron"}

    def row(self, name: str) -> EnergyRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "convention": self.convention, "batch_size": self.batch_size,
            "e_mac_pj": self.e_mac_pj, "e_ac_pj": self.e_ac_pj,
            "total_macs": self.total_macs, "total_acs": self.total_acs, "energy_mj": self.energy_mj,
            "rows": [{"name": r.name, "layer": r.layer, "op": r.op, "macs": r.macs, "acs": r.acs,
                      "fr_in": r.fr_in, "fr_out": r.fr_out, "calls": r.calls, "energy_pj": r.energy_pj,
                      "detail": r.detail} for r in self.rows],
        }

    def table(self) -> str:
        """Human-readable per-layer table plus totals (counts per sample, energy in picojoules)."""
        head = f"{'layer':<40} {'type':<16} {'op':<9} {'fr_in':>6} {'fr_out':>6} {'MACs':>10} {'ACs':>10} {'pJ':>10}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            fin = "" if r.fr_in is None else f"{r.fr_in:.3f}"
            fout = "" if r.fr_out is None else f"{r.fr_out:.3f}"
            name = r.name if len(r.name) <= 40 else "..." + r.name[-37:]
            lines.append(f"{name:<40} {r.layer[:16]:<16} {r.op:<9} {fin:>6} {fout:>6} {_fmt(r.macs):>10} "
                         f"{_fmt(r.acs):>10} {_fmt(r.energy_pj):>10}")
        lines.append("-" * len(head))
        rates = [r.fr_out for r in self.rows if r.op == "neuron"]
        mean_rate = (f"; mean firing rate {sum(rates) / len(rates):.4f} over {len(rates)} spiking layers"
                     if rates else "")
        lines.append(f"total per sample: {_fmt(self.total_macs)} MACs, {_fmt(self.total_acs)} ACs{mean_rate}")
        lines.append(f"energy: {self.energy_mj:.6g} mJ per sample "
                     f"(E = {self.e_mac_pj} pJ/MAC + {self.e_ac_pj} pJ/AC, batch {self.batch_size}, "
                     f"{self.convention} convention)")
        return "\n".join(lines)


def _fmt(n: float) -> str:
    """Compact count: 0, 512, 12.3k, 4.56M, 7.89G."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}" if n != int(n) else f"{int(n)}"


@dataclass
class _Acc:
    layer: str
    kind: str  # "dense", "attention", "neuron"
    macs: float = 0.0
    acs: float = 0.0
    fr_in_num: float = 0.0  # sum over spike-fed calls of fr * ops (or elements)
    fr_in_den: float = 0.0
    fr_out_num: float = 0.0
    fr_out_den: float = 0.0
    calls: int = 0
    spike_calls: int = 0
    details: list = field(default_factory=list)

    def add_output_rate(self, out: torch.Tensor | None) -> None:
        if out is not None and out.numel():
            self.fr_out_num += float(out.detach().float().sum())
            self.fr_out_den += out.numel()

    def add_ops(self, ops: float, rate: float | None, numel: int) -> None:
        """``ops`` of one call: ACs scaled by the input ``rate`` if spike-fed (rate not None), else MACs."""
        if rate is None:
            self.macs += ops
            return
        self.acs += rate * ops
        self.fr_in_num += rate * numel
        self.fr_in_den += numel
        self.spike_calls += 1


def _first_tensor(x: Any) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for v in x:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _make_hook(acc: _Acc) -> Callable:
    def hook(module, inputs, output):
        acc.calls += 1
        if acc.kind == "attention":
            ops = module.energy_ops(inputs, output)
            acc.macs += float(ops.get("macs", 0.0))
            acc.acs += float(ops.get("acs", 0.0))
            if ops.get("fr_in") is not None:
                acc.fr_in_num += float(ops["fr_in"])
                acc.fr_in_den += 1.0
            if ops.get("detail"):
                acc.details.append(str(ops["detail"]))
            return
        out = _first_tensor(output)
        if acc.kind == "neuron":
            acc.add_output_rate(out)
            return
        inp = _first_tensor(inputs)
        fr = float(inp.detach().float().mean()) if is_binary(inp) else None
        acc.add_ops(layer_ops(module, inp, out), fr, inp.numel())
    return hook


def _make_syops_hook(acc: _Acc) -> Callable:
    def hook(module, inputs, output):
        acc.calls += 1
        inp, out = _first_tensor(inputs), _first_tensor(output)
        if acc.kind == "neuron":  # membrane updates: one AC per input element, whatever it holds
            acc.acs += float(inp.numel())
            acc.add_output_rate(out)
            return
        ops, tested = syops_layer_ops(module, inp, out)
        spike, rate = syops_spike_rate(tested)
        acc.add_ops(ops, rate if spike else None, tested.numel())
    return hook


def _kind_of(module: nn.Module, convention: str = "spikformer") -> str | None:
    if convention == "syops":
        if is_spiking_neuron(module):
            return "neuron"
        return "dense" if isinstance(module, _CONV + _CONVT + (nn.Linear,) + _NORM + _POOL + _ACT) else None
    if callable(getattr(module, "energy_ops", None)):
        return "attention"
    if isinstance(module, _CONV + _CONVT + (nn.Linear,)):
        return "dense"
    if is_spiking_neuron(module):
        return "neuron"
    return None


def _run(model: nn.Module, inputs_or_callable: Any) -> Any:
    if callable(inputs_or_callable) and not isinstance(inputs_or_callable, torch.Tensor):
        return inputs_or_callable(model)
    if isinstance(inputs_or_callable, dict):
        return model(**inputs_or_callable)
    if isinstance(inputs_or_callable, (tuple, list)):
        return model(*inputs_or_callable)
    return model(inputs_or_callable)


def profile_energy(model: nn.Module, inputs_or_callable: Any, *, batch_size: int = 1,
                   e_mac_pj: float = E_MAC_PJ, e_ac_pj: float = E_AC_PJ, reset: bool = True,
                   convention: str = "spikformer") -> EnergyReport:
    """Profile one inference forward of ``model``.

    ``inputs_or_callable``: a tensor (``model(x)``), a tuple/list (``model(*x)``), a dict
    (``model(**x)``) or a callable ``fn(model)`` that runs the forward (e.g.
    ``lambda m: task.predict(m, batch)``). ``batch_size``: the number of samples in that input;
    all counts are divided by it. The model runs in eval mode under ``no_grad``; spiking state is
    reset before and after (``reset=True``) and the train/eval flags are restored. ``convention``:
    ``"spikformer"`` or ``"syops"`` (module doc).
    """
    from spikingjelly.activation_based import functional

    from eventvision.errors import InvalidValueError

    if batch_size < 1:
        raise InvalidValueError(f"batch_size must be >= 1, got {batch_size}")
    if convention not in CONVENTIONS:
        raise InvalidValueError(f"energy convention '{convention}' is unknown; "
                                f"use one of {', '.join(CONVENTIONS)}")
    make_hook = _make_syops_hook if convention == "syops" else _make_hook
    accs: dict[str, _Acc] = {}
    handles = []
    for name, module in model.named_modules():
        kind = _kind_of(module, convention)
        if kind is None:
            continue
        acc = _Acc(layer=type(module).__name__, kind=kind)
        accs[name or type(module).__name__] = acc
        handles.append(module.register_forward_hook(make_hook(acc)))
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        if reset:
            functional.reset_net(model)
        with torch.no_grad():
            _run(model, inputs_or_callable)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
        if reset:
            functional.reset_net(model)

    rows = []
    for name, a in accs.items():
        if a.calls == 0:
            continue
        if a.kind == "neuron":
            op, fr_in = "neuron", None  # syops: its ACs are the membrane updates
            fr_out = a.fr_out_num / a.fr_out_den if a.fr_out_den else 0.0
        elif a.kind == "attention":
            op, fr_out = "attention", None
            fr_in = a.fr_in_num / a.fr_in_den if a.fr_in_den else None
        else:
            fr_out = None
            op = "AC" if a.spike_calls == a.calls else ("MAC" if a.spike_calls == 0 else "MAC+AC")
            fr_in = a.fr_in_num / a.fr_in_den if a.fr_in_den else None
        detail = a.details[-1] if a.details else ""
        rows.append(EnergyRow(name=name, layer=a.layer, op=op, macs=a.macs / batch_size, acs=a.acs / batch_size,
                              fr_in=fr_in, fr_out=fr_out, calls=a.calls, detail=detail,
                              e_mac_pj=e_mac_pj, e_ac_pj=e_ac_pj))
    return EnergyReport(rows=tuple(rows), batch_size=batch_size, e_mac_pj=e_mac_pj, e_ac_pj=e_ac_pj,
                        convention=convention)
