"""Ensemble disagreement and RE3: each bonus's defining properties."""

import pytest
import torch

from test_intrinsic import SPECS, drive, random_obs
from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.intrinsic.disagreement import Disagreement, DisagreementConfig, EnsembleLinear
from wanderlust.intrinsic.re3 import RE3, RE3Config, kth_neighbour_distance

pytestmark = pytest.mark.unit

GRID = SPECS["minigrid"]


def grid_spec(num_envs: int) -> BonusSpec:
    return BonusSpec(GRID.obs_shape, GRID.num_actions, num_envs, "minigrid")


def rollout_of(obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor | None = None) -> Rollout:
    t, n = actions.shape
    return Rollout(
        obs=obs, next_obs=obs if next_obs is None else next_obs, actions=actions,
        dones=torch.zeros(t, n, dtype=torch.bool), valid=torch.ones(t, n, dtype=torch.bool),
    )


def random_rollout(spec, t: int, n: int, seed: int) -> Rollout:
    g = torch.Generator().manual_seed(seed)
    obs = random_obs(spec, (t + 1, n), g)
    actions = torch.randint(0, spec.num_actions, (t, n), generator=g)
    return rollout_of(obs[:-1], actions, obs[1:])


def flat(rollout: Rollout) -> tuple[torch.Tensor, torch.Tensor]:
    return rollout.obs.flatten(0, 1), rollout.actions.flatten()


# ---------------------------------------------------------------- disagreement


def make_disagreement(num_envs: int = 4, **overrides) -> Disagreement:
    torch.manual_seed(0)
    config = dict(hidden_size=32, residual_blocks=1, return_normalization=False)
    config.update(overrides)
    return Disagreement(DisagreementConfig(**config), grid_spec(num_envs))


def make_members_equal(bonus: Disagreement) -> None:
    with torch.no_grad():
        for layer in bonus.ensemble.modules():
            if isinstance(layer, EnsembleLinear):
                for param in layer.parameters():
                    param.copy_(param[:1].expand_as(param))


def ensemble_state(bonus: Disagreement) -> list[torch.Tensor]:
    return [p.detach().clone() for p in bonus.ensemble.parameters()]


def test_disagreement_is_zero_when_members_are_equal_and_positive_otherwise():
    bonus = make_disagreement()
    obs, actions = flat(random_rollout(GRID, 4, 4, seed=0))
    assert (bonus.raw_reward(obs, actions) > 1e-6).all()
    make_members_equal(bonus)
    assert bonus.raw_reward(obs, actions).abs().max() < 1e-10


def test_disagreement_falls_on_a_repeated_transition_and_stays_high_on_novel_ones():
    bonus = make_disagreement(num_envs=16, learning_rate=1e-3)
    seen = random_rollout(GRID, 2, 16, seed=1)
    before = bonus.raw_reward(*flat(seen)).mean()
    for _ in range(30):
        bonus.update(seen)
    after = bonus.raw_reward(*flat(seen)).mean()
    novel = bonus.raw_reward(*flat(random_rollout(GRID, 2, 16, seed=2))).mean()
    assert after < 0.15 * before
    assert novel > 4 * after


def test_members_stay_distinct_because_each_trains_on_its_own_subset():
    """From equal weights, members trained on the same transitions stay equal; random per-member
    subsets (keep_probability < 1) are what makes them differ."""
    rollout = random_rollout(GRID, 4, 8, seed=3)
    probe = flat(random_rollout(GRID, 2, 8, seed=4))
    for keep, disagrees in ((1.0, False), (0.5, True)):
        bonus = make_disagreement(num_envs=8, keep_probability=keep)
        make_members_equal(bonus)
        bonus.update(rollout)
        spread = bonus.raw_reward(*probe).mean().item()
        assert (spread > 1e-8) is disagrees, (keep, spread)


