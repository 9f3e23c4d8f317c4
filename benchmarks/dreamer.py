"""DreamerV3 learning checks (docs/dreamer.md, "Not yet").

    python benchmarks/dreamer.py corridor [--train-ratio 512] [--iterations 36] [--seed 0]

corridor: the whole agent (debug size, batch 8 × 16, 4 envs) on the 4-cell corridor of
tests/fakes.py (action 1 moves right; reward 1 and the episode's end at the last cell; 16-step
limit; the shortest episode is 4 steps). Prints, every 3 iterations of 64 frames, the frames, the
updates so far, and the mean episode length, return and policy entropy of the iterations since.
One thread, a fixed seed: a run repeats exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes import Corridor  # noqa: E402

from wanderlust.agents.dreamer.agent import Dreamer, DreamerConfig  # noqa: E402


def corridor(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    config = DreamerConfig(size="debug", batch_size=8, batch_length=16, train_ratio=args.train_ratio,
                           replay_capacity=8000, steps_per_iteration=16)
    agent = Dreamer(config, Corridor(num_envs=4, length=4, max_steps=16), 10**7, torch.device("cpu"), seed=args.seed)
    print(f"Dreamer (debug) on the 4-cell corridor, train ratio {args.train_ratio:g}, seed {args.seed}")
    print("| frames | updates | episode length | return | policy entropy | seconds |")
    print("|---|---|---|---|---|---|")
    start = time.perf_counter()
    lengths: list[float] = []
    returns: list[float] = []
    entropy = float("nan")
    for iteration in range(1, args.iterations + 1):
        result = agent.iterate()
        lengths += result["episodes"]["episode_length"]
        returns += result["episodes"]["episode_return"]
        entropy = result["metrics"].get("policy_entropy", entropy)
        if iteration % 3 == 0:
            print(f"| {agent.frames} | {agent.updates} | {np.mean(lengths) if lengths else float('nan'):.1f} | "
                  f"{np.mean(returns) if returns else float('nan'):.2f} | {entropy:.2f} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)
            lengths, returns = [], []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("corridor", help="the whole agent on a 4-cell corridor")
    command.add_argument("--train-ratio", type=float, default=512)
    command.add_argument("--iterations", type=int, default=36)
    command.add_argument("--seed", type=int, default=0)
    command.set_defaults(run=corridor)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
