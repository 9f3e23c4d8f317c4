"""THICK's C-RSSM and the thick world model: each test pins a defining property that a wrong
implementation breaks (sparse context updates, the straight-through gate indicator, gate noise only
in training, the sparsity loss and its free change, a coarse prior blind to h, resets, gradients)."""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from wanderlust.agents.dreamer import (
    CRSSM,
    SIZES,
    ActorCritic,
    ActorCriticConfig,
    ConvConfig,
    CRSSMConfig,
    CRSSMState,
    RSSM,
    ThickConfig,
    WorldModel,
    WorldModelConfig,
    sparsity_loss,
    straight_through_step,
)

pytestmark = pytest.mark.unit

T, B, E, A, C = 5, 3, 12, 4, 8


def make_crssm(initial: str = "learned", seed: int = 0, gate_bias: float | None = None) -> CRSSM:
    """A debug-size C-RSSM; `gate_bias` pins every gate's bias (very negative: always closed)."""
    torch.manual_seed(seed)
    rssm = CRSSM(E, A, CRSSMConfig.from_size(SIZES["debug"], initial=initial, context=C))
    with torch.no_grad():
        if initial == "learned":
            rssm.initial_deter.normal_()
        if gate_bias is not None:
            rssm.context_cell.gate.bias.fill_(gate_bias)
    return rssm


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, B, E, generator=g), torch.randint(0, A, (T, B), generator=g)


def random_carry(rssm: CRSSM, seed: int = 2) -> CRSSMState:
    g = torch.Generator().manual_seed(seed)
    c = rssm.config
    logits = torch.randn(B, c.stoch, c.classes, generator=g)
    stoch = nn.functional.one_hot(logits.argmax(-1), c.classes).float()
    context = torch.rand(B, C, generator=g) * 2 - 1
    return CRSSMState(torch.randn(B, c.deter, generator=g).tanh(), stoch, logits, context,
                      torch.zeros(B, C), logits)


def no_first(steps: int | None = None) -> torch.Tensor:
    return torch.zeros(B, dtype=torch.bool) if steps is None else torch.zeros(steps, B, dtype=torch.bool)


def assert_states_equal(a: CRSSMState, b: CRSSMState):
    for name in ("deter", "stoch", "logits", "context", "gate", "coarse_logits"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6, msg=name)


# the gate and the context --------------------------------------------------------------------------

def test_context_is_exactly_unchanged_where_the_gate_is_closed():
    # Every gate closed: the context stays bit-for-bit the carry's over a whole sequence, in training
    # (with gate noise) as well.
    rssm = make_crssm(gate_bias=-100.0).train()
    embeddings, actions = inputs()
    carry = random_carry(rssm)
    post, prior, last = rssm.observe(embeddings, actions, no_first(T), carry)
    assert not post.gate.any() and not prior.gate.any()
    assert torch.equal(post.context, carry.context.expand(T, B, C))
    assert torch.equal(last.context, carry.context)
    # A model with mixed gates: element-wise, c_t == c_{t−1} exactly wherever Θ_t = 0, and c_t moves
    # where Θ_t = 1.
    rssm = make_crssm().train()
    post, _, _ = rssm.observe(embeddings, actions, no_first(T), carry)
    previous = torch.cat([carry.context.unsqueeze(0), post.context[:-1]])
    closed = post.gate == 0
    assert closed.any() and (~closed).any()
    assert torch.equal(post.context[closed], previous[closed])
    assert (post.context[~closed] != previous[~closed]).float().mean() > 0.95


def test_context_changes_where_the_gate_is_open():
    rssm = make_crssm(gate_bias=100.0)
    embeddings, actions = inputs()
    carry = random_carry(rssm)
    post, _, _ = rssm.observe(embeddings, actions, no_first(T), carry, sample=False)
    assert torch.equal(post.gate, torch.ones(T, B, C))
    previous = torch.cat([carry.context.unsqueeze(0), post.context[:-1]])
    assert (post.context != previous).all()
    # Gate ≈ 1: the new context is the candidate tanh(W_r [x, c] + b_r) itself.
    cell = rssm.context_cell
    x = rssm.img_in(torch.cat([carry.stoch.flatten(-2), rssm.action_input(actions[0])], -1))
    candidate = torch.tanh(cell.candidate(torch.cat([x, carry.context], -1)))
    torch.testing.assert_close(post.context[0], candidate, rtol=1e-5, atol=1e-5)


