"""Spiking neurons on SpikingJelly ``activation_based`` (multi-step, input ``[T, N, ...]``).

Every neuron here is a SpikingJelly ``MemoryModule``: state is declared with ``register_memory``
and ``functional.reset_net(model)`` restores it exactly (call it at sample / recording
boundaries). Default ``step_mode='m'``: input ``x_seq`` ``[T, N, ...]`` (the synaptic input,
e.g. ``BN(Conv(s))`` computed outside), output spikes of the same shape in {0, 1}.

Kinds (``make_neuron(kind, **kw)``):

* ``"spikedhs"`` -- :class:`SpikeDHSNeuron`: ``u <- u + x; s = H(u - 0.5); u <- 0.2 u (1 - s)``
  with the SpikeDHS tanh surrogate (width 3) or DGS.
* ``"lif"`` -- :class:`LIFNode`: ``h = v + (x - (v - v_reset)) / tau``, hard reset to 0.
* ``"plif"`` -- :class:`PLIFNode`: LIF with a learnable per-layer tau, ``1/tau = sigmoid(w)``.
* ``"psn"``, ``"masked_psn"``, ``"sliding_psn"`` -- the Parallel Spiking Neuron family
  (Fang et al. 2023): no reset, all T steps at once as one matrix product ``H = W X``,
  ``S = H(H - theta)``.

Time constants ("evolved", per neuron type; learnable per layer, one scalar per layer):

===========  ==========  =========================================  ======================
kind         init        parametrisation (what the optimiser sees)  learnable by default
===========  ==========  =========================================  ======================
lif          tau = 2     ``m = 1/tau`` directly, clamped to [1e-3, 1]  no (``learn_tau=True``)
plif         tau = 2     ``w``, ``1/tau = sigmoid(w)`` (PLIF paper)   yes
spikedhs     leak = 0.2  ``w``, ``leak = sigmoid(w)``                  no (``learn_tau=True``)
===========  ==========  =========================================  ======================

(``leak`` is the SpikeDHS factor multiplying ``u`` after a step; an LIF with hard reset to 0
and ``decay_input=False`` has ``leak = 1 - 1/tau``, so 0.2 corresponds to tau = 1.25.)
"""

from __future__ import annotations

import math

import torch
from spikingjelly.activation_based import base
from torch import nn

from eventvision.errors import ConfigError
from eventvision.spiking.surrogate import (  # noqa: F401 - re-exported API
    DGSSurrogate,
    SpikeDHSSurrogate,
    dgs_parameters,
    make_surrogate,
    recenter_surrogates,
    spikedhs_surrogate_grad,
)

NEURON_KINDS = ("lif", "plif", "spikedhs", "psn", "masked_psn", "sliding_psn")


class TimeConstant(nn.Module):
    """A per-layer scalar time constant with a chosen parametrisation.

    ``param``: ``"direct"`` (the parameter is ``1/tau``), ``"sigmoid"`` (``1/tau = sigmoid(w)``),
    ``"sigmoid_leak"`` (the parameter gives the multiplicative leak ``sigmoid(w)`` directly;
    ``init`` is then the leak, not tau). ``learnable=False`` keeps it as a buffer.
    """

    def __init__(self, init: float, param: str = "sigmoid", learnable: bool = True):
        super().__init__()
        if param == "direct":
            if init <= 1.0:
                raise ValueError(f"tau must be > 1, got {init}")
            raw = 1.0 / init
        elif param == "sigmoid":
            if init <= 1.0:
                raise ValueError(f"tau must be > 1, got {init}")
            raw = -math.log(init - 1.0)
        elif param == "sigmoid_leak":
            if not 0.0 < init < 1.0:
                raise ValueError(f"leak must be in (0, 1), got {init}")
            raw = math.log(init / (1.0 - init))
        else:
            raise ValueError(f"unknown time-constant parametrisation '{param}'")
        self.param = param
        self.learnable = bool(learnable)
        if learnable:
            self.raw = nn.Parameter(torch.tensor(float(raw)))
        else:  # fixed: keep the exact value, not a rounded parametrisation of it
            self.register_buffer("fixed", torch.tensor(init if param == "sigmoid_leak" else 1.0 / init))

    def value(self) -> torch.Tensor:
        """``1/tau`` (``direct``/``sigmoid``) or the leak (``sigmoid_leak``), a 0-d tensor."""
        if not self.learnable:
            return self.fixed
        if self.param == "direct":
            return self.raw.clamp(1e-3, 1.0)
        return torch.sigmoid(self.raw)

    @property
    def tau(self) -> float:
        """The current time constant in time steps (for ``sigmoid_leak``: ``1 / (1 - leak)``)."""
        v = float(self.value().detach())
        return 1.0 / (1.0 - v) if self.param == "sigmoid_leak" else 1.0 / v

    def extra_repr(self) -> str:
        return f"param={self.param}, tau={self.tau:.4f}, learnable={self.learnable}"



