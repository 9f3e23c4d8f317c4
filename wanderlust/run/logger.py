"""Metrics: metrics.csv (one row per log interval), TensorBoard events, wandb when asked, progress.

metrics.csv rows are appended and synced one at a time; on resume the file is cut back to the rows
that the checkpoint covers, so a killed run never leaves duplicated or missing rows.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
from pathlib import Path

log = logging.getLogger("wanderlust")

FIRST_COLUMNS = ["frames", "episode_return", "episode_length", "episodes", "intrinsic_reward", "sps"]


def truncate_metrics(path: Path, max_frames: int) -> None:
    """Keeps the header and the complete rows with frames ≤ max_frames; rewrites atomically."""
    if not path.exists():
        return
    text = path.read_text()
    lines = text.split("\n")
    complete = lines[:-1]  # the text after the last newline is a row cut off mid-write
    if not complete:
        path.unlink()
        return
    header = next(csv.reader([complete[0]]))
    kept = [complete[0]]
    for line in complete[1:]:
        row = next(csv.reader([line]), [])
        if len(row) != len(header):
            continue
        try:
            frames = int(row[0])
        except ValueError:
            continue
        if frames <= max_frames:
            kept.append(line)
    tmp = path.with_suffix(".csv.tmp")
    tmp.write_text("\n".join(kept) + "\n")
    os.replace(tmp, path)


class MetricsLogger:
    def __init__(self, run_dir: Path, config_dict: dict, resume_frames: int | None, track: str = ""):
        self.path = run_dir / "metrics.csv"
        self.columns: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as handle:
                self.columns = next(csv.reader(handle), None)
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops TensorBoard points a killed run wrote after its last checkpoint.
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_frames)
        self.wandb = None
        if track == "wandb":
            import wandb

            self.wandb = wandb.init(config=config_dict, dir=str(run_dir), name=run_dir.name, resume="allow", id=run_dir.name)

    def write(self, row: dict) -> None:
        if self.columns is None:
            rest = sorted(k for k in row if k not in FIRST_COLUMNS)
            self.columns = [c for c in FIRST_COLUMNS if c in row] + rest
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        buffer = io.StringIO()
        csv.writer(buffer).writerow([_cell(row.get(c)) for c in self.columns])
        with open(self.path, "a", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        frames = int(row["frames"])
        for key, value in row.items():
            if key != "frames" and isinstance(value, (int, float)) and not math.isnan(value):
                self.writer.add_scalar(key, value, frames)
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=frames)

    def close(self) -> None:
        self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class Progress:
    """A rich progress bar on a terminal; plain log lines (one per log row) otherwise."""

    def __init__(self, total_frames: int, start_frames: int, description: str):
        self.total = total_frames
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeRemainingColumn

            self.bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task(description, total=total_frames, completed=start_frames, status="")
            self.bar.start()

    def update(self, row: dict) -> None:
        status = (
            f"{row['sps']:.0f} fps  return {_short(row.get('episode_return'))}  "
            f"intrinsic {_short(row.get('intrinsic_reward'))}"
        )
        if self.bar is not None:
            self.bar.update(self.task, completed=min(row["frames"], self.total), status=status)
        else:
            log.info("frames %d/%d  %s", row["frames"], self.total, status)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _short(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"