def test_straight_through_indicator_is_0_1_forward_with_the_gate_gradient_backward():
    gate = torch.tensor([0.0, 1e-6, 0.3, 0.999, 0.0], requires_grad=True)
    indicator = straight_through_step(gate)
    assert torch.equal(indicator.detach(), torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))
    weights = torch.arange(1.0, 6.0)
    (indicator * weights).sum().backward()
    assert torch.equal(gate.grad, weights)  # the identity's gradient, nonzero also where closed
    # Through the cell: the indicator sends gradient to the gate network where gates are open.
    rssm = make_crssm(gate_bias=2.0)
    carry = random_carry(rssm)
    _, prior = rssm.obs_step(carry, inputs()[1][0], inputs()[0][0], no_first(), sample=False)
    assert set(prior.gate.detach().unique().tolist()) <= {0.0, 1.0}
    weight_grad, = torch.autograd.grad(prior.gate.sum(), rssm.context_cell.gate.weight)
    assert weight_grad.abs().sum() > 0


def test_gate_noise_only_in_training():
    """From a fixed carry, the context at the step does not depend on the sampled z_t, only on the
    carry, the action and the gate noise."""
    rssm = make_crssm()
    embeddings, actions = inputs()
    carry = random_carry(rssm)

    def step(seed, sample=True):
        g = torch.Generator().manual_seed(seed)
        post, _ = rssm.obs_step(carry, actions[0], embeddings[0], no_first(), sample, g)
        return post.context

    rssm.train()
    assert not torch.equal(step(0), step(1))  # noise in training
    noiseless = step(0, sample=False)  # sample=False: no noise, even in training
    assert torch.equal(noiseless, step(1, sample=False))
    rssm.eval()
    assert torch.equal(step(0), step(1))
    assert torch.equal(step(0), noiseless)
    # The noise has the configured scale σ = 0.1 on the gate's pre-activation.
    cell = rssm.context_cell
    x = torch.randn(4096, SIZES["debug"].hidden)
    context = torch.zeros(4096, C)
    with torch.no_grad():
        cell.gate.weight.zero_()
        cell.gate.bias.fill_(0.5)
        cell.candidate.weight.zero_()
        cell.candidate.bias.fill_(1.0)
        noisy, _ = cell(x, context, noisy=True)
        quiet, _ = cell(x, context, noisy=False)
    # c' = Λ · tanh(1), Λ = tanh(0.5 + ε): the spread of atanh(Λ) is σ; without noise Λ = tanh(0.5).
    tanh = lambda v: torch.tanh(torch.tensor(v))
    assert abs(torch.atanh(noisy / tanh(1.0)).std().item() - 0.1) < 0.01
    torch.testing.assert_close(quiet, torch.full_like(quiet, (tanh(0.5) * tanh(1.0)).item()))


# sparsity loss -----------------------------------------------------------------------------------

