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


def test_rnd_beats_plain_ppo_on_a_sparse_task(tmp_path):
    """MiniGrid-Empty-16x16 from the 7×7 partial view: the only reward is at the far corner, which a
    random walk rarely reaches in time. Five seeds at 80k frames each, same settings for both.
    Measured (docs/rnd.md): PPO+RND solved it at 4 of 5 seeds (mean 0.77), plain PPO at 2 of 5
    (mean 0.38). Single seeds go either way, so the test asks for the gap in the mean."""
    finals = {"rnd": [], "none": []}
    for bonus in finals:
        for seed in range(5):
            run_dir = wanderlust.train(
                env="MiniGrid-Empty-16x16-v0", bonus=bonus, frames=80_000, seed=seed,
                run_dir=tmp_path / f"{bonus}_{seed}", overrides=["log.interval=2", "log.checkpoint_interval=1000"],
            )
            finals[bonus].append(final_returns(run_dir, 3))
    solved = sum(value > 0.9 for value in finals["rnd"])  # the optimum is ≈ 0.97
    assert solved >= 3, finals
    assert np.mean(finals["rnd"]) - np.mean(finals["none"]) > 0.3, finals
