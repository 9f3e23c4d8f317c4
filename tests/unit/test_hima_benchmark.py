"""benchmarks/hima.py run and report: the grid of agents × environment seeds × agent seeds on the
four-rooms scenario, the flags each agent trains with, resuming, and the numbers of the report."""

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
_SPEC = importlib.util.spec_from_file_location("hima_benchmark", BENCHMARKS / "hima.py")
hima = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(hima)
grid = sys.modules["grid"]

AGENTS = "hima,hima-no-dreaming,hima-no-empowerment,qlearning,ppo-rnd"


def options(tmp_path: Path, **overrides) -> argparse.Namespace:
    values = {
        "agents": AGENTS, "env_seeds": "0,1", "seeds": "0,1", "frames": 10_000, "workers": 1, "hours": 0.0,
        "runs_dir": tmp_path / "runs", "results_dir": tmp_path / "results",
    }
    return argparse.Namespace(**{**values, **overrides})


def test_every_agent_runs_on_the_first_pair_of_seeds_before_any_other(tmp_path):
    jobs = hima.scenario_jobs(options(tmp_path))
    assert len(jobs) == 5 * 2 * 2
    assert len({job.name for job in jobs}) == len(jobs)
    pairs = [(next(f for f in job.flags if f.startswith("env.options.floor_seed")), job.seed) for job in jobs]
    assert set(pairs[:5]) == {("env.options.floor_seed=0", 0)}
    assert [job.variant.split("__")[0] for job in jobs[:5]] == AGENTS.split(",")
    assert [job.seed for job in jobs] == sorted(job.seed for job in jobs)  # agent seed outermost
    assert all(job.env_id == hima.SCENARIO_ENV and job.preset == "" for job in jobs)
    assert "__f1__s0__" in jobs[5].name


@pytest.mark.parametrize(
    "agent, algo, bonus, num_envs, dreaming, empowerment",
    [
        ("hima", "hima", "none", 1, True, True),
        ("hima-no-dreaming", "hima", "none", 1, False, True),
        ("hima-no-empowerment", "hima", "none", 1, True, False),
        ("qlearning", "qlearning", "none", 1, True, True),
        ("ppo-rnd", "ppo", "rnd", 8, True, True),
    ],
)
def test_each_agents_flags_train_it_on_its_floor_seed_with_the_budget_per_env(
    tmp_path, monkeypatch, agent, algo, bonus, num_envs, dreaming, empowerment
):
    from wanderlust.run import cli
    from wanderlust.run import train as train_module

    job = hima.scenario_job(agent, env_seed=2, seed=1, budget=10_000)
    assert job.frames == 10_000 * num_envs
    configs = []
    monkeypatch.setattr(train_module, "_run", lambda config, run_dir, state: configs.append(config))
    command = ["train", *job.flags, "--seed", str(job.seed), "--frames", str(job.frames), "--run-dir", str(tmp_path / "run")]
    assert cli.main(command) == 0
    config = configs[0]
    assert (config.algo, config.bonus, config.env.num_envs) == (algo, bonus, num_envs)
    assert config.env.id == "wanderlust/GridWorld-FourRooms9x9-Scenario-v0"
    assert config.env.options == {"floor_seed": 2}
    assert (config.hima.dreaming, config.hima.empowerment) == (dreaming, empowerment)
    assert (config.seed, config.frames) == (1, 10_000 * num_envs)
    assert config.stop_at_scenario_end


