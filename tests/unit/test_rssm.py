"""DreamerV3's RSSM and world-model loss: each test pins a property a wrong implementation breaks."""

import pytest
import torch
from torch import nn

from wanderlust.agents.dreamer import (
    SIZES,
    ConvConfig,
    KLConfig,
    RSSM,
    RSSMConfig,
    RSSMState,
    WorldModel,
    WorldModelConfig,
    kl_loss,
    unimix_logits,
)

pytestmark = pytest.mark.unit

T, B, E, A = 5, 3, 12, 4


def make_rssm(initial: str = "learned", seed: int = 0) -> RSSM:
    torch.manual_seed(seed)
    rssm = RSSM(E, A, RSSMConfig.from_size(SIZES["debug"], initial=initial))
    if initial == "learned":
        with torch.no_grad():  # a non-trivial learned start, so a reset to it is visible
            rssm.initial_deter.normal_()
    return rssm


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(T, B, E, generator=g)
    actions = torch.randint(0, A, (T, B), generator=g)
    return embeddings, actions


def random_carry(rssm: RSSM, seed: int = 2) -> RSSMState:
    g = torch.Generator().manual_seed(seed)
    c = rssm.config
    logits = torch.randn(B, c.stoch, c.classes, generator=g)
    stoch = nn.functional.one_hot(logits.argmax(-1), c.classes).float()
    return RSSMState(torch.randn(B, c.deter, generator=g).tanh(), stoch, logits)


def assert_states_equal(a: RSSMState, b: RSSMState):
    for x, y in ((a.deter, b.deter), (a.stoch, b.stoch), (a.logits, b.logits)):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


# RSSM ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("initial", ["learned", "zeros"])
def test_observe_shapes_at_debug_size(initial):
    size = SIZES["debug"]
    rssm = make_rssm(initial)
    embeddings, actions = inputs()
    is_first = torch.zeros(T, B, dtype=torch.bool)
    is_first[0] = True
    post, prior, carry = rssm.observe(embeddings, actions, is_first)
    for states in (post, prior):
        assert states.deter.shape == (T, B, size.deter)
        assert states.stoch.shape == (T, B, size.stoch, size.classes)
        assert states.logits.shape == (T, B, size.stoch, size.classes)
        assert states.features().shape == (T, B, size.deter + size.stoch * size.classes)
    # Samples are one-hot; the logits are normalised and mixed: every p ≥ unimix / classes.
    assert torch.equal(post.stoch.detach().sum(-1), torch.ones(T, B, size.stoch))
    probs = post.logits.exp()
    torch.testing.assert_close(probs.sum(-1), torch.ones(T, B, size.stoch))
    assert probs.min() >= 0.01 / size.classes * (1 - 1e-5)
    # Posterior and prior share h; the carry is the last posterior.
    assert torch.equal(post.deter, prior.deter)
    assert_states_equal(carry, post[-1])
    init = rssm.initial(B)
    assert init.deter.shape == (B, size.deter) and init.stoch.shape == (B, size.stoch, size.classes)
    if initial == "learned":  # h0 = tanh(W), z0 = the prior's mode at h0
        torch.testing.assert_close(init.deter, torch.tanh(rssm.initial_deter).expand(B, -1))
        assert torch.equal(init.stoch.argmax(-1), init.logits.argmax(-1))
    else:
        assert not init.deter.any() and not init.stoch.any()