def surrogate_derivative(sg: nn.Module):
    """``x -> dS/dx`` of a surrogate module in closed form, or None when unknown (then the
    neuron falls back to autograd through its step function; DGS always does, its mixture
    weights need the autograd graph)."""
    from spikingjelly.activation_based import surrogate as sj_surrogate

    if isinstance(sg, SpikeDHSSurrogate):
        width = sg.width
        return lambda x: spikedhs_surrogate_grad(x, width)
    if not getattr(sg, "spiking", False):
        return None
    if type(sg) is sj_surrogate.Sigmoid:
        alpha = float(sg.alpha)

        def sigmoid_grad(x):
            sgx = torch.sigmoid(alpha * x)
            return alpha * sgx * (1.0 - sgx)
        return sigmoid_grad
    if type(sg) is sj_surrogate.ATan:
        alpha = float(sg.alpha)
        return lambda x: (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)
    return None


class _LIFSequence(torch.autograd.Function):
    """Whole-sequence LIF with a hand-written backward (saves only ``h`` [T, ...]).

    Forward per step: ``h = v + (x - (v - vr)) k`` (soft: ``h = v + (x - v) k``), ``s = H(h - th)``,
    ``v = h (1 - s) + vr s`` (soft: ``v = h - th s``); ``k = 1/tau``.
    """

    @staticmethod
    def forward(ctx, x_seq, v0, k, th, vr, soft, detach_reset, dsg):
        hs, ss = [], []
        v = v0
        for t in range(x_seq.shape[0]):
            h = v + (x_seq[t] - v) * k if soft else v + (x_seq[t] - (v - vr)) * k
            s = (h >= th).to(h.dtype)
            v = h - th * s if soft else h * (1.0 - s) + vr * s
            hs.append(h)
            ss.append(s)
        h_seq = torch.stack(hs)
        ctx.save_for_backward(h_seq, v0, k)
        ctx.cfg = (th, vr, soft, detach_reset, dsg)
        return torch.stack(ss), v

    @staticmethod
    def backward(ctx, gs_seq, gv_last):
        h_seq, v0, k = ctx.saved_tensors
        th, vr, soft, detach_reset, dsg = ctx.cfg
        gv = torch.zeros_like(h_seq[0]) if gv_last is None else gv_last
        gx = torch.empty_like(h_seq)
        gk = torch.zeros((), dtype=h_seq.dtype, device=h_seq.device) if ctx.needs_input_grad[2] else None
        for t in range(h_seq.shape[0] - 1, -1, -1):
            h = h_seq[t]
            s = (h >= th).to(h.dtype)
            d = dsg(h - th)
            if soft:
                dv_dh = 1.0 if detach_reset else 1.0 - th * d
            else:
                dv_dh = (1.0 - s) if detach_reset else (1.0 - s) + (vr - h) * d
            gh = (gs_seq[t] * d if gs_seq is not None else 0.0) + gv * dv_dh
            gx[t] = gh * k
            if gk is not None:
                if t > 0:
                    hp = h_seq[t - 1]
                    sp = (hp >= th).to(hp.dtype)
                    v_prev = hp - th * sp if soft else hp * (1.0 - sp) + vr * sp
                else:
                    v_prev = v0
                gk = gk + (gh * (h - v_prev)).sum() / k  # dh/dk = (h - v_prev) / k
            gv = gh * (1.0 - k)
        gv0 = gv if ctx.needs_input_grad[1] else None
        return gx, gv0, gk, None, None, None, None, None


