"""Run logs: one CSV row and one TensorBoard point per round, keys grouped like cleanrl's."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from soar_env.files import write_atomic


class RunLogger:
    """Writes ``rounds.csv`` and TensorBoard events under ``log_dir``.

    Keys are grouped by prefix (``charts/``, ``teacher/``, ``proposals/``, ``env/``). The
    CSV is rewritten atomically after every round (rows are few and small), so it gains
    columns as new keys appear and is never left half-written.

    Args:
        log_dir: the run's folder.
        tensorboard: also write TensorBoard events.
        rows: the rounds already done (a resumed run passes its checkpoint's history, so a
            round logged after the last checkpoint, and therefore run again, is not kept twice).
        meta: what reproduces the run (env id, teacher, seed, package version, config as
            JSON); written as ``run/*`` columns on every CSV row, so a row read alone still
            says where it came from.
    """

    def __init__(
        self, log_dir: str | Path, tensorboard: bool = True, rows: list[dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
    ):
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.dir / "rounds.csv"
        self.meta = {f"run/{k}": v for k, v in (meta or {}).items()}
        self.rows: list[dict[str, Any]] = [{"round": i, **row, **self.meta}
                                           for i, row in enumerate(rows or [])]
        self._write_csv()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency; a broken install should not stop a run
                SummaryWriter = None
            if SummaryWriter is not None:
                self.writer = SummaryWriter(str(self.dir / "tensorboard"))

    def log(self, step: int, row: dict[str, Any]) -> None:
        self.rows.append({"round": step, **row, **self.meta})
        self._write_csv()
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, int | float):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(k for r in self.rows for k in r)) or ["round"]

        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, columns)
                writer.writeheader()
                writer.writerows(self.rows)

        write_atomic(self.csv_path, write)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
