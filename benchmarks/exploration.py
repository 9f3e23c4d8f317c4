"""The exploration grid: bonuses × environments × seeds at a frame budget, resumable across sessions.

Each cell of the grid is one `wanderlust train` run under the environment's published preset (the
RIDE paper's settings on MiniGrid, the SND seed's on Atari) with `--bonus` and `--seed` set. Runs
are subprocesses, `--workers` at a time, one torch thread each. MiniGrid runs use the gymnasium
backend, on which MultiRoom reports the agent's room (envpool's MultiRoom does not).

Where runs and results go, and how a grid resumes: see grid.py.

    python benchmarks/exploration.py run --suite minigrid --frames 3e6 --seeds 0,1 --workers 2
    python benchmarks/exploration.py run --suite montezuma --frames 2e6 --seeds 0
    python benchmarks/exploration.py report --suite minigrid     # prints the table, writes curves

The table gives, per environment and bonus: the final mean return (the mean episode return over the
last 10 % of the budget, averaged over seeds, with each seed's value), the frames until the mean
return (over the last 10 logged rows) first reaches 90 % of the task's maximum (per seed; "—" when it
never does), and, where the environment reports rooms, the rooms visited and the share of the bonus
earned in the room each episode starts in (on NoisyTV the noisy room).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

from grid import (
    Job,
    ROOT,
    add_grid_options,
    final_mean,
    finished_cells,
    frames_to_reach,
    last_value,
    millions,
    parse_frames,
    plot_return_curves,
    run_grid,
    run_mean,
)

MINIGRID_ENVS = {  # env id → (preset, the task's maximum return used for "frames to 90 %")
    "MiniGrid-MultiRoom-N7-S4-v0": ("ride_multiroom_n7s4", 0.78),
    "MiniGrid-KeyCorridorS3R3-v0": ("ride_keycorridor_s3r3", 0.9),
    "MiniGrid-MultiRoomNoisyTV-N7-S4-v0": ("ride_multiroom_noisytv", 0.78),
}
"""The maximum returns are the converged returns that the RIDE paper reports for its best agents
(SYSTEMS.md section 2): MiniGrid's return falls with episode length, so 1.0 is out of reach."""
MONTEZUMA_ENVS = {"ALE/MontezumaRevenge-v5": ("rnd_montezuma", 2500.0)}
"""2500 is the score of leaving the first rooms with every key used (the table reports scores and
rooms; the maximum only sets the "frames to 90 %" column)."""
SND_ATARI_PRESET = "snd_montezuma"
"""The SND bonuses train on Atari under the SND seed's own preset: rnd_montezuma's PPO, wrappers and
warm-up with one pass over the rollout per bonus update (RND makes four)."""
SUITE_BONUSES = {"montezuma": ["rnd", "snd-v"]}
PUBLISHED = {
    # RIDE paper (Raileanu & Rocktäschel 2020; SYSTEMS.md section 2): final mean return and, in
    # brackets, the frames it took to converge, with IMPALA over 30-100 M frames.
    ("MiniGrid-MultiRoom-N7-S4-v0", "none"): "0",
    ("MiniGrid-MultiRoom-N7-S4-v0", "ride"): "0.78 (≈5 M)",
    ("MiniGrid-MultiRoom-N7-S4-v0", "count"): "0.78 (≈5 M)",
    ("MiniGrid-MultiRoom-N7-S4-v0", "rnd"): "0.78 (≈12 M)",
    ("MiniGrid-MultiRoom-N7-S4-v0", "icm"): "0.78 (≈14 M)",
    ("MiniGrid-KeyCorridorS3R3-v0", "none"): "0",
    ("MiniGrid-KeyCorridorS3R3-v0", "ride"): "0.9 (≈10 M)",
    ("MiniGrid-KeyCorridorS3R3-v0", "count"): "0.9 (≈13 M)",
    ("MiniGrid-KeyCorridorS3R3-v0", "rnd"): "0.9 (≈20 M)",
    ("MiniGrid-KeyCorridorS3R3-v0", "icm"): "0",
    ("MiniGrid-MultiRoomNoisyTV-N7-S4-v0", "none"): "0",
    ("MiniGrid-MultiRoomNoisyTV-N7-S4-v0", "ride"): "0.78",
    ("MiniGrid-MultiRoomNoisyTV-N7-S4-v0", "icm"): "≈0.3 (stalls)",
    # SND paper (arXiv 2302.11563): mean of the maximum score over 128 M steps.
    ("ALE/MontezumaRevenge-v5", "rnd"): "6689 (128 M)",
    ("ALE/MontezumaRevenge-v5", "snd-v"): "21565 (128 M)",
}
"""Published results for the cells of the grid (SYSTEMS.md); cells without one show "—"."""
KEPT_COLUMNS = (
    "frames", "episode_return", "episode_length", "episodes", "intrinsic_reward", "sps",
    "rooms", "episode_rooms", "intrinsic_share_start_room",
)
"""The columns of metrics.csv that a finished run keeps in git (the report reads nothing else)."""


