"""DreamerV3's actor-critic in imagination and its sequence replay: each test pins a defining
property (gradient routing, the λ-returns and normaliser the loss uses, the slow critic, the
entropy sign, learning on an imagined bandit; replay windows, boundaries, ring, seed, state)."""

import pytest
import torch

from wanderlust.agents.dreamer import (
    ActorCritic,
    ActorCriticConfig,
    Rollout,
    ReturnNormConfig,
    RSSMState,
    SequenceReplay,
    TrainRatio,
    WorldModel,
    WorldModelConfig,
    lambda_returns,
    train_ratio_updates,
)

pytestmark = pytest.mark.unit


# helpers -----------------------------------------------------------------------------------------

def _world_model(seed=0):
    torch.manual_seed(seed)
    return WorldModel(WorldModelConfig(num_actions=3, image_shape=None, vector_size=5))


def _starts(world_model, steps=4, batch=3, seed=0):
    """Posterior states of a random replayed batch, flattened to imagination starts."""
    g = torch.Generator().manual_seed(seed)
    batch_data = {
        "vector": torch.randn(steps, batch, 5, generator=g),
        "action": torch.randint(3, (steps, batch), generator=g),
        "reward": torch.randn(steps, batch, generator=g),
        "is_first": torch.zeros(steps, batch, dtype=torch.bool),
        "is_terminal": torch.zeros(steps, batch, dtype=torch.bool),
    }
    batch_data["is_first"][0] = True
    batch_data["is_terminal"][-1, 0] = True
    _, _, post = world_model.loss(batch_data)
    return post.flatten(), batch_data["is_terminal"].reshape(-1)


def _actor_critic(world_model, **overrides):
    config = ActorCriticConfig(horizon=5, **overrides)
    return ActorCritic(world_model.rssm.feature_size, 3, config)


def _grads(module):
    return [p.grad for p in module.parameters()]


def _has_grad(module):
    return any(g is not None and g.abs().sum() > 0 for g in _grads(module))


def _rollout(features, actions, rewards, continues, discount):
    """A hand-made rollout (states are unused by the losses)."""
    steps, batch = features.shape[:2]
    dummy = RSSMState(features, features.reshape(steps, batch, 1, -1), features.reshape(steps, batch, 1, -1))
    weights = torch.cumprod(discount * continues, 0) / discount
    return Rollout(dummy, actions, features, rewards, continues, weights)


# gradient routing --------------------------------------------------------------------------------

def test_actor_loss_reaches_only_the_actor_and_critic_loss_only_the_critic():
    world_model = _world_model()
    start, is_terminal = _starts(world_model)
    ac = _actor_critic(world_model)
    # Give the zero-initialised critic a non-trivial output so the advantage path is exercised.
    torch.nn.init.normal_(ac.critic.out.weight, std=0.1)

    actor_loss, critic_loss, _ = ac.loss(world_model, start, is_terminal)
    world_model.zero_grad(set_to_none=True)
    actor_loss.backward(retain_graph=True)
    assert _has_grad(ac.actor)
    assert not _has_grad(ac.critic) and not _has_grad(ac.slow_critic)
    assert all(g is None for g in _grads(world_model))

    ac.zero_grad(set_to_none=True)
    critic_loss.backward()
    assert _has_grad(ac.critic)
    assert not _has_grad(ac.actor) and not _has_grad(ac.slow_critic)
    assert all(g is None for g in _grads(world_model))


def test_start_states_with_a_graph_send_no_gradient_to_the_world_model():
    world_model = _world_model()
    start, is_terminal = _starts(world_model)
    assert start.deter.requires_grad  # the posterior still carries the world model's graph
    ac = _actor_critic(world_model)
    actor_loss, critic_loss, _ = ac.loss(world_model, start, is_terminal)
    assert all(g is None for g in torch.autograd.grad(
        actor_loss + critic_loss, list(world_model.parameters()), allow_unused=True))


# the returns, the advantage and the weights ------------------------------------------------------