def test_a_job_trains_without_a_preset_then_resumes_and_keeps_its_columns(tmp_path, monkeypatch):
    fake_call, calls = fake_training(["frames", "episode_return", "goals_reached", "scenario_steps", "dreams", "memory_segments"], [128, 0.5, 12.0, "", 1.0, 300])

    monkeypatch.setattr(grid.subprocess, "call", fake_call)
    job = hima.scenario_jobs(options(tmp_path, agents="hima", env_seeds="1", seeds="0"))[0]
    runs, results = tmp_path / "runs", tmp_path / "results"
    assert "finished" in grid.run_job(job, runs, results, hima.KEPT_COLUMNS)
    command = calls[0]
    assert "--preset" not in command
    assert command[command.index("--algo") + 1] == "hima"
    assert command[command.index("--frames") + 1] == "10000"
    assert "env.options.floor_seed=1" in command
    kept = list(csv.DictReader(open(results / f"{job.name}.csv")))
    assert kept == [{"frames": "128", "episode_return": "0.5", "goals_reached": "12.0", "scenario_steps": "", "dreams": "1.0"}]
    assert "done before" in grid.run_job(job, runs, results, hima.KEPT_COLUMNS)
    (results / f"{job.name}.csv").unlink()  # a fresh checkout: the run directory holds a checkpoint
    grid.run_job(job, runs, results, hima.KEPT_COLUMNS)
    assert calls[-1][3:5] == ["train", "--resume"]


def write_result(results: Path, agent: str, env_seed: int, seed: int, rows: list[tuple]) -> None:
    """rows: (frames, goals_reached, scenario_steps), "" for an empty cell."""
    job = hima.scenario_job(agent, env_seed, seed, 10_000)
    results.mkdir(parents=True, exist_ok=True)
    with open(results / f"{job.name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frames", "episode_return", "goals_reached", "scenario_steps"])
        writer.writerows((frames, 0.5, goals, steps) for frames, goals, steps in rows)


def finished_at(steps: int, frames_per_step: int = 1) -> list[tuple]:
    """A run whose scenario finished after `steps` steps, then started the next one."""
    return [(1000 * frames_per_step, 500.0, ""), (steps * frames_per_step, 2900.0, steps), (10_000 * frames_per_step, 40.0, "")]


