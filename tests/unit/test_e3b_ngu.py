"""E3B and NGU: each bonus's defining properties."""

import io
import math

import pytest
import torch

from test_intrinsic import SPECS, drive, random_obs, random_rollout, rollout_from
from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.intrinsic.e3b import E3B, E3BConfig, elliptical_bonus
from wanderlust.intrinsic.ngu import NGU, EpisodicMemory, NGUConfig, episodic_novelty, lifelong_multiplier

pytestmark = pytest.mark.unit

GRID = BonusSpec((7, 7, 3), 7, 3, "minigrid")


def make_e3b(spec: BonusSpec = GRID, seed: int = 0, **config) -> E3B:
    torch.manual_seed(seed)
    return E3B(E3BConfig(**config), spec)


def make_ngu(spec: BonusSpec = GRID, seed: int = 0, **config) -> NGU:
    torch.manual_seed(seed)
    config.setdefault("warmup_steps", 0)
    return NGU(NGUConfig(**config), spec)


def repeated_rollout(spec: BonusSpec, steps: int, seed: int) -> Rollout:
    """Each environment sees one observation over and over (its own)."""
    g = torch.Generator().manual_seed(seed)
    frame = random_obs(spec, (1, spec.num_envs), g)
    obs = frame.expand(steps, *frame.shape[1:]).clone()
    return rollout_from(obs, obs.clone(), torch.zeros(steps, spec.num_envs, dtype=torch.long))


def observe_all(bonus, rollout: Rollout) -> None:
    for t in range(rollout.num_steps):
        bonus.reset(rollout.dones[t - 1] if t > 0 else torch.zeros(rollout.num_envs, dtype=torch.bool))
        bonus.observe(rollout.obs[t], rollout.actions[t], rollout.next_obs[t])