def test_imagination_layout_first_continue_and_weights():
    world_model = _world_model()
    start, is_terminal = _starts(world_model)
    ac = _actor_critic(world_model)
    rollout = ac.imagine(world_model, start, is_terminal)
    h, n = ac.config.horizon, start.deter.shape[0]
    assert rollout.features.shape[:2] == (h + 1, n) and rollout.actions.shape == (h + 1, n, 3)
    assert rollout.rewards.shape == (h, n) and rollout.continues.shape == (h + 1, n)
    torch.testing.assert_close(rollout.continues[0], 1.0 - is_terminal.float())
    torch.testing.assert_close(rollout.features[0], start.features().detach())
    torch.testing.assert_close(rollout.rewards, world_model.reward(rollout.features[1:]).detach())
    assert set(rollout.continues[1:].unique().tolist()) <= {0.0, 1.0}  # the head's mode
    gamma = ac.config.discount
    expected = torch.ones(n)
    for t in range(h + 1):
        expected = expected * (gamma * rollout.continues[t]) / (gamma if t == 0 else 1.0)
        torch.testing.assert_close(rollout.weights[t], expected)
    assert (rollout.weights[:, is_terminal] == 0).all()  # a terminal start imagines nothing
    assert rollout.actions.sum(-1).eq(1).all()


