"""Run logs: one CSV row and one TensorBoard point per round, keys grouped like cleanrl's."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from soar_env.files import write_atomic

EVENTS_NAME = "events.out.tfevents.soar-env"  # TensorBoard reads any file named *tfevents*


class RunLogger:
    """Writes ``rounds.csv`` and TensorBoard events under ``log_dir``.

    Keys are grouped by prefix (``charts/``, ``teacher/``, ``proposals/``, ``env/``). Both
    files are rewritten atomically after every round (rows are few and small), so neither is
    ever left half-written, even by a full disk: the CSV gains columns as new keys appear,
    and ``tensorboard/events.out.tfevents.soar-env`` holds one event per round, exactly the
    CSV's rows (a resumed run's too). It is written here, in the calling thread: a
    ``SummaryWriter`` writes from a thread of its own, which prints a traceback on a full
    disk and leaves a cut record.

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
        meta: dict[str, Any] | None = None, report_to: Sequence[str] | None = None,
    ):
        from .trackers import open_trackers

        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.dir / "rounds.csv"
        self.meta = {f"run/{k}": v for k, v in (meta or {}).items()}
        self.rows: list[dict[str, Any]] = [{"round": i, **row, **self.meta}
                                           for i, row in enumerate(rows or [])]
        # report_to (``--report-to``) names every destination; without it: CSV, and TensorBoard
        # when ``tensorboard``.
        report_to = tuple(report_to) if report_to is not None else ("csv",) + (("tensorboard",) * tensorboard)
        self.csv = "csv" in report_to
        self._write_csv()
        # Other trackers (trackio) get the rows logged from now on: a resumed run's earlier
        # rows are already in them.
        self.trackers = open_trackers(report_to, self.dir, meta or {}, resume=bool(rows))
        self.events: list[bytes] | None = None  # the encoded records of the event file
        if "tensorboard" in report_to:
            try:
                from tensorboard.compat.proto.event_pb2 import Event  # noqa: F401
            except ImportError:  # tensorboard is a dependency; a broken install should not stop a run
                return
            now = time.time()  # rows restored from a checkpoint carry no wall time
            self.events = [_record(file_version="brain.Event:2", wall_time=now)]
            self.events += [_scalars(i, row, now) for i, row in enumerate(rows or [])]
            folder = self.dir / "tensorboard"
            for older in folder.glob("events.out.tfevents.*"):  # older versions' files: ours holds every row
                if older.name != EVENTS_NAME:
                    older.unlink(missing_ok=True)
            self._write_events()

    def log(self, step: int, row: dict[str, Any]) -> None:
        self.rows.append({"round": step, **row, **self.meta})
        self._write_csv()
        if self.events is not None:
            self.events.append(_scalars(step, row, time.time()))
            self._write_events()
        for tracker in self.trackers:
            tracker.log(step, row)

    def _write_events(self) -> None:
        write_atomic(self.dir / "tensorboard" / EVENTS_NAME, b"".join(self.events or []))

    def _write_csv(self) -> None:
        if not self.csv:
            return
        columns = list(dict.fromkeys(k for r in self.rows for k in r)) or ["round"]

        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, columns)
                writer.writeheader()
                writer.writerows(self.rows)

        write_atomic(self.csv_path, write)

    def close(self) -> None:
        """Finish the trackers (trackio flushes its queue); the run folder's files are whole
        after each round already."""
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            tracker.close()


def _scalars(step: int, row: dict[str, Any], wall_time: float) -> bytes:
    """One TensorBoard event: the row's numbers as scalars at ``step`` (as ``add_scalar`` writes them)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    values = [Summary.Value(tag=key, simple_value=float(value)) for key, value in row.items()
              if isinstance(value, int | float)]
    return _record(step=step, wall_time=wall_time, summary=Summary(value=values))


def _record(**fields: Any) -> bytes:
    """An ``Event`` framed as a TensorBoard record (length, checksums), by tensorboard's own writer."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    RecordWriter(buffer).write(Event(**fields).SerializeToString())
    return buffer.getvalue()
