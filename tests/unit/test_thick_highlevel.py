"""THICK's high-level model: change-point targets on hand-made sequences (values, episode
boundaries, validity), the model's defining properties (posterior reads the change, prior does
not, no gradient into the world model, it learns a fixed batch) and the THICK Dreamer critic target."""

import math

import pytest
import torch

from wanderlust.agents.dreamer.highlevel import (
    HighLevelConfig,
    HighLevelModel,
    change_point_targets,
    long_horizon_return,
    mix_critic_target,
)

pytestmark = pytest.mark.unit

GAMMA = 0.9
S, K, C, NUM_ACTIONS = 2, 3, 4, 5


def _contexts(segments, steps, batch_index=0, seed=0):
    """[T, C] contexts constant within each segment: `segments` lists the steps where c changes."""
    g = torch.Generator().manual_seed(seed + 100 * batch_index)
    context = torch.empty(steps, C)
    value = torch.randn(C, generator=g)
    for t in range(steps):
        if t in segments:
            value = torch.randn(C, generator=g)
        context[t] = value
    return context


def _hand_batch():
    """T = 8, B = 2.

    b = 0: c changes at 3; step 5 is terminal; a new episode starts at 6 (c reset there).
    b = 1: c changes at 2; the episode is truncated after step 3 (is_first at 4, not terminal,
           c reset at 4); c changes again at 6."""
    steps, batch = 8, 2
    context = torch.stack([_contexts({3, 6}, steps, 0), _contexts({2, 4, 6}, steps, 1)], 1)
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(steps, batch, S, K, generator=g).log_softmax(-1)
    stoch = torch.nn.functional.one_hot(torch.randint(K, (steps, batch, S), generator=g), K).float()
    action = torch.arange(steps * batch).reshape(steps, batch) % NUM_ACTIONS
    reward = torch.arange(1, steps * batch + 1, dtype=torch.float32).reshape(steps, batch) / 10
    is_terminal = torch.zeros(steps, batch, dtype=torch.bool)
    is_first = torch.zeros(steps, batch, dtype=torch.bool)
    is_first[0] = True
    is_terminal[5, 0] = True
    is_first[6, 0] = True
    is_first[4, 1] = True
    return dict(context=context, logits=logits, stoch=stoch, action=action, reward=reward,
                is_terminal=is_terminal, is_first=is_first)


# by hand: step t -> its change point τ (None: no target)
EXPECTED_TAU = {
    0: {0: 3, 1: 3, 2: 3, 3: 5, 4: 5, 5: None, 6: None, 7: None},
    1: {0: 2, 1: 2, 2: None, 3: None, 4: 6, 5: 6, 6: None, 7: None},
}


def _targets(batch, gamma=GAMMA, **kw):
    return change_point_targets(batch["context"], batch["logits"], batch["stoch"], batch["action"],
                                batch["reward"], batch["is_terminal"], batch["is_first"], gamma, **kw)


def _reference_targets(batch, gamma):
    """A plain per-step search, written from the definition in the docstring."""
    steps, width = batch["action"].shape
    out = {}
    for b in range(width):
        for t in range(steps):
            tau = None
            for u in range(t + 1, steps):
                if batch["is_first"][u, b] or batch["is_terminal"][u - 1, b]:
                    break
                changed = bool((batch["context"][u, b] != batch["context"][u - 1, b]).any())
                if changed or batch["is_terminal"][u, b]:
                    tau = u
                    break
            if tau is not None:
                ret = sum(gamma**k * float(batch["reward"][t + 1 + k, b]) for k in range(tau - t))
                out[t, b] = (tau, ret)
    return out


# change-point targets ------------------------------------------------------------------------------

