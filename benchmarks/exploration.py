"""The exploration grid: bonuses × environments × seeds at a frame budget, resumable across sessions.

Each cell of the grid is one `wanderlust train` run under the environment's published preset (the
RIDE paper's settings on MiniGrid, the SND seed's on Atari) with `--bonus` and `--seed` set. Runs
are subprocesses, `--workers` at a time, one torch thread each. MiniGrid runs use the gymnasium
backend, on which MultiRoom reports the agent's room (envpool's MultiRoom does not).

Where things go:
- `--runs-dir` (default benchmarks/runs/exploration, not in git): whole run directories with their
  checkpoints. A run stopped part-way (a session ending) continues from its last checkpoint with
  `--resume` the next time the grid runs.
- `--results-dir` (default benchmarks/results/exploration, in git): one CSV per finished run, the
  columns of its metrics.csv that the report reads. A run whose CSV is there is done and is skipped,
  so the grid survives a fresh checkout.

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
import csv
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


@dataclass(frozen=True)
class Job:
    env_id: str
    preset: str
    bonus: str
    seed: int
    frames: int

    @property
    def name(self) -> str:
        return f"{self.env_id.replace('/', '-')}__{self.bonus}__s{self.seed}__{self.frames // 1000}k"


def suite_envs(suite: str) -> dict[str, tuple[str, float]]:
    return MINIGRID_ENVS if suite == "minigrid" else MONTEZUMA_ENVS


def all_bonuses() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from wanderlust.intrinsic import BONUSES

    return list(BONUSES)


def parse_frames(text: str) -> int:
    return int(float(text))


def jobs_for(args: argparse.Namespace) -> list[Job]:
    envs = suite_envs(args.suite)
    env_ids = args.envs.split(",") if args.envs else list(envs)
    bonuses = args.bonuses.split(",") if args.bonuses else SUITE_BONUSES.get(args.suite, all_bonuses())
    seeds = [int(s) for s in args.seeds.split(",")]
    # Seed-major order: the first seed of every cell finishes before any second seed starts, so a
    # grid cut short still compares every bonus.
    return [Job(e, envs[e][0], b, s, args.frames) for s in seeds for e in env_ids for b in bonuses]


# --------------------------------------------------------------------------- running
def run_job(job: Job, runs_dir: Path, results_dir: Path, log_dir: Path) -> str:
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
            "train", "--preset", job.preset, "--bonus", job.bonus, "--seed", str(job.seed),
            "--frames", str(job.frames), "--run-dir", str(run_dir), "--set", "torch_threads=1",
            "--set", "log.checkpoint_interval=20",
        ]
        if job.env_id.startswith("MiniGrid-"):  # the backend on which MultiRoom reports rooms
            command += ["--backend", "gymnasium"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    log_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_dir / f"{job.name}.log", "a") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    minutes = (time.perf_counter() - start) / 60
    if code != 0:
        return f"{job.name}: FAILED (exit {code}, {minutes:.1f} min; see {log_dir / (job.name + '.log')})"
    keep_result(run_dir / "metrics.csv", result)
    return f"{job.name}: finished in {minutes:.1f} min"


def keep_result(metrics: Path, result: Path) -> None:
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in KEPT_COLUMNS if rows and c in rows[0]]
    result.parent.mkdir(parents=True, exist_ok=True)
    tmp = result.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns])
    os.replace(tmp, result)


def run(args: argparse.Namespace) -> int:
    jobs = jobs_for(args)
    deadline = time.time() + args.hours * 3600 if args.hours else math.inf
    pending = [j for j in jobs if not (args.results_dir / f"{j.name}.csv").exists()]
    print(f"{len(jobs)} runs in the grid, {len(jobs) - len(pending)} done, {len(pending)} to run", flush=True)

    def guarded(job: Job) -> str:
        if time.time() > deadline:
            return f"{job.name}: not started (--hours reached)"
        return run_job(job, args.runs_dir, args.results_dir, args.runs_dir / "logs")

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        for message in pool.map(guarded, pending):
            print(message, flush=True)
    return 0


# --------------------------------------------------------------------------- reporting
def read_rows(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(handle)]


def final_mean(rows: list[dict[str, float]], column: str, budget: float) -> float:
    """The mean of a column over the rows of the last 10 % of the budget (NaN cells skipped)."""
    tail = [r[column] for r in rows if r["frames"] >= 0.9 * budget and not math.isnan(r.get(column, math.nan))]
    return statistics.fmean(tail) if tail else math.nan


def final_return(rows: list[dict[str, float]], budget: float) -> float:
    return final_mean(rows, "episode_return", budget)


def frames_to_reach(rows: list[dict[str, float]], target: float, window: int = 10) -> float:
    returns = [(r["frames"], r["episode_return"]) for r in rows if not math.isnan(r["episode_return"])]
    for i in range(len(returns)):
        recent = [value for _, value in returns[max(0, i - window + 1) : i + 1]]
        if len(recent) == window and statistics.fmean(recent) >= target:
            return returns[i][0]
    return math.nan


def run_mean(rows: list[dict[str, float]], column: str) -> float:
    values = [r[column] for r in rows if column in r and not math.isnan(r[column])]
    return statistics.fmean(values) if values else math.nan


def last_value(rows: list[dict[str, float]], column: str) -> float:
    values = [r[column] for r in rows if column in r and not math.isnan(r[column])]
    return values[-1] if values else math.nan


def millions(frames: float) -> str:
    return "—" if math.isnan(frames) else f"{frames / 1e6:.2f} M"


def report(args: argparse.Namespace) -> int:
    jobs = jobs_for(args)
    envs = suite_envs(args.suite)
    cells: dict[tuple[str, str], list[tuple[Job, list[dict[str, float]]]]] = {}
    for job in jobs:
        path = args.results_dir / f"{job.name}.csv"
        if path.exists():
            cells.setdefault((job.env_id, job.bonus), []).append((job, read_rows(path)))
    lines = [
        f"Budget {millions(args.frames)} frames per run; seeds {args.seeds}; final return = mean episode return over "
        "the last 10 % of frames.",
        "",
        "| environment | bonus | seeds | final return (mean; per seed) | published | frames to 90 % of max (per seed) "
        "| rooms per episode, last 10 % (per seed) | rooms ever (per seed) | bonus share in start room |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (env_id, bonus), runs in cells.items():
        finals = [final_return(rows, job.frames) for job, rows in runs]
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
    plot_curves(cells, args.results_dir)
    return 0


def plot_curves(cells: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for env_id in sorted({env_id for env_id, _ in cells}):
        figure, axis = plt.subplots(figsize=(7, 4.5))
        for (cell_env, bonus), runs in sorted(cells.items()):
            if cell_env != env_id:
                continue
            for index, (job, rows) in enumerate(runs):
                points = [(r["frames"], r["episode_return"]) for r in rows if not math.isnan(r["episode_return"])]
                smoothed = [statistics.fmean(v for _, v in points[max(0, i - 9) : i + 1]) for i in range(len(points))]
                axis.plot(
                    [f / 1e6 for f, _ in points], smoothed, label=bonus if index == 0 else None,
                    color=f"C{sorted({b for e, b in cells if e == env_id}).index(bonus) % 10}", alpha=0.8,
                    linestyle="-" if index == 0 else "--",
                )
        axis.set_xlabel("frames (M)")
        axis.set_ylabel("episode return (mean of last 10 rows)")
        axis.set_title(f"{env_id} (solid: first seed, dashed: others)")
        axis.legend(fontsize=7, ncol=2)
        figure.tight_layout()
        figure.savefig(out_dir / f"{env_id.replace('/', '-')}.png", dpi=100)
        plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--suite", choices=["minigrid", "montezuma"], default="minigrid")
    parser.add_argument("--envs", help="comma-separated env ids (default: the suite's)")
    parser.add_argument("--bonuses", help="comma-separated bonuses (default: every registered bonus)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--frames", type=parse_frames, default=3_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hours", type=float, default=0.0, help="start no new run after this many hours")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "benchmarks/runs/exploration")
    parser.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.results_dir is None:
        args.results_dir = ROOT / "benchmarks/results/exploration" / args.suite
    return run(args) if args.command == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
