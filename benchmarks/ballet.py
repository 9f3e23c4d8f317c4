"""Ballet benchmarks (wanderlust/Ballet-{2,4,8}_delay{16,48}-v0).

Commands:

- ``speed``: environment steps per second with random actions, per level and cell size, on one
  core. Each measurement builds one env the way wanderlust's gymnasium backend does
  (``ballet.make_single``: ``gymnasium.make`` with its order-enforcing and checker wrappers), draws
  the random actions beforehand, and times ``step`` (and the ``reset`` after each finished episode)
  over ``--steps`` steps; a row reports the median over ``--repeats`` measurements in the same
  process, and their min-max. ``--num-envs N`` adds the same for ``wanderlust.envs.make(id, N)``
  (gymnasium's ``SyncVectorEnv`` batching the packed observations, plus the episode bookkeeping),
  counted in env steps (N per call).

    python benchmarks/ballet.py speed
    python benchmarks/ballet.py speed --cell-sizes 3 --steps 5000 --repeats 3 --num-envs 16

- ``run`` and ``report``: the memory agents (``--preset hcam_ballet --memory hcam|lstm|window``, equal
  sizes) on Ballet levels over seeds at a frame budget, a resumable grid (see grid.py); the report
  gives each agent's success rate (Ballet's return is 1 for the right dancer, else 0) over the last
  10 % of the budget, per seed, its mean episode length there, the parameter count of its core,
  and curves.

    python benchmarks/ballet.py run --levels 2_delay16,4_delay16 --seeds 0,1,2 --frames 5e5 --workers 2
    python benchmarks/ballet.py report --levels 2_delay16,4_delay16 --seeds 0,1,2 --frames 5e5

  The report also plays uniformly random actions on each level (2,000 episodes): its success rate
  is the chance level an agent without memory reaches by walking into any dancer, and its episode
  length shows how much faster an agent's navigation is.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from grid import ROOT, Job, add_grid_options, final_mean, finished_cells, millions, parse_frames, plot_return_curves, run_grid  # noqa: E402

from wanderlust.envs import ballet, make  # noqa: E402

LEVEL_IDS = tuple(ballet.level_id(dancers, delay) for dancers, delay in ballet.LEVELS)
REQUIRED_STEPS_PER_S = 5_000
"""What the issue asks of one env on one core at a small cell size."""


# ------------------------------------------------------------------------------------ speed
def single_env_speed(env_id: str, cell_size: int, steps: int, seed: int) -> float:
    """Steps per second of one env with random actions (resets after each episode included)."""
    env = ballet.make_single(env_id, ballet.resolve_options({"cell_size": cell_size}))
    actions = np.random.default_rng(seed).integers(0, 8, steps).tolist()
    env.reset(seed=seed)
    begin = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - begin
    env.close()
    return steps / elapsed


def vector_env_speed(env_id: str, cell_size: int, num_envs: int, steps: int, seed: int) -> float:
    """Env steps per second of ``make(env_id, num_envs)`` with random actions."""
    env = make(env_id, num_envs, seed=seed, backend="gymnasium", cell_size=cell_size)
    calls = max(1, steps // num_envs)
    actions = np.random.default_rng(seed).integers(0, 8, (calls, num_envs))
    env.reset()
    begin = time.perf_counter()
    for action in actions:
        env.step(action)
    elapsed = time.perf_counter() - begin
    env.close()
    return calls * num_envs / elapsed


def pin_to_one_core() -> str:
    """Runs this process on one CPU where the OS allows it; says which."""
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity here)"


def run_speed(args: argparse.Namespace) -> int:
    pinned = pin_to_one_core()
    kinds = [("1 env", 1)]
    if args.num_envs:
        kinds.append((f"make(id, {args.num_envs})", args.num_envs))
    rows = []
    for env_id in args.levels:
        for cell_size in args.cell_sizes:
            for kind, num_envs in kinds:
                speeds = []
                for repeat in range(args.repeats):
                    if num_envs == 1:
                        speeds.append(single_env_speed(env_id, cell_size, args.steps, repeat))
                    else:
                        speeds.append(
                            vector_env_speed(env_id, cell_size, num_envs, args.steps, repeat)
                        )
                rows.append((env_id, cell_size, kind, speeds))
                print(
                    f"{env_id} cell {cell_size} {kind}: {statistics.median(speeds):,.0f} steps/s",
                    file=sys.stderr,
                )

    lines = [
        f"Ballet environment speed: random actions, {args.steps:,} steps per measurement, median "
        f"(min-max) of {args.repeats} measurements in one process, {pinned}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}.",
        "",
        "| level | cell size | observation | env | steps/s (median) | min-max |",
        "|---|---|---|---|---|---|",
    ]
    for env_id, cell_size, kind, speeds in rows:
        side = ballet.VIEW_SIZE * cell_size
        lines.append(
            f"| `{env_id}` | {cell_size} | {side}x{side}x3 | {kind} | "
            f"{statistics.median(speeds):,.0f} | {min(speeds):,.0f}-{max(speeds):,.0f} |"
        )
    small = [
        statistics.median(speeds)
        for _, cell_size, kind, speeds in rows
        if kind == "1 env" and cell_size == min(args.cell_sizes)
    ]
    if small:
        verdict = "meets" if min(small) >= REQUIRED_STEPS_PER_S else "does NOT meet"
        lines += [
            "",
            f"Slowest level at cell size {min(args.cell_sizes)}, one env: {min(small):,.0f} "
            f"steps/s, which {verdict} the required {REQUIRED_STEPS_PER_S:,} steps/s on one core.",
        ]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


# ----------------------------------------------------------------------------------- agents
MEMORIES = ("hcam", "lstm", "window")
AGENT_COLUMNS = (
    "frames", "episode_return", "episode_length", "episodes", "sps", "entropy", "image_loss", "instruction_loss",
)
"""The columns of metrics.csv that a finished run keeps in git (the report reads nothing else)."""


def agent_jobs(args: argparse.Namespace) -> list[Job]:
    levels = [f"wanderlust/Ballet-{level}-v0" for level in args.levels.split(",")]
    memories = args.memories.split(",")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    # Seed-major order: a grid cut short still compares every memory on every level.
    return [
        Job(level, "hcam_ballet", memory, seed, args.frames, ("--env", level, "--memory", memory))
        for seed in seeds for level in levels for memory in memories
    ]


def run_agents(args: argparse.Namespace) -> int:
    return run_grid(agent_jobs(args), args.workers, args.hours, args.runs_dir, args.results_dir, AGENT_COLUMNS)


def random_actions(env_id: str, episodes: int, seed: int = 0) -> tuple[float, float]:
    """(mean return, mean length) of uniformly random actions over `episodes` episodes."""
    env = ballet.make_single(env_id, ballet.resolve_options({"cell_size": 3}))
    rng = np.random.default_rng(seed)
    returns, lengths = [], []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        total, steps, done = 0.0, 0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(0, 8)))
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    return statistics.fmean(returns), statistics.fmean(lengths)


def report_agents(args: argparse.Namespace) -> int:
    from wanderlust.nets.ballet import BalletEncoder
    from wanderlust.nets.cores import core_sizes
    from wanderlust.run.config import resolve

    config = resolve(["hcam_ballet"])
    encoder = BalletEncoder((33, 33, 4), config.ppo.hidden_size)
    sizes = core_sizes(config.ppo.memory, encoder.output_size)
    cells = finished_cells(agent_jobs(args), args.results_dir)
    lines = [
        f"Budget {millions(args.frames)} frames per run, preset hcam_ballet; success rate = mean episode return "
        "over the last 10 % of frames.",
        "",
        "| level | memory | core parameters | seeds | success rate (mean; per seed) | episode length |",
        "| --- | --- | ---: | --- | --- | ---: |",
    ]
    for env_id in sorted({env_id for env_id, _ in cells}):
        chance, length = random_actions(env_id, args.random_episodes)
        lines.append(f"| {env_id} | random actions | – | – | {chance:.2f} | {length:.1f} |")
        for memory in MEMORIES:
            runs = cells.get((env_id, memory), [])
            if not runs:
                continue
            finals = [final_mean(rows, "episode_return", job.frames) for job, rows in runs]
            lengths = [final_mean(rows, "episode_length", job.frames) for job, rows in runs]
            lines.append(
                f"| {env_id} | {memory} | {sizes[memory]:,} | {len(runs)} | {statistics.fmean(finals):.2f}; "
                f"{', '.join(f'{value:.2f}' for value in finals)} | {statistics.fmean(lengths):.1f} |"
            )
    table = "\n".join(lines)
    print(table)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "ballet_table.md").write_text(table + "\n")
    plot_return_curves(cells, args.results_dir, "success rate (mean of last 10 rows)")
    return 0


# ------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Ballet benchmarks.", formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    speed = commands.add_parser(
        "speed", help="environment steps per second with random actions, on one core"
    )
    speed.add_argument("--steps", type=int, default=20_000, help="steps per measurement")
    speed.add_argument("--repeats", type=int, default=5, help="measurements per row (median)")
    speed.add_argument(
        "--cell-sizes", type=int, nargs="+", default=[9, 3], help="pixels per cell (9: the paper)"
    )
    speed.add_argument("--levels", nargs="+", default=list(LEVEL_IDS), choices=LEVEL_IDS)
    speed.add_argument(
        "--num-envs", type=int, default=0, help="also time wanderlust.envs.make(id, N) (0: no)"
    )
    speed.add_argument("--markdown", help="also write the table to this file")
    speed.set_defaults(func=run_speed)

    run = commands.add_parser("run", help="train the memory agents (resumable grid)")
    report = commands.add_parser("report", help="the memory agents' table and curves")
    for command, func in ((run, run_agents), (report, report_agents)):
        command.add_argument("--levels", default="2_delay16,4_delay16", help="comma-separated, e.g. 2_delay16,8_delay48")
        command.add_argument("--memories", default=",".join(MEMORIES))
        command.add_argument("--seeds", default="0,1,2")
        command.add_argument("--frames", type=parse_frames, default=500_000)
        add_grid_options(command, "ballet")
        command.set_defaults(func=func)
    report.add_argument("--random-episodes", type=int, default=2000, help="episodes of the random-actions row")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
