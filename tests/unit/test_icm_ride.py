"""ICM, RIDE and RIDE's two ablations: each bonus's defining properties."""

import io
import math

import pytest
import torch
from fakes import Corridor

from test_intrinsic import SPECS, drive, random_obs, random_rollout, rollout_from
from wanderlust.agents.ppo import PPO, PPOConfig
from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.intrinsic.icm import ICM, ICMConfig, forward_distance
from wanderlust.intrinsic.ride import RIDE, EpisodicCount, EpisodicCountConfig, RIDEConfig, RIDENoEpisodic

pytestmark = pytest.mark.unit

GRID = BonusSpec((7, 7, 3), 7, 4, "minigrid")
BONUS_CLASSES = {
    "icm": (ICM, ICMConfig),
    "ride": (RIDE, RIDEConfig),
    "ride-no-episodic": (RIDENoEpisodic, RIDEConfig),
    "episodic-count": (EpisodicCount, EpisodicCountConfig),
}


def make(name: str, spec: BonusSpec = GRID, seed: int = 0, **config):
    torch.manual_seed(seed)
    cls, config_class = BONUS_CLASSES[name]
    return cls(config_class(**config), spec)


def saved_and_loaded(state: dict) -> dict:
    """A state dict through torch.save and a weights-only load, as checkpoints travel."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def observe_all(bonus, rollout: Rollout) -> None:
    for t in range(rollout.num_steps):
        bonus.reset(rollout.dones[t - 1] if t > 0 else torch.zeros(rollout.num_envs, dtype=torch.bool))
        bonus.observe(rollout.obs[t], rollout.actions[t], rollout.next_obs[t])


# ------------------------------------------------------------------ every bonus, every family


@pytest.mark.parametrize("family", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(BONUS_CLASSES))
def test_runs_the_ppo_protocol_and_logs_its_metrics(name, family):
    spec = SPECS[family]
    bonus = make(name, spec)
    rollout = random_rollout(spec, 3, seed=1)
    rewards = drive(bonus, rollout)
    assert rewards.shape == (3, spec.num_envs) and torch.isfinite(rewards).all() and (rewards >= 0).all()
    assert not rewards.requires_grad
    observe_all(bonus, rollout)
    bonus.reward(rollout)
    metrics = bonus.update(rollout)
    expected = {"raw_bonus"}
    if name != "episodic-count":
        expected |= {"forward_loss", "inverse_loss", "inverse_accuracy"}
    if name.startswith("ride"):
        expected.add("embedding_change")
    if name in ("ride", "episodic-count"):
        expected.add("episodic_count")
    assert set(metrics) == {f"{name}/{key}" for key in expected}
    assert all(isinstance(value, float) and math.isfinite(value) for value in metrics.values())


# ------------------------------------------------------------------ the formulas


def test_icm_bonus_is_the_forward_models_unsquared_error():
    icm = make("icm")
    rollout = random_rollout(GRID, 2, seed=2)
    rewards = icm.reward(rollout)
    obs, next_obs, actions = rollout.obs[1], rollout.next_obs[1], rollout.actions[1]
    with torch.no_grad():
        phi, next_phi = icm.dynamics.embedding(obs), icm.dynamics.embedding(next_obs)
        one_hot = torch.nn.functional.one_hot(actions, GRID.num_actions).float()
        predicted = icm.dynamics.forward_model(torch.cat([phi, one_hot], 1))
    torch.testing.assert_close(rewards[1], (predicted - next_phi).norm(dim=1), rtol=1e-4, atol=1e-5)


def test_ride_bonus_is_embedding_change_over_root_episodic_count():
    ride, ablation = make("ride"), make("ride-no-episodic")
    g = torch.Generator().manual_seed(3)
    states = random_obs(GRID, (2, GRID.num_envs), g)
    # Envs bounce between two observations: s' is seen for the 1st, 1st, 2nd, 2nd, 3rd time.
    sequence = torch.stack([states[i % 2] for i in range(6)])
    rollout = rollout_from(sequence[:-1], sequence[1:], torch.zeros(5, GRID.num_envs, dtype=torch.long))
    observe_all(ride, rollout)
    with torch.no_grad():
        change = (ride.dynamics.embedding(states[1]) - ride.dynamics.embedding(states[0])).norm(dim=1)
    counts = torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0])[:, None]
    torch.testing.assert_close(ride.reward(rollout), change.expand(5, -1) / counts.sqrt(), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ablation.reward(rollout), change.expand(5, -1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["ride", "ride-no-episodic"])
@pytest.mark.parametrize("family", sorted(SPECS))
def test_a_no_op_transition_earns_exactly_zero(name, family):
    spec = SPECS[family]
    bonus = make(name, spec)
    rollout = random_rollout(spec, 2, seed=4)
    rollout.next_obs[1, :2] = rollout.obs[1, :2]  # two no-op transitions among real changes
    observe_all(bonus, rollout)
    rewards = bonus.reward(rollout)
    assert (rewards[1, :2] == 0).all()
    assert (rewards[1, 2:] > 0).all() and (rewards[0] > 0).all()


# ------------------------------------------------------------------ episodic counts


def test_episodic_count_is_one_over_root_n_and_reset_clears_only_that_env():
    bonus = make("episodic-count", BonusSpec((7, 7, 3), 7, 2, "minigrid"))
    same = random_obs(GRID, (2,), torch.Generator().manual_seed(5))
    no_reset = torch.zeros(2, dtype=torch.bool)
    for mask in (no_reset, no_reset, no_reset, torch.tensor([True, False])):
        bonus.reset(mask)
        bonus.observe(same, torch.zeros(2, dtype=torch.long), same)
    rewards = bonus.reward(rollout_from(same.expand(4, -1, -1, -1, -1), same.expand(4, -1, -1, -1, -1),
                                        torch.zeros(4, 2, dtype=torch.long)))
    assert rewards[:, 0].tolist() == [1.0, pytest.approx(2**-0.5, abs=1e-7), pytest.approx(3**-0.5, abs=1e-7), 1.0]
    assert rewards[:, 1].tolist() == pytest.approx([1.0, 2**-0.5, 3**-0.5, 0.5], abs=1e-7)


def test_counts_key_on_the_exact_observation():
    """One changed cell is a new observation (PITFALLS 4: exact counts, no similarity)."""
    bonus = make("episodic-count")
    obs = random_obs(GRID, (GRID.num_envs,), torch.Generator().manual_seed(6))
    nearly = obs.clone()
    nearly[:, 3, 3, 2] = (nearly[:, 3, 3, 2] + 1) % 3
    actions = torch.zeros(GRID.num_envs, dtype=torch.long)
    for next_obs in (obs, nearly, obs):
        bonus.reset(torch.zeros(GRID.num_envs, dtype=torch.bool))
        bonus.observe(obs, actions, next_obs)
    stacked = torch.stack([obs, nearly, obs])
    rewards = bonus.reward(rollout_from(stacked, stacked, torch.zeros(3, GRID.num_envs, dtype=torch.long)))
    torch.testing.assert_close(rewards, torch.tensor([1.0, 1.0, 2**-0.5]).expand(GRID.num_envs, 3).T)


@pytest.mark.parametrize("name", ["ride", "episodic-count"])
def test_episodic_state_is_cleared_at_episode_ends_and_not_otherwise(name):
    """Envs stand still on one observation; env 0's episode ends at step 2, so its count restarts
    at the reset step 3 (which PPO zeroes) and counts on from there; env 1 never resets."""
    bonus = make(name)
    n = GRID.num_envs
    obs = random_obs(GRID, (n,), torch.Generator().manual_seed(7))
    still = obs.expand(6, -1, -1, -1, -1)
    dones = torch.zeros(6, n, dtype=torch.bool)
    dones[2, 0] = True
    rollout = rollout_from(still, still, torch.zeros(6, n, dtype=torch.long), dones=dones)
    observe_all(bonus, rollout)
    counts = bonus.visits.take(6)
    assert counts[:, 0].tolist() == [1, 2, 3, 1, 2, 3]
    assert all(counts[:, env].tolist() == [1, 2, 3, 4, 5, 6] for env in range(1, n))


def corridor_agent(name: str, num_steps: int = 40) -> PPO:
    torch.manual_seed(0)
    env = Corridor(num_envs=3, length=5, max_steps=12)
    bonus = make(name, BonusSpec((7, 7, 3), 3, 3, "minigrid"))
    config = PPOConfig(num_steps=num_steps, hidden_size=16)
    return PPO(config, env, bonus, total_frames=10_000, device=torch.device("cpu"))


def test_counts_under_ppo_restart_with_each_episode():
    """Through PPO's own loop (next-step auto-reset): N_ep(s') counts s' within its episode, the
    new episode's first observation (reached on the reset step) included."""
    agent = corridor_agent("episodic-count")
    agent.collect()
    rollout = agent.rollout()
    assert rollout.dones[:-1].any()
    expected = torch.zeros(rollout.num_steps, rollout.num_envs)
    for env in range(rollout.num_envs):
        seen: dict[bytes, int] = {}
        for t in range(rollout.num_steps):
            if not rollout.valid[t, env]:
                seen.clear()
            key = rollout.next_obs[t, env].numpy().tobytes()
            seen[key] = seen.get(key, 0) + 1
            expected[t, env] = seen[key]
    torch.testing.assert_close(agent.bonus.reward(rollout), expected.rsqrt() * rollout.valid)