def _hand_rollout(ac, steps=4, batch=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(steps + 1, batch, ac.actor.hidden[0][0].in_features, generator=g)
    actions = torch.nn.functional.one_hot(torch.randint(3, (steps + 1, batch), generator=g), 3).float()
    rewards = 3.0 * torch.randn(steps, batch, generator=g)
    continues = torch.ones(steps + 1, batch)
    continues[2:, 0] = 0.0
    return _rollout(features, actions, rewards, continues, ac.config.discount)


def _set_critic_value(ac, value):
    """Make the critic predict `value` everywhere (exactly: the other bins get probability 0)."""
    probs = ac.twohot.encode(torch.tensor(value))
    with torch.no_grad():
        ac.critic.out.weight.zero_()
        ac.critic.out.bias.copy_(torch.where(probs > 0, probs.log(), torch.tensor(-1000.0)))


def _manual_losses(ac, rollout, scale):
    c = ac.config
    values = ac.value(rollout.features).detach()
    returns = lambda_returns(rollout.rewards, values, rollout.continues[1:], c.discount, c.lambda_)
    advantage = (returns - values[:-1]) / scale
    logits = torch.log_softmax(ac.actor(rollout.features[:-1]), -1)
    probs = 0.99 * logits.exp() + 0.01 / 3
    log_probs = (rollout.actions[:-1] * probs.log()).sum(-1)
    entropy = -(probs * probs.log()).sum(-1)
    w = rollout.weights[:-1]
    actor = (w * (-log_probs * advantage - c.entropy_scale * entropy)).mean()
    return returns, advantage, actor


@pytest.mark.parametrize("spread, expected_scale", [(0.5, 1.0), (40.0, None)])
def test_loss_uses_lambda_returns_and_divides_advantages_by_max_one_and_the_scale(spread, expected_scale):
    torch.manual_seed(0)
    ac = ActorCritic(8, 3, ActorCriticConfig(horizon=4))
    _set_critic_value(ac, 1.5)
    rollout = _hand_rollout(ac)
    rollout.rewards = rollout.rewards * spread / 3.0
    ac.return_norm.low.fill_(-spread / 2)
    ac.return_norm.high.fill_(spread / 2)
    actor_loss, _, metrics = ac.rollout_loss(rollout)
    _, scale = ac.return_norm.stats()  # after this batch's EMA update, as the loss used it
    if expected_scale is not None:
        assert scale.item() == expected_scale  # P95 − P5 < 1 is floored at 1
    else:
        assert scale.item() > 30.0
    torch.testing.assert_close(ac.value(rollout.features), torch.full((5, 6), 1.5))
    returns, advantage, actor = _manual_losses(ac, rollout, scale)
    torch.testing.assert_close(metrics["return_raw"], returns.mean())
    torch.testing.assert_close(metrics["advantage"], advantage.mean())
    torch.testing.assert_close(actor_loss, actor)


def test_critic_loss_is_twohot_to_the_returns_plus_the_slow_regulariser():
    torch.manual_seed(0)
    ac = ActorCritic(8, 3, ActorCriticConfig(horizon=4))
    torch.nn.init.normal_(ac.critic.out.weight, std=0.5)
    torch.nn.init.normal_(ac.slow_critic.out.weight, std=0.5)
    rollout = _hand_rollout(ac)
    _, critic_loss, _ = ac.rollout_loss(rollout)
    c = ac.config
    logits = ac.critic(rollout.features)
    values = ac.twohot.decode(logits).detach()
    returns = lambda_returns(rollout.rewards, values, rollout.continues[1:], c.discount, c.lambda_)
    slow = ac.twohot.decode(ac.slow_critic(rollout.features[:-1]))
    per_step = ac.twohot.loss(logits[:-1], returns) + c.slowreg * ac.twohot.loss(logits[:-1], slow)
    torch.testing.assert_close(critic_loss, (rollout.weights[:-1] * per_step).mean())


def test_entropy_bonus_lowers_the_loss_and_pushes_toward_uniform():
    torch.manual_seed(0)
    # decay 1 freezes the return normaliser, so both calls see the same advantages.
    config = ActorCriticConfig(horizon=4, entropy_scale=0.0, return_norm=ReturnNormConfig(decay=1.0))
    ac = ActorCritic(8, 3, config)
    rollout = _hand_rollout(ac)
    base, _, _ = ac.rollout_loss(rollout)
    ac.config.entropy_scale = 0.1
    with_bonus, _, _ = ac.rollout_loss(rollout)
    dist = ac.actor_dist(rollout.features[:-1])
    bonus = (rollout.weights[:-1] * dist.entropy()).mean()
    assert with_bonus.item() < base.item()
    torch.testing.assert_close(base - with_bonus, 0.1 * bonus.detach(), rtol=1e-4, atol=1e-6)
    # The entropy term alone raises the entropy after a gradient step.
    entropy_before = dist.entropy().mean()
    (-bonus).backward()
    with torch.no_grad():
        for p in ac.actor.parameters():
            p -= 0.5 * p.grad
    assert ac.actor_dist(rollout.features[:-1]).entropy().mean() > entropy_before


# the slow critic ---------------------------------------------------------------------------------

def test_slow_critic_starts_equal_and_moves_by_exactly_the_rate():
    torch.manual_seed(0)
    ac = ActorCritic(8, 3, ActorCriticConfig())
    for online, slow in zip(ac.critic.parameters(), ac.slow_critic.parameters(), strict=True):
        torch.testing.assert_close(online, slow)
        assert not slow.requires_grad
    with torch.no_grad():
        for p in ac.critic.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in ac.slow_critic.parameters()]
    ac.update_slow_critic()
    for old, new, online in zip(before, ac.slow_critic.parameters(), ac.critic.parameters(), strict=True):
        torch.testing.assert_close(new, old + 0.02 * (online - old))


def test_slow_critic_every_n_updates():
    torch.manual_seed(0)
    ac = ActorCritic(8, 3, ActorCriticConfig(slow_critic_every=2))
    with torch.no_grad():
        for p in ac.critic.parameters():
            p.add_(1.0)
    before = [p.clone() for p in ac.slow_critic.parameters()]
    ac.update_slow_critic()
    assert all(torch.equal(a, b) for a, b in zip(before, ac.slow_critic.parameters()))
    ac.update_slow_critic()
    assert not all(torch.equal(a, b) for a, b in zip(before, ac.slow_critic.parameters()))


# learning on an imagined two-armed bandit ---------------------------------------------------------