def test_random_features_never_move_and_the_ensemble_trains():
    bonus = make_disagreement()
    embedding = [p.clone() for p in bonus.embedding.parameters()]
    ensemble = ensemble_state(bonus)
    bonus.update(random_rollout(GRID, 4, 4, seed=5))
    assert all(torch.equal(a, b) for a, b in zip(embedding, bonus.embedding.parameters()))
    assert not any(p.requires_grad for p in bonus.embedding.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(ensemble, bonus.ensemble.parameters()))


def test_inverse_features_are_trained_by_the_inverse_model():
    bonus = make_disagreement(features="inverse")
    embedding = [p.clone() for p in bonus.inverse_dynamics.embedding.parameters()]
    metrics = bonus.update(random_rollout(GRID, 4, 4, seed=6))
    assert not all(torch.equal(a, b) for a, b in zip(embedding, bonus.inverse_dynamics.embedding.parameters()))
    assert metrics["disagreement/inverse_loss"] > 0


def test_disagreement_trains_only_on_valid_transitions():
    bonus = make_disagreement()
    rollout = random_rollout(GRID, 4, 4, seed=7)
    rollout.valid[:] = False
    ensemble = ensemble_state(bonus)
    bonus.update(rollout)
    assert all(torch.equal(a, b) for a, b in zip(ensemble, bonus.ensemble.parameters()))


def test_disagreement_reward_is_laid_out_per_step_and_env():
    bonus = make_disagreement()
    rollout = random_rollout(GRID, 3, 4, seed=8)
    rewards = bonus.reward(rollout)
    for t, n in ((0, 0), (1, 3), (2, 1)):
        single = bonus.raw_reward(rollout.obs[t, n][None], rollout.actions[t, n][None])
        assert rewards[t, n] == pytest.approx(single.item(), rel=1e-5)


def test_disagreement_action_weights_equal_a_concatenated_one_hot_action():
    layer = EnsembleLinear(num_models=3, in_features=4, out_features=5, num_actions=6)
    x, actions = torch.randn(3, 7, 4), torch.randint(0, 6, (7,))
    one_hot = torch.nn.functional.one_hot(actions, 6).float().expand(3, 7, 6)
    weight = torch.cat([layer.weight, layer.action_weight], dim=1)
    expected = torch.cat([x, one_hot], dim=2) @ weight + layer.bias
    assert torch.allclose(layer(x, actions), expected, atol=1e-6)


def test_disagreement_state_dict_round_trips_with_optimizer_and_normaliser():
    bonus = make_disagreement(return_normalization=True)
    bonus.update(random_rollout(GRID, 2, 4, seed=9))
    bonus.reward(random_rollout(GRID, 2, 4, seed=10))
    copy = make_disagreement(return_normalization=True)
    copy.load_state_dict(bonus.state_dict())
    probe = flat(random_rollout(GRID, 2, 4, seed=11))
    assert torch.equal(copy.raw_reward(*probe), bonus.raw_reward(*probe))
    assert torch.equal(copy.reward_normalizer.discounted_return, bonus.reward_normalizer.discounted_return)
    assert copy.optimizer.state_dict()["state"].keys() == bonus.optimizer.state_dict()["state"].keys()


# ---------------------------------------------------------------- RE3


def make_re3(num_envs: int = 4, **overrides) -> RE3:
    torch.manual_seed(0)
    return RE3(RE3Config(**overrides), grid_spec(num_envs))


