"""benchmarks/exploration.py and its grid.py: the grid's order, its commands, resuming, and the numbers
of its table."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import sys
from pathlib import Path

import pytest
from fakes import fake_training

pytestmark = pytest.mark.unit

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their shared grid.py as the script folder is on the path
_SPEC = importlib.util.spec_from_file_location("exploration_benchmark", BENCHMARKS / "exploration.py")
exploration = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(exploration)
grid = sys.modules["grid"]

NOISY = "MiniGrid-MultiRoomNoisyTV-N7-S4-v0"


def args(tmp_path: Path, **overrides) -> argparse.Namespace:
    values = {
        "suite": "minigrid", "envs": None, "bonuses": "none,ride", "seeds": "0,1", "frames": 1000,
        "workers": 1, "hours": 0.0, "runs_dir": tmp_path / "runs", "results_dir": tmp_path / "results",
    }
    return argparse.Namespace(**{**values, **overrides})


def test_jobs_run_every_cell_of_the_first_seed_before_any_second_seed(tmp_path):
    jobs = exploration.jobs_for(args(tmp_path))
    assert len(jobs) == 3 * 2 * 2
    seeds = [job.seed for job in jobs]
    assert seeds == sorted(seeds)
    assert {(job.env_id, job.variant) for job in jobs if job.seed == 0} == {
        (env, bonus) for env in exploration.MINIGRID_ENVS for bonus in ("none", "ride")
    }
    assert all(job.flags == ("--bonus", job.variant, "--backend", "gymnasium") for job in jobs)


def test_a_job_trains_with_its_preset_on_gymnasium_then_resumes_and_keeps_its_result(tmp_path, monkeypatch):
    fake_call, calls = fake_training(["frames", "episode_return", "policy_loss", "rooms"], [1000, 0.5, 0.1, 3])

    monkeypatch.setattr(grid.subprocess, "call", fake_call)
    job = exploration.jobs_for(args(tmp_path, envs=NOISY, bonuses="ride", seeds="0", frames=1000))[0]
    runs, results = tmp_path / "runs", tmp_path / "results"
    columns = exploration.KEPT_COLUMNS
    assert "finished" in grid.run_job(job, runs, results, columns)
    command = calls[0]
    assert command[command.index("--preset") + 1] == "ride_multiroom_noisytv"
    assert command[command.index("--backend") + 1] == "gymnasium"
    kept = list(csv.DictReader(open(results / f"{job.name}.csv")))
    assert kept == [{"frames": "1000", "episode_return": "0.5", "rooms": "3"}]  # only the columns the report reads
    assert "done before" in grid.run_job(job, runs, results, columns)
    (results / f"{job.name}.csv").unlink()  # a fresh checkout: the run directory holds a checkpoint
    grid.run_job(job, runs, results, columns)
    assert calls[-1][3:5] == ["train", "--resume"]


def test_montezuma_runs_each_bonus_under_its_seed_preset_and_checkpoints_every_iteration(tmp_path, monkeypatch):
    fake_call, calls = fake_training(["frames", "episode_return", "rooms"], [1000, 0.0, 1])
    monkeypatch.setattr(grid.subprocess, "call", fake_call)
    jobs = exploration.jobs_for(args(tmp_path, suite="montezuma", bonuses=None, seeds="0"))
    assert {job.variant: job.preset for job in jobs} == {"rnd": "rnd_montezuma", "snd-v": "snd_montezuma"}
    for job in jobs:
        grid.run_job(job, tmp_path / "runs", tmp_path / "results", exploration.KEPT_COLUMNS)
        command = calls[-1]
        assert command[command.index("--preset") + 1] == job.preset
        assert command[command.index("--bonus") + 1] == job.variant
        # the job's own --set comes after the grid's default, so it is the one that holds
        settings = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
        assert settings[-1] == "log.checkpoint_interval=1"
        assert "log.checkpoint_interval=20" in settings


def test_frames_to_reach_needs_ten_rows_whose_mean_reaches_the_target():
    rows = [{"frames": 100.0 * i, "episode_return": 1.0 if i >= 5 else 0.0} for i in range(20)]
    # the mean of the last 10 rows first reaches 0.5 when 5 of them are 1
    assert grid.frames_to_reach(rows, 0.5) == 900.0
    assert math.isnan(grid.frames_to_reach(rows, 1.01))


def test_report_puts_each_cell_beside_its_published_result(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    for seed, final in ((0, 0.2), (1, 0.4)):
        job = grid.Job(NOISY, "ride_multiroom_noisytv", "ride", seed, 1000)  # flags do not enter the name
        with open(results / f"{job.name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["frames", "episode_return", "episode_rooms", "rooms", "intrinsic_share_start_room"])
            writer.writerow([100, 0.0, 1.0, 1, 0.9])
            writer.writerow([950, final, 2.0 + seed, 3, 0.5])
    assert exploration.report(args(tmp_path, envs=NOISY, bonuses="ride")) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {NOISY} | ride"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "2"
    assert cells[3] == "0.30; 0.20, 0.40"  # the last 10 % of the budget: the row at 950 frames
    assert cells[4] == exploration.PUBLISHED[(NOISY, "ride")]
    assert cells[6] == "2.00, 3.00" and cells[7] == "3, 3" and cells[8] == "0.70"
    assert (results / "minigrid_table.md").read_text().count("\n") == 5
    assert (results / f"{NOISY}.png").stat().st_size > 0


def test_ballet_grid_compares_the_memories_at_equal_size(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("ballet_benchmark", BENCHMARKS / "ballet.py")
    ballet_benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ballet_benchmark)
    options = argparse.Namespace(
        levels="2_delay16", memories="hcam,lstm,window", seeds="0,1", frames=1000, results_dir=tmp_path,
        random_episodes=200,
    )
    jobs = ballet_benchmark.agent_jobs(options)
    assert [job.seed for job in jobs] == [0, 0, 0, 1, 1, 1]
    assert jobs[1].flags == ("--env", "wanderlust/Ballet-2_delay16-v0", "--memory", "lstm")
    assert all(job.preset == "hcam_ballet" for job in jobs)
    for job, success in zip(jobs, (1.0, 0.5, 0.5, 0.0, 0.5, 0.5)):
        with open(tmp_path / f"{job.name}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([["frames", "episode_return", "episode_length"], [950, success, 90 + job.seed]])
    assert ballet_benchmark.report_agents(options) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| wanderlust/")]
    random_row, *rows = ([cell.strip() for cell in row.strip("|").split("|")] for row in rows)
    # Random actions walk into one of the two dancers in nearly every episode: chance is about 1/2.
    assert random_row[1] == "random actions" and abs(float(random_row[4]) - 0.5) < 0.1
    assert float(random_row[5]) > 62  # the watch phase alone takes 62 steps
    hcam = rows[0]
    assert hcam[1] == "hcam" and hcam[4] == "0.50; 1.00, 0.00" and hcam[5] == "90.5"
    sizes = [int(row[2].replace(",", "")) for row in rows]
    assert max(sizes) <= 1.25 * min(sizes)


def test_run_names_keep_budgets_apart():
    from grid import Job

    names = {Job("MiniGrid-Empty-5x5-v0", "", "rnd", 0, frames).name for frames in (500, 700, 3000, 3_000_000)}
    assert len(names) == 4
    assert Job("MiniGrid-Empty-5x5-v0", "", "rnd", 0, 3_000_000).name.endswith("__s0__3000k")