def test_sparsity_loss_rises_with_gate_activity_above_one_free_change():
    steps = 10
    # Sequence 0: 3 steps fully open; 1: 6 steps fully open; 2: 3 steps with half the gates open.
    gate = torch.zeros(steps, 3, C)
    gate[:3, 0] = 1.0
    gate[:6, 1] = 1.0
    gate[:3, 2, : C // 2] = 1.0
    loss = sparsity_loss(gate)
    torch.testing.assert_close(loss, torch.tensor([3.0, 6.0, 1.5]) / steps)
    # At most one change per sequence costs the same constant and sends no gradient.
    few = torch.zeros(steps, 4, C)
    few[0, 1] = 1.0            # one full change
    few[2:4, 2, :2] = 1.0      # two steps with a quarter of the gates: 0.5 changes
    few.requires_grad_(True)
    floored = sparsity_loss(few)
    torch.testing.assert_close(floored, torch.full((4,), 1.0 / steps))
    floored.sum().backward()
    assert not few.grad.any()
    # Above the floor the gradient is 1 / (T·C) for every gate.
    many = torch.ones(steps, 2, C, requires_grad=True)
    sparsity_loss(many).sum().backward()
    torch.testing.assert_close(many.grad, torch.full_like(many, 1.0 / (steps * C)))


# coarse prior ------------------------------------------------------------------------------------

def test_coarse_prior_never_reads_h():
    rssm = make_crssm()
    embeddings, actions = inputs()
    carry = random_carry(rssm)
    other = CRSSMState(carry.deter + torch.randn_like(carry.deter), carry.stoch, carry.logits,
                       carry.context, carry.gate, carry.coarse_logits)
    _, prior_a = rssm.obs_step(carry, actions[0], embeddings[0], no_first(), sample=False)
    _, prior_b = rssm.obs_step(other, actions[0], embeddings[0], no_first(), sample=False)
    assert not torch.allclose(prior_a.deter, prior_b.deter)
    assert not torch.allclose(prior_a.logits, prior_b.logits)  # the fine prior reads h
    assert torch.equal(prior_a.coarse_logits, prior_b.coarse_logits)
    assert torch.equal(prior_a.context, prior_b.context)
    # No gradient path from h to the coarse logits either.
    deter = carry.deter.clone().requires_grad_(True)
    start = CRSSMState(deter, carry.stoch, carry.logits, carry.context, carry.gate, carry.coarse_logits)
    step = rssm.img_step(start, actions[0], sample=False)
    grad, = torch.autograd.grad(step.coarse_logits.sum(), deter, allow_unused=True)
    assert grad is None or not grad.any()
    # ... but it does read c, z_{t−1} and a_{t−1}.
    base = rssm.coarse_logits(step.context, carry.stoch, rssm.action_input(actions[0]))
    torch.testing.assert_close(base, step.coarse_logits)
    assert not torch.allclose(rssm.coarse_logits(step.context + 0.5, carry.stoch, rssm.action_input(actions[0])), base)
    assert not torch.allclose(rssm.coarse_logits(step.context, carry.stoch.roll(1, -1),
                                                 rssm.action_input(actions[0])), base)
    assert not torch.allclose(rssm.coarse_logits(step.context, carry.stoch,
                                                 rssm.action_input((actions[0] + 1) % A)), base)


def test_context_feeds_the_gru_the_prior_and_the_posterior():
    rssm = make_crssm(gate_bias=-100.0)  # closed gates: c_t is the carry's c
    embeddings, actions = inputs()
    carry = random_carry(rssm)
    other = CRSSMState(carry.deter, carry.stoch, carry.logits, -carry.context, carry.gate, carry.coarse_logits)
    post_a, prior_a = rssm.obs_step(carry, actions[0], embeddings[0], no_first(), sample=False)
    post_b, prior_b = rssm.obs_step(other, actions[0], embeddings[0], no_first(), sample=False)
    assert not torch.allclose(prior_a.deter, prior_b.deter)  # the GRU reads c
    h = prior_a.deter
    assert not torch.allclose(rssm.prior_logits(h, carry.context), rssm.prior_logits(h, -carry.context))
    assert not torch.allclose(rssm.posterior_logits(h, carry.context, embeddings[0]),
                              rssm.posterior_logits(h, -carry.context, embeddings[0]))
    # The steps' prior and posterior are those functions of the state's c.
    torch.testing.assert_close(prior_a.logits, rssm.prior_logits(prior_a.deter, prior_a.context))
    torch.testing.assert_close(post_a.logits, rssm.posterior_logits(post_a.deter, post_a.context, embeddings[0]))
    # The fine features hold [h, z, c]; the coarse ones [c, z].
    z = post_a.stoch.flatten(-2)
    assert torch.equal(post_a.features(), torch.cat([post_a.deter, z, post_a.context], -1))
    assert torch.equal(post_a.coarse_features(), torch.cat([post_a.context, z], -1))


# steps, shapes, resets ---------------------------------------------------------------------------

@pytest.mark.parametrize("initial", ["learned", "zeros"])
def test_observe_shapes(initial):
    size = SIZES["debug"]
    rssm = make_crssm(initial)
    embeddings, actions = inputs()
    is_first = no_first(T)
    is_first[0] = True
    post, prior, carry = rssm.observe(embeddings, actions, is_first)
    assert isinstance(post, CRSSMState) and isinstance(carry, CRSSMState)
    for states in (post, prior):
        assert states.deter.shape == (T, B, size.deter)
        assert states.stoch.shape == states.logits.shape == states.coarse_logits.shape == (T, B, size.stoch,
                                                                                           size.classes)
        assert states.context.shape == states.gate.shape == (T, B, C)
        assert states.features().shape == (T, B, rssm.feature_size)
        assert states.coarse_features().shape == (T, B, rssm.coarse_feature_size)
    assert rssm.feature_size == size.deter + size.stoch * size.classes + C
    assert rssm.coarse_feature_size == C + size.stoch * size.classes
    # Posterior and prior share h, c, the gates and the coarse logits; the carry is the last posterior.
    for name in ("deter", "context", "gate", "coarse_logits"):
        assert torch.equal(getattr(post, name), getattr(prior, name)), name
    assert_states_equal(carry, post[-1])
    probs = post.coarse_logits.exp()  # normalised and unimixed, as the other logits
    torch.testing.assert_close(probs.sum(-1), torch.ones(T, B, size.stoch))
    assert probs.min() >= 0.01 / size.classes * (1 - 1e-5)
    init = rssm.initial(B)
    assert not init.context.any() and not init.gate.any()
    # flatten, indexing and where keep the subclass and all its fields.
    flat = post.flatten()
    assert isinstance(flat, CRSSMState) and flat.context.shape == (T * B, C)
    assert isinstance(post[0], CRSSMState)


def test_observe_equals_repeated_obs_step_with_gate_noise():
    rssm = make_crssm().train()
    embeddings, actions = inputs()
    is_first = no_first(T)
    is_first[0] = True
    is_first[3, 1] = True
    torch.manual_seed(7)
    post, prior, carry = rssm.observe(embeddings, actions, is_first, rssm.initial(B))
    torch.manual_seed(7)
    state = rssm.initial(B)
    for t in range(T):
        p, q = rssm.obs_step(state, actions[t], embeddings[t], is_first[t])
        assert_states_equal(p, post[t])
        assert_states_equal(q, prior[t])
        state = p
    assert_states_equal(state, carry)


@pytest.mark.parametrize("initial", ["learned", "zeros"])
def test_is_first_resets_the_context(initial):
    rssm = make_crssm(initial)
    embeddings, actions = inputs()
    k = 2  # sequence 0 starts a new episode at step k; sequence 1 never resets.
    is_first = no_first(T)
    is_first[k, 0] = True
    carry = random_carry(rssm)
    post, _, _ = rssm.observe(embeddings, actions, is_first, carry, sample=False)
    starts = no_first(T - k)
    starts[0] = True
    fresh, _, _ = rssm.observe(embeddings[k:], actions[k:], starts, None, sample=False)
    assert_states_equal(post[k:, 0], fresh[:, 0])
    no_reset, _, _ = rssm.observe(embeddings, actions, no_first(T), carry, sample=False)
    assert_states_equal(post[:, 1], no_reset[:, 1])
    assert not torch.allclose(post.context[k:, 0], no_reset.context[k:, 0])
    # With closed gates the reset context is exactly 0 and stays there.
    closed = make_crssm(initial, gate_bias=-100.0)
    post, _, _ = closed.observe(embeddings, actions, is_first, carry, sample=False)
    assert not post.context[k:, 0].any()
    assert torch.equal(post.context[:, 1], carry.context[1].expand(T, C))


def test_imagine_returns_crssm_states_without_gradient_to_the_model():
    rssm = make_crssm().train()
    embeddings, actions = inputs()
    post, _, _ = rssm.observe(embeddings, actions, no_first(T))
    states, acts = rssm.imagine(lambda s: nn.functional.one_hot(s.stoch[:, 0].argmax(-1) % A, A).float(),
                                post.flatten(), horizon=4)
    assert isinstance(states, CRSSMState)
    assert states.context.shape == (5, T * B, C) and acts.shape == (5, T * B, A)
    assert not states.context.requires_grad


# world model -------------------------------------------------------------------------------------

def vector_batch(steps: int = 6, batch: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    data = {
        "vector": torch.randn(steps, batch, 5, generator=g),
        "action": torch.randint(3, (steps, batch), generator=g),
        "reward": torch.randn(steps, batch, generator=g),
        "is_first": torch.zeros(steps, batch, dtype=torch.bool),
        "is_terminal": torch.zeros(steps, batch, dtype=torch.bool),
    }
    data["is_first"][0] = True
    data["is_terminal"][-1, 0] = True
    return data


def thick_model(**thick) -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(WorldModelConfig(num_actions=3, image_shape=None, vector_size=5, kind="thick",
                                       thick=ThickConfig(**thick)))


def test_thick_world_model_loss_terms_and_gradients():
    custom = thick_model(context=5, gate_noise=0.2, coarse_layers=1).rssm.config
    assert (custom.context, custom.gate_noise, custom.coarse_layers) == (5, 0.2, 1)
    assert custom.deter == SIZES["debug"].deter  # the shared settings come from the size preset
    model = thick_model()
    assert isinstance(model.rssm, CRSSM) and model.rssm.context_size == 8
    batch = vector_batch()
    total, metrics, post = model.loss(batch)
    assert isinstance(post, CRSSMState)
    loss_keys = ["vector_loss", "reward_loss", "cont_loss", "kl_loss", "coarse_vector_loss",
                 "coarse_reward_loss", "coarse_cont_loss", "coarse_kl_loss", "sparse_loss"]
    for key in loss_keys + ["coarse_dyn_loss", "coarse_rep_loss", "coarse_prior_ent", "context_changes",
                            "gate_open", "dyn_loss", "rep_loss"]:
        assert key in metrics and torch.isfinite(metrics[key]), key
    torch.testing.assert_close(sum(metrics[k] for k in loss_keys), metrics["model_loss"])
    assert metrics["coarse_dyn_loss"] >= 1.0 and metrics["coarse_rep_loss"] >= 1.0  # free nats 1
    # The metrics count what the gates did.
    opened = post.gate.detach() > 0
    torch.testing.assert_close(metrics["gate_open"], opened.float().mean())
    torch.testing.assert_close(metrics["context_changes"], opened.any(-1).float().sum(0).mean())
    torch.testing.assert_close(metrics["sparse_loss"], sparsity_loss(post.gate.detach()).mean())
    # The total reaches the gate network, the coarse prior and all the coarse heads.
    model.zero_grad()
    total.backward()
    rssm = model.rssm
    for name, module in [("gate", rssm.context_cell.gate), ("candidate", rssm.context_cell.candidate),
                         ("coarse prior", rssm.coarse_net), ("coarse decoder", model.coarse_decoder),
                         ("coarse reward", model.coarse_reward_head), ("coarse cont", model.coarse_cont_head)]:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), name


def test_sparsity_loss_trains_the_gates_shut():
    batch = vector_batch()
    gradients, metrics = {}, {}
    for beta in (0.0, 1.0, 10.0):
        model = thick_model(sparse=beta)
        with torch.no_grad():
            model.rssm.context_cell.gate.bias.fill_(1.0)  # mostly open: above the free change
        total, metrics[beta], post = model.loss(batch, sample=False)
        gradients[beta], = torch.autograd.grad(total, model.rssm.context_cell.gate.bias, retain_graph=True)
    # The world model's sparse term is β·sparsity_loss, and its gradient lowers every gate's bias.
    sparse, = torch.autograd.grad(sparsity_loss(post.gate).mean(), model.rssm.context_cell.gate.bias)
    assert (sparse > 0).all()
    torch.testing.assert_close(gradients[10.0] - gradients[0.0], 10.0 * sparse, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(metrics[10.0]["sparse_loss"], 10 * metrics[1.0]["sparse_loss"])
    assert metrics[1.0]["context_changes"] == batch["action"].shape[0]


def test_thick_world_model_with_images_has_a_coarse_image_loss_scaled_by_two():
    torch.manual_seed(0)
    conv = ConvConfig(depth=4, mults=(1, 2), minres=2)
    config = WorldModelConfig(num_actions=3, image_shape=(3, 8, 8), conv=conv, kind="thick")
    model = WorldModel(config)
    batch = vector_batch()
    batch.pop("vector")
    batch["image"] = torch.randint(0, 256, (6, 3, 8, 8, 3), dtype=torch.uint8)
    _, metrics, post = model.loss(batch, sample=False)
    recon = model.coarse_decoder(post.coarse_features())["image"]
    raw = ((recon - batch["image"].movedim(-1, -3).float() / 255) ** 2).sum((-3, -2, -1)).mean()
    torch.testing.assert_close(metrics["coarse_image_loss"], 2.0 * raw.detach())


def test_flat_world_model_is_unchanged_by_the_thick_option():
    torch.manual_seed(0)
    flat = WorldModel(WorldModelConfig(num_actions=3, image_shape=None, vector_size=5))
    assert flat.config.kind == "flat" and type(flat.rssm) is RSSM
    assert not any(name.startswith("coarse") for name, _ in flat.named_children())
    _, metrics, post = flat.loss(vector_batch())
    assert type(post).__name__ == "RSSMState"
    assert set(metrics) == {"vector_loss", "reward_loss", "cont_loss", "kl_loss", "dyn_loss", "rep_loss",
                            "model_loss", "prior_ent", "post_ent", "reward_mae"}
    with pytest.raises(ValueError):
        WorldModel(WorldModelConfig(num_actions=3, image_shape=None, vector_size=5, kind="other"))
    with pytest.raises(ValueError):  # the context has one place in a world model's config: `thick`
        WorldModel(WorldModelConfig(num_actions=3, image_shape=None, vector_size=5, kind="thick",
                                    rssm=CRSSMConfig()))


def test_actor_critic_updates_unchanged_on_a_thick_world_model():
    model = thick_model()
    batch = vector_batch()
    _, _, post = model.loss(batch)
    behavior = ActorCritic(model.rssm.feature_size, 3, ActorCriticConfig(horizon=4))
    before = [p.detach().clone() for p in model.parameters()]
    actor_before = [p.detach().clone() for p in behavior.actor.parameters()]
    metrics = behavior.update(model, post.flatten(), batch["is_terminal"].reshape(-1))
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no step on the model
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, behavior.actor.parameters()))