def test_kth_neighbour_excludes_the_state_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert kth_neighbour_distance(points, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert kth_neighbour_distance(points, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    # A duplicate elsewhere in the batch is a neighbour at distance 0.
    assert kth_neighbour_distance(torch.tensor([[2.0], [2.0], [5.0]]), k=1).tolist() == [0.0, 0.0, 3.0]


def test_kth_neighbour_in_chunks_equals_the_whole_matrix():
    features = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    whole = kth_neighbour_distance(features, k=3, chunk_size=50)
    for chunk_size in (1, 7, 16):
        assert torch.equal(kth_neighbour_distance(features, k=3, chunk_size=chunk_size), whole)


def test_re3_is_zero_for_identical_states_and_larger_for_spread_out_ones():
    g = torch.Generator().manual_seed(0)
    one_state = random_obs(GRID, (1, 1), g).expand(4, 4, *GRID.obs_shape)
    spread = random_obs(GRID, (4, 4), g)
    actions = torch.zeros(4, 4, dtype=torch.long)
    for normalize in (False, True):
        identical = make_re3(normalize_distance=normalize).reward(rollout_of(one_state, actions))
        assert torch.equal(identical, torch.zeros(4, 4))
        assert (make_re3(normalize_distance=normalize).reward(rollout_of(spread, actions)) > 0).all()


def test_re3_rewards_the_state_far_from_the_others():
    g = torch.Generator().manual_seed(1)
    states = random_obs(GRID, (1, 1), g).expand(3, 4, *GRID.obs_shape).clone()
    states[1, 2] = random_obs(GRID, (1,), g)[0]
    rewards = make_re3(normalize_distance=False).reward(rollout_of(states, torch.zeros(3, 4, dtype=torch.long)))
    assert rewards[1, 2] > 0
    rewards[1, 2] = 0
    assert torch.equal(rewards, torch.zeros(3, 4))


def test_re3_scores_the_state_a_transition_reaches():
    g = torch.Generator().manual_seed(2)
    obs = random_obs(GRID, (3, 4), g)
    same = obs[0, 0].expand(3, 4, *GRID.obs_shape)
    actions = torch.zeros(3, 4, dtype=torch.long)
    assert torch.equal(make_re3().reward(rollout_of(obs, actions, next_obs=same)), torch.zeros(3, 4))


def test_re3_encoder_never_moves():
    re3 = make_re3()
    encoder = [p.clone() for p in re3.encoder.parameters()]
    for seed in range(3):
        drive(re3, random_rollout(GRID, 3, 4, seed=seed))
    assert all(torch.equal(a, b) for a, b in zip(encoder, re3.encoder.parameters()))
    assert not any(p.requires_grad for p in re3.parameters())


def test_re3_decay_multiplies_the_bonus_by_one_minus_rho_to_the_t():
    rho = 0.1
    re3 = make_re3(decay=rho, normalize_distance=False)
    rollout = random_rollout(GRID, 3, 4, seed=3)
    first = re3.reward(rollout)
    for _ in range(3):
        metrics = re3.update(rollout)
    assert metrics["re3/coefficient"] == pytest.approx((1 - rho) ** 3)
    assert torch.allclose(re3.reward(rollout), first * (1 - rho) ** 3)


def test_re3_state_dict_round_trips_with_the_decay_step_and_statistics():
    re3 = make_re3(decay=0.05, return_normalization=True)
    for seed in range(2):
        drive(re3, random_rollout(GRID, 3, 4, seed=seed))
    copy = make_re3(decay=0.05, return_normalization=True)
    copy.load_state_dict(re3.state_dict())
    assert int(copy.updates) == 2
    assert torch.equal(copy.distance_stats.var, re3.distance_stats.var)
    probe = random_rollout(GRID, 3, 4, seed=9)
    assert torch.equal(copy.reward(probe), re3.reward(probe))


# ---------------------------------------------------------------- both, on every family


@pytest.mark.parametrize("family", sorted(SPECS))
@pytest.mark.parametrize("bonus_class, config_class", [(Disagreement, DisagreementConfig), (RE3, RE3Config)])
def test_runs_the_ppo_protocol_on_every_family_with_default_settings(bonus_class, config_class, family):
    spec = SPECS[family]
    torch.manual_seed(0)
    bonus = bonus_class(config_class(), spec)
    rewards = drive(bonus, random_rollout(spec, 3, spec.num_envs, seed=0))
    assert rewards.shape == (3, spec.num_envs) and torch.isfinite(rewards).all()
    assert (rewards > 0).all()
    metrics = bonus.update(random_rollout(spec, 3, spec.num_envs, seed=1))
    assert metrics and all(isinstance(value, float) for value in metrics.values())