class _BanditRSSM:
    """Imagined dynamics of a two-armed bandit: the state's h is the one-hot of the last action, so
    the reward head can read which arm was pulled."""

    feature_size = 3

    def imagine(self, policy, start, horizon, detach=True, sample=True, generator=None):
        state = start.detach()
        states, actions = [state], []
        for t in range(horizon + 1):
            action = policy(state)
            actions.append(action)
            if t == horizon:
                break
            deter = torch.cat([action, torch.ones_like(action[:, :1])], -1)
            state = RSSMState(deter, state.stoch, state.logits)
            states.append(state)
        return RSSMState.stack(states), torch.stack(actions)


class _BanditWorldModel:
    def __init__(self):
        self.rssm = _BanditRSSM()

    def reward(self, features):
        return features[..., 0]  # arm 0 pays 1, arm 1 pays 0

    def cont_logits(self, features):
        return torch.full(features.shape[:-1], 10.0)


def test_actor_learns_the_better_arm_of_an_imagined_bandit():
    torch.manual_seed(0)
    world_model = _BanditWorldModel()
    ac = ActorCritic(4, 2, ActorCriticConfig(horizon=3, actor_lr=1e-2, critic_lr=1e-2, units=16, layers=1))
    start = RSSMState(torch.zeros(64, 3), torch.zeros(64, 1, 1), torch.zeros(64, 1, 1))
    is_terminal = torch.zeros(64, dtype=torch.bool)

    def p_arm0():
        features = torch.cat([torch.zeros(1, 3), torch.zeros(1, 1)], -1)
        return ac.actor_dist(features).probs[0, 0, 0].item()

    before = p_arm0()
    for _ in range(40):
        metrics = ac.update(world_model, start, is_terminal)
    assert before == pytest.approx(0.5)  # a fresh actor is near uniform
    assert metrics["imag_reward"] > 0.8  # the imagined rollouts now mostly pull arm 0
    assert p_arm0() > 0.8


# replay ------------------------------------------------------------------------------------------

def _step(t, num_envs=2, episode_length=5):
    """Step t of every env: env e's image is filled with 10·e + t (mod 256); episodes of env e
    start every `episode_length + e` steps."""
    image = torch.stack([torch.full((2, 2, 1), (10 * e + t) % 256, dtype=torch.uint8) for e in range(num_envs)])
    is_first = torch.tensor([t % (episode_length + e) == 0 for e in range(num_envs)])
    return {
        "image": image,
        "action": torch.tensor([t + 100 * e for e in range(num_envs)]),
        "reward": torch.tensor([float(t) + 0.5 * e for e in range(num_envs)]),
        "is_first": is_first,
        "is_terminal": torch.tensor([(t + 1) % (episode_length + e) == 0 for e in range(num_envs)]),
    }


def _replay(capacity=20, num_envs=2, seed=0, mark_first=False):
    return SequenceReplay(capacity, num_envs, {"image": ((2, 2, 1), torch.uint8)}, seed=seed,
                          mark_first=mark_first)


def _env_and_time(batch):
    """Recover (env, absolute time) of each sampled step from the action, which encodes both."""
    return batch["action"] // 100, batch["action"] % 100


def test_sampled_windows_are_contiguous_and_agree_with_what_was_added():
    replay = _replay()
    for t in range(8):
        replay.add(_step(t))
    assert len(replay) == 16
    batch = replay.sample(32, 6)
    assert batch["image"].shape == (6, 32, 2, 2, 1) and batch["image"].dtype == torch.uint8
    assert batch["reward"].dtype == torch.float32 and batch["is_first"].dtype == torch.bool
    env, time = _env_and_time(batch)
    assert (env == env[0]).all()  # one env per window
    assert (time[1:] - time[:-1] == 1).all()  # consecutive steps
    assert time.min() >= 0 and time.max() <= 7  # only written slots
    for t in range(6):
        for b in range(32):
            expected = _step(int(time[t, b]))
            e = int(env[t, b])
            for name in ("image", "reward", "is_first", "is_terminal"):
                assert torch.equal(batch[name][t, b], expected[name][e]), name


