"""Pictures of runs: learning curves over seeds, the curves of one run, and the rooms it discovered.

Curves draw one line per (environment, bonus), the mean over seeds with a 95 % interval. Each run is
put on a common frame grid by linear interpolation of its logged points (rows with no finished
episode are skipped); the interval is a percentile bootstrap of the mean over runs. Every picture
is written to a temporary file and renamed, so none is ever half-written.
"""

from __future__ import annotations

import csv
import os
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


LABELS = {"rooms": "rooms discovered (cumulative)"}
"""Axis labels that say more than the column name."""


def curves(run_dirs: list[Path], metric: str, points: int = 200) -> dict[str, dict]:
    """{label: {"frames", "mean", "low", "high", "runs"}} for each (env, bonus) group of runs."""
    return _curves([(Path(run_dir), *load_run(run_dir)) for run_dir in run_dirs], metric, points)


def _curves(runs: list[tuple[Path, dict, dict]], metric: str, points: int = 200) -> dict[str, dict]:
    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run_dir, config, columns in runs:
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
    for label, group in groups.items():
        end = min(f[-1] for f, _ in group)
        start = max(f[0] for f, _ in group)
        grid = np.linspace(start, end, points) if end > start else np.array([end])
        samples = np.stack([np.interp(grid, f, v) for f, v in group])
        low, high = bootstrap_interval(samples) if len(group) > 1 else (samples[0], samples[0])
        result[label] = {"frames": grid, "mean": samples.mean(0), "low": low, "high": high, "runs": len(group)}
    return result


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, dpi: int = 110) -> Path:
    """Writes `fig` as PNG to a temporary file beside `out`, then renames it; closes `fig`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.replace(tmp, out)
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)
    return out


def runs_figure(run_dirs: list[Path], metric: str | None = None):
    """The figure `plot_runs` saves: one panel per metric, one line per (env, bonus) group.

    With no `metric`: episode return, beside the rooms discovered when every run logged rooms.
    """
    runs = [(Path(run_dir), *load_run(run_dir)) for run_dir in run_dirs]
    if metric is not None:
        metrics = [metric]
    elif runs and all("rooms" in columns for _, _, columns in runs):
        metrics = ["episode_return", "rooms"]
    else:
        metrics = ["episode_return"]
    panels = [_curves(runs, m) for m in metrics]
    labels = sorted({label for data in panels for label in data})
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}  # one colour per group in every panel
    fig, axes = pyplot().subplots(1, len(metrics), figsize=(7 * len(metrics), 4.5), squeeze=False)
    legend_panel = max(range(len(panels)), key=lambda i: len(panels[i]))  # colours are shared: one legend
    for index, (ax, metric_name, data) in enumerate(zip(axes[0], metrics, panels)):
        for label, curve in sorted(data.items()):
            runs_text = f"{curve['runs']} run{'s' * (curve['runs'] > 1)}"
            ax.plot(curve["frames"], curve["mean"], color=colors[label], label=f"{label} ({runs_text})")
            if curve["runs"] > 1:
                ax.fill_between(curve["frames"], curve["low"], curve["high"], alpha=0.25, color=colors[label])
        ax.set_xlabel("frames")
        ax.set_ylabel(LABELS.get(metric_name, metric_name))
        ax.grid(alpha=0.3)
        if not data:
            ax.text(0.5, 0.5, f"no {metric_name} logged yet", ha="center", va="center", transform=ax.transAxes)
        elif index == legend_panel:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_runs(run_dirs: list[Path], out: Path, metric: str | None = None) -> Path:
    """Saves `runs_figure(run_dirs, metric)` to `out`; returns `out`."""
    return save_figure(runs_figure(run_dirs, metric), out, dpi=120)


def plot_run(run_dir: Path, out: Path) -> Path:
    """The picture at the end of a run: episode return, intrinsic reward and rooms (when logged)."""
    config, columns = load_run(run_dir)
    metrics = [m for m in ("episode_return", "intrinsic_reward", "rooms") if m in columns]
    fig, axes = pyplot().subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        keep = ~np.isnan(columns[metric])
        ax.plot(columns["frames"][keep], columns[metric][keep])
        ax.set_xlabel("frames")
        ax.set_title(LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    fig.suptitle(_run_title(config))
    fig.tight_layout()
    return save_figure(fig, out, dpi=110)


def _run_title(config: dict) -> str:
    return f"{config['env']['id']} · {config['bonus']} · seed {config['seed']}"


def frame_text(frames: int) -> str:
    """A frame count in a few characters: 950, 12.5k, 1.2M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        value = round(frames / scale, 1)
        if value >= 1:
            return f"{value:g}{suffix}"
    return str(int(frames))


def rooms_figure(thumbnails: dict[int, np.ndarray], found_at: dict[int, int], title: str):
    """A grid of thumbnails sorted by room id, each titled with its room and when it was first reached."""
    rooms = sorted(thumbnails)
    columns = min(len(rooms), 6)
    rows = -(-len(rooms) // columns)
    width = max(1.8 * columns, 3.6)  # room for the title above a single thumbnail
    fig, axes = pyplot().subplots(rows, columns, figsize=(width, 2.2 * rows + 0.6), squeeze=False)
    for ax in axes.flat[len(rooms):]:
        fig.delaxes(ax)
    for ax, room in zip(axes.flat, rooms):
        ax.imshow(thumbnails[room], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"room {room}\n{frame_text(found_at[room])} frames", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_rooms(run_dir: Path, thumbnails: dict[int, np.ndarray], found_at: dict[int, int], out: Path) -> Path:
    """Saves the rooms a run discovered (see `rooms_figure`), titled with its env, bonus and seed."""
    if not thumbnails:
        raise PlotError(f"{run_dir} has no room thumbnails to draw")
    config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    title = f"{_run_title(config)}\n{len(thumbnails)} room{'s' * (len(thumbnails) > 1)} discovered"
    return save_figure(rooms_figure(thumbnails, found_at, title), out, dpi=110)
