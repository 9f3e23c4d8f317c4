"""DreamerV3's building blocks: each test pins the property that defines the piece."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from wanderlust.agents.dreamer import (
    MLP,
    SIZES,
    ConvConfig,
    Decoder,
    Encoder,
    GRUCell,
    KLConfig,
    OneHotCategorical,
    PercentileReturnNorm,
    TwoHot,
    TwoHotConfig,
    count_parameters,
    image_loss,
    kl_balance,
    kl_loss,
    lambda_returns,
    slow_critic_update,
    symexp,
    symlog,
    unimix_logits,
    vector_loss,
)
from wanderlust.agents.dreamer.nets import ChannelNorm, dense_layer

pytestmark = pytest.mark.unit

SPACES = ["symexp", "symlog"]


# symlog / symexp ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_symlog_and_symexp_invert_each_other(dtype, rtol):
    magnitudes = torch.logspace(-8, 8, 200, dtype=torch.float64)
    x = torch.cat([magnitudes, -magnitudes, torch.zeros(1, dtype=torch.float64)]).to(dtype)
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=rtol, atol=0.0)
    y = torch.linspace(-15, 15, 301, dtype=dtype)
    torch.testing.assert_close(symlog(symexp(y)), y, rtol=rtol, atol=rtol)


def test_symlog_values():
    x = torch.tensor([-(np.e - 1), -1e-6, 0.0, 1e-6, np.e**2 - 1], dtype=torch.float64)
    expected = torch.tensor([-1.0, -1e-6, 0.0, 1e-6, 2.0], dtype=torch.float64)
    torch.testing.assert_close(symlog(x), expected, rtol=1e-6, atol=1e-12)  # identity near 0, log far out


# two-hot -----------------------------------------------------------------------------------------

def _roundtrip(twohot, values):
    probs = twohot.encode(values)
    assert torch.all(probs >= 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones_like(values))
    assert torch.all((probs > 0).sum(-1) <= 2)
    return twohot.decode(torch.log(probs))  # softmax(log p) = p


@pytest.mark.parametrize("space", SPACES)
def test_twohot_bins_are_symexp_spaced(space):
    twohot = TwoHot(TwoHotConfig(space=space))
    assert len(twohot.bins) == 255
    in_symlog = twohot.bins if space == "symlog" else symlog(twohot.bins.double()).float()
    torch.testing.assert_close(in_symlog, torch.linspace(-20, 20, 255), rtol=1e-5, atol=1e-5)
    assert twohot.bins[127] == 0.0
    assert twohot.decode(torch.zeros(4, 255)).eq(0).all()  # fresh heads predict exactly 0


@pytest.mark.parametrize("space", SPACES)
def test_twohot_roundtrip_on_bins_between_bins_and_random_values(space):
    torch.manual_seed(0)
    twohot = TwoHot(TwoHotConfig(space=space))
    bins = twohot.bins.double()
    inner = bins[1:-1:3]
    on_bins = symexp(symlog(inner)) if space == "symlog" else inner
    midpoints = (bins[100:160:2] + bins[101:161:2]) / 2
    values = torch.cat([on_bins, midpoints, torch.randn(200, dtype=torch.float64) * 50,
                        symexp(torch.empty(200, dtype=torch.float64).uniform_(-19.9, 19.9))])
    torch.testing.assert_close(_roundtrip(TwoHot(TwoHotConfig(space=space)).double(), values), values,
                               rtol=1e-9, atol=1e-12)
    values32 = values.float()
    torch.testing.assert_close(_roundtrip(twohot, values32), values32, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("space", SPACES)
def test_twohot_weights_on_a_bin_and_between_bins(space):
    twohot = TwoHot(TwoHotConfig(space=space)).double()
    bins = twohot.bins
    at_bin = twohot.encode(bins[140:141] if space == "symexp" else symexp(bins[140:141]))[0]
    assert at_bin[140] == pytest.approx(1.0) and at_bin.sum() == pytest.approx(1.0)
    quarter = bins[140] + 0.25 * (bins[141] - bins[140])  # a quarter of the way, in bin space
    value = quarter if space == "symexp" else symexp(quarter)
    probs = twohot.encode(value.reshape(1))[0]
    assert probs[140] == pytest.approx(0.75) and probs[141] == pytest.approx(0.25)


@pytest.mark.parametrize("space", SPACES)
def test_twohot_clips_outside_the_range(space):
    twohot = TwoHot(TwoHotConfig(space=space)).double()
    values = torch.tensor([1e12, -1e12, float(symexp(torch.tensor(25.0)))], dtype=torch.float64)
    probs = twohot.encode(values)
    assert probs[0, -1] == 1.0 and probs[1, 0] == 1.0 and probs[2, -1] == 1.0
    edge = float(symexp(torch.tensor(20.0, dtype=torch.float64)))
    torch.testing.assert_close(twohot.decode(torch.log(probs)),
                               torch.tensor([edge, -edge, edge], dtype=torch.float64))


def test_twohot_count_and_range_are_configurable():
    twohot = TwoHot(TwoHotConfig(num_bins=41, low=-5.0, high=5.0))
    assert len(twohot.bins) == 41 and twohot.bins[-1] == pytest.approx(float(symexp(torch.tensor(5.0))))
    values = torch.tensor([-100.0, -3.0, 0.5, 7.0])
    torch.testing.assert_close(_roundtrip(twohot, values), values, rtol=1e-5, atol=1e-6)
    assert _roundtrip(twohot, torch.tensor([1e6]))[0] == pytest.approx(float(twohot.bins[-1]))


@pytest.mark.parametrize("space", SPACES)
def test_twohot_loss_is_minimal_at_the_target(space):
    torch.manual_seed(0)
    twohot = TwoHot(TwoHotConfig(space=space))
    targets = torch.tensor([0.0, 3.7, -250.0, 1e4])
    exact = torch.log(twohot.encode(targets).clamp_min(1e-30))
    best = twohot.loss(exact, targets)
    for _ in range(20):
        other = exact.clamp_min(-5) + torch.randn(4, 255)
        assert torch.all(twohot.loss(other, targets) > best)
    # Gradient descent on the loss alone recovers the target.
    logits = torch.zeros(4, 255, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.5)
    for _ in range(300):
        optimizer.zero_grad()
        twohot.loss(logits, targets).sum().backward()
        optimizer.step()
    torch.testing.assert_close(twohot.decode(logits.detach()), targets, rtol=2e-2, atol=5e-2)


# categorical latents -----------------------------------------------------------------------------

def test_unimix_floors_every_probability():
    logits = torch.tensor([[1e4, -1e4, 0.0, -50.0]]).expand(32, 4)
    probs = OneHotCategorical(logits, unimix=0.01).probs
    assert torch.all(probs >= 0.01 / 4 - 1e-7)
    torch.testing.assert_close(probs.sum(-1), torch.ones(32))
    torch.testing.assert_close(probs[0], 0.99 * torch.softmax(logits[0], -1) + 0.0025)
    assert torch.isfinite(OneHotCategorical(logits).entropy())
    torch.testing.assert_close(unimix_logits(logits, 0.0), logits)


def test_straight_through_sample_is_onehot_forward_and_probs_backward():
    torch.manual_seed(0)
    logits = torch.randn(5, 32, 32, requires_grad=True)
    weights = torch.randn(5, 32, 32)
    dist = OneHotCategorical(logits)
    sample = dist.sample()
    assert torch.all((sample == 0) | (sample == 1))  # exact one-hot values forward
    assert torch.all(sample.sum(-1) == 1)
    (grad_sample,) = torch.autograd.grad((sample * weights).sum(), logits)
    (grad_probs,) = torch.autograd.grad((OneHotCategorical(logits).probs * weights).sum(), logits)
    torch.testing.assert_close(grad_sample, grad_probs)
    assert grad_sample.abs().sum() > 0


def test_samples_follow_the_probabilities():
    generator = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1])).expand(20000, 1, 3)
    samples = OneHotCategorical(logits, unimix=0.0).sample(generator)
    torch.testing.assert_close(samples.mean((0, 1)), torch.tensor([0.7, 0.2, 0.1]), atol=0.015, rtol=0)


def test_kl_entropy_and_logprob_sum_over_groups():
    torch.manual_seed(0)
    p, q = torch.randn(3, 32, 32), torch.randn(3, 32, 32)
    a, b = OneHotCategorical(p, unimix=0.0), OneHotCategorical(q, unimix=0.0)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=p), torch.distributions.Categorical(logits=q)).sum(-1)
    torch.testing.assert_close(a.kl(b), expected)
    torch.testing.assert_close(a.entropy(), torch.distributions.Categorical(logits=p).entropy().sum(-1))
    onehot = a.mode().detach()
    torch.testing.assert_close(a.log_prob(onehot), torch.log_softmax(p, -1).max(-1).values.sum(-1))


def test_kl_balancing_routes_gradients_and_floors_at_free_nats():
    torch.manual_seed(0)
    post = (3 * torch.randn(4, 32, 32)).requires_grad_()
    prior = (3 * torch.randn(4, 32, 32)).requires_grad_()
    dyn, rep = kl_balance(post, prior, free_nats=1.0)
    assert torch.all(dyn > 1.0) and torch.all(rep > 1.0)
    torch.testing.assert_close(dyn, rep)  # same value, different gradient paths
    (dyn_post, dyn_prior) = torch.autograd.grad(dyn.sum(), [post, prior], allow_unused=True)
    assert dyn_post is None and dyn_prior.abs().sum() > 0  # dyn trains only the prior
    (rep_post, rep_prior) = torch.autograd.grad(rep.sum(), [post, prior], allow_unused=True)
    assert rep_prior is None and rep_post.abs().sum() > 0  # rep trains only the posterior

    # Below the floor each term is exactly free_nats, per step, and carries no gradient.
    close = prior.detach().clone().requires_grad_()
    near = (close.detach() + 0.01 * torch.randn(4, 32, 32)).requires_grad_()
    mixed_post = torch.cat([near[:2], post[2:]])
    dyn, rep = kl_balance(mixed_post, torch.cat([close[:2], prior[2:]]), free_nats=1.0)
    assert torch.all(dyn[:2] == 1.0) and torch.all(rep[:2] == 1.0)
    assert torch.all(dyn[2:] > 1.0)
    grad_near, grad_close = torch.autograd.grad((dyn + rep).sum(), [near, close])
    assert grad_near.abs().max() == 0 and grad_close.abs().max() == 0


def test_kl_loss_weights_dyn_and_rep():
    torch.manual_seed(0)
    post, prior = 3 * torch.randn(6, 32, 32), 3 * torch.randn(6, 32, 32)
    loss, parts = kl_loss(post, prior)
    assert KLConfig().dyn_scale == 0.5 and KLConfig().rep_scale == 0.1 and KLConfig().free_nats == 1.0
    torch.testing.assert_close(loss, 0.5 * parts["dyn_loss"] + 0.1 * parts["rep_loss"])


# return normalisation, slow critic, λ-returns ----------------------------------------------------

def test_percentile_norm_floors_scale_at_one():
    norm = PercentileReturnNorm()
    for _ in range(500):
        _, scale = norm(0.01 * torch.randn(1024))
        assert scale >= 1.0
    assert float(scale) == 1.0


def test_percentile_norm_tracks_a_shifted_distribution():
    torch.manual_seed(0)
    norm = PercentileReturnNorm()
    offset, scale = norm(100 + 10 * torch.randn(4096))
    assert offset == pytest.approx(0.01 * (100 - 16.45), rel=0.05)  # EMA from 0, no bias correction
    for _ in range(1000):
        offset, scale = norm(100 + 10 * torch.randn(4096))
    assert scale == pytest.approx(2 * 16.45, rel=0.03)  # P95 − P5 of N(100, 10²)
    assert offset == pytest.approx(100 - 16.45, rel=0.02)
    for _ in range(1000):
        offset, scale = norm(-50 + 40 * torch.randn(4096))
    assert scale == pytest.approx(2 * 65.8, rel=0.03)
    assert offset == pytest.approx(-50 - 65.8, rel=0.02)
    before = norm.stats()
    norm(torch.randn(10), update=False)
    assert norm.stats()[0] == before[0] and "low" in norm.state_dict()


def test_slow_critic_is_an_ema_of_the_online_critic():
    torch.manual_seed(0)
    online = MLP(8, 16, 2, 255)
    slow = copy.deepcopy(online)
    slow_before = [p.detach().clone() for p in slow.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    slow_critic_update(slow, online, fraction=0.02)
    for before, after, target in zip(slow_before, slow.parameters(), online.parameters()):
        torch.testing.assert_close(after, 0.98 * before + 0.02 * target)
    for _ in range(600):
        slow_critic_update(slow, online)
    for after, target in zip(slow.parameters(), online.parameters()):
        torch.testing.assert_close(after, target, atol=1e-4, rtol=0)


def reference_lambda_returns(rewards, values, continues, discount, lambda_):
    """λ-return as the (1 − λ)λ^{n−1}-weighted mix of n-step returns (the last n gets the remaining
    weight λ^{T−t−1}), each n-step return built by explicit sums, one element at a time."""
    steps = rewards.shape[0]
    out = np.zeros_like(rewards)
    for index in np.ndindex(rewards.shape[1:]):
        r, v, c = rewards[(slice(None),) + index], values[(slice(None),) + index], continues[(slice(None),) + index]
        for t in range(steps):
            horizon = steps - t
            n_step = []
            for n in range(1, horizon + 1):
                total, factor = 0.0, 1.0
                for k in range(n):
                    total += factor * r[t + k]
                    factor *= discount * c[t + k]
                n_step.append(total + factor * v[t + n])
            weights = [(1 - lambda_) * lambda_ ** (n - 1) for n in range(1, horizon)] + [lambda_ ** (horizon - 1)]
            out[(t,) + index] = sum(w * g for w, g in zip(weights, n_step))
    return out


def test_lambda_returns_match_reference():
    rng = np.random.default_rng(0)
    steps = 15
    rewards = rng.normal(size=(steps, 3, 2))
    values = rng.normal(size=(steps + 1, 3, 2))
    continues = (rng.random((steps, 3, 2)) > 0.15).astype(np.float64)
    expected = reference_lambda_returns(rewards, values, continues, 0.997, 0.95)
    got = lambda_returns(torch.tensor(rewards), torch.tensor(values), torch.tensor(continues), 0.997, 0.95)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)
    # λ = 1: discounted reward sum plus the discounted bootstrap; λ = 0: one-step TD targets.
    one_step = lambda_returns(torch.tensor(rewards), torch.tensor(values), torch.tensor(continues), 0.9, 0.0)
    np.testing.assert_allclose(one_step.numpy(), rewards + 0.9 * continues * values[1:], rtol=1e-12)


# networks ----------------------------------------------------------------------------------------

def test_encoder_and_decoder_shapes_for_64x64x3_and_the_output_range():
    torch.manual_seed(0)
    conv = ConvConfig(depth=4)
    encoder = Encoder((3, 64, 64), vector_size=5, conv=conv, units=32, layers=2)
    images = torch.randint(0, 256, (2, 3, 3, 64, 64), dtype=torch.uint8)
    vectors = 1e4 * torch.randn(2, 3, 5)
    embed = encoder(images, vectors)
    assert encoder.out_features == 4 * 8 * 4 * 4 + 32
    assert embed.shape == (2, 3, encoder.out_features) and torch.isfinite(embed).all()
    decoder = Decoder(24, (3, 64, 64), vector_size=5, conv=conv, units=32, layers=2)
    out = decoder(10 * torch.randn(2, 3, 24))
    assert out["image"].shape == (2, 3, 3, 64, 64) and out["vector"].shape == (2, 3, 5)
    assert out["image"].min() >= 0.0 and out["image"].max() <= 1.0
    assert image_loss(out["image"], images).shape == (2, 3)
    torch.testing.assert_close(vector_loss(symlog(vectors), vectors), torch.zeros(2, 3))


@pytest.mark.parametrize("channels", [4, 16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_channel_norm_is_layer_norm_over_each_pixels_channels(channels, channels_last):
    # Few channels take a path of their own (a faster kernel); both must be the official norm,
    # with its gradients.
    torch.manual_seed(0)
    norm = ChannelNorm("layer", channels)
    nn.init.normal_(norm.norm.weight)
    nn.init.normal_(norm.norm.bias)
    maps = 3 * torch.randn(5, channels, 6, 6) + 1
    if channels_last:
        maps = maps.contiguous(memory_format=torch.channels_last)
    ours, reference = maps.clone().requires_grad_(True), maps.clone().requires_grad_(True)
    out = norm(ours)
    expected = nn.functional.layer_norm(
        reference.permute(0, 2, 3, 1), (channels,), norm.norm.weight, norm.norm.bias, 1e-3).permute(0, 3, 1, 2)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(maps)
    (out * weights).sum().backward()
    (expected * weights).sum().backward()
    torch.testing.assert_close(ours.grad, reference.grad, rtol=1e-4, atol=1e-4)


def test_encoder_applies_symlog_to_vectors():
    torch.manual_seed(0)
    encoder = Encoder(None, vector_size=3, units=16, layers=1)
    x = torch.tensor([[1e6, -1e6, 3.0]])
    torch.testing.assert_close(encoder(vector=x), encoder.mlp(symlog(x)))


def test_decoder_learns_to_reconstruct_an_image():
    torch.manual_seed(0)
    decoder = Decoder(8, (3, 64, 64), conv=ConvConfig(depth=2))
    target = torch.zeros(1, 3, 64, 64)  # coloured halves and a grey square
    target[:, 0, :32] = 1.0
    target[:, 1, :, 32:] = 1.0
    target[:, 2, 16:48, 16:48] = 0.5
    features = torch.randn(1, 8)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    first = image_loss(decoder(features)["image"], target).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss = image_loss(decoder(features)["image"], target).sum()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.8 * first


def test_mlp_layers_norm_and_zero_output():
    mlp = MLP(10, 32, 3, 255, zero_output=True)
    assert len(mlp.hidden) == 3
    assert isinstance(mlp.hidden[0][1], nn.LayerNorm) and isinstance(mlp.hidden[0][2], nn.SiLU)
    assert mlp.hidden[0][0].bias is None  # no bias before a norm
    assert torch.all(mlp(torch.randn(4, 10)) == 0)  # reward/value heads start at 0
    assert isinstance(MLP(10, 32, 1, norm="rms").hidden[0][1], nn.RMSNorm)


@pytest.mark.parametrize("blocks", [1, 4])
def test_gru_cell_matches_its_equations(blocks):
    torch.manual_seed(0)
    cell = GRUCell(6, 8, blocks=blocks, norm="none")
    x, h = torch.randn(3, 6), torch.randn(3, 8)
    new = cell(x, h)
    block = 8 // blocks
    gates = []
    for g in range(blocks):  # each block: its own slice of h and the whole input
        gates.append(torch.cat([h[:, g * block:(g + 1) * block], x], -1) @ cell.weight[g])
    gates = torch.stack(gates, 1).reshape(3, blocks, 3, block).permute(0, 2, 1, 3).reshape(3, 24)
    reset, cand, update = gates.split(8, -1)
    cand = torch.tanh(torch.sigmoid(reset) * cand)
    update = torch.sigmoid(update - 1)
    torch.testing.assert_close(new, update * cand + (1 - update) * h)
    if blocks > 1:  # block-diagonal: block 0's output ignores the other blocks' state
        other = h.clone()
        other[:, block:] += 1.0
        torch.testing.assert_close(cell(x, other)[:, :block], new[:, :block])  # (the norm would mix them)


def _agent_parts(size, actions=18, image=(3, 64, 64)):
    """The trainable networks of a DreamerV3 agent at a preset, built from these pieces the way the
    official code wires them: encoder; RSSM (input projection of [z, a], block GRU, prior and
    posterior with one hidden layer each); decoder; reward and continue heads (1 layer); actor and
    critic (3 layers). The slow critic is a copy and not counted. Built on the meta device: shapes
    only, no memory or initialisation time."""
    with torch.device("meta"):
        return _build_agent_parts(size, actions, image)


def _build_agent_parts(size, actions, image):
    conv = ConvConfig(depth=size.depth)
    encoder = Encoder(image, conv=conv, units=size.units)
    latent = size.stoch * size.classes
    features = size.deter + latent
    return {
        "encoder": encoder,
        "rssm_input": dense_layer(latent + actions, size.hidden),
        "gru": GRUCell(size.hidden, size.deter, size.blocks),
        "prior": MLP(size.deter, size.hidden, 1, latent),
        "posterior": MLP(size.deter + encoder.out_features, size.hidden, 1, latent),
        "decoder": Decoder(features, image, conv=conv, units=size.units),
        "reward": MLP(features, size.units, 1, 255),
        "continue": MLP(features, size.units, 1, 1),
        "actor": MLP(features, size.units, 3, actions),
        "critic": MLP(features, size.units, 3, 255),
    }


@pytest.mark.parametrize("name, nominal", [("size12m", 12e6), ("size25m", 25e6)])
def test_size_presets_have_about_their_nominal_parameter_count(name, nominal):
    size = SIZES[name]
    total = sum(count_parameters(part) for part in _agent_parts(size).values())
    assert 0.8 * nominal < total < 1.3 * nominal, total


def test_debug_preset_is_tiny():
    assert sum(count_parameters(part) for part in _agent_parts(SIZES["debug"]).values()) < 200_000