def test_observe_equals_repeated_obs_step():
    rssm = make_rssm()
    embeddings, actions = inputs()
    is_first = torch.zeros(T, B, dtype=torch.bool)
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
def test_carry_resets_exactly_where_is_first(initial):
    rssm = make_rssm(initial)
    embeddings, actions = inputs()
    k = 2  # sequence 0 starts a new episode at step k; sequence 1 never resets; 2 resets at 0.
    is_first = torch.zeros(T, B, dtype=torch.bool)
    is_first[k, 0] = True
    is_first[0, 2] = True
    carry = random_carry(rssm)
    post, prior, _ = rssm.observe(embeddings, actions, is_first, carry, sample=False)
    # After a reset the outputs equal those of a fresh start on the rest of the sequence.
    starts = torch.zeros(T - k, B, dtype=torch.bool)
    starts[0] = True
    fresh_post, fresh_prior, _ = rssm.observe(embeddings[k:], actions[k:], starts, None, sample=False)
    assert_states_equal(post[k:, 0], fresh_post[:, 0])
    assert_states_equal(prior[k:, 0], fresh_prior[:, 0])
    fresh_post, _, _ = rssm.observe(embeddings, actions, is_first[:, [2]].expand(T, B), rssm.initial(B), sample=False)
    assert_states_equal(post[:, 2], fresh_post[:, 2])
    # Before the reset, and in the sequence without one, the old carry is used: the outputs differ.
    no_reset, _, _ = rssm.observe(embeddings, actions, torch.zeros(T, B, dtype=torch.bool), carry, sample=False)
    assert_states_equal(post[:k, 0], no_reset[:k, 0])
    assert_states_equal(post[:, 1], no_reset[:, 1])
    assert not torch.allclose(post.deter[k:, 0], no_reset.deter[k:, 0])
    # The reset also drops the action into the first step (DreamerV3 masks it): changing
    # actions[k] at the reset step leaves the outputs unchanged.
    other = actions.clone()
    other[k, 0] = (other[k, 0] + 1) % A
    post2, _, _ = rssm.observe(embeddings, other, is_first, carry, sample=False)
    assert_states_equal(post2[:, 0], post[:, 0])


def test_prior_never_sees_the_embedding():
    rssm = make_rssm()
    embeddings, actions = inputs()
    carry = random_carry(rssm)
    no_first = torch.zeros(B, dtype=torch.bool)
    torch.manual_seed(3)
    post_a, prior_a = rssm.obs_step(carry, actions[0], embeddings[0], no_first)
    torch.manual_seed(3)
    post_b, prior_b = rssm.obs_step(carry, actions[0], embeddings[0] + 5 * torch.randn(B, E), no_first)
    assert torch.equal(prior_a.logits, prior_b.logits)
    assert torch.equal(prior_a.deter, prior_b.deter)
    assert not torch.allclose(post_a.logits, post_b.logits)  # the posterior does see it
    # And over a sequence: the prior at step t is unchanged by embeddings from step t on.
    is_first = torch.zeros(T, B, dtype=torch.bool)
    _, prior1, _ = rssm.observe(embeddings, actions, is_first, carry, sample=False)
    perturbed = embeddings.clone()
    perturbed[3:] += 5.0
    _, prior2, _ = rssm.observe(perturbed, actions, is_first, carry, sample=False)
    assert torch.equal(prior1.logits[:4], prior2.logits[:4])
    assert not torch.allclose(prior1.logits[4], prior2.logits[4])  # via z_3 from the posterior


def test_img_step_is_the_prior_of_obs_step():
    rssm = make_rssm()
    embeddings, actions = inputs()
    carry = random_carry(rssm)
    _, prior = rssm.obs_step(carry, actions[0], embeddings[0], torch.zeros(B, dtype=torch.bool), sample=False)
    img = rssm.img_step(carry, actions[0], sample=False)
    assert_states_equal(img, prior)
    # Integer and one-hot actions are the same input; float actions are scaled to |a| ≤ 1.
    onehot = nn.functional.one_hot(actions[0], A).float()
    assert_states_equal(rssm.img_step(carry, onehot, sample=False), img)
    assert_states_equal(rssm.img_step(carry, 3.0 * onehot, sample=False), img)
    # The stored logits are the unimixed ones (what kl_loss takes), prior from h alone.
    c = rssm.config
    raw = rssm.prior_net(img.deter).reshape(B, c.stoch, c.classes)
    torch.testing.assert_close(img.logits, unimix_logits(raw, 0.01))
    assert not torch.allclose(img.logits, torch.log_softmax(raw, -1))


