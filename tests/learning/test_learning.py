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


def test_dreamer_world_model_learns_where_the_reward_is():
    """DreamerV3's world model (debug size) on replay from a 4-cell corridor, where reward 1 comes
    with the observation at the corridor's end: after 3000 updates its reward head, read on the
    posterior, tells the rewarded steps from the others (measured at seed 0: 0.70 against 0.02 after
    3000 updates, 0.95 against 0.004 after 4500; before 1500 updates it predicts the mean, 0.08, for
    both). A shifted reward or action alignment would leave nothing in the observation to read."""
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fakes import Corridor

    from wanderlust.agents.dreamer.agent import Dreamer, DreamerConfig

    torch.manual_seed(0)
    agent = Dreamer(DreamerConfig(size="debug", batch_size=8, batch_length=16, train_ratio=1e-9, replay_capacity=8000,
                                  steps_per_iteration=16), Corridor(num_envs=4, length=4, max_steps=16), 10**6,
                    torch.device("cpu"), seed=0)
    for _ in range(12):  # 768 random-policy steps into replay, no updates
        agent.iterate()
    assert agent.updates == 0
    for _ in range(3000):
        batch = agent.replay.sample(16, 16)
        loss, _, post = agent.world_model.loss(batch)
        agent.model_optimizer.zero_grad()
        loss.backward()
        agent.model_optimizer.step()
    with torch.no_grad():
        batch = agent.replay.sample(64, 16)
        _, _, post = agent.world_model.loss(batch)
        predicted = agent.world_model.reward(post.features())
    rewarded = batch["reward"] > 0
    assert rewarded.any()
    assert predicted[rewarded].mean() > 0.5 and predicted[~rewarded].mean() < 0.1