def test_coarse_step_is_the_context_and_coarse_prior_of_img_step():
    """THICK Dreamer's step past a predicted change: the same context update and coarse prior as a
    full prior step from the same (c, z, a), without h."""
    rssm = make_crssm()
    rssm.eval()
    carry = random_carry(rssm)
    action = torch.tensor([0, 1, 3])
    full = rssm.img_step(carry, action, sample=False)
    context, stoch = rssm.coarse_step(carry.context, carry.stoch, action, sample=False)
    torch.testing.assert_close(context, full.context)
    assert torch.equal(stoch.argmax(-1), full.coarse_logits.argmax(-1))


# THICK Dreamer's critic ----------------------------------------------------------------------------

def test_long_return_changes_only_the_critic_target_and_trains_the_coarse_critic():
    model = thick_model()
    batch = vector_batch()
    _, _, post = model.loss(batch)
    start, terminal = post.flatten().detach(), batch["is_terminal"].reshape(-1)
    behavior = ActorCritic(model.rssm.feature_size, 3, ActorCriticConfig(horizon=4, psi=0.9),
                           coarse_feature_size=model.rssm.coarse_feature_size)
    with torch.no_grad():  # a critic that predicts something, so R^λ differs from R^long = 7
        behavior.critic.out.weight.normal_(0, 0.05)
    rollout = behavior.imagine(model, start, terminal, torch.Generator().manual_seed(0))
    long = lambda r: torch.full_like(r.rewards, 7.0)
    # Each loss updates the return normaliser: compare losses of identical copies.
    plain_actor, plain_critic, _ = copy.deepcopy(behavior).rollout_loss(rollout)
    actor, critic, metrics = copy.deepcopy(behavior).rollout_loss(rollout, long)
    torch.testing.assert_close(actor, plain_actor)  # the actor keeps the plain λ-return
    fine = critic - metrics["coarse_critic_loss"]
    assert not torch.isclose(fine, plain_critic)  # the critic's target moved toward R^long
    psi_one = copy.deepcopy(behavior)
    psi_one.config = dataclasses.replace(behavior.config, psi=1.0)  # ψ = 1: plain Dreamer's critic
    _, critic_one, metrics_one = psi_one.rollout_loss(rollout, long)
    torch.testing.assert_close(critic_one - metrics_one["coarse_critic_loss"], plain_critic)
    coarse_before = [p.detach().clone() for p in behavior.coarse_critic.parameters()]
    slow_before = [p.detach().clone() for p in behavior.slow_coarse_critic.parameters()]
    result = behavior.update(model, start, terminal, long_return=long)
    assert "coarse_critic_grad_norm" in result and result["long_return"] == 7.0
    assert any(not torch.equal(a, b) for a, b in zip(coarse_before, behavior.coarse_critic.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(slow_before, behavior.slow_coarse_critic.parameters()))
    with pytest.raises(ValueError, match="coarse critic"):
        ActorCritic(model.rssm.feature_size, 3, ActorCriticConfig(horizon=4)).rollout_loss(rollout, long)