def test_imagine_gives_no_gradient_to_the_world_model():
    rssm = make_rssm()
    embeddings, actions = inputs()
    post, _, _ = rssm.observe(embeddings, actions, torch.zeros(T, B, dtype=torch.bool))
    start = post.flatten()  # [T·B, ...], still attached to the RSSM's graph
    actor = nn.Linear(rssm.feature_size, A)

    def policy(state):
        probs = torch.softmax(actor(state.features()), -1)
        index = torch.multinomial(probs.detach(), 1).squeeze(-1)
        return nn.functional.one_hot(index, A).float() + probs - probs.detach()

    horizon = 4
    states, acts = rssm.imagine(policy, start, horizon)
    assert states.deter.shape == (horizon + 1, T * B, rssm.config.deter)
    assert acts.shape == (horizon + 1, T * B, A)
    assert torch.equal(states.deter[0], start.deter.detach())
    # A dummy actor loss that uses the imagined states directly and through the actor.
    logp = torch.log_softmax(actor(states.features()), -1)
    loss = -(logp * acts.detach()).sum() + states.features().square().sum() + acts.sum()
    rssm.zero_grad()
    loss.backward()
    for name, p in rssm.named_parameters():
        assert p.grad is None or not p.grad.any(), name
    assert actor.weight.grad is not None and actor.weight.grad.abs().sum() > 0
    # detach=False keeps the graph: then the same loss would reach the dynamics (the contrast).
    states, acts = rssm.imagine(policy, start.detach(), horizon, detach=False)
    states.features().square().sum().backward()
    assert rssm.gru.weight.grad is not None and rssm.gru.weight.grad.abs().sum() > 0


def _grad_norms(loss: torch.Tensor, modules: dict[str, nn.Module]) -> dict[str, float]:
    params = {n: [p for p in m.parameters()] for n, m in modules.items()}
    flat = [p for ps in params.values() for p in ps]
    grads = torch.autograd.grad(loss, flat, allow_unused=True, retain_graph=True)
    out, i = {}, 0
    for n, ps in params.items():
        g = grads[i:i + len(ps)]
        i += len(ps)
        out[n] = sum(float(x.abs().sum()) for x in g if x is not None)
    return out


def test_kl_balancing_routes_gradients():
    """dyn trains the prior (and the dynamics feeding it), never the posterior or the encoder; rep
    trains the posterior and encoder (and h, which the posterior reads), never the prior head. One
    step from a fixed carry: across steps, the straight-through sample z_{t−1} of the posterior
    feeds h_t, so in DreamerV3 the dynamics loss also reaches earlier posteriors (as officially)."""
    rssm = make_rssm()
    encoder = nn.Linear(7, E)
    _, actions = inputs()
    carry = random_carry(rssm)
    obs = torch.randn(B, 7)
    post, prior = rssm.obs_step(carry, actions[0], encoder(obs), torch.zeros(B, dtype=torch.bool))
    modules = {"prior": rssm.prior_net, "posterior": rssm.post_net, "encoder": encoder,
               "dynamics": nn.ModuleList([rssm.gru, rssm.img_in])}
    no_floor = dict(free_nats=0.0)
    dyn, _ = kl_loss(post.logits, prior.logits, KLConfig(dyn_scale=1.0, rep_scale=0.0, **no_floor))
    rep, _ = kl_loss(post.logits, prior.logits, KLConfig(dyn_scale=0.0, rep_scale=1.0, **no_floor))
    g_dyn = _grad_norms(dyn.mean(), modules)
    g_rep = _grad_norms(rep.mean(), modules)
    assert g_dyn["prior"] > 0 and g_dyn["dynamics"] > 0
    assert g_dyn["posterior"] == 0 and g_dyn["encoder"] == 0
    assert g_rep["posterior"] > 0 and g_rep["encoder"] > 0 and g_rep["dynamics"] > 0
    assert g_rep["prior"] == 0
    # With the free-nats floor of 1 and a KL below it, neither term sends any gradient.
    floored, _ = kl_loss(post.logits, post.logits.detach() + 1e-3, KLConfig())
    assert all(v == 0 for v in _grad_norms(floored.mean(), modules).values())


# World model --------------------------------------------------------------------------------------

