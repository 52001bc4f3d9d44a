"""Spiking core: neurons (SpikeDHS, LIF/PLIF with learnable tau, PSN family), surrogate
gradients (SpikeDHS tanh, DGS search), SNN-ANN adapters, spiking transformer blocks and an
energy/operation profiler. All spiking tensors are multi-step ``[T, N, ...]``.

Submodules: ``neurons``, ``surrogate``, ``adapters``, ``blocks``, ``energy`` (import them
directly; this package imports nothing heavy on its own).
"""
