"""Metric logging: ``metrics.csv`` (long format: step, epoch, tag, value) and TensorBoard.

Only the main process creates a :class:`MetricLogger`; every other rank gets a :class:`NullLogger`.
The CSV is appended line by line and flushed, so a killed run keeps what it logged. A resumed run
first cuts the file back to the rows its checkpoint had seen (``keep_rows``: rows logged after the
checkpoint by the interrupted run would otherwise appear twice), then appends; TensorBoard gets
``purge_step`` so events of the interrupted run from that step on are hidden.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Mapping

CSV_HEADER = ("step", "epoch", "tag", "value")


class NullLogger:
    rows = 0

    def log(self, scalars: Mapping[str, float], *, step: int, epoch: int, prefix: str = "") -> None:
        pass

    def close(self) -> None:
        pass


class MetricLogger(NullLogger):
    def __init__(self, output_dir: str | Path, *, tensorboard: bool = True, append: bool = True,
                 keep_rows: int | None = None, purge_step: int | None = None):
        """``append=False`` starts a new ``metrics.csv`` (a fresh run); True continues it (a resumed run),
        keeping only its first ``keep_rows`` data rows when given. ``purge_step``: TensorBoard hides the
        events of earlier writers at steps >= it. ``rows`` counts the data rows in the file."""
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.output_dir / "metrics.csv"
        new = not append or not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        self.rows = 0 if new else truncate_rows(self.csv_path, keep_rows)
        self._fh = open(self.csv_path, "w" if new else "a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._fh)
        if new:
            self._csv.writerow(CSV_HEADER)
            self._fh.flush()
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # lazily: tensorboard is slow to import
            self._tb = SummaryWriter(log_dir=str(self.output_dir / "tb"), purge_step=purge_step)

    def log(self, scalars: Mapping[str, float], *, step: int, epoch: int, prefix: str = "") -> None:
        for name, value in scalars.items():
            value = float(value)
            tag = f"{prefix}{name}"
            text = repr(value) if math.isfinite(value) else str(value)
            self._csv.writerow((int(step), int(epoch), tag, text))
            self.rows += 1
            if self._tb is not None:
                self._tb.add_scalar(tag, value, global_step=int(step))
        self._fh.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def truncate_rows(path: Path, keep_rows: int | None) -> int:
    """Cut a ``metrics.csv`` to its header plus the first ``keep_rows`` data rows (None: keep all; a file with
    fewer rows is left as it is) -> the number of data rows left. A last line without its newline (a write
    cut by a kill) is dropped."""
    with open(path, "r+b") as fh:
        header = fh.readline()
        if not header.endswith(b"\n"):
            fh.truncate(0)
            fh.write(",".join(CSV_HEADER).encode() + b"\r\n")
            return 0
        rows, end = 0, fh.tell()
        while keep_rows is None or rows < keep_rows:
            line = fh.readline()
            if not line.endswith(b"\n"):
                break
            rows, end = rows + 1, fh.tell()
        fh.truncate(end)
    return rows


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Rows of a ``metrics.csv`` as dicts with typed values (for tests/plots)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{"step": int(r["step"]), "epoch": int(r["epoch"]), "tag": r["tag"],
                 "value": float(r["value"])}
                for r in csv.DictReader(fh)]