def test_targets_are_the_values_at_the_next_change_point():
    batch = _hand_batch()
    targets = _targets(batch)
    r = batch["reward"]
    for b, taus in EXPECTED_TAU.items():
        for t, tau in taus.items():
            assert bool(targets.valid[t, b]) == (tau is not None), (t, b)
            if tau is None:
                continue
            assert int(targets.index[t, b]) == tau
            assert int(targets.action[t, b]) == int(batch["action"][tau - 1, b])
            assert torch.equal(targets.logits[t, b], batch["logits"][tau - 1, b])
            assert torch.equal(targets.stoch[t, b], batch["stoch"][tau - 1, b])
            assert torch.equal(targets.context[t, b], batch["context"][tau, b])
            assert float(targets.elapsed[t, b]) == tau - t
    # discounted rewards r_{t+1} ... r_τ, written out
    assert targets.reward[0, 0] == pytest.approx(float(r[1, 0] + GAMMA * r[2, 0] + GAMMA**2 * r[3, 0]))
    assert targets.reward[2, 0] == pytest.approx(float(r[3, 0]))
    assert targets.reward[3, 0] == pytest.approx(float(r[4, 0] + GAMMA * r[5, 0]))  # terminal reward in
    assert targets.reward[4, 1] == pytest.approx(float(r[5, 1] + GAMMA * r[6, 1]))


def test_targets_match_a_reference_search_on_random_sequences():
    g = torch.Generator().manual_seed(3)
    steps, width = 12, 6
    changes = torch.rand(steps, width, generator=g) < 0.25
    context = torch.cumsum(changes.float(), 0).unsqueeze(-1).repeat(1, 1, C)
    batch = dict(
        context=context,
        logits=torch.randn(steps, width, S, K, generator=g),
        stoch=torch.randn(steps, width, S, K, generator=g),
        action=torch.randint(NUM_ACTIONS, (steps, width), generator=g),
        reward=torch.randn(steps, width, generator=g),
        is_terminal=torch.rand(steps, width, generator=g) < 0.1,
        is_first=torch.rand(steps, width, generator=g) < 0.1,
    )
    targets = _targets(batch, gamma=0.8)
    reference = _reference_targets(batch, 0.8)
    for b in range(width):
        for t in range(steps):
            assert bool(targets.valid[t, b]) == ((t, b) in reference), (t, b)
            if (t, b) in reference:
                tau, ret = reference[t, b]
                assert int(targets.index[t, b]) == tau
                assert float(targets.elapsed[t, b]) == tau - t
                assert float(targets.reward[t, b]) == pytest.approx(ret, abs=1e-5)
                assert int(targets.action[t, b]) == int(batch["action"][tau - 1, b])


def test_episode_boundaries_do_not_leak_targets():
    batch = _hand_batch()
    targets = _targets(batch)
    # The terminal step and the truncated episode's tail have no target, although the contexts
    # do change (reset) at the next episode's first step.
    assert not targets.valid[5, 0]
    assert not targets.valid[2, 1] and not targets.valid[3, 1]
    # Whatever happens in the next episode cannot change the old episode's targets.
    perturbed = {k: v.clone() for k, v in batch.items()}
    perturbed["reward"][6:, 0] += 100.0
    perturbed["action"][6:, 0] = (perturbed["action"][6:, 0] + 1) % NUM_ACTIONS
    perturbed["context"][6:, 0] += 1.0
    perturbed["reward"][4:, 1] += 100.0
    again = _targets(perturbed)
    old = torch.tensor([[True] * 6 + [False] * 2, [True] * 4 + [False] * 4]).T
    for field in ("action", "elapsed", "reward", "valid", "index"):
        assert torch.equal(getattr(again, field)[old], getattr(targets, field)[old]), field
    # Without the episode start, the reset at step 4 would be taken for a change point.
    merged = {k: v.clone() for k, v in batch.items()}
    merged["is_first"][4, 1] = False
    assert _targets(merged).valid[2, 1]


def test_validity_mask_at_the_window_end():
    steps, width = 6, 3
    context = torch.zeros(steps, width, C)
    context[2:, 1] = 1.0  # b = 1 changes at 2 only
    batch = dict(context=context, logits=torch.zeros(steps, width, S, K), stoch=torch.zeros(steps, width, S, K),
                 action=torch.zeros(steps, width, dtype=torch.long), reward=torch.ones(steps, width),
                 is_terminal=torch.zeros(steps, width, dtype=torch.bool),
                 is_first=torch.zeros(steps, width, dtype=torch.bool))
    targets = _targets(batch)
    assert not targets.valid[:, 0].any()  # never changes: no targets at all
    assert targets.valid[:2, 1].all() and not targets.valid[2:, 1].any()
    assert not targets.valid[-1].any()  # the last step never has one
    assert torch.equal(targets.elapsed[~targets.valid], torch.zeros(int((~targets.valid).sum())))
    # A gate-based override marks change points the same way.
    changed = torch.zeros(steps, width, dtype=torch.bool)
    changed[2, 1] = True
    assert torch.equal(_targets(batch, changed=changed).valid, targets.valid)


