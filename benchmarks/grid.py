"""Resumable grids of `wanderlust train` runs, shared by the benchmark scripts that compare agents
over environments and seeds (exploration.py, ballet.py, hima.py).

Each cell is one run, a subprocess with one torch thread. Where things go:
- the runs directory (not in git): whole run directories with their checkpoints. A run stopped
  part-way (a session ending) continues from its last checkpoint with `--resume` the next time.
- the results directory (in git): one CSV per finished run, the columns of its metrics.csv that the
  report reads. A run whose CSV is there is done and is skipped, so a grid survives a fresh checkout.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Job:
    """One cell: `variant` names what is compared (a bonus, a memory), `flags` how to ask for it."""

    env_id: str
    preset: str
    """A preset name, or "" to train from the defaults and the flags alone."""
    variant: str
    seed: int
    frames: int
    flags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        budget = f"{self.frames // 1000}k" if self.frames % 1000 == 0 else str(self.frames)
        return f"{self.env_id.replace('/', '-')}__{self.variant}__s{self.seed}__{budget}"


def parse_frames(text: str) -> int:
    return int(float(text))


def add_grid_options(command, name: str) -> None:
    """The options every grid's `run` and `report` take: --workers, --hours, --runs-dir (default
    benchmarks/runs/NAME) and --results-dir (default benchmarks/results/NAME)."""
    command.add_argument("--workers", type=int, default=2)
    command.add_argument("--hours", type=float, default=0.0, help="start no new run after this many hours")
    command.add_argument("--runs-dir", type=Path, default=ROOT / "benchmarks/runs" / name)
    command.add_argument("--results-dir", type=Path, default=ROOT / "benchmarks/results" / name)


def run_job(job: Job, runs_dir: Path, results_dir: Path, kept_columns: Sequence[str]) -> str:
    result = results_dir / f"{job.name}.csv"
    if result.exists():
        return f"{job.name}: done before"
    run_dir = runs_dir / job.name
    command = [sys.executable, "-m", "wanderlust"]
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        command += ["train", "--resume", str(run_dir)]
    else:
        if run_dir.exists():  # started but never checkpointed: start again
            shutil.rmtree(run_dir)
        command += [
            "train", *(("--preset", job.preset) if job.preset else ()), "--seed", str(job.seed),
            "--frames", str(job.frames), "--run-dir", str(run_dir),
            "--set", "torch_threads=1", "--set", "log.checkpoint_interval=20",
            *job.flags,  # last, so that a job's own --set wins over the defaults above
        ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    log_dir = runs_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_dir / f"{job.name}.log", "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    minutes = (time.perf_counter() - start) / 60
    if code != 0:
        return f"{job.name}: FAILED (exit {code}, {minutes:.1f} min; see {log_dir / (job.name + '.log')})"
    keep_result(run_dir / "metrics.csv", result, kept_columns)
    return f"{job.name}: finished in {minutes:.1f} min"


def keep_result(metrics: Path, result: Path, kept_columns: Sequence[str]) -> None:
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in kept_columns if rows and c in rows[0]]
    result.parent.mkdir(parents=True, exist_ok=True)
    tmp = result.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns])
    os.replace(tmp, result)


def run_grid(
    jobs: list[Job], workers: int, hours: float, runs_dir: Path, results_dir: Path, kept_columns: Sequence[str]
) -> int:
    """Runs the jobs without a result, `workers` at a time; starts none after `hours` (0: no limit)."""
    deadline = time.time() + hours * 3600 if hours else math.inf
    pending = [j for j in jobs if not (results_dir / f"{j.name}.csv").exists()]
    print(f"{len(jobs)} runs in the grid, {len(jobs) - len(pending)} done, {len(pending)} to run", flush=True)

    def guarded(job: Job) -> str:
        if time.time() > deadline:
            return f"{job.name}: not started (--hours reached)"
        return run_job(job, runs_dir, results_dir, kept_columns)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for message in pool.map(guarded, pending):
            print(message, flush=True)
    return 0


# --------------------------------------------------------------------------- reading results
def finished_cells(jobs: list[Job], results_dir: Path) -> dict[tuple[str, str], list[tuple[Job, list[dict]]]]:
    """{(env id, variant): [(job, rows of its kept CSV)]} for the jobs that have finished."""
    cells: dict[tuple[str, str], list[tuple[Job, list[dict]]]] = {}
    for job in jobs:
        path = results_dir / f"{job.name}.csv"
        if path.exists():
            cells.setdefault((job.env_id, job.variant), []).append((job, read_rows(path)))
    return cells


def read_rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(handle)]


def final_mean(rows: list[dict[str, float]], column: str, budget: float) -> float:
    """The mean of a column over the rows of the last 10 % of the budget (NaN cells skipped)."""
    tail = [r[column] for r in rows if r["frames"] >= 0.9 * budget and not math.isnan(r.get(column, math.nan))]
    return statistics.fmean(tail) if tail else math.nan


def run_mean(rows: list[dict[str, float]], column: str) -> float:
    values = [r[column] for r in rows if column in r and not math.isnan(r[column])]
    return statistics.fmean(values) if values else math.nan


def last_value(rows: list[dict[str, float]], column: str) -> float:
    values = [r[column] for r in rows if column in r and not math.isnan(r[column])]
    return values[-1] if values else math.nan


def frames_to_reach(rows: list[dict[str, float]], target: float, window: int = 10) -> float:
    """The first frame count at which the mean return of the last `window` logged rows reaches
    `target`; NaN if it never does."""
    returns = [(r["frames"], r["episode_return"]) for r in rows if not math.isnan(r["episode_return"])]
    for i in range(len(returns)):
        recent = [value for _, value in returns[max(0, i - window + 1) : i + 1]]
        if len(recent) == window and statistics.fmean(recent) >= target:
            return returns[i][0]
    return math.nan


def millions(frames: float) -> str:
    return "—" if math.isnan(frames) else f"{frames / 1e6:.2f} M"


def plot_return_curves(cells: dict[tuple[str, str], list[tuple[Job, list[dict]]]], out_dir: Path, ylabel: str) -> None:
    """One picture per environment: each variant's return (mean of the last 10 rows) against frames,
    the first seed solid and the others dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for env_id in sorted({env_id for env_id, _ in cells}):
        variants = sorted({v for e, v in cells if e == env_id})
        figure, axis = plt.subplots(figsize=(7, 4.5))
        for (cell_env, variant), runs in sorted(cells.items()):
            if cell_env != env_id:
                continue
            for index, (_, rows) in enumerate(runs):
                points = [(r["frames"], r["episode_return"]) for r in rows if not math.isnan(r["episode_return"])]
                smoothed = [statistics.fmean(v for _, v in points[max(0, i - 9) : i + 1]) for i in range(len(points))]
                axis.plot(
                    [f / 1e6 for f, _ in points], smoothed, label=variant if index == 0 else None,
                    color=f"C{variants.index(variant) % 10}", alpha=0.8, linestyle="-" if index == 0 else "--",
                )
        axis.set_xlabel("frames (M)")
        axis.set_ylabel(ylabel)
        axis.set_title(f"{env_id} (solid: first seed, dashed: others)")
        axis.legend(fontsize=7, ncol=2)
        figure.tight_layout()
        figure.savefig(out_dir / f"{env_id.replace('/', '-')}.png", dpi=100)
        plt.close(figure)