@pytest.mark.parametrize("name", sorted(BONUS_CLASSES))
def test_one_ppo_iteration_logs_the_bonus_metrics(name):
    metrics = corridor_agent(name, num_steps=8).iterate()["metrics"]
    assert f"{name}/raw_bonus" in metrics and metrics["intrinsic_reward"] > 0


def test_reset_refuses_a_uint8_mask():
    """PITFALLS 6: masks stay bool."""
    bonus = make("ride")
    with pytest.raises(TypeError, match="bool"):
        bonus.reset(torch.zeros(GRID.num_envs, dtype=torch.uint8))


def test_reward_needs_every_step_of_the_rollout_observed():
    bonus = make("episodic-count")
    rollout = random_rollout(GRID, 3, seed=8)
    bonus.observe(rollout.obs[0], rollout.actions[0], rollout.next_obs[0])
    with pytest.raises(RuntimeError, match="observed 1 steps of a 3-step rollout"):
        bonus.reward(rollout)


# ------------------------------------------------------------------ learning


def test_icm_bonus_on_a_repeated_transition_falls_with_updates():
    icm = make("icm")
    seen, novel = random_rollout(GRID, 4, seed=9), random_rollout(GRID, 4, seed=10)
    before = icm.reward(seen).mean()
    for _ in range(40):
        icm.update(seen)
    after = icm.reward(seen).mean()
    assert after < 0.5 * before
    assert icm.reward(novel).mean() > 1.5 * after


