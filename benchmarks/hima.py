"""HIMA benchmarks.

    python benchmarks/hima.py htm-speed [--steps 2000] [--repeats 5]
    python benchmarks/hima.py agent-speed [--steps 1000] [--repeats 3]

htm-speed: steps per second of the spatial pooler and the temporal memory at HIMA's sizes, learning
on, median of `--repeats` runs, one thread. The pooler sees a 5×5 egocentric window with 4 binary
channels (100 bits, a quarter of them on) and has 1000 columns at density 0.02 (SYSTEMS.md
section 4). The temporal memory has 1000 columns × 16 cells and sees a stream made of 50 random
20-column SDRs visited in a random walk, so that it keeps both learning new transitions and
predicting known ones, as in a gridworld.

agent-speed: environment steps per second of the assembled HIMA agent on
wanderlust/GridWorld-FourRooms9x9-v0 (one env, from a fresh agent, `--steps` steps), median of
`--repeats` seeds, with dreaming and empowerment on and off.

    python benchmarks/hima.py scenario-speed [--warmup 20000] [--steps 2000] [--repeats 3]

scenario-speed: env steps per second of the grid's HIMA (every part on, hierarchy included) on
wanderlust/GridWorld-FourRooms9x9-Scenario-v0, timed over `--steps` steps after `--warmup` untimed
ones, median of `--repeats` seeds. A run's memories keep growing (about one segment per step per
memory), and this measures a step at that size rather than a fresh agent's.

    python benchmarks/hima.py fixed-goal [--steps 1200] [--seeds 0 1 2] [--set FIELD=VALUE ...]
    python benchmarks/hima.py scenario-start [--goals 100] [--max-steps 20000] [--seeds 0 1 2] [--set ...]
    python benchmarks/hima.py swap-check [--goals-per-phase 50] [--phases-per-stage 2] [--max-steps 40000]
        [--seeds 0 1 2 3] [--set ...]

Quick learning checks, used to choose HIMAConfig's defaults (docs/hima.md, "The agent").
fixed-goal: the learning task of tests/unit/test_hima_agent.py (empty 8×8 map, the same start and
goal 5 steps apart every episode, 100-step limit): per seed, the mean length of the first and of the
last 10 episodes within `--steps` env steps. scenario-start: the four-rooms scenario from a fresh
agent: per seed, the env steps (episode lengths summed) spent on the first `--goals` goals (the first
phase is 100), and how many goals of the next phase followed before `--max-steps` frames.
swap-check: a shortened swap scenario (the goal moved every `--goals-per-phase` goals, stages of
`--phases-per-stage` phases, so it ends at 3 × their product goals), one run per seed (agent seed =
env seed): the steps to finish it or the goals reached within `--max-steps`, and where each phase
began, which shows stalls after a move.
`--set FIELD=VALUE` overrides a HIMAConfig field as `wanderlust train --set hima.FIELD=VALUE` does
(`--set basal_ganglia.softmax_beta=2`).

    python benchmarks/hima.py run [--agents hima,hima-no-dreaming,hima-no-empowerment,qlearning,ppo-rnd
        (the default; hima-no-hierarchy can be added)]
        [--env-seeds 0,1,2] [--seeds 0,1,2] [--frames 3e5] [--workers 2] [--hours 0]
        [--runs-dir benchmarks/runs/hima] [--results-dir benchmarks/results/hima]
    python benchmarks/hima.py report (the same arguments)

run: the paper's comparison (SYSTEMS.md section 4) on wanderlust/GridWorld-FourRooms9x9-Scenario-v0
(agent and food move every 100 goals; the scenario ends at goal 3000), a resumable grid of
`wanderlust train` runs (grid.py): agents × environment seeds (`floor_seed`, the floor colouring)
× agent seeds (`--seed`). Agent seed outermost, then environment seed, then agent, so a grid cut
short still compares every agent on the first (environment seed, agent seed) pair. A run stops
after the iteration in which its first scenario finished (`stop_at_scenario_end`); `--frames` is
the budget of env steps each scenario may take (the cap for runs that never finish): HIMA and
Q-learning run one env for that many frames; PPO with RND runs 8 envs, each its own scenario, for
8 × that many frames, so each env has the same budget.

report: per agent, the runs finished, those whose scenario finished within the budget, and the
steps to finish it (median and per run; a run that did not finish counts as "> budget" with the
goals it reached), the check of the paper's claim (HIMA needs fewer steps than HIMA without dreaming
and than HIMA without empowerment, on the runs where both finished), `hima_table.md` and
`hima_goals.png` (goals reached against steps, mean over runs) in the results directory.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from grid import ROOT, Job, add_grid_options, parse_frames, read_rows, run_grid

import wanderlust.envs as envs
from wanderlust.envs.gridworld import GridWorldEnv
from wanderlust.envs.vector import EpisodeStatistics, GymnasiumBackend
from wanderlust.agents.hima import (
    HIMA,
    HIMAConfig,
    SpatialPooler,
    SpatialPoolerConfig,
    TemporalMemory,
    TemporalMemoryConfig,
)

WINDOW_BITS = 5 * 5 * 4


def spatial_pooler_steps_per_second(steps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    pooler = SpatialPooler(SpatialPoolerConfig(input_size=WINDOW_BITS, seed=seed))
    inputs = rng.random((steps, WINDOW_BITS)) < 0.25
    start = time.perf_counter()
    for window in inputs:
        pooler.compute(window, learn=True)
    return steps / (time.perf_counter() - start)


def temporal_memory_steps_per_second(steps: int, seed: int) -> tuple[float, float]:
    """(steps per second, mean anomaly over the last tenth of the run)."""
    rng = np.random.default_rng(seed)
    config = TemporalMemoryConfig(seed=seed)
    memory = TemporalMemory(config)
    states = [np.sort(rng.choice(config.columns, 20, replace=False)) for _ in range(50)]
    # A ring of states, walked one step left or right: each state has two successors.
    walk = np.cumsum(rng.choice((-1, 1), size=steps)) % len(states)
    anomalies = []
    start = time.perf_counter()
    for state in walk:
        memory.compute(states[state], learn=True)
        anomalies.append(memory.anomaly)
    elapsed = time.perf_counter() - start
    return steps / elapsed, float(np.mean(anomalies[-steps // 10 :]))


def htm_speed(args: argparse.Namespace) -> None:
    pooler_rates = [spatial_pooler_steps_per_second(args.steps, seed) for seed in range(args.repeats)]
    memory_runs = [temporal_memory_steps_per_second(args.steps, seed) for seed in range(args.repeats)]
    memory_rates = [rate for rate, _ in memory_runs]
    print(f"HTM speed, learning on, {args.steps} steps, median of {args.repeats} runs (min-max)")
    print()
    print("| module | sizes | steps/s |")
    print("|---|---|---|")
    print(
        f"| spatial pooler | {WINDOW_BITS} input bits → 1000 columns, density 0.02 | "
        f"{statistics.median(pooler_rates):.0f} ({min(pooler_rates):.0f}-{max(pooler_rates):.0f}) |"
    )
    print(
        f"| temporal memory | 1000 columns × 16 cells, 20 active columns | "
        f"{statistics.median(memory_rates):.0f} ({min(memory_rates):.0f}-{max(memory_rates):.0f}) |"
    )
    final_anomaly = statistics.median(anomaly for _, anomaly in memory_runs)
    print()
    print(f"temporal memory anomaly over the last tenth of the walk: {final_anomaly:.3f} (median)")


def agent_steps_per_second(steps: int, seed: int, dreaming: bool, empowerment: bool) -> float:
    env = envs.make("wanderlust/GridWorld-FourRooms9x9-v0", 1, seed)
    config = HIMAConfig(steps_per_iteration=steps, dreaming=dreaming, empowerment=empowerment, hierarchy=False)
    agent = HIMA(config, env, total_frames=steps, seed=seed)
    start = time.perf_counter()
    agent.iterate()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def scenario_speed(args: argparse.Namespace) -> None:
    rates = []
    for seed in range(args.repeats):
        env = envs.make(SCENARIO_ENV, 1, seed)
        agent = HIMA(HIMAConfig(steps_per_iteration=args.warmup or args.steps), env, total_frames=args.warmup + args.steps, seed=seed)
        if args.warmup:
            agent.iterate()
        agent.config.steps_per_iteration = args.steps
        start = time.perf_counter()
        agent.iterate()
        rates.append(args.steps / (time.perf_counter() - start))
        segments = agent.memory.segments["basal"].size
        env.close()
        print(f"seed {seed}: {rates[-1]:.1f} steps/s ({segments} basal segments in the visual memory)", flush=True)
    print(
        f"HIMA on the four-rooms scenario, steps {args.warmup}-{args.warmup + args.steps}: median "
        f"{statistics.median(rates):.1f} steps/s over {args.repeats} seeds ({min(rates):.1f}-{max(rates):.1f})"
    )


def agent_speed(args: argparse.Namespace) -> None:
    print(f"HIMA agent speed, FourRooms9x9, {args.steps} steps from scratch, median of {args.repeats} seeds (min-max)")
    print()
    print("| dreaming | empowerment | env steps/s |")
    print("|---|---|---|")
    for dreaming, empowerment in ((True, True), (False, True), (True, False), (False, False)):
        rates = [agent_steps_per_second(args.steps, seed, dreaming, empowerment) for seed in range(args.repeats)]
        print(
            f"| {'on' if dreaming else 'off'} | {'on' if empowerment else 'off'} | "
            f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}) |"
        )


# ------------------------------------------------------------------------- the scenario grid
SCENARIO_ENV = "wanderlust/GridWorld-FourRooms9x9-Scenario-v0"
SCENARIO_GOALS = 3000
AGENT_FLAGS = {
    "hima": ("--algo", "hima", "--num-envs", "1"),
    "hima-no-dreaming": ("--algo", "hima", "--num-envs", "1", "--no-dreaming"),
    "hima-no-empowerment": ("--algo", "hima", "--num-envs", "1", "--no-empowerment"),
    "hima-no-hierarchy": ("--algo", "hima", "--num-envs", "1", "--no-hierarchy"),
    "qlearning": ("--algo", "qlearning", "--num-envs", "1"),
    "ppo-rnd": ("--algo", "ppo", "--bonus", "rnd", "--num-envs", "8"),
}
"""How `wanderlust train` is asked for each agent; the number after --num-envs is its env count."""
ABLATIONS = {"hima-no-dreaming": "dreaming", "hima-no-empowerment": "empowerment"}
DEFAULT_AGENTS = ("hima", "hima-no-dreaming", "hima-no-empowerment", "qlearning", "ppo-rnd")
"""The comparison the issue asks for; hima-no-hierarchy is there to add with --agents."""
KEPT_COLUMNS = (
    "frames", "episode_return", "episode_length", "episodes", "goals_reached", "scenario_steps", "sps",
    "anomaly", "intrinsic_reward", "extrinsic_priority", "dreams", "td_error", "states",
)
"""The columns of metrics.csv that a finished run keeps in git (those an agent lacks are left out)."""


def num_envs(agent: str) -> int:
    flags = AGENT_FLAGS[agent]
    return int(flags[flags.index("--num-envs") + 1])


def scenario_job(agent: str, env_seed: int, seed: int, budget: int) -> Job:
    """One run: `budget` env steps for each of the agent's envs, on floor colouring `env_seed`."""
    flags = (
        *AGENT_FLAGS[agent], "--env", SCENARIO_ENV, "--set", f"env.options.floor_seed={env_seed}",
        "--set", "stop_at_scenario_end=true",
    )
    return Job(SCENARIO_ENV, "", f"{agent}__f{env_seed}", seed, budget * num_envs(agent), flags)