# the model -----------------------------------------------------------------------------------------

def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    config = HighLevelConfig(units=32, trunk_layers=2, lr=3e-3, **overrides)
    return HighLevelModel(C, S, K, NUM_ACTIONS, config)


def _random_batch(steps=8, width=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    changes = torch.rand(steps, width, generator=g) < 0.3
    changes[steps // 2] = True
    context = torch.cumsum(changes.float(), 0).unsqueeze(-1) * torch.linspace(0.1, 0.4, C)
    logits = torch.randn(steps, width, S, K, generator=g).log_softmax(-1)
    stoch = torch.nn.functional.one_hot(torch.randint(K, (steps, width, S), generator=g), K).float()
    return dict(
        context=context, logits=logits, stoch=stoch,
        action=torch.randint(NUM_ACTIONS, (steps, width), generator=g),
        reward=torch.randn(steps, width, generator=g),
        is_terminal=torch.zeros(steps, width, dtype=torch.bool),
        is_first=torch.zeros(steps, width, dtype=torch.bool),
    )


def test_loss_decreases_when_overfitting_a_fixed_batch():
    batch = _random_batch()
    targets = _targets(batch)
    model = _model()
    g = torch.Generator().manual_seed(0)
    heads = ("hl_action_loss", "hl_state_loss", "hl_time_loss", "hl_reward_loss")
    first = model.update(batch["context"], batch["stoch"], targets, g)
    for _ in range(150):
        last = model.update(batch["context"], batch["stoch"], targets, g)
    assert last["hl_loss"] < 0.5 * first["hl_loss"]
    for name in heads:
        assert last[name] < first[name], name
    assert last["hl_valid_frac"] == pytest.approx(float(targets.valid.float().mean()))


def test_posterior_reads_the_next_state_and_the_prior_does_not():
    model = _model()
    batch = _random_batch()
    targets = _targets(batch)
    context, stoch = batch["context"], batch["stoch"]
    prior = model.prior_logits(context, stoch)
    post = model.posterior_logits(context, stoch, targets.context, targets.stoch)
    other_post = model.posterior_logits(context, stoch, targets.context + 1.0, targets.stoch)
    assert not torch.allclose(post, other_post)
    # The prior's signature has no next state; its value depends on (c_t, z_t) only.
    assert torch.equal(model.prior_logits(context, stoch), prior)
    assert not torch.allclose(model.prior_logits(context + 1.0, stoch), prior)
    # Through the loss: the next context moves the posterior's KL, never the prior's logits.
    shifted = type(targets)(**{**targets.__dict__, "context": targets.context + 1.0})
    _, metrics = model.loss(context, stoch, targets, torch.Generator().manual_seed(0))
    _, shifted_metrics = model.loss(context, stoch, shifted, torch.Generator().manual_seed(0))
    assert metrics["hl_prior_ent"] == shifted_metrics["hl_prior_ent"]
    assert metrics["hl_post_ent"] != shifted_metrics["hl_post_ent"]


def test_no_gradient_reaches_the_world_model_inputs_and_heads_train_the_posterior():
    model = _model()
    batch = _random_batch()
    context = batch["context"].clone().requires_grad_(True)
    stoch = batch["stoch"].clone().requires_grad_(True)
    targets = _targets({**batch, "context": context, "stoch": stoch})
    total, _ = model.loss(context, stoch, targets)
    total.backward()
    assert context.grad is None and stoch.grad is None
    assert not targets.context.requires_grad and not targets.stoch.requires_grad
    # With the KL switched off, the head losses alone still reach the posterior (straight-through A).
    head_only = _model(kl_scale=0.0)
    total, _ = head_only.loss(batch["context"], batch["stoch"], _targets(batch))
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head_only.posterior_net.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in head_only.prior_net.parameters())


def test_shapes_for_batches():
    model = _model()
    batch = _random_batch(steps=6, width=3)
    targets = _targets(batch)
    assert targets.logits.shape == (6, 3, S, K) and targets.context.shape == (6, 3, C)
    assert targets.action.shape == targets.elapsed.shape == targets.reward.shape == (6, 3)
    total, metrics = model.loss(batch["context"], batch["stoch"], targets)
    assert total.shape == () and all(v.shape == () for v in metrics.values())
    prediction = model.predict(batch["context"], batch["stoch"])
    assert prediction.hl_action.shape == (6, 3, 3)
    assert prediction.stoch.shape == (6, 3, S, K) and prediction.action.shape == (6, 3, NUM_ACTIONS)
    assert prediction.elapsed.shape == prediction.reward.shape == (6, 3)
    assert (prediction.elapsed >= 1).all() and (prediction.elapsed <= model.config.max_elapsed).all()
    assert torch.equal(prediction.stoch.sum(-1), torch.ones(6, 3, S))


def test_a_model_without_targets_has_zero_loss():
    model = _model()
    batch = _random_batch(steps=5, width=2)
    batch["context"] = torch.zeros_like(batch["context"])  # no change anywhere
    targets = _targets(batch)
    total, metrics = model.loss(batch["context"], batch["stoch"], targets)
    assert not targets.valid.any() and float(total.detach()) == 0.0 and float(metrics["hl_valid_frac"]) == 0.0


# THICK Dreamer ------------------------------------------------------------------------------------

def test_long_horizon_return_is_reward_plus_discounted_value_at_the_change():
    model = _model()
    batch = _random_batch(steps=4, width=3)
    context, stoch = batch["context"][0], batch["stoch"][0]
    seen = {}

    def value_fn(prediction):
        seen["prediction"] = prediction
        return prediction.stoch.flatten(-2).sum(-1) + 2.0 * prediction.action.argmax(-1)

    returns = long_horizon_return(model, context, stoch, value_fn, gamma=0.95, sample=False)
    prediction = seen["prediction"]
    expected = prediction.reward + 0.95 ** prediction.elapsed * value_fn(prediction)
    assert torch.allclose(returns, expected)
    assert returns.shape == (3,) and not returns.requires_grad
    # Deterministic without sampling, and A comes from the prior's mode then.
    reference = model.predict(context, stoch, sample=False)
    assert torch.equal(prediction.hl_action, reference.hl_action)
    assert torch.equal(prediction.hl_action.argmax(-1), model.prior_logits(context, stoch).argmax(-1))


def test_long_horizon_return_discounts_by_the_elapsed_time():
    model = _model()
    batch = _random_batch(steps=2, width=5)
    context, stoch = batch["context"][0], batch["stoch"][0]

    def ones(prediction):
        return torch.ones(prediction.reward.shape)

    def zeros(prediction):
        return torch.zeros(prediction.reward.shape)

    with_value = long_horizon_return(model, context, stoch, ones, gamma=0.5, sample=False)
    without = long_horizon_return(model, context, stoch, zeros, gamma=0.5, sample=False)
    elapsed = model.predict(context, stoch, sample=False).elapsed
    assert torch.allclose(with_value - without, 0.5**elapsed)


def test_mix_critic_target():
    g = torch.Generator().manual_seed(0)
    lam, long = torch.randn(15, 7, generator=g), torch.randn(15, 7, generator=g)
    assert torch.equal(mix_critic_target(lam, long, psi=1.0), lam)
    assert torch.equal(mix_critic_target(lam, long, psi=0.0), long)
    assert torch.allclose(mix_critic_target(lam, long), 0.9 * lam + 0.1 * long)
    with pytest.raises(ValueError):
        mix_critic_target(lam, long[:-1])
    with pytest.raises(ValueError):
        mix_critic_target(lam, long, psi=1.5)


def test_config_defaults_and_validation():
    config = HighLevelConfig()
    assert config.num_high_level_actions == 3 and config.trunk_layers == 3
    assert math.isclose(config.kl.free_nats, 1.0)
    with pytest.raises(ValueError):
        HighLevelModel(C, S, K, NUM_ACTIONS, HighLevelConfig(time_space="log"))
    with pytest.raises(ValueError):
        HighLevelModel(C, S, K, NUM_ACTIONS, HighLevelConfig(posterior_state="logits"))
