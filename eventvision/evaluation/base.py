"""The evaluator interface shared by every task (detectron2 style).

    evaluator.reset()
    for batch in loader:
        evaluator.process(batch, outputs)   # accumulate per-sample statistics, no big tensors kept
    metrics = evaluator.evaluate()          # -> flat dict {name: float}

Distributed runs: the trainer calls ``evaluator.state()`` on each rank, gathers them and hands the
list to ``evaluator.merge(states)`` on rank 0 before ``evaluate``. The default state is the
evaluator's ``__dict__``-free list of accumulated items; subclasses that accumulate sums override
``state``/``merge``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Evaluator:
    def reset(self) -> None:
        raise NotImplementedError

    def process(self, inputs: Any, outputs: Any) -> None:
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        raise NotImplementedError

    def state(self) -> Any:
        """Picklable accumulated state of this rank (for gathering across ranks)."""
        raise NotImplementedError(f"{type(self).__name__} does not support distributed evaluation")

    def save_pictures(self, out_dir: str | Path) -> list[Path]:
        """Draw what people would rather see than read (after ``evaluate``); returns the files written."""
        return []

    def merge(self, states: list[Any]) -> None:
        """Replace this evaluator's state with the union of ``states`` from all ranks."""
        raise NotImplementedError(f"{type(self).__name__} does not support distributed evaluation")