class _SpikeDHSSequence(torch.autograd.Function):
    """Whole-sequence SpikeDHS neuron: ``u = v + x; s = [u > th]; v = leak u (1 - s)``."""

    @staticmethod
    def forward(ctx, x_seq, v0, leak, th, dsg):
        us, ss = [], []
        v = v0
        for t in range(x_seq.shape[0]):
            u = v + x_seq[t]
            s = (u > th).to(u.dtype)
            v = leak * u * (1.0 - s)
            us.append(u)
            ss.append(s)
        ctx.save_for_backward(torch.stack(us), leak)
        ctx.cfg = (th, dsg)
        return torch.stack(ss), v

    @staticmethod
    def backward(ctx, gs_seq, gv_last):
        u_seq, leak = ctx.saved_tensors
        th, dsg = ctx.cfg
        gv = torch.zeros_like(u_seq[0]) if gv_last is None else gv_last
        gx = torch.empty_like(u_seq)
        gleak = torch.zeros((), dtype=u_seq.dtype, device=u_seq.device) if ctx.needs_input_grad[2] else None
        for t in range(u_seq.shape[0] - 1, -1, -1):
            u = u_seq[t]
            s = (u > th).to(u.dtype)
            d = dsg(u - th)
            if gleak is not None:
                gleak = gleak + (gv * u * (1.0 - s)).sum()
            gu = (gs_seq[t] * d if gs_seq is not None else 0.0) + gv * leak * ((1.0 - s) - u * d)
            gx[t] = gu
            gv = gu
        gv0 = gv if ctx.needs_input_grad[1] else None
        return gx, gv0, gleak, None, None


def _state_like(v, x: torch.Tensor) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v
    return torch.full_like(x, float(v))