def comma_ints(text: str) -> list[int]:
    return [int(value) for value in text.split(",")]


def scenario_jobs(args: argparse.Namespace) -> list[Job]:
    agents = args.agents.split(",")
    unknown = sorted(set(agents) - set(AGENT_FLAGS))
    if unknown:
        raise SystemExit(f"unknown agents {', '.join(unknown)}; choose from {', '.join(AGENT_FLAGS)}")
    return [
        scenario_job(agent, env_seed, seed, args.frames)
        for seed in comma_ints(args.seeds) for env_seed in comma_ints(args.env_seeds) for agent in agents
    ]


def run_scenarios(args: argparse.Namespace) -> int:
    return run_grid(scenario_jobs(args), args.workers, args.hours, args.runs_dir, args.results_dir, KEPT_COLUMNS)


def steps_to_finish(rows: list[dict[str, float]]) -> float:
    """The steps of the run's first finished scenario (in one env: its own step count); inf if none
    finished."""
    finished = [r["scenario_steps"] for r in rows if not math.isnan(r.get("scenario_steps", math.nan))]
    return finished[0] if finished else math.inf


def goals_reached(rows: list[dict[str, float]]) -> float:
    """The most goals of a scenario reached at an episode's end (a row's mean over its episodes)."""
    goals = [r["goals_reached"] for r in rows if not math.isnan(r.get("goals_reached", math.nan))]
    return max(goals, default=0.0)


