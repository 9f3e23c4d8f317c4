"""Channels-last against channels-first (NCHW) weights for wanderlust's pixel networks, on the CPU.

wanderlust stores the conv weights of its Atari and Procgen networks channels-last
(`nets.init.channels_last`). This script measures what that buys, side by side in one process:

- networks: one training step (forward, backward, Adam step) of each pixel network on a random
  minibatch (`--minibatch`, 1024; the presets train on 512 at 16 envs and 4096 at 128), with its
  weights channels-first and channels-last: the RND predictor on one 96×96 frame, the policy
  encoders A–D on a 4×96×96 frame stack, and the pixel embedding of ICM, RIDE and the others;
- iteration: `PPO.iterate()` of PPO + RND on Montezuma's Revenge (the rnd_montezuma preset at 16
  envs × 128 steps, 128 warm-up steps) for two agents built alike from the same seed, one converted
  back to channels-first; their iterations alternate.

Each row reports the median over `--repeats` measurements (min-max) and the median of the
per-repeat ratios channels-first time / channels-last time (above 1: channels-last is faster).

    python benchmarks/memory_format.py                   # both
    python benchmarks/memory_format.py networks --threads 1 --repeats 5
    python benchmarks/memory_format.py iteration --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from wanderlust.nets import atari
from wanderlust.nets.embedding import Embedding

FRAME = (1, 96, 96)
STACK = (4, 96, 96)


def channels_first(module: nn.Module) -> nn.Module:
    return module.to(memory_format=torch.contiguous_format)


def training_step(network: nn.Module, batch: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)

    def step() -> None:
        loss = network(batch).float().pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # untimed: first-call allocations and the optimiser's state
    return step


def timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def row(name: str, first: list[float], last: list[float]) -> str:
    ratios = [f / c for f, c in zip(first, last)]

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"

    return f"| {name} | {cell(first)} | {cell(last)} | {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |"


HEADER = "| {what} | channels-first s | channels-last s | speed-up (first / last) |\n| --- | ---: | ---: | ---: |"


def networks(repeats: int, minibatch: int) -> None:
    frames = torch.randn(minibatch, *FRAME)
    stacks = torch.randint(0, 256, (minibatch, *STACK), dtype=torch.uint8)
    _, predictor = atari.rnd_networks(FRAME)
    cases = [("RND predictor (1×96×96)", predictor, frames)]
    cases += [(f"policy encoder {name} (4×96×96)", make(STACK), stacks) for name, make in atari.ATARI_MODELS.items()]
    cases.append(("pixel embedding (ICM, RIDE, ...)", Embedding(STACK, "atari"), stacks))
    print(HEADER.format(what=f"network, one training step on {minibatch} samples"), flush=True)
    for name, network, batch in cases:
        steps = (training_step(channels_first(copy.deepcopy(network)), batch), training_step(network, batch))
        first, last = [], []
        for _ in range(repeats):
            first.append(timed(steps[0]))
            last.append(timed(steps[1]))
        print(row(name, first, last), flush=True)


def iteration(repeats: int) -> None:
    import numpy as np

    from wanderlust.run.config import resolve
    from wanderlust.run.train import build_agent

    config = resolve(["rnd_montezuma"], values={"env": {"num_envs": 16}}, overrides=["intrinsic.warmup_steps=128"])
    config.device = "cpu"
    agents, envs = [], []
    for convert in (True, False):
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        env, agent = build_agent(config, torch.device("cpu"))
        if convert:  # before any update, so that the optimisers' state follows the weights
            channels_first(agent.policy)
            channels_first(agent.bonus)
        agent.warmup()
        agent.iterate()  # untimed
        agents.append(agent)
        envs.append(env)
    first, last = [], []
    try:
        for _ in range(repeats):
            first.append(timed(agents[0].iterate))
            last.append(timed(agents[1].iterate))
    finally:
        for env in envs:
            env.close()
    frames = config.ppo.num_steps * config.env.num_envs
    print(HEADER.format(what=f"PPO + RND on Montezuma, one iteration ({frames} frames)"))
    print(row("`PPO.iterate()`", first, last), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["networks", "iteration", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--minibatch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n", flush=True)
    if args.what in ("networks", "all"):
        networks(args.repeats, args.minibatch)
        print()
    if args.what in ("iteration", "all"):
        iteration(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