class _StatefulNeuron(base.MemoryModule):
    """Shared machinery: membrane ``v`` declared with register_memory (reset value 0.0)."""

    def __init__(self, surrogate: nn.Module, step_mode: str = "m"):
        super().__init__()
        self.register_memory("v", 0.0)
        self.surrogate_function = surrogate
        self.step_mode = step_mode

    def _constants(self) -> tuple:
        return ()

    def _step(self, x: torch.Tensor, v, consts: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def single_step_functional_forward(self, inputs, states, **kwargs):
        spike, v = self._step(inputs[0], states[0], self._constants())
        return (spike,), (v,)

    #: use the whole-sequence autograd Function when the surrogate has a closed-form derivative
    fused = True

    def _fused_sequence(self, x_seq: torch.Tensor, v: torch.Tensor, consts: tuple, dsg):
        return None

    def multi_step_functional_forward(self, inputs, states, **kwargs):
        x_seq = inputs[0]
        consts = self._constants()
        v = states[0]
        dsg = surrogate_derivative(self.surrogate_function) if self.fused else None
        if dsg is not None and x_seq.is_floating_point():
            spikes, v = self._fused_sequence(x_seq, _state_like(v, x_seq[0]), consts, dsg)
            return (spikes,), (v,)
        spikes = []
        for t in range(x_seq.shape[0]):
            s, v = self._step(x_seq[t], v, consts)
            spikes.append(s)
        return (torch.stack(spikes),), (v,)


class SpikeDHSNeuron(_StatefulNeuron):
    """SpikeDHS neuron: ``u <- u + x; s = [u > threshold]; u <- leak * u * (1 - s)``.

    ``x`` is the already-computed synaptic input (``BN(Conv(...))``). Defaults: threshold 0.5,
    leak 0.2, SpikeDHS surrogate of width 3. ``learn_tau=True`` learns the leak per layer
    (``leak = sigmoid(w)``, the journal version's evolved time constant). ``surrogate`` may be a
    name ("spikedhs", "dgs", "atan", "sigmoid") or a module; ``surrogate_width`` its width.
    """

    def __init__(self, threshold: float = 0.5, leak: float = 0.2, learn_tau: bool = False,
                 surrogate: str | nn.Module = "spikedhs", surrogate_width: float | None = 3.0,
                 step_mode: str = "m"):
        super().__init__(make_surrogate(surrogate, surrogate_width), step_mode)
        self.threshold = float(threshold)
        self.leak = TimeConstant(leak, "sigmoid_leak", learnable=learn_tau)

    def _constants(self):
        return (self.leak.value(),)

    def _step(self, x, v, consts):
        (leak,) = consts
        u = v + x
        s = self.surrogate_function(u - self.threshold)
        return s, leak * u * (1.0 - s)

    def _fused_sequence(self, x_seq, v, consts, dsg):
        return _SpikeDHSSequence.apply(x_seq, v, consts[0].to(x_seq.dtype), self.threshold, dsg)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, step_mode={self.step_mode}"


class LIFNode(_StatefulNeuron):
    """Leaky integrate-and-fire, SpikingJelly's charge equation with ``decay_input=True``::

        h = v + (x - (v - v_reset)) / tau;  s = H(h - v_threshold)
        v = h (1 - s) + v_reset s   (hard reset)  or  v = h - v_threshold s   (v_reset=None)

    ``learn_tau=True`` learns ``1/tau`` directly (per layer). Default surrogate: ATan(alpha=2),
    SpikingJelly's default for LIF nets.
    """

    tau_param = "direct"

    def __init__(self, tau: float = 2.0, learn_tau: bool = False, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0, detach_reset: bool = False,
                 surrogate: str | nn.Module = "atan", surrogate_width: float | None = None,
                 step_mode: str = "m"):
        super().__init__(make_surrogate(surrogate, surrogate_width), step_mode)
        if v_reset is not None:
            self.set_reset_value("v", float(v_reset))
            self.v = float(v_reset)
        self.time_constant = TimeConstant(tau, self.tau_param, learnable=learn_tau)
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.detach_reset = bool(detach_reset)

    @property
    def tau(self) -> float:
        return self.time_constant.tau

    def _constants(self):
        return (self.time_constant.value(),)

    def _step(self, x, v, consts):
        (inv_tau,) = consts
        if self.v_reset is None:
            h = v + (x - v) * inv_tau
        else:
            h = v + (x - (v - self.v_reset)) * inv_tau
        s = self.surrogate_function(h - self.v_threshold)
        sr = s.detach() if self.detach_reset else s
        if self.v_reset is None:
            return s, h - self.v_threshold * sr
        return s, h * (1.0 - sr) + self.v_reset * sr

    def _fused_sequence(self, x_seq, v, consts, dsg):
        soft = self.v_reset is None
        return _LIFSequence.apply(x_seq, v, consts[0].to(x_seq.dtype), self.v_threshold,
                                  0.0 if soft else self.v_reset, soft, self.detach_reset, dsg)

    def extra_repr(self) -> str:
        return (f"tau={self.tau:.4f}, v_threshold={self.v_threshold}, v_reset={self.v_reset}, "
                f"step_mode={self.step_mode}")


class PLIFNode(LIFNode):
    """Parametric LIF (Fang et al. 2021): LIF whose ``1/tau = sigmoid(w)`` is learned per layer."""

    tau_param = "sigmoid"

    def __init__(self, tau: float = 2.0, learn_tau: bool = True, **kw):
        super().__init__(tau=tau, learn_tau=learn_tau, **kw)


class _ParallelNeuron(base.MemoryModule):
    """Base of the PSN family: stateless across calls (nothing to reset), multi-step only."""

    def __init__(self, surrogate: nn.Module):
        super().__init__()
        self.surrogate_function = surrogate
        self.step_mode = "m"

    def supported_step_mode(self):
        return ("m",)

    def weight_matrix(self, T: int) -> torch.Tensor:
        """The ``[T, T]`` matrix W of ``H = W X``."""
        raise NotImplementedError

    def threshold_vector(self, T: int) -> torch.Tensor:
        """``[T, 1]`` bias added to ``W X`` (``-theta``; the spike is ``H(W X + bias)``)."""
        raise NotImplementedError

    def multi_step_functional_forward(self, inputs, states, **kwargs):
        x_seq = inputs[0]
        T = x_seq.shape[0]
        h = torch.addmm(self.threshold_vector(T).to(x_seq.dtype), self.weight_matrix(T).to(x_seq.dtype),
                        x_seq.reshape(T, -1))
        return (self.surrogate_function(h).view(x_seq.shape),), states


class PSN(_ParallelNeuron):
    """Parallel Spiking Neuron: ``H = W X`` (``W`` ``[T, T]`` learnable), ``S = H(H - B)``.

    ``W`` is initialised like a Linear layer (Kaiming-uniform, a = sqrt(5)), the bias (``-B``)
    to -1, following Fang et al. 2023. Input length must equal ``T``.
    """

    def __init__(self, T: int, surrogate: str | nn.Module = "atan", surrogate_width: float | None = None):
        super().__init__(make_surrogate(surrogate, surrogate_width))
        self.T = int(T)
        self.weight = nn.Parameter(torch.empty(self.T, self.T))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bias = nn.Parameter(torch.full((self.T, 1), -1.0))

    def _check_T(self, T: int) -> None:
        if T != self.T:
            raise ValueError(f"{type(self).__name__} was built for T={self.T} time steps, got T={T}")

    def weight_matrix(self, T: int) -> torch.Tensor:
        self._check_T(T)
        return self.weight

    def threshold_vector(self, T: int) -> torch.Tensor:
        return self.bias

    def extra_repr(self) -> str:
        return f"T={self.T}"


class MaskedPSN(PSN):
    """Masked PSN: ``H = (W * M_k(lambda)) X`` with ``M_k`` the lower-triangular band of order k
    (``M[i, j] = 1`` for ``0 <= i - j < k``) and ``M_k(lambda) = lambda M_k + (1 - lambda) J``.

    Train with ``lambda`` raised from ``lambda_init`` (default 0) to 1 (``set_psn_lambda``); at
    ``lambda = 1`` the neuron only sees the last k inputs.
    """

    def __init__(self, T: int, k: int = 2, lambda_init: float = 0.0, **kw):
        super().__init__(T, **kw)
        if not 1 <= k <= T:
            raise ValueError(f"MaskedPSN order k must be in [1, T={T}], got {k}")
        self.k = int(k)
        ones = torch.ones(self.T, self.T)
        self.register_buffer("mask", torch.tril(ones) * torch.triu(ones, -(self.k - 1)))
        self.register_buffer("lambda_", torch.tensor(float(lambda_init)))

    def set_lambda(self, value: float) -> None:
        self.lambda_.fill_(float(min(max(value, 0.0), 1.0)))

    def weight_matrix(self, T: int) -> torch.Tensor:
        self._check_T(T)
        return self.weight * (self.lambda_ * self.mask + (1.0 - self.lambda_))

    def extra_repr(self) -> str:
        return f"T={self.T}, k={self.k}, lambda={float(self.lambda_):.3f}"


class SlidingPSN(_ParallelNeuron):
    """Sliding PSN: ``H[t] = sum_{i=0}^{k-1} W_i X[t - k + 1 + i]``, ``S[t] = H(H[t] - B)``.

    ``W`` ``[k]`` and ``B`` are shared over time, so any T works; evaluated as one ``[T, T]``
    banded Toeplitz matrix product. ``exp_init``: ``W_i = 2^-(k-1-i)`` (the newest input weighs 1).
    """

    def __init__(self, k: int = 2, exp_init: bool = True, surrogate: str | nn.Module = "atan",
                 surrogate_width: float | None = None):
        super().__init__(make_surrogate(surrogate, surrogate_width))
        self.k = int(k)
        if exp_init:
            weight = torch.tensor([2.0 ** -(self.k - 1 - i) for i in range(self.k)])
        else:
            weight = torch.empty(1, self.k)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            weight = weight[0]
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.tensor(-1.0))

    def weight_matrix(self, T: int) -> torch.Tensor:
        idx = torch.arange(T, device=self.weight.device)
        lag = idx[:, None] - idx[None, :]  # t - j
        band = (lag >= 0) & (lag < self.k)
        gathered = self.weight[(self.k - 1 - lag).clamp(0, self.k - 1)]
        return gathered * band.to(self.weight.dtype)

    def threshold_vector(self, T: int) -> torch.Tensor:
        return self.bias.expand(T, 1)

    def extra_repr(self) -> str:
        return f"k={self.k}"


