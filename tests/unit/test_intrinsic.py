"""Intrinsic rewards: RND's defining properties and the normalisers it relies on."""

import numpy as np
import pytest
import torch

from wanderlust.intrinsic import BONUSES, RND, BonusSpec, RNDConfig, Rollout, make_bonus
from wanderlust.nets.minigrid import CELL_VALUES
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer, RunningMeanStd

pytestmark = pytest.mark.unit


def grid_obs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 6, (n, 7, 7, 3), generator=g, dtype=torch.uint8)


def rollout_of(next_obs: torch.Tensor) -> Rollout:
    t, n = next_obs.shape[:2]
    return Rollout(
        obs=next_obs, next_obs=next_obs, actions=torch.zeros(t, n, dtype=torch.long),
        dones=torch.zeros(t, n, dtype=torch.bool), valid=torch.ones(t, n, dtype=torch.bool),
    )


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(k, 4)) for k in (5, 50, 7)]
    stats = RunningMeanStd((4,))
    for batch in batches:
        stats.update(torch.tensor(batch))
    data = np.concatenate(batches)
    np.testing.assert_allclose(stats.mean.numpy(), data.mean(0), rtol=1e-4)
    np.testing.assert_allclose(stats.var.numpy(), data.var(0), rtol=1e-4)


def test_return_filter_is_per_environment_and_advances_once_per_step():
    """PITFALLS 2: the discounted return runs over time within each env, never across envs."""
    gamma = 0.9
    normalizer = DiscountedReturnNormalizer(num_envs=3, gamma=gamma)
    rewards = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    normalizer(rewards)
    expected = np.zeros(3)
    seen = []
    for row in rewards.numpy():
        expected = expected * gamma + row
        seen.append(expected.copy())
    np.testing.assert_allclose(normalizer.discounted_return.numpy(), expected)
    assert normalizer.stats.count.item() == pytest.approx(9, abs=1e-3)
    np.testing.assert_allclose(normalizer.stats.var.item(), np.var(np.concatenate(seen)), rtol=1e-3)


def test_normalised_reward_is_divided_by_return_std():
    normalizer = DiscountedReturnNormalizer(num_envs=2, gamma=0.99)
    rewards = torch.rand(64, 2) * 10
    out = normalizer(rewards)
    ratio = rewards / out
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), rtol=1e-5)
    assert ratio[0, 0] == pytest.approx(normalizer.stats.std.item(), rel=1e-4)


def make_rnd(num_envs=4, **config):
    torch.manual_seed(0)
    return RND(RNDConfig(warmup_steps=0, **config), BonusSpec((7, 7, 3), 7, num_envs, "minigrid"))


def test_rnd_error_falls_on_a_repeated_input_and_stays_high_on_novel_ones():
    rnd = make_rnd(num_envs=32)
    seen = grid_obs(32, seed=1)
    rnd.warmup(seen[None])
    before_seen = rnd.raw_reward(seen).mean()
    for _ in range(30):
        rnd.update(rollout_of(seen[None]))
    after_seen = rnd.raw_reward(seen).mean()
    novel = rnd.raw_reward(grid_obs(32, seed=2)).mean()
    assert after_seen < 0.2 * before_seen
    assert novel > 3 * after_seen