def toy_transitions(spec: BonusSpec, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One room whose top row shows random colours (distractors); action a writes object index a + 1
    into one cell. The action is learnable from (s, s') and the rule carries over to new distractors."""
    room = random_obs(spec, (), torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed)
    obs = room.expand(batch, -1, -1, -1).clone()
    obs[:, 0, :, 1] = torch.randint(0, 6, (batch, 7), generator=g).to(torch.uint8)
    actions = torch.randint(0, spec.num_actions, (batch,), generator=g)
    next_obs = obs.clone()
    next_obs[:, 3, 5, 0] = (actions + 1).to(torch.uint8)
    return obs, actions, next_obs


@pytest.mark.parametrize("name", ["icm", "ride"])
def test_inverse_accuracy_rises_on_a_learnable_transition(name):
    bonus = make(name, learning_rate=1e-3)  # ten times the default, to learn within a few seconds
    obs, actions, next_obs = toy_transitions(GRID, 128, seed=11)
    rollout = rollout_from(obs.reshape(32, 4, 7, 7, 3), next_obs.reshape(32, 4, 7, 7, 3), actions.reshape(32, 4))
    accuracies = [bonus.update(rollout)[f"{name}/inverse_accuracy"] for _ in range(40)]
    with torch.no_grad():
        held_out_accuracy = bonus.dynamics.losses(*toy_transitions(GRID, 512, seed=12)).inverse_accuracy.mean().item()
    assert accuracies[0] < 0.4
    assert accuracies[-1] > 0.9 and held_out_accuracy > 0.7


def test_forward_loss_trains_phi_through_both_sides_and_never_the_inverse_model():
    """The RIDE code stops no gradient: its forward loss reaches φ through φ(s) and through the
    target φ(s'), and neither loss reaches the other head."""
    icm = make("icm")
    rollout = random_rollout(GRID, 2, seed=13)
    terms = icm.dynamics.losses(rollout.obs[0], rollout.actions[0], rollout.next_obs[0])
    forward = forward_distance(terms).sum()
    phi_s, phi_next = torch.autograd.grad(forward, [terms.features, terms.next_features], retain_graph=True)
    assert phi_s.abs().sum() > 0 and phi_next.abs().sum() > 0
    forward.backward(retain_graph=True)
    assert all(p.grad is None for p in icm.dynamics.inverse_model.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in icm.dynamics.embedding.parameters())
    icm.dynamics.zero_grad(set_to_none=True)
    terms.inverse.sum().backward()
    assert all(p.grad is None for p in icm.dynamics.forward_model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in icm.dynamics.embedding.parameters())


@pytest.mark.parametrize("frozen_head, coefficient", [("inverse_model", "inverse_loss_coef"),
                                                       ("forward_model", "forward_loss_coef")])
def test_each_loss_trains_phi_and_its_own_head_only(frozen_head, coefficient):
    """With one loss weighted 0, an update moves φ and that loss's head stays exactly where it was."""
    bonus = make("ride", **{coefficient: 0.0})
    before = {key: value.clone() for key, value in bonus.dynamics.state_dict().items()}
    bonus.update(random_rollout(GRID, 3, seed=23))
    after = bonus.dynamics.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(frozen_head))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("embedding."))