def suite_envs(suite: str) -> dict[str, tuple[str, float]]:
    return MINIGRID_ENVS if suite == "minigrid" else MONTEZUMA_ENVS


def all_bonuses() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from wanderlust.intrinsic import BONUSES

    return list(BONUSES)


def jobs_for(args: argparse.Namespace) -> list[Job]:
    envs = suite_envs(args.suite)
    env_ids = args.envs.split(",") if args.envs else list(envs)
    bonuses = args.bonuses.split(",") if args.bonuses else SUITE_BONUSES.get(args.suite, all_bonuses())
    seeds = [int(s) for s in args.seeds.split(",")]
    # Seed-major order: the first seed of every cell finishes before any second seed starts, so a
    # grid cut short still compares every bonus.
    return [Job(e, preset_for(e, b), b, s, args.frames, flags_for(e, b)) for s in seeds for e in env_ids for b in bonuses]


def preset_for(env_id: str, bonus: str) -> str:
    if env_id.startswith("ALE/") and bonus.startswith("snd"):
        return SND_ATARI_PRESET
    return {**MINIGRID_ENVS, **MONTEZUMA_ENVS}[env_id][0]


def flags_for(env_id: str, bonus: str) -> tuple[str, ...]:
    flags = ("--bonus", bonus)
    if env_id.startswith("MiniGrid-"):  # the backend on which MultiRoom reports rooms
        flags += ("--backend", "gymnasium")
    else:  # an Atari iteration takes minutes: checkpoint each one, so a stopped run loses little
        flags += ("--set", "log.checkpoint_interval=1")
    return flags


def run(args: argparse.Namespace) -> int:
    return run_grid(jobs_for(args), args.workers, args.hours, args.runs_dir, args.results_dir, KEPT_COLUMNS)


# --------------------------------------------------------------------------- reporting
def report(args: argparse.Namespace) -> int:
    jobs = jobs_for(args)
    envs = suite_envs(args.suite)
    cells = finished_cells(jobs, args.results_dir)
    lines = [
        f"Budget {millions(args.frames)} frames per run; seeds {args.seeds}; final return = mean episode return over "
        "the last 10 % of frames.",
        "",
        "| environment | bonus | seeds | final return (mean; per seed) | published | frames to 90 % of max (per seed) "
        "| rooms per episode, last 10 % (per seed) | rooms ever (per seed) | bonus share in start room |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (env_id, bonus), runs in cells.items():
        finals = [final_mean(rows, "episode_return", job.frames) for job, rows in runs]
        reach = [frames_to_reach(rows, 0.9 * envs[env_id][1]) for _, rows in runs]
        rooms = [last_value(rows, "rooms") for _, rows in runs]
        episode_rooms = [final_mean(rows, "episode_rooms", job.frames) for job, rows in runs]
        share = [run_mean(rows, "intrinsic_share_start_room") for _, rows in runs]
        per_seed = ", ".join(f"{value:.2f}" for value in finals)
        lines.append(
            f"| {env_id} | {bonus} | {len(runs)} | {statistics.fmean(finals):.2f}; {per_seed} "
            f"| {PUBLISHED.get((env_id, bonus), '—')} | {', '.join(millions(r) for r in reach)} "
            f"| {', '.join('—' if math.isnan(r) else f'{r:.2f}' for r in episode_rooms)} "
            f"| {', '.join('—' if math.isnan(r) else str(int(r)) for r in rooms)} "
            f"| {'—' if all(math.isnan(s) for s in share) else f'{statistics.fmean(share):.2f}'} |"
        )
    table = "\n".join(lines)
    print(table)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{args.suite}_table.md").write_text(table + "\n")
    plot_return_curves(cells, args.results_dir, "episode return (mean of last 10 rows)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--suite", choices=["minigrid", "montezuma"], default="minigrid")
    parser.add_argument("--envs", help="comma-separated env ids (default: the suite's)")
    parser.add_argument("--bonuses", help="comma-separated bonuses (default: every registered bonus)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--frames", type=parse_frames, default=3_000_000)
    add_grid_options(parser, "exploration")
    parser.set_defaults(results_dir=None)  # then per suite: benchmarks/results/exploration/SUITE
    args = parser.parse_args(argv)
    if args.results_dir is None:
        args.results_dir = ROOT / "benchmarks/results/exploration" / args.suite
    return run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
