"""Learning curves: one line per (environment, bonus), the mean over seeds with a 95 % interval.

Each run is put on a common frame grid by linear interpolation of its logged points (rows with no
finished episode are skipped); the interval is a percentile bootstrap of the mean over runs.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml


class PlotError(ValueError):
    """A run directory or metric that cannot be plotted; the message is one line."""


def load_run(run_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config dict, columns as float arrays; empty cells are NaN) of one run directory."""
    run_dir = Path(run_dir)
    config_path, metrics_path = run_dir / "config.yaml", run_dir / "metrics.csv"
    if not config_path.is_file() or not metrics_path.is_file():
        raise PlotError(f"{run_dir} is not a wanderlust run directory with metrics (config.yaml, metrics.csv)")
    config = yaml.safe_load(config_path.read_text())
    with open(metrics_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {}
    for key in rows[0].keys() if rows else []:
        columns[key] = np.array([float(row[key]) if row[key] not in ("", None) else np.nan for row in rows])
    return config, columns


def bootstrap_interval(samples: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0):
    """Percentile bootstrap interval of the mean over axis 0 of `samples` [runs, points]."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, samples.shape[0], size=(resamples, samples.shape[0]))
    means = samples[picks].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def curves(run_dirs: list[Path], metric: str, points: int = 200) -> dict[str, dict]:
    """{label: {"frames", "mean", "low", "high", "runs"}} for each (env, bonus) group of runs."""
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run_dir in run_dirs:
        config, columns = load_run(run_dir)
        if metric not in columns:
            available = ", ".join(k for k in columns if k != "frames")
            raise PlotError(f"{run_dir} has no metric {metric!r}; it has: {available}")
        frames, values = columns["frames"], columns[metric]
        keep = ~np.isnan(values)
        if keep.sum() == 0:
            continue
        label = f"{config['env']['id']} · {config['bonus']}"
        groups[label].append((frames[keep], values[keep]))
    result = {}
    for label, runs in groups.items():
        end = min(f[-1] for f, _ in runs)
        start = max(f[0] for f, _ in runs)
        grid = np.linspace(start, end, points) if end > start else np.array([end])
        samples = np.stack([np.interp(grid, f, v) for f, v in runs])
        low, high = bootstrap_interval(samples) if len(runs) > 1 else (samples[0], samples[0])
        result[label] = {"frames": grid, "mean": samples.mean(0), "low": low, "high": high, "runs": len(runs)}
    return result


def plot_runs(run_dirs: list[Path], out: Path, metric: str = "episode_return") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curves(run_dirs, metric)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, curve in sorted(data.items()):
        line = ax.plot(curve["frames"], curve["mean"], label=f"{label} ({curve['runs']} run{'s' * (curve['runs'] > 1)})")
        if curve["runs"] > 1:
            ax.fill_between(curve["frames"], curve["low"], curve["high"], alpha=0.25, color=line[0].get_color())
    ax.set_xlabel("frames")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if data:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no {metric} logged yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_run(run_dir: Path, out: Path) -> Path:
    """The picture at the end of a run: episode return and intrinsic reward against frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config, columns = load_run(run_dir)
    metrics = [m for m in ("episode_return", "intrinsic_reward", "rooms") if m in columns]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        keep = ~np.isnan(columns[metric])
        ax.plot(columns["frames"][keep], columns[metric][keep])
        ax.set_xlabel("frames")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{config['env']['id']} · {config['bonus']} · seed {config['seed']}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
