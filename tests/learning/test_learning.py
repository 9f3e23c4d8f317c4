"""Small training runs at fixed seeds, with thresholds that a broken algorithm cannot pass."""

import csv

import numpy as np
import pytest

import wanderlust

pytestmark = pytest.mark.learning


def final_returns(run_dir, rows: int) -> float:
    """Mean episode_return over the last `rows` rows that saw an episode end."""
    with open(run_dir / "metrics.csv", newline="") as handle:
        values = [float(r["episode_return"]) for r in csv.DictReader(handle) if r["episode_return"]]
    return float(np.mean(values[-rows:]))


def test_ppo_solves_empty_5x5(tmp_path):
    run_dir = wanderlust.train(
        env="MiniGrid-Empty-5x5-v0", bonus="none", frames=40_000, num_envs=8, seed=1,
        run_dir=tmp_path / "empty", overrides=["log.interval=4"],
    )
    # The optimal return is about 0.95 (a handful of steps out of 100); a random policy gets ~0.1.
    assert final_returns(run_dir, 3) > 0.85
    result = wanderlust.evaluate(run_dir, episodes=16, greedy=True)
    assert result["mean_return"] > 0.9