def goals_curve(rows: list[dict[str, float]], envs_per_run: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps per env, goals reached so far) from 0 steps and at each row: the running maximum of
    goals_reached, and all the scenario's goals from the first row where a scenario finished."""
    steps = np.array([0.0] + [r["frames"] / envs_per_run for r in rows])
    goals = np.nan_to_num(np.array([0.0] + [r.get("goals_reached", math.nan) for r in rows]), nan=0.0)
    goals = np.maximum.accumulate(goals)
    done = [i for i, r in enumerate(rows, start=1) if not math.isnan(r.get("scenario_steps", math.nan))]
    if done:
        goals[done[0] :] = SCENARIO_GOALS
    return steps, goals


def thousands(steps: float) -> str:
    return f"{steps / 1000:,.0f}k" if steps >= 10_000 else f"{steps:,.0f}"


def steps_text(steps: float, budget: int) -> str:
    return f"{steps:,.0f}" if math.isfinite(steps) else f"> {thousands(budget)}"


def finish_text(steps: float, goals: float, budget: int) -> str:
    """A run's steps to finish, or for a run that did not finish the goals it reached."""
    return steps_text(steps, budget) + ("" if math.isfinite(steps) else f" ({goals:,.0f} goals)")


def claim_sentence(results: dict[str, dict[tuple[int, int], float]]) -> str:
    """Whether HIMA finishes in fewer steps than each ablation, on the (env seed, agent seed) pairs
    where both finished the scenario. `results`: agent → {(env seed, agent seed): steps (inf: not
    finished)}, runs not yet done left out."""
    clauses = []
    hima = results.get("hima", {})
    for ablation, part in ABLATIONS.items():
        if ablation not in results or not hima:
            clauses.append(f"{part}: not run")
            continue
        other = results[ablation]
        both_ran = hima.keys() & other.keys()
        pairs = sorted(p for p in both_ran if math.isfinite(hima[p]) and math.isfinite(other[p]))
        only_hima = sum(1 for p in both_ran if math.isfinite(hima[p]) and not math.isfinite(other[p]))
        only_other = sum(1 for p in both_ran if math.isfinite(other[p]) and not math.isfinite(hima[p]))
        alone = f"; only hima finished in {only_hima}, only {ablation} in {only_other}" if only_hima or only_other else ""
        if not pairs:
            clauses.append(f"{part}: cannot be checked, no run pair where both hima and {ablation} finished{alone}")
            continue
        mine = statistics.median(hima[p] for p in pairs)
        theirs = statistics.median(other[p] for p in pairs)
        faster = sum(1 for p in pairs if hima[p] < other[p])
        verdict = "holds" if mine < theirs else "does not hold"
        relation = "fewer" if mine < theirs else "no fewer"
        clauses.append(
            f"{part}: {verdict}, hima needs {relation} steps than {ablation} (median {mine:,.0f} vs {theirs:,.0f} "
            f"over the {len(pairs)} run pairs where both finished; fewer in {faster} of them{alone})"
        )
    return "The paper's claim that dreaming and empowerment speed up learning: " + "; ".join(clauses) + "."


