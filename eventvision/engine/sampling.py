"""Deterministic, resumable, rank-sharded batch samplers.

Training: every epoch draws one permutation of the dataset from ``(seed, epoch)`` (the same on every
rank), cuts it into GLOBAL batches of ``batch_size`` and gives rank ``r`` the members ``r::world_size``
of each global batch. The union over ranks of batch ``j`` is exactly batch ``j`` of a single process
with the same global batch size, so the DDP-averaged gradient of a mean-reduced loss equals the
single-process gradient. ``start_batch`` skips batches already trained before a mid-epoch
checkpoint (indices are skipped, no data is loaded), which is what makes ``--resume`` exact.

Validation: rank ``r`` takes samples ``r::world_size`` (no padding, no duplicates).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

from eventvision.errors import ConfigError


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


class GlobalBatchSampler(Sampler[list[int]]):
    """Yields this rank's share of each global batch; ``set_epoch(epoch, start_batch)`` before iterating."""

    def __init__(self, num_samples: int, *, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if batch_size < world_size or batch_size % world_size:
            raise ConfigError(f"train.batch_size={batch_size} is the global batch and must be a multiple of "
                              f"the {world_size} processes; set train.batch_size to a multiple of "
                              f"{world_size}")
        if num_samples <= 0:
            raise ConfigError("the training dataset is empty; check the dataset paths in the config")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def num_batches(self) -> int:
        """Global batches per epoch (a last batch smaller than the world size is always dropped)."""
        full, rest = divmod(self.num_samples, self.batch_size)
        return full + (1 if rest >= self.world_size and not self.drop_last else 0)

    def __len__(self) -> int:
        return max(0, self.num_batches() - self.start_batch)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.num_samples, generator=gen).tolist()
        else:
            order = list(range(self.num_samples))
        for j in range(self.start_batch, self.num_batches()):
            batch = order[j * self.batch_size:(j + 1) * self.batch_size]
            yield batch[self.rank::self.world_size]


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``world_size`` takes indices ``r, r + world_size, ...`` in order (evaluation)."""

    def __init__(self, num_samples: int, *, rank: int = 0, world_size: int = 1):
        self.num_samples, self.rank, self.world_size = num_samples, rank, world_size

    def __len__(self) -> int:
        return len(range(self.rank, self.num_samples, self.world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.num_samples, self.world_size))