def test_windows_cross_episodes_with_is_first_marking_the_boundaries():
    replay = _replay(capacity=40, mark_first=False)
    for t in range(20):
        replay.add(_step(t))
    batch = replay.sample(64, 10)
    env, time = _env_and_time(batch)
    expected = (time % (5 + env)) == 0
    assert torch.equal(batch["is_first"], expected)
    assert batch["is_first"][1:].any()  # some windows span a boundary
    marked = _replay(capacity=40, mark_first=True)
    for t in range(20):
        marked.add(_step(t))
    first = marked.sample(64, 10)["is_first"]
    assert first[0].all()  # official sampler: every window starts a sequence


def test_ring_wraps_and_windows_never_cross_the_write_head():
    replay = _replay(capacity=20)  # 10 steps per env
    for t in range(23):
        replay.add(_step(t))
    assert len(replay) == 20
    assert replay.stored_per_env == 10
    batch = replay.sample(500, 4)
    env, time = _env_and_time(batch)
    assert (time[1:] - time[:-1] == 1).all()
    assert time.min() >= 13 and time.max() <= 22  # exactly the last 10 steps
    starts = set(time[0].tolist())
    assert starts == set(range(13, 20))  # every valid start is drawn, none crossing the head
    for t in range(4):
        for b in range(0, 500, 37):
            assert torch.equal(batch["image"][t, b], _step(int(time[t, b]))["image"][int(env[t, b])])


def test_sampling_needs_enough_steps_and_a_complete_step():
    replay = _replay()
    replay.add(_step(0))
    with pytest.raises(ValueError):
        replay.sample(2, 2)
    step = _step(1)
    del step["reward"]
    with pytest.raises(KeyError):
        replay.add(step)
    with pytest.raises(ValueError):
        replay.add({**_step(1), "action": torch.zeros(3, dtype=torch.long)})


def test_sampling_is_reproducible_under_a_seed():
    def draw(seed):
        replay = _replay(seed=seed)
        for t in range(10):
            replay.add(_step(t))
        return [replay.sample(8, 3)["action"] for _ in range(3)]

    assert all(torch.equal(a, b) for a, b in zip(draw(1), draw(1)))
    assert not all(torch.equal(a, b) for a, b in zip(draw(1), draw(2)))


def test_state_dict_round_trip_continues_exactly(tmp_path):
    replay = _replay(seed=3)
    for t in range(13):
        replay.add(_step(t))
    replay.sample(4, 3)
    path = tmp_path / "replay.pt"
    torch.save(replay.state_dict(), path)
    restored = _replay(seed=99)
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert len(restored) == len(replay)
    for t in range(13, 16):
        replay.add(_step(t))
        restored.add(_step(t))
    for _ in range(3):
        a, b = replay.sample(8, 4), restored.sample(8, 4)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_state_dict_of_a_partly_filled_replay_holds_only_the_stored_steps():
    replay = _replay(seed=3)  # 10 steps per env
    for t in range(4):
        replay.add(_step(t))
    state = replay.state_dict()
    assert all(tensor.shape[1] == 4 for tensor in state["storage"].values())
    restored = _replay(seed=99)
    restored.load_state_dict(state)
    for t in range(4, 12):  # past the capacity: the ring wraps over the restored steps
        replay.add(_step(t))
        restored.add(_step(t))
    assert all(torch.equal(replay.storage[k], restored.storage[k]) for k in replay.storage)
    assert all(torch.equal(a, b) for a, b in zip(replay.sample(8, 4).values(), restored.sample(8, 4).values()))


def test_train_ratio_updates_per_env_step():
    assert train_ratio_updates(512, 16, 64) == 0.5
    assert train_ratio_updates(1024, 16, 64) == 1.0
    counter = TrainRatio(train_ratio_updates(32, 16, 64))  # 1/32
    updates = sum(counter.due(1) for _ in range(320))
    assert updates == 10
    counter = TrainRatio(2.5)
    assert [counter.due(1) for _ in range(4)] == [2, 3, 2, 3]