def test_rnd_target_never_moves_and_predictor_does():
    rnd = make_rnd()
    target = [p.clone() for p in rnd.target.parameters()]
    predictor = [p.clone() for p in rnd.predictor.parameters()]
    rnd.update(rollout_of(grid_obs(16, 0).reshape(4, 4, 7, 7, 3)))
    assert all(torch.equal(a, b) for a, b in zip(target, rnd.target.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(predictor, rnd.predictor.parameters()))
    assert not any(p.requires_grad for p in rnd.target.parameters())


def test_rnd_update_proportion_follows_the_seed_rule():
    assert make_rnd(num_envs=128).update_proportion == pytest.approx(0.25)
    assert make_rnd(num_envs=32).update_proportion == 1.0
    assert make_rnd(num_envs=128, update_proportion=0.5).update_proportion == 0.5


def test_rnd_on_atari_frames_reads_only_the_newest_frame():
    torch.manual_seed(0)
    rnd = RND(RNDConfig(warmup_steps=0), BonusSpec((4, 96, 96), 18, 2, "atari"))
    obs = torch.randint(0, 255, (2, 4, 96, 96), dtype=torch.uint8)
    changed_old_frames = obs.clone()
    changed_old_frames[:, :3] = 0
    assert torch.equal(rnd.raw_reward(obs), rnd.raw_reward(changed_old_frames))
    changed_newest = obs.clone()
    changed_newest[:, 3] = 0
    assert not torch.equal(rnd.raw_reward(obs), rnd.raw_reward(changed_newest))


def test_bonus_state_dict_round_trips_with_optimizer_and_normalisers():
    rnd = make_rnd()
    rnd.update(rollout_of(grid_obs(8, 0).reshape(2, 4, 7, 7, 3)))
    rnd.reward(rollout_of(grid_obs(8, 1).reshape(2, 4, 7, 7, 3)))
    copy = make_rnd()
    copy.load_state_dict(rnd.state_dict())
    probe = grid_obs(5, 3)
    assert torch.equal(copy.raw_reward(probe), rnd.raw_reward(probe))
    assert torch.equal(copy.reward_normalizer.discounted_return, rnd.reward_normalizer.discounted_return)
    assert copy.optimizer.state_dict()["state"].keys() == rnd.optimizer.state_dict()["state"].keys()


SPECS = {
    "minigrid": BonusSpec((7, 7, 3), 7, 4, "minigrid"),
    "atari": BonusSpec((4, 96, 96), 18, 4, "atari"),
    "procgen": BonusSpec((3, 64, 64), 15, 4, "procgen"),
}


def random_obs(spec: BonusSpec, batch: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Valid uint8 observations: MiniGrid cells within each channel's range, pixels in 0..255."""
    if spec.family == "minigrid":
        highs = torch.tensor(CELL_VALUES)
        return (torch.rand(*batch, *spec.obs_shape, generator=generator) * highs).to(torch.uint8)
    return torch.randint(0, 256, (*batch, *spec.obs_shape), generator=generator).to(torch.uint8)


def rollout_from(obs, next_obs, actions, dones=None, valid=None) -> Rollout:
    t, n = actions.shape
    return Rollout(
        obs=obs, next_obs=next_obs, actions=actions,
        dones=torch.zeros(t, n, dtype=torch.bool) if dones is None else dones,
        valid=torch.ones(t, n, dtype=torch.bool) if valid is None else valid,
    )


def random_rollout(spec: BonusSpec, steps: int, seed: int) -> Rollout:
    g = torch.Generator().manual_seed(seed)
    obs = random_obs(spec, (steps + 1, spec.num_envs), g)
    actions = torch.randint(0, spec.num_actions, (steps, spec.num_envs), generator=g)
    return rollout_from(obs[:-1], obs[1:], actions)


def drive(bonus, rollout: Rollout) -> torch.Tensor:
    """Runs a bonus through PPO's protocol on a rollout: per step reset then observe, then reward
    and update. Returns the rewards [T, N]."""
    for t in range(rollout.num_steps):
        new_episode = rollout.dones[t - 1] if t > 0 else torch.zeros(rollout.num_envs, dtype=torch.bool)
        bonus.reset(new_episode)
        bonus.observe(rollout.obs[t], rollout.actions[t], rollout.next_obs[t])
    rewards = bonus.reward(rollout)
    bonus.update(rollout)
    return rewards


@pytest.mark.parametrize("family", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(BONUSES))
def test_every_bonus_runs_the_ppo_protocol_on_every_family(name, family):
    """Rewards are finite, [T, N], and update returns float metrics, on grids and on pixels."""
    spec = SPECS[family]
    t, n = 3, spec.num_envs
    g = torch.Generator().manual_seed(0)
    obs = random_obs(spec, (t + 1, n), g)
    rollout = Rollout(
        obs=obs[:-1], next_obs=obs[1:], actions=torch.randint(0, spec.num_actions, (t, n), generator=g),
        dones=torch.zeros(t, n, dtype=torch.bool), valid=torch.ones(t, n, dtype=torch.bool),
    )
    bonus = make_bonus(name, None, spec)
    rewards = drive(bonus, rollout)
    assert rewards.shape == (t, n) and torch.isfinite(rewards).all()
    metrics = bonus.update(rollout)
    assert all(isinstance(value, float) for value in metrics.values())


def test_unknown_bonus_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown bonus 'rdn'"):
        make_bonus("rdn", None, BonusSpec((7, 7, 3), 7, 4, "minigrid"))