@pytest.mark.parametrize("name", ["icm", "ride", "ride-no-episodic"])
def test_update_moves_phi_and_both_models(name):
    bonus = make(name)
    before = {key: value.clone() for key, value in bonus.dynamics.state_dict().items()}
    bonus.update(random_rollout(GRID, 3, seed=14))
    for prefix in ("embedding.", "forward_model.", "inverse_model."):
        moved = [not torch.equal(before[k], v) for k, v in bonus.dynamics.state_dict().items() if k.startswith(prefix)]
        assert any(moved), prefix


def test_reset_steps_stay_out_of_the_loss():
    """Two rollouts that differ only on invalid (auto-reset) steps train identically."""
    clean = random_rollout(GRID, 4, seed=15)
    valid = torch.ones(4, GRID.num_envs, dtype=torch.bool)
    valid[2, 1] = valid[0, 3] = False
    garbage = random_rollout(GRID, 4, seed=16)
    noisy = rollout_from(clean.obs.clone(), clean.next_obs.clone(), clean.actions.clone(), valid=valid)
    noisy.obs[~valid] = garbage.obs[~valid]
    noisy.next_obs[~valid] = garbage.next_obs[~valid]
    noisy.actions[~valid] = (clean.actions[~valid] + 1) % GRID.num_actions
    cleaned = rollout_from(clean.obs, clean.next_obs, clean.actions, valid=valid)
    a, b = make("ride"), make("ride")
    metrics_a, metrics_b = a.update(cleaned), b.update(noisy)
    assert metrics_a == pytest.approx(metrics_b)
    for (key, p), q in zip(a.dynamics.state_dict().items(), b.dynamics.state_dict().values()):
        torch.testing.assert_close(p, q, msg=key)


# ------------------------------------------------------------------ normalisation and checkpoints


@pytest.mark.parametrize("name", sorted(BONUS_CLASSES))
def test_return_normalization_divides_by_the_return_std(name):
    plain, normalised = make(name), make(name, return_normalization=True)
    assert plain.reward_normalizer is None
    rollout = random_rollout(GRID, 3, seed=17)
    observe_all(plain, rollout)
    observe_all(normalised, rollout)
    raw, scaled = plain.reward(rollout), normalised.reward(rollout)
    std = normalised.reward_normalizer.stats.std.item()
    torch.testing.assert_close(scaled, raw / (std + 1e-8), rtol=1e-4, atol=1e-6)
    assert f"{name}/return_std" in normalised.update(rollout)


@pytest.mark.parametrize("name", ["icm", "ride", "ride-no-episodic"])
def test_state_dict_round_trips_networks_optimizer_and_normaliser(name):
    bonus = make(name, return_normalization=True)
    for seed in (18, 19):
        rollout = random_rollout(GRID, 3, seed)
        observe_all(bonus, rollout)
        bonus.reward(rollout)
        bonus.update(rollout)
    copy = make(name, seed=1, return_normalization=True)
    copy.load_state_dict(saved_and_loaded(bonus.state_dict()))
    probe = random_rollout(GRID, 1, seed=20)
    transitions = (probe.obs[0], probe.actions[0], probe.next_obs[0])
    assert torch.equal(copy.transition_bonus(*transitions), bonus.transition_bonus(*transitions))
    torch.testing.assert_close(copy.reward_normalizer.discounted_return, bonus.reward_normalizer.discounted_return)
    assert copy.reward_normalizer.stats.count.item() == bonus.reward_normalizer.stats.count.item()
    saved, loaded = bonus.optimizer.state_dict()["state"], copy.optimizer.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k]["square_avg"], loaded[k]["square_avg"]) for k in saved)
    # The same next step from the same state: the optimiser's running averages came along.
    step = random_rollout(GRID, 2, seed=21)
    copy_metrics, metrics = copy.update(step), bonus.update(step)
    assert all(copy_metrics[f"{name}/{key}"] == metrics[f"{name}/{key}"] for key in ("forward_loss", "inverse_loss"))
    for p, q in zip(copy.dynamics.parameters(), bonus.dynamics.parameters()):
        assert torch.equal(p, q)


def test_episodic_count_state_dict_round_trips():
    bonus = make("episodic-count", return_normalization=True)
    rollout = random_rollout(GRID, 3, seed=22)
    observe_all(bonus, rollout)
    bonus.reward(rollout)
    copy = make("episodic-count", return_normalization=True)
    copy.load_state_dict(saved_and_loaded(bonus.state_dict()))
    assert torch.equal(copy.visits.hash.weights, bonus.visits.hash.weights)
    assert torch.equal(copy.reward_normalizer.discounted_return, bonus.reward_normalizer.discounted_return)