def report_scenarios(args: argparse.Namespace) -> int:
    agents = args.agents.split(",")
    env_seeds, seeds = comma_ints(args.env_seeds), comma_ints(args.seeds)
    steps: dict[str, dict[tuple[int, int], float]] = {}
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    lines = [
        f"HIMA's scenario on {SCENARIO_ENV} ({SCENARIO_GOALS} goals; agent and food move every 100): steps to "
        f"finish the scenario (lower is better), budget {thousands(args.frames)} env steps per run. ppo-rnd runs "
        f"{num_envs('ppo-rnd')} envs, each its own scenario with the same budget ({num_envs('ppo-rnd')} × the "
        "frames): its steps to finish are the first finished scenario's scenario_steps, steps of that one env. "
        "Per run: fK sN = environment (floor) seed K, agent seed N; \"> budget\" = not finished, with the goals "
        "it reached (the largest row mean of goals_reached).",
        "",
        "| agent | runs finished | finished the scenario | steps to finish (median) | per run |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for agent in agents:
        per_run, texts = {}, []
        for env_seed in env_seeds:
            for seed in seeds:
                path = args.results_dir / f"{scenario_job(agent, env_seed, seed, args.frames).name}.csv"
                if not path.exists():
                    continue
                rows = read_rows(path)
                per_run[(env_seed, seed)] = steps_to_finish(rows)
                finish = finish_text(per_run[(env_seed, seed)], goals_reached(rows), args.frames)
                texts.append(f"f{env_seed} s{seed}: {finish}")
                curves.setdefault(agent, []).append(goals_curve(rows, num_envs(agent)))
        steps[agent] = per_run
        total = len(env_seeds) * len(seeds)
        solved = sum(1 for value in per_run.values() if math.isfinite(value))
        median = statistics.median(per_run.values()) if per_run else math.nan
        median_text = "—" if math.isnan(median) else steps_text(median, args.frames)
        lines.append(f"| {agent} | {len(per_run)} of {total} | {solved} | {median_text} | {'; '.join(texts) or '—'} |")
    lines += ["", claim_sentence({agent: runs for agent, runs in steps.items() if runs})]
    table = "\n".join(lines)
    print(table)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "hima_table.md").write_text(table + "\n")
    plot_goals(curves, args.frames, args.results_dir / "hima_goals.png")
    return 0


