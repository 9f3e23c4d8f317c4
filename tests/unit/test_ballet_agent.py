"""The Ballet agent's pieces: its encoder, its reconstruction decoder, the network choice per family,
and bonuses refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from wanderlust.agents.ppo import PPO, PPOConfig, resolve_network
from wanderlust.envs import make
from wanderlust.envs.ballet import INSTRUCTIONS
from wanderlust.intrinsic import NoBonus, check_family
from wanderlust.nets.ballet import BalletDecoder, BalletEncoder
from wanderlust.nets.cores import MemoryConfig
from wanderlust.nets.policy import build_policy

pytestmark = pytest.mark.unit

LEVEL = "wanderlust/Ballet-2_delay16-v0"


@pytest.mark.parametrize("cell_size", [3, 9])
def test_encoder_reads_image_and_instruction_at_any_cell_size(cell_size):
    env = make(LEVEL, 2, seed=0, cell_size=cell_size)
    obs, _ = env.reset()
    encoder = BalletEncoder(env.single_observation_space.shape, hidden_size=32)
    packed = torch.as_tensor(obs)
    features = encoder(packed)
    assert features.shape == (2, 32) and torch.isfinite(features).all()
    other_word = packed.clone()
    other_word[..., 3] = 5  # the same image, another instruction
    assert not torch.allclose(encoder(other_word), features)
    other_image = packed.clone()
    other_image[..., :3] = 255 - other_image[..., :3]
    assert not torch.allclose(encoder(other_image), features)
    env.close()


def test_encoder_refuses_what_is_not_a_packed_ballet_observation():
    with pytest.raises(ValueError, match="Ballet observations"):
        BalletEncoder((33, 33, 3))


def test_networks_follow_the_family():
    assert resolve_network("auto", "ballet") == "ballet"
    assert resolve_network("auto", "minigrid") == "minigrid"
    assert resolve_network("auto", "procgen") == "A"
    assert resolve_network("C", "atari") == "C"
    for network, family in (("ballet", "minigrid"), ("minigrid", "ballet"), ("A", "ballet"), ("ballet", "atari")):
        with pytest.raises(ValueError, match="does not fit"):
            resolve_network(network, family)
    assert resolve_network("auto", "gridworld") == "gridworld"
    with pytest.raises(ValueError, match="no network for pinpad observations"):
        resolve_network("auto", "pinpad")


def test_bonuses_other_than_none_refuse_ballet():
    check_family("none", "ballet")
    check_family("rnd", "minigrid")
    with pytest.raises(ValueError, match="use --bonus none"):
        check_family("rnd", "ballet")


@pytest.mark.parametrize("kind", ["hcam", "lstm", "window"])
def test_a_ballet_policy_with_each_memory_acts_on_packed_observations(kind):
    memory = MemoryConfig(kind=kind, d_model=16, layers=1, heads=2, chunk_size=4, max_chunks=8, window=8)
    policy = build_policy("ballet", (33, 33, 4), 8, hidden_size=32, memory=memory)
    assert policy.recurrent
    obs = torch.as_tensor(np.zeros((3, 33, 33, 4), dtype=np.uint8))
    out = policy(obs, policy.initial_state(3), torch.ones(3, dtype=torch.bool))
    assert out.logits.shape == (3, 8) and out.value_ext.shape == (3,)
    assert not build_policy("ballet", (33, 33, 4), 8, hidden_size=32, memory=MemoryConfig()).recurrent  # kind none


@pytest.mark.parametrize("cell_size", [3, 9])
def test_decoder_losses_are_the_pixel_mean_squared_error_and_the_instruction_cross_entropy(cell_size):
    env = make(LEVEL, 3, seed=1, cell_size=cell_size)
    obs = torch.as_tensor(env.reset()[0])
    env.close()
    obs[1, ..., 3] = 4  # another instruction for one sample
    decoder = BalletDecoder(16, tuple(obs.shape[1:]))
    features = torch.randn(3, 16)
    image, logits = decoder(features)
    assert image.shape == (3, 3, 11 * cell_size, 11 * cell_size) and logits.shape == (3, len(INSTRUCTIONS))
    image_loss, instruction_loss = decoder.losses(features, obs)
    target = obs[..., :3].permute(0, 3, 1, 2).float() / 255
    for b in range(3):
        assert torch.allclose(image_loss[b], ((image[b] - target[b]) ** 2).mean())
        assert torch.allclose(instruction_loss[b], F.cross_entropy(logits[b], obs[b, 0, 0, 3].long()))
    with pytest.raises(ValueError, match="Ballet observations"):
        BalletDecoder(16, (33, 33, 3))


def test_decoder_learns_to_tell_observations_apart_by_their_features():
    """Eight frames of eight layouts, each with its own instruction and feature vector (one-hot):
    trained on them, the decoder's image error falls far below that of predicting their mean image,
    and its instruction loss below half that of a uniform guess."""
    env = make("wanderlust/Ballet-4_delay16-v0", 8, seed=2, cell_size=3)
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(20):
        obs = torch.as_tensor(env.step(rng.integers(0, 8, 8))[0])
    env.close()
    obs[..., 3] = torch.arange(8, dtype=torch.uint8)[:, None, None]
    features = torch.eye(8, 16)
    torch.manual_seed(1)
    decoder = BalletDecoder(16, tuple(obs.shape[1:]))
    optimizer = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(150):
        image_loss, instruction_loss = decoder.losses(features, obs)
        optimizer.zero_grad()
        (image_loss.mean() + instruction_loss.mean()).backward()
        optimizer.step()
    image_loss, instruction_loss = (loss.mean().item() for loss in decoder.losses(features, obs))
    images = obs[..., :3].float() / 255
    assert image_loss < 0.1 * (images - images.mean(0)).pow(2).mean().item()
    assert instruction_loss < 0.5 * np.log(8)


def test_reconstruction_coef_adds_a_decoder_whose_losses_train_encoder_and_core_but_not_heads():
    env = make(LEVEL, 4, seed=3, cell_size=3)
    memory = MemoryConfig(kind="hcam", d_model=16, layers=1, heads=2, chunk_size=4, max_chunks=8)
    config = PPOConfig(num_steps=8, memory=memory, hidden_size=32, minibatches=2, reconstruction_coef=1.0)
    agent = PPO(config, env, NoBonus(), 10_000, torch.device("cpu"))
    assert agent.policy.decoder is not None
    agent.collect()
    advantages, returns_ext, returns_int = agent.advantages(torch.zeros(8, 4))
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    terms = agent.losses(
        flat(agent.obs[:-1]), flat(agent.actions), flat(agent.log_probs), flat(advantages), flat(returns_ext),
        flat(returns_int), flat(agent.valid), agent.initial_core_state, flat(agent.episode_start[:-1]),
    )
    agent.policy.zero_grad()
    (terms["image_loss"] + terms["instruction_loss"]).backward()
    policy = agent.policy
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in policy.heads.parameters())
    for part in (policy.encoder, policy.core, policy.decoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    metrics = agent.update(advantages, returns_ext, returns_int)
    assert metrics["image_loss"] > 0 and metrics["instruction_loss"] > 0
    env.close()
    env = make(LEVEL, 2, seed=0)
    without = PPO(PPOConfig(num_steps=8, memory=memory, hidden_size=32), env, NoBonus(), 100, torch.device("cpu"))
    assert without.policy.decoder is None
    env.close()
    with pytest.raises(ValueError, match="ppo.reconstruction_coef needs the ballet network"):
        build_policy("minigrid", (7, 7, 3), 7, hidden_size=16, decoder=True)
