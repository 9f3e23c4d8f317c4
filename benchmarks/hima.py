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
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import wanderlust.envs as envs
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
    config = HIMAConfig(steps_per_iteration=steps, dreaming=dreaming, empowerment=empowerment)
    agent = HIMA(config, env, total_frames=steps, seed=seed)
    start = time.perf_counter()
    agent.iterate()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


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


def main(argv: list[str] | None = None) -> None:
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
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