def plot_goals(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], budget: int, out: Path) -> None:
    """Goals reached against steps per env, each agent's mean over its runs (a run holds its last
    value between rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid_steps = np.linspace(0, budget, 301)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for agent, runs in curves.items():
        held = [goals[np.searchsorted(steps, grid_steps, side="right") - 1] for steps, goals in runs]
        axis.plot(grid_steps / 1000, np.mean(held, axis=0), label=f"{agent} ({len(runs)} runs)")
    axis.axhline(SCENARIO_GOALS, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("env steps (k; per env for ppo-rnd)")
    axis.set_ylabel("goals reached (mean over runs)")
    axis.set_title(f"FourRooms9x9 scenario (ends at {SCENARIO_GOALS} goals)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def configured(overrides: list[str], **fields) -> HIMAConfig:
    """HIMAConfig with `fields`, then `--set FIELD=VALUE` overrides (nested fields with dots), read
    as `wanderlust train --set hima.FIELD=VALUE` reads them."""
    from wanderlust.run.config import resolve

    return resolve([], {"algo": "hima", "hima": fields}, [f"hima.{text}" for text in overrides]).hima


class FixedTask(GridWorldEnv):
    def _draw_episode(self):
        return (1, 1), (1, 6)


def fixed_goal(args: argparse.Namespace) -> None:
    print(f"fixed goal (empty 8x8, goal 5 steps east), {args.steps} steps, overrides: {args.set or 'none'}")
    firsts, lasts = [], []
    for seed in args.seeds:
        env = EpisodeStatistics(GymnasiumBackend([lambda: FixedTask(map_name="empty", max_steps=100)], seed))
        agent = HIMA(configured(args.set, steps_per_iteration=100), env, total_frames=args.steps, seed=seed)
        start, lengths = time.perf_counter(), []
        while agent.frames < args.steps:
            lengths += agent.iterate()["episodes"]["episode_length"]
        first, last = float(np.mean(lengths[:10])), float(np.mean(lengths[-10:]))
        firsts.append(first)
        lasts.append(last)
        print(f"seed {seed}: {len(lengths)} episodes, first 10 {first:.1f}, last 10 {last:.1f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"median: first 10 {statistics.median(firsts):.1f}, last 10 {statistics.median(lasts):.1f}")


def scenario(args: argparse.Namespace) -> None:
    print(f"FourRooms9x9 scenario, first {args.goals} goals, at most {args.max_steps} steps, "
          f"overrides: {args.set or 'none'}")
    results = []
    for seed in args.seeds:
        env = envs.make("wanderlust/GridWorld-FourRooms9x9-Scenario-v0", 1, seed)
        agent = HIMA(configured(args.set), env, total_frames=args.max_steps, seed=seed)
        start, steps, goals, at_goal, later = time.perf_counter(), 0, 0, None, 0
        while agent.frames < args.max_steps and not (at_goal is not None and later >= args.goals):
            episodes = agent.iterate()["episodes"]
            for length, ret in zip(episodes["episode_length"], episodes["episode_return"]):
                steps += length
                if ret > 0:
                    goals += 1
                    if goals == args.goals:
                        at_goal = steps
                    elif goals > args.goals:
                        later += 1
        env.close()
        per_goal = at_goal / args.goals if at_goal is not None else float("inf")
        results.append(per_goal)
        first = "not reached" if at_goal is None else f"{at_goal} steps, {per_goal:.1f} per goal"
        print(f"seed {seed}: {goals} goals in {steps} steps; first {args.goals}: {first}; "
              f"next phase: {later} goals in {steps - (at_goal or steps)} steps "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"median steps per goal over the first {args.goals}: {statistics.median(results):.1f}")


def swap_check(args: argparse.Namespace) -> None:
    total = 3 * args.goals_per_phase * args.phases_per_stage
    print(f"swap scenario, goal moved every {args.goals_per_phase} goals, {total} goals, at most {args.max_steps} "
          f"steps, overrides: {args.set or 'none'}")
    finished = []
    for seed in args.seeds:
        env = envs.make(SCENARIO_ENV, 1, seed, goals_per_phase=args.goals_per_phase,
                        phases_per_stage=args.phases_per_stage)
        agent = HIMA(configured(args.set), env, total_frames=args.max_steps, seed=seed)
        start, steps, goals, phases, done = time.perf_counter(), 0, 0, [], None
        while agent.frames < args.max_steps and done is None:
            episodes = agent.iterate()["episodes"]
            for length, reached in zip(episodes["episode_length"], episodes.get("goals_reached", [])):
                steps += length
                if reached > goals and reached % args.goals_per_phase == 0:
                    phases.append(f"{reached}@{steps / 1000:.1f}k")
                goals = max(goals, int(reached))
            done = (episodes.get("scenario_steps") or [None])[0]
        env.close()
        finished.append(done if done is not None else math.inf)
        outcome = f"finished in {done} steps" if done is not None else f"{goals} of {total} goals"
        print(f"seed {seed}: {outcome}; phases begun (goals@steps): {' '.join(phases)} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    median = statistics.median(finished)
    print(f"median steps to finish: {median:.0f}" if math.isfinite(median) else f"median: > {args.max_steps} steps")


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("htm-speed", help="spatial pooler and temporal memory steps per second")
    speed.add_argument("--steps", type=int, default=2000)
    speed.add_argument("--repeats", type=int, default=5)
    speed.set_defaults(run=htm_speed)
    agent = commands.add_parser("agent-speed", help="env steps per second of the assembled HIMA agent")
    agent.add_argument("--steps", type=int, default=1000)
    agent.add_argument("--repeats", type=int, default=3)
    agent.set_defaults(run=agent_speed)
    later = commands.add_parser("scenario-speed", help="env steps per second of the grid's HIMA after a warm-up")
    later.add_argument("--warmup", type=int, default=20_000)
    later.add_argument("--steps", type=int, default=2000)
    later.add_argument("--repeats", type=int, default=3)
    later.set_defaults(run=scenario_speed)
    fixed = commands.add_parser("fixed-goal", help="the unit test's fixed start/goal learning task, per seed")
    fixed.add_argument("--steps", type=int, default=1200)
    fixed.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    fixed.add_argument("--set", action="append", default=[], help="HIMAConfig FIELD=VALUE (dots for nested)")
    fixed.set_defaults(run=fixed_goal)
    swap = commands.add_parser("scenario-start", help="steps per goal over the four-rooms scenario's first goals")
    swap.add_argument("--goals", type=int, default=100)
    swap.add_argument("--max-steps", type=int, default=20_000)
    swap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    swap.add_argument("--set", action="append", default=[], help="HIMAConfig FIELD=VALUE (dots for nested)")
    swap.set_defaults(run=scenario)
    check = commands.add_parser("swap-check", help="a shortened swap scenario: steps to finish it, per seed")
    check.add_argument("--goals-per-phase", type=int, default=50)
    check.add_argument("--phases-per-stage", type=int, default=2)
    check.add_argument("--max-steps", type=int, default=40_000)
    check.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    check.add_argument("--set", action="append", default=[], help="HIMAConfig FIELD=VALUE (dots for nested)")
    check.set_defaults(run=swap_check)
    for name, func, text in (
        ("run", run_scenarios, "train the agents on the four-rooms scenario (resumable grid)"),
        ("report", report_scenarios, "steps to finish the scenario per agent, the claim check, the goals plot"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--agents", default=",".join(DEFAULT_AGENTS), help="comma-separated: " + ", ".join(AGENT_FLAGS))
        command.add_argument("--env-seeds", default="0,1,2", help="floor_seed values (the environment seeds)")
        command.add_argument("--seeds", default="0,1,2", help="agent seeds")
        command.add_argument("--frames", type=parse_frames, default=300_000, help="env steps per env, e.g. 3e5")
        add_grid_options(command, "hima")
        command.set_defaults(run=func)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