def dot_batch(steps: int = 8, batch: int = 4, size: int = 8):
    """A deterministic toy: a red dot moves on an 8×8 torus by the action (0 right, 1 down, 2 left,
    3 stay); reward 1 when the action is 'stay'. action[t] is taken at step t, after image t."""
    g = torch.Generator().manual_seed(0)
    moves = torch.tensor([[0, 1], [1, 0], [0, -1], [0, 0]])
    pos = torch.randint(0, size, (batch, 2), generator=g)
    action = torch.randint(0, 4, (steps, batch), generator=g)
    images = torch.zeros(steps, batch, size, size, 3, dtype=torch.uint8)
    reward = torch.zeros(steps, batch)
    for t in range(steps):
        images[t, torch.arange(batch), pos[:, 0], pos[:, 1], 0] = 255
        if t > 0:
            reward[t] = (action[t - 1] == 3).float()  # the reward that came with observation t
        pos = (pos + moves[action[t]]) % size
    is_first = torch.zeros(steps, batch, dtype=torch.bool)
    is_first[0] = True
    is_terminal = torch.zeros(steps, batch, dtype=torch.bool)
    is_terminal[-1, 0] = True
    return {"image": images, "action": action, "reward": reward, "is_first": is_first,
            "is_terminal": is_terminal}


def make_world_model(**kw) -> WorldModel:
    torch.manual_seed(0)
    config = WorldModelConfig(num_actions=4, image_shape=(3, 8, 8), size="debug",
                              conv=ConvConfig(depth=4, mults=(1, 2), minres=2), **kw)
    return WorldModel(config)


def test_world_model_loss_shapes_and_terms():
    model = make_world_model()
    batch = dot_batch()
    total, metrics, post = model.loss(batch)
    assert total.dim() == 0 and torch.isfinite(total)
    assert post.deter.shape == (8, 4, SIZES["debug"].deter)
    for key in ("image_loss", "reward_loss", "cont_loss", "kl_loss", "dyn_loss", "rep_loss", "prior_ent",
                "post_ent"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    parts = sum(metrics[k] for k in ("image_loss", "reward_loss", "cont_loss", "kl_loss"))
    torch.testing.assert_close(parts, metrics["model_loss"])
    # The official scales: KL = 0.5 dyn + 0.1 rep, each floored at 1 nat per step.
    assert metrics["dyn_loss"] >= 1.0 and metrics["rep_loss"] >= 1.0
    assert model.config.kl.dyn_scale == 0.5 and model.config.kl.rep_scale == 0.1
    # A fresh reward head predicts exactly 0 (zero-initialised output, symmetric bins).
    assert torch.equal(model.reward(post.features()), torch.zeros(8, 4))


def test_world_model_uses_the_previous_action():
    """The action taken at the last step influences nothing in this chunk; the action taken at
    step t first changes the states at step t + 1."""
    model = make_world_model()
    batch = dot_batch()
    _, _, post = model.loss(batch, sample=False)
    changed = dict(batch, action=batch["action"].clone())
    changed["action"][-1] = (changed["action"][-1] + 1) % 4
    _, _, post2 = model.loss(changed, sample=False)
    assert torch.equal(post.deter, post2.deter)
    changed["action"][2] = (changed["action"][2] + 1) % 4
    _, _, post3 = model.loss(changed, sample=False)
    assert torch.equal(post.deter[:3], post3.deter[:3]) and not torch.allclose(post.deter[3], post3.deter[3])
    # The carry brings the last action into the next chunk's first step.
    latent, prev_action = model.next_carry(post, batch)
    assert torch.equal(prev_action, nn.functional.one_hot(batch["action"][-1], 4).float())


def test_world_model_loss_falls_on_a_fixed_batch():
    model = make_world_model()
    batch = dot_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(1)
    history = []
    for _ in range(30):
        total, metrics, _ = model.loss(batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({k: float(v) for k, v in metrics.items()})
    first, last = history[0], history[-1]
    assert last["model_loss"] < 0.5 * first["model_loss"], (first["model_loss"], last["model_loss"])
    assert last["image_loss"] < 0.5 * first["image_loss"]
    assert last["reward_loss"] < 0.7 * first["reward_loss"]
    assert last["cont_loss"] < 0.5 * first["cont_loss"]


def test_world_model_vector_observations():
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig(num_actions=4, image_shape=None, vector_size=5))
    batch = dot_batch()
    batch = {k: v for k, v in batch.items() if k != "image"}
    batch["vector"] = torch.randn(8, 4, 5) * 10
    total, metrics, _ = model.loss(batch)
    assert torch.isfinite(total) and "vector_loss" in metrics and "image_loss" not in metrics
