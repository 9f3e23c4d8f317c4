"""benchmarks/thick.py: the grid's order and flags, resuming, the report's numbers, and the cache of
the replay analysis."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import fake_training

from wanderlust.run.analyze import ChangeReport

pytestmark = pytest.mark.unit

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their shared grid.py as the script folder is on the path
_SPEC = importlib.util.spec_from_file_location("thick_benchmark", BENCHMARKS / "thick.py")
thick = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(thick)
grid = sys.modules["grid"]

PINPAD = "wanderlust/PinPad-three-v0"
DOORKEY = "MiniGrid-DoorKey-5x5-v0"


def args(tmp_path: Path, **overrides) -> argparse.Namespace:
    values = {
        "envs": f"{PINPAD},{DOORKEY}", "world_models": "flat,thick", "seeds": "0,1,2", "frames": 1000,
        "preset": "thick_cpu", "workers": 1, "hours": 0.0, "runs_dir": tmp_path / "runs",
        "results_dir": tmp_path / "results",
    }
    return argparse.Namespace(**{**values, **overrides})


def write_result(results: Path, job, header: list[str], rows: list[list[float]]) -> None:
    results.mkdir(parents=True, exist_ok=True)
    with open(results / f"{job.name}.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])


def table_row(output: str, env_id: str, world_model: str) -> list[str]:
    row = next(line for line in output.splitlines() if line.startswith(f"| {env_id} | {world_model} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_defaults_and_seed_major_order_with_env_and_world_model_flags(tmp_path):
    parsed = thick.build_parser().parse_args(["run"])
    assert parsed.envs.split(",") == [PINPAD, DOORKEY] and parsed.world_models == "flat,thick"
    assert parsed.seeds == "0,1,2" and parsed.frames == 100_000 and parsed.preset == "thick_cpu"
    assert parsed.runs_dir.parts[-3:] == ("benchmarks", "runs", "thick")
    assert parsed.results_dir.parts[-3:] == ("benchmarks", "results", "thick")
    jobs = thick.jobs_for(args(tmp_path))
    assert len(jobs) == 2 * 2 * 3
    assert [job.seed for job in jobs] == [0] * 4 + [1] * 4 + [2] * 4
    assert [(job.env_id, job.variant) for job in jobs[:4]] == [
        (PINPAD, "flat"), (PINPAD, "thick"), (DOORKEY, "flat"), (DOORKEY, "thick"),
    ]
    assert all(job.preset == "thick_cpu" and job.frames == 1000 for job in jobs)
    assert all(job.flags == ("--env", job.env_id, "--world-model", job.variant) for job in jobs)


def test_a_job_trains_with_its_preset_and_flags_then_resumes(tmp_path, monkeypatch):
    fake_call, calls = fake_training(["frames", "episode_return", "context_changes", "sparse_loss", "kl_loss", "updates"], [1000, 0.5, 2.0, 0.1, 3.0, 7])

    monkeypatch.setattr(grid.subprocess, "call", fake_call)
    job = thick.jobs_for(args(tmp_path, envs=DOORKEY, world_models="thick", seeds="1"))[0]
    runs, results = tmp_path / "runs", tmp_path / "results"
    assert "finished" in grid.run_job(job, runs, results, thick.KEPT_COLUMNS)
    command = calls[0]
    assert command[command.index("--preset") + 1] == "thick_cpu"
    assert command[command.index("--env") + 1] == DOORKEY
    assert command[command.index("--world-model") + 1] == "thick"
    assert command[command.index("--seed") + 1] == "1" and command[command.index("--frames") + 1] == "1000"
    kept = list(csv.DictReader(open(results / f"{job.name}.csv")))
    assert kept == [{"frames": "1000", "episode_return": "0.5", "context_changes": "2.0", "sparse_loss": "0.1",
                     "updates": "7"}]  # kl_loss is not read by the report
    assert "done before" in grid.run_job(job, runs, results, thick.KEPT_COLUMNS)
    (results / f"{job.name}.csv").unlink()  # a fresh checkout: the run directory holds a checkpoint
    grid.run_job(job, runs, results, thick.KEPT_COLUMNS)
    assert calls[-1][3:5] == ["train", "--resume"]


def test_report_numbers_from_results_and_cache_with_a_flat_run_and_a_missing_seed(tmp_path, capsys, monkeypatch):
    def no_replay(*_, **__):
        pytest.fail("a cached or run-less job is not replayed")

    monkeypatch.setattr(thick.replay, "load_run", no_replay)
    options = args(tmp_path, envs=DOORKEY, seeds="0,1,2")
    results = options.results_dir
    jobs = {(job.variant, job.seed): job for job in thick.jobs_for(options)}
    header = ["frames", "episode_return", "context_changes", "sparse_loss", "model_loss"]
    for seed, final, changes in ((0, 0.4, 3.0), (2, 0.8, 5.0)):  # seed 1 never finished
        rows = [[100, 0.0, 20.0, 1.0, 9.0], [950, final, changes, 0.2, 4.0]]
        write_result(results, jobs["thick", seed], header, rows)
    for seed, final in ((0, 0.1), (1, 0.3), (2, 0.2)):  # a flat run logs no context columns
        rows = [[100, 0.0, 9.0], [950, final, 4.0]]
        write_result(results, jobs["flat", seed], ["frames", "episode_return", "model_loss"], rows)
    (results / f"{jobs['thick', 0].name}.changes.json").write_text(json.dumps(
        {"checkpoint_frames": 1000, "episodes": 5, "window": 1, "changes_per_episode": 4.0,
         "events_per_episode": 2.0, "precision": 0.5, "recall": None}
    ))

    assert thick.report(options) == 0
    output = capsys.readouterr().out
    header_line = next(line for line in output.splitlines() if line.startswith("| env |"))
    assert "training changes per 64-step sequence" in header_line  # thick_cpu's batch_length
    flat = table_row(output, DOORKEY, "flat")
    assert flat[2] == "3 (0, 1, 2)"
    assert flat[3] == "0.20; 0.10, 0.30, 0.20"  # the last 10 % of the budget: the row at 950 frames
    assert flat[4:] == ["—"] * 5
    thick_row = table_row(output, DOORKEY, "thick")
    assert thick_row[2] == "2 (0, 2)"
    assert thick_row[3] == "0.60; 0.40, 0.80"
    assert thick_row[4] == "4.00; 3.00, 5.00"
    # seed 2 has neither a cache nor a run directory; seed 0's recall is null (no events seen)
    assert thick_row[5:] == ["4.00; 4.00, —", "2.00; 2.00, —", "0.50; 0.50, —", "—"]
    assert (results / "thick_table.md").read_text().count("\n") == 6
    assert (results / f"{DOORKEY}.png").stat().st_size > 0
    assert not (results / f"{jobs['thick', 2].name}.changes.json").exists()


def test_report_replays_a_finished_thick_run_once_and_caches_it(tmp_path, capsys, monkeypatch):
    options = args(tmp_path, envs=PINPAD, world_models="thick", seeds="0")
    job = thick.jobs_for(options)[0]
    write_result(options.results_dir, job, ["frames", "episode_return", "context_changes"], [[1000, 1.0, 2.0]])
    run_dir = options.runs_dir / job.name
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "frames_000000001000.pt").write_text("x")
    loaded, asked = [], []

    class FakeRun:
        frames = 1000

        def __init__(self, path):
            self.path, self.closed = path, False
            loaded.append(self)

        def close(self):
            self.closed = True

    def fake_changes(run, episodes, window):
        asked.append((run.path, episodes, window))
        # two episodes: changes at 3 and 9 against events at 4 and 20; no change and no event
        return ChangeReport([np.array([3, 9]), np.array([], dtype=int)], [np.array([4, 20]), np.array([], dtype=int)],
                            [30, 10], window, [])

    monkeypatch.setattr(thick.replay, "load_run", FakeRun)
    monkeypatch.setattr(thick.analyze, "context_changes", fake_changes)
    assert thick.report(options) == 0
    assert asked == [(run_dir, 5, 1)] and loaded[0].closed
    cached = json.loads((options.results_dir / f"{job.name}.changes.json").read_text())
    assert cached == {"checkpoint_frames": 1000, "episodes": 5, "window": 1, "changes_per_episode": 1.0,
                      "events_per_episode": 1.0, "precision": 0.5, "recall": 0.5}
    assert table_row(capsys.readouterr().out, PINPAD, "thick")[5:] == ["1.00; 1.00", "1.00; 1.00", "0.50; 0.50",
                                                                       "0.50; 0.50"]
    thick.report(options)  # from the cache: no second replay
    assert len(asked) == 1


def test_nan_precision_is_cached_as_null_and_read_back_as_missing(tmp_path, monkeypatch):
    options = args(tmp_path, envs=PINPAD, world_models="thick", seeds="0")
    job = thick.jobs_for(options)[0]
    (options.runs_dir / job.name / "checkpoints").mkdir(parents=True)
    (options.runs_dir / job.name / "checkpoints" / "frames_000000001000.pt").write_text("x")
    options.results_dir.mkdir()
    empty = ChangeReport([np.array([], dtype=int)], [np.array([5])], [10], 1, [])
    run = type("Run", (), {"frames": 10, "close": lambda self: None})()
    monkeypatch.setattr(thick.replay, "load_run", lambda path: run)
    monkeypatch.setattr(thick.analyze, "context_changes", lambda run, episodes, window: empty)
    computed = thick.replayed_changes(job, options.runs_dir, options.results_dir)
    assert math.isnan(computed["precision"]) and computed["recall"] == 0.0
    assert json.loads((options.results_dir / f"{job.name}.changes.json").read_text())["precision"] is None
    assert math.isnan(thick.replayed_changes(job, options.runs_dir, options.results_dir)["precision"])


def test_update_speed_times_each_env_and_world_model(capsys):
    thick.main(["update-speed", "--envs", DOORKEY, "--preset", "thick_cpu,debug", "--updates", "2", "--prefill", "70"])
    out = capsys.readouterr().out
    for world_model in ("flat", "thick"):
        median, spread = table_row(out, DOORKEY, world_model)[2].split(" ", 1)
        assert float(median) > 0 and spread.startswith("(") and spread.endswith(")")
