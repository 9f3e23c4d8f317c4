"""Flat DreamerV3 against THICK (``--world-model flat|thick``) at a CPU budget (preset thick_cpu).

Commands:

- ``run``: a resumable grid (see grid.py) of ``wanderlust train --preset thick_cpu --env ENV
  --world-model flat|thick`` over environments and seeds, seed-major, so that a grid cut short
  still compares both world models on every environment.
- ``report``: a table per environment and world model: the final return (mean over the last 10 %
  of the budget), the context changes per training sequence (THICK's ``context_changes`` metric,
  last 10 %), and for THICK runs a replay of the final checkpoint that lines its context changes up
  with the environment's events (``analyze.context_changes``: PinPad pads, MiniGrid keys and doors).
  The replay needs the run directory (not in git), so its numbers are cached beside the result CSVs
  as ``<run name>.changes.json`` (in git), and the report works from a fresh checkout. Writes
  ``thick_table.md`` and one picture of return curves per environment to the results directory.
- ``update-speed``: seconds per training update of each environment and world model at the grid's
  preset (one thread), which sets what a run costs.

    python benchmarks/thick.py run --seeds 0,1,2 --frames 1e5 --workers 2
    python benchmarks/thick.py report --seeds 0,1,2 --frames 1e5
    python benchmarks/thick.py update-speed --updates 8
    python benchmarks/thick.py run --envs MiniGrid-DoorKey-5x5-v0 --seeds 0 --frames 600 --preset thick_cpu,debug \\
        --runs-dir /tmp/thick_runs --results-dir /tmp/thick_results --workers 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from grid import ROOT, Job, add_grid_options, final_mean, finished_cells, millions, parse_frames, plot_return_curves, run_grid  # noqa: E402

import torch  # noqa: E402

from wanderlust.run import analyze, replay  # noqa: E402
from wanderlust.run.config import resolve  # noqa: E402
from wanderlust.run.train import build_agent  # noqa: E402

ENVS = ("wanderlust/PinPad-three-v0", "MiniGrid-DoorKey-5x5-v0")
WORLD_MODELS = ("flat", "thick")
KEPT_COLUMNS = (
    "frames", "episode_return", "episode_length", "episodes", "sps", "context_changes", "sparse_loss", "model_loss",
    "updates",
)
"""The columns of metrics.csv that a finished run keeps in git: the report reads episode_return and
context_changes; the losses, speed and update count are kept to look into a run afterwards."""
REPLAY_EPISODES = 5
CHANGE_WINDOW = 1
"""A context change counts as aligned with an event within ±1 step of it."""
CHANGE_FIELDS = ("changes_per_episode", "events_per_episode", "precision", "recall")


def jobs_for(args: argparse.Namespace) -> list[Job]:
    envs = args.envs.split(",")
    world_models = args.world_models.split(",")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    # Seed-major order: a grid cut short still compares both world models on every environment.
    return [
        Job(env_id, args.preset, world_model, seed, args.frames, ("--env", env_id, "--world-model", world_model))
        for seed in seeds for env_id in envs for world_model in world_models
    ]


def run(args: argparse.Namespace) -> int:
    return run_grid(jobs_for(args), args.workers, args.hours, args.runs_dir, args.results_dir, KEPT_COLUMNS)


# ------------------------------------------------------------------------------ replay analysis
def replayed_changes(job: Job, runs_dir: Path, results_dir: Path) -> dict | None:
    """The replay analysis of a finished THICK run's final checkpoint: from its cache in the results
    directory, else computed from the run directory and cached; None where neither is there."""
    cache = results_dir / f"{job.name}.changes.json"
    if cache.exists():
        stored = json.loads(cache.read_text())
        return {key: math.nan if value is None else value for key, value in stored.items()}
    run_dir = runs_dir / job.name
    if not (run_dir / "checkpoints").is_dir() or not any((run_dir / "checkpoints").iterdir()):
        return None
    loaded = replay.load_run(run_dir)
    try:
        report = analyze.context_changes(loaded, episodes=REPLAY_EPISODES, window=CHANGE_WINDOW)
    finally:
        loaded.close()
    numbers = {
        "checkpoint_frames": loaded.frames, "episodes": REPLAY_EPISODES, "window": CHANGE_WINDOW,
        **{key: getattr(report, key) for key in CHANGE_FIELDS},
    }
    # JSON has no NaN (precision and recall are NaN without changes or events): store null.
    cache.write_text(json.dumps({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in numbers.items()},
                                indent=1) + "\n")
    return numbers


def mean_and_seeds(values: list[float], digits: int) -> str:
    """"mean; per seed" over the seeds that have a value; "—" for a seed without (a flat run's
    context changes, a run not replayed, precision without any change) and for a cell without any."""
    present = [value for value in values if not math.isnan(value)]
    if not present:
        return "—"
    return f"{statistics.fmean(present):.{digits}f}; " + ", ".join(
        "—" if math.isnan(value) else f"{value:.{digits}f}" for value in values
    )


def report(args: argparse.Namespace) -> int:
    sequence_length = resolve(args.preset.split(",")).dreamer.batch_length
    jobs = jobs_for(args)
    cells = finished_cells(jobs, args.results_dir)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"Budget {millions(args.frames)} frames per run, preset {args.preset}. Return: mean episode return over the "
        f"last 10 % of frames. Training changes: steps per {sequence_length}-step training sequence on which a "
        f"context gate opened (last 10 %). Replay (THICK, final checkpoint, {REPLAY_EPISODES} episodes): context "
        f"changes and events (PinPad pads, MiniGrid keys and doors) per episode; precision = changes within "
        f"±{CHANGE_WINDOW} step of an event, recall = events within ±{CHANGE_WINDOW} step of a change. Each cell: "
        "mean; per seed.",
        "",
        f"| env | world model | seeds | return | training changes per {sequence_length}-step sequence "
        "| replay changes per episode | replay events per episode | precision | recall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (env_id, world_model), runs in sorted(cells.items()):
        returns = [final_mean(rows, "episode_return", job.frames) for job, rows in runs]
        changes = [final_mean(rows, "context_changes", job.frames) for job, rows in runs]
        if world_model == "thick":
            replayed = [replayed_changes(job, args.runs_dir, args.results_dir) for job, _ in runs]
            replay_cells = [
                mean_and_seeds([math.nan if numbers is None else numbers[key] for numbers in replayed], 2)
                for key in CHANGE_FIELDS
            ]
        else:
            replay_cells = ["—"] * len(CHANGE_FIELDS)
        seeds = f"{len(runs)} ({', '.join(str(job.seed) for job, _ in runs)})"
        row = [env_id, world_model, seeds, mean_and_seeds(returns, 2), mean_and_seeds(changes, 2), *replay_cells]
        lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines)
    print(table)
    (args.results_dir / "thick_table.md").write_text(table + "\n")
    plot_return_curves(cells, args.results_dir, "episode return (mean of last 10 rows)")
    return 0


# ------------------------------------------------------------------------------- update speed
def update_speed(args: argparse.Namespace) -> int:
    """Seconds per training update (world model, high-level model, actor-critic) of the grid's runs,
    one thread: each agent fills its replay with random steps, trains once untimed, then times
    `--updates` updates. Prints the median (min–max) per env and world model."""
    torch.set_num_threads(1)
    print(f"Seconds per update, preset {args.preset}, one thread, median (min–max) of {args.updates}")
    print("\n| env | world model | seconds per update |\n| --- | --- | ---: |")
    for env_id in args.envs.split(","):
        for world_model in args.world_models.split(","):
            config = resolve(args.preset.split(","), {"env": {"id": env_id}, "dreamer": {
                "world_model": world_model, "prefill": args.prefill, "replay_capacity": 4 * args.prefill}})
            env, agent = build_agent(config, torch.device("cpu"))
            agent.warmup()
            agent.train_step()
            seconds = []
            for _ in range(args.updates):
                start = time.perf_counter()
                agent.train_step()
                seconds.append(time.perf_counter() - start)
            env.close()
            print(f"| {env_id} | {world_model} | {statistics.median(seconds):.2f} "
                  f"({min(seconds):.2f}–{max(seconds):.2f}) |", flush=True)
    return 0


# ------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Flat DreamerV3 against THICK.", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("run", run, "train flat and THICK Dreamer (resumable grid)"),
        ("report", report, "the table of returns and context changes, and return curves"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--envs", default=",".join(ENVS), help="comma-separated env ids")
        command.add_argument("--world-models", default=",".join(WORLD_MODELS))
        command.add_argument("--seeds", default="0,1,2")
        command.add_argument("--frames", type=parse_frames, default=100_000)
        command.add_argument(
            "--preset", default="thick_cpu",
            help="preset stack of every run (run names do not include it: keep other stacks in other directories)",
        )
        add_grid_options(command, "thick")
        command.set_defaults(func=func)
    speed = commands.add_parser("update-speed", help="seconds per training update of each env and world model")
    speed.add_argument("--envs", default=",".join(ENVS))
    speed.add_argument("--world-models", default=",".join(WORLD_MODELS))
    speed.add_argument("--preset", default="thick_cpu")
    speed.add_argument("--updates", type=int, default=8)
    speed.add_argument("--prefill", type=int, default=80, help="random steps per env before the first update")
    speed.set_defaults(func=update_speed)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
