"""Where a run's per-round rows go besides its folder: ``--report-to csv,tensorboard,trackio``.

``csv`` (``rounds.csv``) and ``tensorboard`` are written by ``RunLogger`` into the run folder;
``trackio`` logs the same rows to a local trackio project (``soar-env``), in trackio's own
folder (``$TRACKIO_DIR``, default ``~/.cache/huggingface/trackio``), which its dashboard opens:
``trackio show --project soar-env``. Nothing leaves the machine unless trackio is told to
(``TRACKIO_SPACE_ID``). The trackio run is named after the run folder (its name and a hash of
its path), so ``--resume`` continues the same trackio run. wandb is not offered: its offline
runs cannot be read back without a server or an account, so no test could check them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPORTERS = ("csv", "tensorboard", "trackio")
DEFAULT_REPORT_TO = ("csv", "tensorboard")
TRACKIO_PROJECT = "soar-env"


def parse_report_to(text: str) -> tuple[str, ...]:
    """``'csv,tensorboard,trackio'`` as a tuple; 'none' for none; one clear error otherwise."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if names == ("none",):
        return ()
    unknown = [n for n in names if n not in REPORTERS]
    if unknown or not names:
        raise ValueError(f"--report-to expects a comma-separated list of {', '.join(REPORTERS)} "
                         f"(or none), actual {text!r}")
    return names


def trackio_run_name(run: Path) -> str:
    """The folder's name and a hash of its absolute path: the same folder, the same run."""
    path = str(Path(run).resolve())
    return f"{Path(path).name}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


class TrackioTracker:
    """Rows of one run as one trackio run (metrics at ``step`` = the round)."""

    def __init__(self, run: Path, meta: dict[str, Any], resume: bool):
        try:
            import trackio
        except ImportError as err:
            raise ImportError(f"--report-to trackio needs trackio: pip install 'soar-env[trackio]' "
                              f"({err})") from err
        self.name = trackio_run_name(run)
        self.run = trackio.init(project=TRACKIO_PROJECT, name=self.name, config=dict(meta),
                                resume="allow" if resume else "never", embed=False,
                                auto_log_cpu=False, auto_log_gpu=False)

    def log(self, step: int, row: dict[str, Any]) -> None:
        numbers = {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
        self.run.log(numbers, step=step)

    def close(self) -> None:
        self.run.finish()


def open_trackers(report_to: Sequence[str], run: Path, meta: dict[str, Any], resume: bool) -> list[Any]:
    """The trackers besides the run folder's own files (CSV, TensorBoard)."""
    return [TrackioTracker(run, meta, resume)] if "trackio" in report_to else []
