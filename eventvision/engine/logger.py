"""Metric logging: ``metrics.csv`` (long format: step, epoch, tag, value) and TensorBoard.

Only the main process creates a :class:`MetricLogger`; every other rank gets a :class:`NullLogger`.
The CSV is appended line by line and flushed, so a killed run keeps what it logged; a resumed run
appends to the same file.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping

CSV_HEADER = ("step", "epoch", "tag", "value")


class NullLogger:
    def log(self, scalars: Mapping[str, float], *, step: int, epoch: int, prefix: str = "") -> None:
        pass

    def close(self) -> None:
        pass


class MetricLogger(NullLogger):
    def __init__(self, output_dir: str | Path, *, tensorboard: bool = True, append: bool = True):
        """``append=False`` starts a new ``metrics.csv`` (a fresh run); True continues it (a resumed run)."""
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.output_dir / "metrics.csv"
        new = not append or not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self._fh = open(self.csv_path, "w" if new else "a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(CSV_HEADER)
            self._fh.flush()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imported lazily: tensorboard is slow to import
            self._tb = SummaryWriter(log_dir=str(self.output_dir / "tb"))

    def log(self, scalars: Mapping[str, float], *, step: int, epoch: int, prefix: str = "") -> None:
        for name, value in scalars.items():
            value = float(value)
            tag = f"{prefix}{name}"
            self._csv.writerow((int(step), int(epoch), tag, repr(value) if math.isfinite(value) else str(value)))
            if self._tb is not None:
                self._tb.add_scalar(tag, value, global_step=int(step))
        self._fh.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Rows of a ``metrics.csv`` as dicts with typed values (for tests/plots)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{"step": int(r["step"]), "epoch": int(r["epoch"]), "tag": r["tag"], "value": float(r["value"])}
                for r in csv.DictReader(fh)]
