"""The Ballet agent's pieces: its encoder, the network choice per family, and bonuses refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wanderlust.agents.ppo import resolve_network
from wanderlust.envs import make
from wanderlust.intrinsic import check_family
from wanderlust.nets.ballet import BalletEncoder
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
