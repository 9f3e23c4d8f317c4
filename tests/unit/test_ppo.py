"""PPO: GAE against a reference loop, the bonus reaching the advantages, gradient routing."""

import numpy as np
import pytest
import torch
from fakes import Corridor

from wanderlust.agents.ppo import PPO, PPOConfig, gae
from wanderlust.intrinsic import NoBonus, Rollout
from wanderlust.intrinsic.base import IntrinsicReward

pytestmark = pytest.mark.unit


def reference_gae(rewards, values, terminated, cut, gamma, lam):
    """Textbook backwards recursion, one environment and one step at a time, in plain Python."""
    steps, envs = rewards.shape
    out = np.zeros((steps, envs))
    for env in range(envs):
        next_advantage = 0.0
        for t in reversed(range(steps)):
            bootstrap = 0.0 if terminated[t, env] else values[t + 1, env]
            delta = rewards[t, env] + gamma * bootstrap - values[t, env]
            carry = 0.0 if cut[t, env] else next_advantage
            next_advantage = delta + gamma * lam * carry
            out[t, env] = next_advantage
    return out


def test_gae_matches_reference_loop():
    rng = np.random.default_rng(0)
    steps, envs = 17, 5
    rewards = rng.normal(size=(steps, envs))
    values = rng.normal(size=(steps + 1, envs))
    terminated = rng.random((steps, envs)) < 0.1
    cut = terminated | (rng.random((steps, envs)) < 0.1)  # truncations cut without terminating
    expected = reference_gae(rewards, values, terminated, cut, 0.99, 0.95)
    got = gae(
        torch.tensor(rewards, dtype=torch.float64), torch.tensor(values, dtype=torch.float64),
        torch.tensor(terminated), torch.tensor(cut), 0.99, 0.95,
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_gae_truncation_bootstraps_but_termination_does_not():
    rewards = torch.zeros(1, 2)
    values = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    terminated = torch.tensor([[True, False]])
    cut = torch.tensor([[True, True]])
    adv = gae(rewards, values, terminated, cut, 0.5, 0.95)
    assert adv[0, 0] == 0.0 and adv[0, 1] == 2.5


class ConstantBonus(IntrinsicReward):
    name = "constant"

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def reward(self, rollout: Rollout) -> torch.Tensor:
        steps = torch.arange(rollout.num_steps, dtype=torch.float32)[:, None]
        return self.scale * (1.0 + steps.expand(rollout.num_steps, rollout.num_envs).sin())


def _agent(bonus, **config):
    torch.manual_seed(0)
    cfg = PPOConfig(num_steps=16, hidden_size=16, **config)
    return PPO(cfg, Corridor(num_envs=3), bonus, total_frames=10_000, device=torch.device("cpu"))


def test_bonus_reaches_advantages():
    """PITFALLS 1: the advantages PPO trains on must change with the bonus weight."""
    results = []
    for scale in (1.0, 1e6):
        agent = _agent(ConstantBonus(scale))
        agent.collect()
        intrinsic = agent.bonus.reward(agent.rollout())
        advantages, _, _ = agent.advantages(intrinsic)
        results.append(advantages)
    assert not torch.allclose(results[0], results[1])
    assert (results[1] - results[0]).abs().max() > 1e3


class WarmedBonus(ConstantBonus):
    """Counts the frames its warm-up saw."""

    warmup_steps = 5

    def __init__(self):
        super().__init__(1.0)
        self.warmed = 0

    def warmup(self, next_obs: torch.Tensor) -> None:
        self.warmed += next_obs.shape[0] * next_obs.shape[1]


def test_warmup_frames_count_in_the_frame_budget():
    """PITFALLS 8: the random-action warm-up's frames are real frames and count."""
    agent = _agent(WarmedBonus())
    assert agent.warmup() == 5 * 3 == agent.frames == agent.bonus.warmed
    agent.iterate()
    assert agent.frames == 15 + 16 * 3


def test_linear_learning_rate_decays_to_zero_over_the_frame_budget():
    """PITFALLS 3: the schedule is explicit (lr_schedule) and follows total_frames."""
    agent = _agent(NoBonus(), lr_schedule="linear", learning_rate=1e-3)
    assert agent.learning_rate() == pytest.approx(1e-3)
    agent.frames = 2_000
    agent.iterate()  # the update uses the rate at the frames before its rollout
    assert agent.optimizer.param_groups[0]["lr"] == pytest.approx(8e-4)
    agent.frames = 7_500
    assert agent.learning_rate() == pytest.approx(2.5e-4)
    agent.frames = 10_000
    assert agent.learning_rate() == 0.0
    agent.frames = 12_000  # past the budget: stays at zero
    assert agent.learning_rate() == 0.0
    constant = _agent(NoBonus(), learning_rate=1e-3)
    constant.frames = 7_500
    assert constant.learning_rate() == 1e-3
    # A longer horizon than the budget: the run follows the first part of that schedule.
    longer = _agent(NoBonus(), lr_schedule="linear", learning_rate=1e-3, lr_decay_frames=100_000)
    longer.frames = 10_000
    assert longer.learning_rate() == pytest.approx(9e-4)


def test_int_coef_scales_intrinsic_advantage_only():
    agent = _agent(NoBonus(), ext_coef=0.0, int_coef=1.0)
    agent.collect()
    intrinsic = torch.ones(16, 3)
    combined, _, _ = agent.advantages(intrinsic)
    assert combined.abs().sum() > 0
    agent.config.int_coef = 0.0
    combined, _, _ = agent.advantages(intrinsic)
    assert combined.abs().sum() == 0


def test_intrinsic_stream_is_non_episodic_by_default():
    agent = _agent(NoBonus())
    agent.collect()
    assert agent.dones.any(), "the corridor must finish an episode inside the rollout"
    rewards = torch.zeros(16, 3)
    rewards[-1] = 1.0  # a bonus at the very end flows back across episode ends...
    _, _, returns_int = agent.advantages(rewards)
    advantage_int = returns_int - agent.values_int[:-1]
    assert (advantage_int[0] != advantage_int[0] * 0).all()
    agent.config.episodic_intrinsic = True  # ...unless asked to be episodic
    _, _, returns_episodic = agent.advantages(rewards)
    first_done = agent.dones[:, 0].nonzero()[0, 0]
    before = slice(0, int(first_done) + 1)
    assert not torch.allclose(returns_int[before, 0], returns_episodic[before, 0])


def test_critic_loss_moves_only_critic_parameters():
    agent = _agent(NoBonus())
    agent.collect()
    advantages, returns_ext, returns_int = agent.advantages(torch.rand(16, 3))
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    terms = agent.losses(
        flat(agent.obs[:-1]), flat(agent.actions), flat(agent.log_probs), flat(advantages),
        flat(returns_ext), flat(returns_int), flat(agent.valid),
    )
    policy_loss, value_loss, entropy = terms["policy_loss"], terms["value_loss"], terms["entropy"]
    heads = agent.policy.heads
    critic = set(map(id, heads.critic_parameters()))
    actor = [p for p in heads.actor.parameters()]
    agent.policy.zero_grad()
    value_loss.backward(retain_graph=True)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in actor)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in heads.critic_parameters())
    agent.policy.zero_grad()
    (policy_loss - entropy).backward()
    for p in agent.policy.parameters():
        if id(p) in critic:
            assert p.grad is None or p.grad.abs().sum() == 0