def set_psn_lambda(model: nn.Module, value: float) -> None:
    """Set the mask mixing ``lambda`` of every :class:`MaskedPSN` in ``model`` (0 -> 1 over training)."""
    for m in model.modules():
        if isinstance(m, MaskedPSN):
            m.set_lambda(value)


def make_neuron(kind: str, *, T: int | None = None, k: int | None = None, tau: float | None = None,
                learn_tau: bool | None = None, surrogate: str | nn.Module | None = None,
                surrogate_width: float | None = None, v_threshold: float | None = None,
                detach_reset: bool = False, step_mode: str = "m", lambda_init: float = 0.0) -> nn.Module:
    """Build a multi-step neuron by kind (see module doc) with the keyword arguments that apply.

    Keywords that do not apply to ``kind`` are ignored, so a model can pass one neuron config
    (``T`` for the PSN kinds, ``k`` for masked/sliding PSN, ``tau`` as tau for lif/plif and as the
    leak for spikedhs; ``learn_tau``; ``surrogate`` name or module plus ``surrogate_width``;
    ``v_threshold`` for lif/plif/spikedhs). Unknown kind -> ConfigError.
    """
    kind = str(kind).lower()
    sg = {} if surrogate is None else {"surrogate": surrogate}
    if surrogate is not None or surrogate_width is not None:
        sg["surrogate_width"] = surrogate_width
    if kind == "spikedhs":
        kw = dict(sg, step_mode=step_mode)
        if tau is not None:
            kw["leak"] = tau
        if learn_tau is not None:
            kw["learn_tau"] = learn_tau
        if v_threshold is not None:
            kw["threshold"] = v_threshold
        return SpikeDHSNeuron(**kw)
    if kind in ("lif", "plif"):
        kw = dict(sg, step_mode=step_mode, detach_reset=detach_reset)
        if tau is not None:
            kw["tau"] = tau
        if learn_tau is not None:
            kw["learn_tau"] = learn_tau
        if v_threshold is not None:
            kw["v_threshold"] = v_threshold
        return (LIFNode if kind == "lif" else PLIFNode)(**kw)
    if kind in ("psn", "masked_psn"):
        if T is None:
            raise ConfigError(f"neuron '{kind}' needs the number of time steps T (set model T / neuron T)")
        if kind == "psn":
            return PSN(T, **sg)
        return MaskedPSN(T, k=2 if k is None else k, lambda_init=lambda_init, **sg)
    if kind == "sliding_psn":
        return SlidingPSN(k=2 if k is None else k, **sg)
    raise ConfigError(f"unknown neuron kind '{kind}'; one of {', '.join(NEURON_KINDS)}")


def is_spiking_neuron(module: nn.Module) -> bool:
    """True for modules that emit spikes: ours and SpikingJelly's neuron nodes (not its
    ``NonSpiking*`` membrane readouts)."""
    from spikingjelly.activation_based.neuron import NonSpikingBaseNode

    if isinstance(module, (_StatefulNeuron, _ParallelNeuron)):
        return True
    if isinstance(module, NonSpikingBaseNode):
        return False
    return type(module).__module__.startswith("spikingjelly.activation_based.neuron")