def table_row(out: str, agent: str) -> list[str]:
    row = next(line for line in out.splitlines() if line.startswith(f"| {agent} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_report_counts_finished_unfinished_and_missing_runs(tmp_path, capsys):
    results = tmp_path / "results"
    write_result(results, "hima", 0, 0, finished_at(4000))
    write_result(results, "hima", 0, 1, [(5000, 1000.0, ""), (8000, 1234.0, ""), (10_000, "", "")])
    write_result(results, "hima", 1, 0, finished_at(6000))
    write_result(results, "hima-no-dreaming", 0, 0, finished_at(5000))
    write_result(results, "hima-no-dreaming", 0, 1, finished_at(7000))
    write_result(results, "hima-no-dreaming", 1, 0, finished_at(8000))
    write_result(results, "hima-no-empowerment", 0, 0, finished_at(3000))
    write_result(results, "ppo-rnd", 0, 0, finished_at(9000, frames_per_step=8))
    argv = ["report", "--agents", AGENTS, "--env-seeds", "0,1", "--seeds", "0,1", "--frames", "1e4",
            "--results-dir", str(results)]
    assert hima.main(argv) == 0
    out = capsys.readouterr().out

    assert table_row(out, "hima") == ["hima", "3 of 4", "2", "6,000", "f0 s0: 4,000; f0 s1: > 10k (1,234 goals); f1 s0: 6,000"]
    assert table_row(out, "hima-no-dreaming")[1:4] == ["3 of 4", "3", "7,000"]
    assert table_row(out, "qlearning") == ["qlearning", "0 of 4", "0", "—", "—"]
    assert table_row(out, "ppo-rnd")[4] == "f0 s0: 9,000"  # its env's own steps, not the 8 envs' frames
    assert "ppo-rnd runs 8 envs" in out.splitlines()[0] and "steps of that one env" in out.splitlines()[0]
    claim = out.strip().splitlines()[-1]
    assert ("dreaming: holds, hima needs fewer steps than hima-no-dreaming (median 5,000 vs 6,500 over the 2 run "
            "pairs where both finished; fewer in 2 of them; only hima finished in 0, only hima-no-dreaming in 1)") in claim
    assert "empowerment: does not hold, hima needs no fewer steps than hima-no-empowerment (median 4,000 vs 3,000" in claim
    assert (results / "hima_table.md").read_text() == out
    assert (results / "hima_goals.png").stat().st_size > 0


def test_an_unfinished_majority_makes_the_median_exceed_the_budget(tmp_path, capsys):
    results = tmp_path / "results"
    write_result(results, "qlearning", 0, 0, finished_at(4000))
    write_result(results, "qlearning", 0, 1, [(10_000, 700.0, "")])
    write_result(results, "qlearning", 1, 0, [(10_000, 900.0, "")])
    assert hima.report_scenarios(options(tmp_path, agents="qlearning")) == 0
    assert table_row(capsys.readouterr().out, "qlearning")[1:4] == ["3 of 4", "1", "> 10k"]


def test_goals_curve_holds_the_most_goals_and_counts_a_finished_scenario_as_all_goals():
    rows = [
        {"frames": 800.0, "goals_reached": 10.0, "scenario_steps": math.nan},
        {"frames": 1600.0, "goals_reached": math.nan, "scenario_steps": math.nan},
        {"frames": 2400.0, "goals_reached": 5.0, "scenario_steps": math.nan},
        {"frames": 3200.0, "goals_reached": 2999.0, "scenario_steps": 390.0},
        {"frames": 4000.0, "goals_reached": 3.0, "scenario_steps": math.nan},
    ]
    steps, goals = hima.goals_curve(rows, envs_per_run=8)
    assert steps.tolist() == [0, 100, 200, 300, 400, 500]
    assert goals.tolist() == [0, 10, 10, 10, 3000, 3000]
    assert hima.steps_to_finish(rows) == 390.0
    assert hima.steps_to_finish(rows[:3]) == math.inf
    assert hima.goals_reached(rows[:3]) == 10.0


@pytest.mark.parametrize(
    "hima_steps, ablation_steps, verdict",
    [
        ({(0, 0): 100.0, (0, 1): 300.0}, {(0, 0): 200.0, (0, 1): 400.0}, "holds, hima needs fewer steps"),
        ({(0, 0): 200.0, (0, 1): 400.0}, {(0, 0): 100.0, (0, 1): 300.0}, "does not hold, hima needs no fewer steps"),
        ({(0, 0): 200.0}, {(0, 0): 200.0}, "does not hold, hima needs no fewer steps"),
        ({(0, 0): math.inf, (0, 1): 100.0}, {(0, 0): 50.0, (0, 1): math.inf}, "cannot be checked"),
    ],
)
def test_claim_sentence_compares_only_runs_where_both_finished(hima_steps, ablation_steps, verdict):
    sentence = hima.claim_sentence(
        {"hima": hima_steps, "hima-no-dreaming": ablation_steps, "hima-no-empowerment": ablation_steps}
    )
    assert sentence.count(verdict) == 2
    assert sentence.startswith("The paper's claim")


def test_claim_sentence_says_when_an_agent_was_not_run():
    sentence = hima.claim_sentence({"hima": {(0, 0): 100.0}, "hima-no-dreaming": {(0, 0): 200.0}})
    assert "dreaming: holds" in sentence and "empowerment: not run" in sentence


def test_scenario_speed_runs_each_seed_and_prints_the_median(capsys):
    hima.main(["scenario-speed", "--warmup", "40", "--steps", "20", "--repeats", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["seed 0", "seed 1"]
    assert lines[-1].startswith("HIMA on the four-rooms scenario, steps 40-60: median ")


def test_swap_check_reports_a_finished_scenario_and_its_phases(capsys):
    # 3 goals in all, the goal moved after each: a fresh HIMA finishes within the budget.
    hima.main(["swap-check", "--goals-per-phase", "1", "--phases-per-stage", "1", "--max-steps", "3000",
               "--seeds", "0", "--set", "hierarchy=false"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("swap scenario, goal moved every 1 goals, 3 goals, at most 3000 steps")
    seed = lines[1]
    assert seed.startswith("seed 0: finished in ") and "phases begun (goals@steps): 1@" in seed and " 3@" in seed
    steps = int(seed.split("finished in ")[1].split()[0])
    assert lines[-1] == f"median steps to finish: {steps}"