def test_reset_steps_are_masked_and_start_episodes():
    agent = _agent(NoBonus())
    agent.collect()
    dones, valid = agent.dones, agent.valid
    # the step after every episode end is a reset step: invalid, and its next obs starts an episode
    t, env = dones[:-1].nonzero(as_tuple=True)
    assert len(t) > 0
    assert (~valid[t + 1, env]).all()
    assert agent.episode_start[t + 2, env].all()
    # and those are the only invalid steps: one per episode end
    assert torch.equal(~valid[1:], dones[:-1])


def test_recurrent_update_runs_and_changes_parameters():
    agent = _agent(NoBonus(), lstm_size=8)
    before = [p.detach().clone() for p in agent.policy.parameters()]
    agent.iterate()
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.policy.parameters()))


def test_lstm_state_resets_at_episode_start():
    agent = _agent(NoBonus(), lstm_size=8)
    obs = torch.zeros(2, 7, 7, 3, dtype=torch.uint8)
    state = (torch.ones(1, 2, 8), torch.ones(1, 2, 8))
    fresh = agent.policy(obs, None, torch.tensor([True, True]))
    restarted = agent.policy(obs, state, torch.tensor([True, False]))
    assert torch.allclose(restarted.logits[0], fresh.logits[0])
    assert not torch.allclose(restarted.logits[1], fresh.logits[1])


def test_minigrid_one_hot_planes_match_per_channel_one_hot():
    from wanderlust.nets.minigrid import CELL_VALUES, one_hot_cells

    generator = torch.Generator().manual_seed(0)
    obs = torch.stack([torch.randint(0, n, (5, 7, 7), generator=generator) for n in CELL_VALUES], -1).to(torch.uint8)
    reference = torch.cat([torch.nn.functional.one_hot(obs[..., i].long(), n) for i, n in enumerate(CELL_VALUES)], -1)
    planes = one_hot_cells(obs)
    assert planes.shape == (5, sum(CELL_VALUES), 7, 7)
    assert torch.equal(planes, reference.permute(0, 3, 1, 2).float())
    assert torch.equal(planes.sum(1), torch.full((5, 7, 7), 3.0))  # exactly one hot cell per channel


def test_reset_steps_earn_no_bonus_and_the_weighted_bonus_is_clipped():
    agent = _agent(ConstantBonus(3.0), int_coef=0.5, int_reward_clip=1.0)
    result = agent.iterate()
    rewards = agent.bonus.reward(agent.rollout())
    expected = (rewards * agent.valid).clamp(-2.0, 2.0)  # |int_coef · r| ≤ 1
    assert (~agent.valid).any() and (rewards > 2.0).any()
    assert result["metrics"]["intrinsic_reward"] == pytest.approx(
        (expected * agent.valid).sum().item() / agent.valid.sum().item(), rel=1e-5
    )


def test_share_of_bonus_in_the_start_room_is_read_off_the_observations():
    """Rooms of the fake corridor are position // 2; episodes start in room 0 at position 0, and the
    position is the column of the marked cell in the observation."""
    torch.manual_seed(0)
    cfg = PPOConfig(num_steps=32, hidden_size=16)
    env = Corridor(num_envs=3, length=5, max_steps=12, room_size=2)
    agent = PPO(cfg, env, ConstantBonus(1.0), total_frames=10_000, device=torch.device("cpu"))
    metrics = agent.iterate()["metrics"]
    rewards = agent.bonus.reward(agent.rollout()) * agent.valid
    position = agent.obs[1:, :, 3, :, 0].argmax(-1)  # [T, N]: the column holding the agent mark
    in_start_room = position // 2 == 0
    expected = (rewards * in_start_room).sum() / rewards.sum()
    assert 0.0 < expected < 1.0
    assert metrics["intrinsic_share_start_room"] == pytest.approx(expected.item(), rel=1e-5)
