"""Running statistics that normalise observations and intrinsic rewards.

Both are nn.Modules whose state lives in buffers, so they move with `.to(device)` and are saved in
state dicts (and therefore in checkpoints).
"""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Mean and variance of a stream of batches (Chan et al.'s parallel update), in float64."""

    def __init__(self, shape: tuple[int, ...] = ()):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """`batch` is [B, *shape]; each row is one sample."""
        batch = batch.double()
        batch_mean = batch.mean(0)
        batch_var = batch.var(0, unbiased=False)
        batch_count = batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        self.mean += delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta.pow(2) * self.count * batch_count / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()


class DiscountedReturnNormalizer(nn.Module):
    """Divides rewards by the running std of their discounted return, accumulated per environment.

    Burda et al.'s rule: for each environment i keep R_i ← γ·R_i + r_i, advanced once per time step
    and never across environments (PITFALLS 2); the std of all R values seen so far scales r. The
    return is not reset at episode ends, matching the non-episodic intrinsic stream.
    """

    def __init__(self, num_envs: int, gamma: float):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("discounted_return", torch.zeros(num_envs, dtype=torch.float64))
        self.stats = RunningMeanStd(())

    @torch.no_grad()
    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        """rewards [T, N] in time order → rewards / std, after folding these T steps into the stats."""
        returns = torch.empty_like(rewards, dtype=torch.float64)
        running = self.discounted_return
        for t in range(rewards.shape[0]):
            running = running * self.gamma + rewards[t].double()
            returns[t] = running
        self.discounted_return.copy_(running)
        self.stats.update(returns.reshape(-1))
        return (rewards / (self.stats.std.float() + 1e-8)).to(rewards.dtype)