def saved_and_loaded(state: dict) -> dict:
    """A state dict through torch.save and a weights-only load, as checkpoints travel."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# ---------------------------------------------------------------------------------------------- E3B


def test_elliptical_bonus_starts_at_phi_over_lambda_and_tracks_the_explicit_inverse():
    """First step: b = φᵀ(I/λ)φ. Every later step: b = φᵀ(λI + Σ_prev φφᵀ)⁻¹φ, and the
    Sherman–Morrison C⁻¹ equals the explicit inverse of λI + Σφφᵀ."""
    ridge, num_envs, size = 0.1, 3, 8
    g = torch.Generator().manual_seed(0)
    features = torch.randn(6, num_envs, size, generator=g, dtype=torch.float64)
    cov_inverse = (torch.eye(size, dtype=torch.float64) / ridge).repeat(num_envs, 1, 1)
    first = elliptical_bonus(cov_inverse, features[0])
    torch.testing.assert_close(first, features[0].pow(2).sum(1) / ridge)
    for t in range(1, 6):
        past = features[:t]
        cov = ridge * torch.eye(size, dtype=torch.float64) + torch.einsum("tni,tnj->nij", past, past)
        expected = torch.einsum("ni,nij,nj->n", features[t], torch.linalg.inv(cov), features[t])
        torch.testing.assert_close(elliptical_bonus(cov_inverse, features[t]), expected)
    cov = ridge * torch.eye(size, dtype=torch.float64) + torch.einsum("tni,tnj->nij", features, features)
    torch.testing.assert_close(cov_inverse, torch.linalg.inv(cov))


def test_elliptical_bonus_of_a_repeated_feature_shrinks_as_b0_over_1_plus_k_b0():
    phi = torch.tensor([[0.3, -0.4, 1.2]], dtype=torch.float64)
    cov_inverse = torch.eye(3, dtype=torch.float64).unsqueeze(0) / 0.1
    bonuses = torch.stack([elliptical_bonus(cov_inverse, phi)[0] for _ in range(6)])
    b0 = bonuses[0]
    torch.testing.assert_close(bonuses, b0 / (1 + torch.arange(6, dtype=torch.float64) * b0))
    assert (bonuses[1:] < bonuses[:-1]).all()


def test_a_zero_feature_leaves_the_inverse_covariance_unchanged():
    cov_inverse = torch.eye(4).repeat(2, 1, 1) * 10
    before = cov_inverse.clone()
    assert torch.equal(elliptical_bonus(cov_inverse, torch.zeros(2, 4)), torch.zeros(2))
    assert torch.equal(cov_inverse, before)


def test_e3b_repeated_state_earns_less_each_step_and_the_first_step_matches_the_formula():
    e3b = make_e3b(reward_std_normalization=False)
    rollout = repeated_rollout(GRID, steps=6, seed=1)
    observe_all(e3b, rollout)
    rewards = e3b.reward(rollout)
    assert (rewards[1:] < rewards[:-1]).all()
    # The first episode's first state (obs) is folded in before s' is scored: C = λI + φφᵀ with φ(s') = φ(s).
    with torch.no_grad():
        phi = e3b.dynamics.embedding(rollout.next_obs[0]).double()
    expected = phi.pow(2).sum(1) / (0.1 + phi.pow(2).sum(1))
    torch.testing.assert_close(rewards[0].double(), expected, rtol=1e-4, atol=1e-6)


def test_e3b_resets_the_episode_of_masked_envs_only_and_pays_nothing_on_the_reset_step():
    e3b = make_e3b(reward_std_normalization=False)
    rollout = random_rollout(GRID, steps=4, seed=2)
    observe_all(e3b, rollout)
    e3b.reward(rollout)
    before = e3b.cov_inverse.clone()
    mask = torch.tensor([True, False, False])
    e3b.reset(mask)
    torch.testing.assert_close(e3b.cov_inverse[0], torch.eye(128) / 0.1)
    assert torch.equal(e3b.cov_inverse[1:], before[1:])
    g = torch.Generator().manual_seed(3)
    first, second = random_obs(GRID, (2, 3), g)
    e3b.observe(rollout.next_obs[-1], torch.zeros(3, dtype=torch.long), first)
    with torch.no_grad():
        phi0 = e3b.dynamics.embedding(first[:1]).double()
        phi1 = e3b.dynamics.embedding(second[:1]).double()
    # The reset step's s' starts the episode's C: C⁻¹ = (λI + φ0φ0ᵀ)⁻¹.
    expected_inverse = torch.linalg.inv(0.1 * torch.eye(128, dtype=torch.float64) + phi0.T @ phi0)
    torch.testing.assert_close(e3b.cov_inverse[0].double(), expected_inverse, rtol=1e-4, atol=1e-4)
    e3b.reset(torch.zeros(3, dtype=torch.bool))
    e3b.observe(first, torch.zeros(3, dtype=torch.long), second)
    recorded = e3b.reward(rollout_from(first[None].expand(2, -1, -1, -1, -1), second[None].expand(2, -1, -1, -1, -1),
                                       torch.zeros(2, 3, dtype=torch.long)))
    assert recorded[0, 0] == 0.0 and (recorded[0, 1:] > 0).all()
    torch.testing.assert_close(recorded[1, 0].double(), (phi1 @ expected_inverse @ phi1.T)[0, 0], rtol=1e-3, atol=1e-5)


def test_e3b_divides_by_the_running_std_of_its_own_bonus():
    e3b = make_e3b()
    rollout = random_rollout(GRID, steps=5, seed=4)
    observe_all(e3b, rollout)
    raw = torch.stack(list(e3b.recorder._steps))
    rewards = e3b.reward(rollout)
    # RunningMeanStd starts from a prior of weight 1e-4, hence the tolerance.
    torch.testing.assert_close(rewards, raw / (raw.std(unbiased=False) + 1e-8), rtol=1e-3, atol=1e-6)


def test_e3b_refuses_two_normalisations():
    with pytest.raises(ValueError, match="at most one"):
        make_e3b(reward_std_normalization=True, return_normalization=True)


def test_e3b_inverse_model_learns_the_actions_of_a_fixed_rollout():
    e3b = make_e3b(learning_rate=1e-3, minibatch_size=64)
    rollout = random_rollout(GRID, steps=8, seed=5)
    first = None
    for _ in range(30):
        metrics = e3b.update(rollout)
        first = first or metrics["e3b/inverse_loss"]
    assert metrics["e3b/inverse_loss"] < 0.5 * first
    assert all(key.startswith("e3b/") for key in metrics)


def test_e3b_state_dict_round_trips_and_leaves_episodic_state_out():
    e3b = make_e3b()
    rollout = random_rollout(GRID, steps=4, seed=6)
    drive(e3b, rollout)
    state = saved_and_loaded(e3b.state_dict())
    assert not any("cov_inverse" in key or "episode_start" in key for key in state)
    copy = make_e3b(seed=1)
    copy.load_state_dict(state)
    probe = random_obs(GRID, (5,), torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.equal(copy.dynamics.embedding(probe), e3b.dynamics.embedding(probe))
    assert torch.equal(copy.reward_stats.var, e3b.reward_stats.var)
    assert copy.optimizer.state_dict()["state"].keys() == e3b.optimizer.state_dict()["state"].keys()


# ---------------------------------------------------------------------------------------------- NGU


def test_episodic_novelty_matches_the_kernel_formula():
    config = NGUConfig()
    inf = math.inf
    mean = torch.tensor(2.0)
    c = config.pseudo_count_constant
    same_ten = torch.zeros(1, 10)
    one_exact = torch.tensor([[0.0] + [inf] * 9])
    # ξ is subtracted, then floored at 0: normalised distance 0.005 < ξ counts as an exact match, and
    # 0.01 pays ε / (0.01 − ξ + ε) ≈ 0.048, not ε / (0.01 + ε) ≈ 0.0099.
    near_and_far = torch.tensor([[0.01, 0.02]])
    rewards = torch.cat([
        episodic_novelty(same_ten, mean, config),
        episodic_novelty(one_exact, mean, config),
        episodic_novelty(near_and_far, mean, config),
    ])
    far_kernel = config.kernel_epsilon / (0.01 - config.cluster_distance + config.kernel_epsilon)
    expected = torch.tensor([1 / (math.sqrt(10) + c), 1 / (1 + c), 1 / (math.sqrt(1 + far_kernel) + c)])
    torch.testing.assert_close(rewards, expected)


def test_ngu_defaults_are_the_papers_constants():
    config = NGUConfig()
    constants = (config.num_neighbors, config.kernel_epsilon, config.cluster_distance, config.pseudo_count_constant,
                 config.max_similarity, config.max_multiplier, config.memory_capacity, config.feature_size)
    assert constants == (10, 1e-4, 0.008, 1e-3, 8.0, 5.0, 30_000, 32)


def test_episodic_novelty_is_zero_above_the_maximum_similarity():
    config = NGUConfig(max_similarity=2.0)
    rewards = episodic_novelty(torch.tensor([[0.0] * 10, [0.0] * 3 + [math.inf] * 7]), torch.tensor(1.0), config)
    assert rewards[0] == 0.0  # √10 + c > 2
    torch.testing.assert_close(rewards[1], torch.tensor(1 / (math.sqrt(3) + config.pseudo_count_constant)))


def test_episodic_reward_falls_as_the_same_embedding_is_added_repeatedly():
    config = NGUConfig(num_neighbors=10)
    memory = EpisodicMemory(num_envs=1, feature_size=4, capacity=100)
    phi = torch.tensor([[0.5, -1.0, 2.0, 0.0]])
    add = torch.ones(1, dtype=torch.bool)
    memory.query_then_add(torch.zeros(1, 4), 10, add)  # one other state, so that d²_m > 0
    rewards = []
    for _ in range(12):
        sq = memory.query_then_add(phi, config.num_neighbors, add)
        rewards.append(episodic_novelty(sq, torch.tensor(5.25), config).item())
    assert all(later < earlier for earlier, later in zip(rewards[:10], rewards[1:11]))
    assert rewards[11] == pytest.approx(1 / (math.sqrt(10) + config.pseudo_count_constant))


def test_knn_uses_at_most_k_neighbours_and_memory_grows_by_one_per_step():
    g = torch.Generator().manual_seed(8)
    memory = EpisodicMemory(num_envs=2, feature_size=3, capacity=1000, initial_slots=4)
    stored = []
    add = torch.ones(2, dtype=torch.bool)
    for step in range(15):
        features = torch.randn(2, 3, generator=g)
        sq = memory.query_then_add(features, 5, add)
        assert sq.shape == (2, min(5, step))
        if stored:
            brute = (torch.stack(stored, 1) - features[:, None]).pow(2).sum(-1).sort(1).values[:, :5]
            torch.testing.assert_close(sq, brute)
        stored.append(features)
        assert memory.lengths.tolist() == [step + 1, step + 1]
    assert memory.embeddings.shape[1] >= 15  # storage grew past its initial 4 slots
    only_first = torch.tensor([True, False])
    memory.query_then_add(torch.zeros(2, 3), 5, only_first)
    assert memory.lengths.tolist() == [16, 15]


def test_memory_beyond_capacity_keeps_the_newest_embeddings():
    memory = EpisodicMemory(num_envs=1, feature_size=1, capacity=5, initial_slots=2)
    add = torch.ones(1, dtype=torch.bool)
    for value in range(8):
        memory.query_then_add(torch.tensor([[float(value)]]), 10, add)
    assert memory.lengths.tolist() == [5] and memory.embeddings.shape[1] == 5
    sq = memory.query_then_add(torch.tensor([[0.0]]), 10, add)
    torch.testing.assert_close(sq, torch.tensor([[9.0, 16.0, 25.0, 36.0, 49.0]]))


def test_lifelong_multiplier_clips_to_one_below_and_to_l_above():
    """PITFALLS 5: a hand-made sequence of errors. Below 1 → 1, above L → L (not 1), between → α."""
    errors = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    mean, std = errors.mean().double(), errors.std(unbiased=False).double()
    alphas = torch.tensor([-3.0, 0.2, 1.0, 2.5, 4.9, 5.0, 7.0, 40.0])
    probes = (mean + (alphas.double() - 1) * std).float()
    multiplier = lifelong_multiplier(probes, mean, std, max_multiplier=5.0)
    torch.testing.assert_close(multiplier, torch.tensor([1.0, 1.0, 1.0, 2.5, 4.9, 5.0, 5.0, 5.0]))
    assert multiplier.max() == 5.0


def test_ngu_reward_is_episodic_novelty_times_the_clipped_multiplier():
    ngu = make_ngu(return_normalization=False)
    rollout = random_rollout(GRID, steps=6, seed=9)
    observe_all(ngu, rollout)
    episodic = torch.stack(list(ngu.recorder._steps))
    errors = ngu.rnd.raw_reward(rollout.next_obs.flatten(0, 1)).reshape(6, 3)
    rewards = ngu.reward(rollout)
    mean, std = errors.double().mean(), errors.double().std(unbiased=False)
    expected = episodic * (1 + (errors.double() - mean) / std).clamp(1, 5).float()
    torch.testing.assert_close(rewards, expected, rtol=1e-3, atol=1e-5)
    metrics = ngu.update(rollout)
    assert 1.0 <= metrics["ngu/lifelong_multiplier"] <= 5.0
    assert all(key.startswith("ngu/") for key in metrics)


def test_ngu_repeated_state_earns_less_each_step_within_k():
    ngu = make_ngu(return_normalization=False)
    rollout = repeated_rollout(GRID, steps=8, seed=10)
    observe_all(ngu, rollout)
    episodic = torch.stack(list(ngu.recorder._steps))
    # The first state is already stored, so step t sees t + 1 exact matches: r = 1 / (√(t + 1) + c).
    expected = 1 / (torch.arange(1, 9).float().sqrt() + 1e-3)
    torch.testing.assert_close(episodic, expected[:, None].expand(8, 3))


def test_ngu_resets_the_memory_of_masked_envs_only_and_pays_nothing_on_the_reset_step():
    ngu = make_ngu(return_normalization=False)
    rollout = random_rollout(GRID, steps=4, seed=11)
    observe_all(ngu, rollout)
    assert ngu.memory.lengths.tolist() == [5, 5, 5]
    ngu.reset(torch.tensor([False, True, False]))
    assert ngu.memory.lengths.tolist() == [5, 0, 5]
    ngu.observe(rollout.next_obs[-1], rollout.actions[-1], rollout.obs[0])
    assert ngu.memory.lengths.tolist() == [6, 1, 6]
    assert ngu.recorder._steps[-1][1] == 0.0 and (ngu.recorder._steps[-1][[0, 2]] > 0).all()


def test_ngu_rnd_target_never_moves_while_predictor_and_embedding_do():
    ngu = make_ngu()
    target = [p.clone() for p in ngu.rnd.target.parameters()]
    predictor = [p.clone() for p in ngu.rnd.predictor.parameters()]
    embedding = [p.clone() for p in ngu.dynamics.parameters()]
    drive(ngu, random_rollout(GRID, steps=4, seed=12))
    assert all(torch.equal(a, b) for a, b in zip(target, ngu.rnd.target.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(predictor, ngu.rnd.predictor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(embedding, ngu.dynamics.parameters()))


def test_ngu_state_dict_round_trips_with_rnd_and_running_statistics():
    ngu = make_ngu()
    drive(ngu, random_rollout(GRID, steps=4, seed=13))
    state = saved_and_loaded(ngu.state_dict())
    assert not any(key.startswith("memory.") or "episode_start" in key for key in state)
    copy = make_ngu(seed=1)
    copy.load_state_dict(state)
    probe = random_obs(GRID, (5,), torch.Generator().manual_seed(14))
    assert torch.equal(copy.rnd.raw_reward(probe), ngu.rnd.raw_reward(probe))
    with torch.no_grad():
        assert torch.equal(copy.dynamics.embedding(probe), ngu.dynamics.embedding(probe))
    assert torch.equal(copy.mean_sq_distance, ngu.mean_sq_distance) and ngu.distance_count > 0
    assert torch.equal(copy.error_stats.mean, ngu.error_stats.mean)
    assert copy.optimizer.state_dict()["state"].keys() == ngu.optimizer.state_dict()["state"].keys()
    assert copy.rnd.optimizer.state_dict()["state"].keys() == ngu.rnd.optimizer.state_dict()["state"].keys()


# ----------------------------------------------------------------------------------------- both


@pytest.mark.parametrize("family", sorted(SPECS))
@pytest.mark.parametrize("make", [make_e3b, make_ngu], ids=["e3b", "ngu"])
def test_runs_the_ppo_protocol_on_every_family(make, family):
    spec = SPECS[family]
    rollout = random_rollout(spec, steps=3, seed=15)
    rollout.dones[1, 0] = True
    rollout.valid[2, 0] = False
    bonus = make(spec)
    rewards = drive(bonus, rollout)
    assert rewards.shape == (3, spec.num_envs) and torch.isfinite(rewards).all()
    assert rewards[2, 0] == 0.0  # the reset step


@pytest.mark.parametrize("make", [make_e3b, make_ngu], ids=["e3b", "ngu"])
def test_episodic_state_written_under_inference_mode_works_outside_it(make):
    """PPO observes under torch.inference_mode; rewards, updates and later steps run outside it."""
    bonus = make(memory_capacity=64) if make is make_ngu else make()
    if make is make_ngu:
        bonus.memory = EpisodicMemory(GRID.num_envs, bonus.config.feature_size, 64, initial_slots=2)
    rollout = random_rollout(GRID, steps=5, seed=16)
    with torch.inference_mode():
        observe_all(bonus, rollout)
    assert torch.isfinite(bonus.reward(rollout)).all()
    bonus.update(rollout)
    observe_all(bonus, rollout)
    bonus.reset(torch.ones(GRID.num_envs, dtype=torch.bool))
    assert torch.isfinite(bonus.reward(rollout)).all()
