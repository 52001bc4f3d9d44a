"""Spiking video action recognition (SVFormer)."""

from eventvision.models.action.svformer import SVFormer

__all__ = ["SVFormer"]
