"""The actor-critic used by PPO: an encoder, an optional recurrent core (wanderlust.nets.cores:
an LSTM, a windowed transformer or a transformer with HCAM memory), the seed's heads, and an
optional decoder of the observation for auxiliary reconstruction losses (Ballet).

Heads follow the RND/SND seed: the actor is an MLP, and the two critics (extrinsic and intrinsic)
read the features plus a residual hidden layer. Initialisation: orthogonal √2 for features, 0.01
for the actor output, 0.1 for the critic hidden layer, 0.01 for the critic outputs, zero biases.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from wanderlust.nets.atari import ATARI_MODELS
from wanderlust.nets.ballet import BalletDecoder, BalletEncoder
from wanderlust.nets.gridworld import GridWorldEncoder
from wanderlust.nets.cores import Core, CoreState, LSTMCore, MemoryConfig, build_core
from wanderlust.nets.init import orthogonal
from wanderlust.nets.minigrid import MiniGridEncoder


class PolicyOutput(NamedTuple):
    logits: torch.Tensor  # [B, A]
    value_ext: torch.Tensor  # [B]
    value_int: torch.Tensor  # [B]
    state: CoreState | None
    context_change: torch.Tensor | None = None  # [B] bool: THICK's context changed into this state
    features: torch.Tensor | None = None  # [B, F]: what the heads read (the core's output, if any)


class SeedHeads(nn.Module):
    def __init__(self, feature_size: int, num_actions: int):
        super().__init__()
        self.actor = nn.Sequential(
            orthogonal(nn.Linear(feature_size, feature_size)), nn.ReLU(),
            orthogonal(nn.Linear(feature_size, num_actions), 0.01),
        )
        self.critic_hidden = nn.Sequential(orthogonal(nn.Linear(feature_size, feature_size), 0.1), nn.ReLU())
        self.critic_ext = orthogonal(nn.Linear(feature_size, 1), 0.01)
        self.critic_int = orthogonal(nn.Linear(feature_size, 1), 0.01)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        critic_features = features + self.critic_hidden(features)
        return (
            self.actor(features),
            self.critic_ext(critic_features).squeeze(-1),
            self.critic_int(critic_features).squeeze(-1),
        )

    def critic_parameters(self) -> list[nn.Parameter]:
        return [*self.critic_hidden.parameters(), *self.critic_ext.parameters(), *self.critic_int.parameters()]


class ActorCritic(nn.Module):
    """encoder → [core] → heads. With a core, its state is reset where `episode_start` is True.

    `decoder` (optional) reads the same features as the heads (`PolicyOutput.features`) and
    reconstructs the observation (`decoder.losses`); it takes no part in acting.
    """

    def __init__(self, encoder: nn.Module, num_actions: int, core: Core | None = None):
        super().__init__()
        self.encoder = encoder
        self.core = core
        self.feature_size = core.output_size if core is not None else encoder.output_size
        self.heads = SeedHeads(self.feature_size, num_actions)
        self.decoder: nn.Module | None = None

    @property
    def recurrent(self) -> bool:
        return self.core is not None

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> CoreState | None:
        return None if self.core is None else self.core.initial_state(batch_size, device)

    def taken(self, state: CoreState | None, actions: torch.Tensor) -> CoreState | None:
        """The state after `actions` were chosen: unchanged, since no core reads past actions (a
        world model's policy does; replay calls this for either)."""
        return state

    def forward(
        self,
        obs: torch.Tensor,
        state: CoreState | None = None,
        episode_start: torch.Tensor | None = None,
    ) -> PolicyOutput:
        """obs [B, ...] for one step, or [T·B, ...] (time-major) with state for B sequences of length T.

        `episode_start` [T·B] (bool) marks steps whose observation begins a new episode; the core
        forgets the past before those steps. Without a state, obs is one step of fresh episodes.
        Feed-forward policies ignore state and episode_start.
        """
        features = self.encoder(obs)
        if self.core is not None:
            if state is None:
                state = self.core.initial_state(features.shape[0], features.device)
            batch = state[0].shape[1]
            steps = features.shape[0] // batch
            if episode_start is None:
                episode_start = torch.zeros(steps * batch, dtype=torch.bool, device=features.device)
            features, state = self.core(
                features.reshape(steps, batch, -1), state, episode_start.reshape(steps, batch)
            )
            features = features.reshape(steps * batch, -1)
        logits, value_ext, value_int = self.heads(features)
        return PolicyOutput(logits, value_ext, value_int, state, features=features)


def check_decoder(network: str) -> None:
    """Raises unless `network` has an observation decoder (Ballet's only, so far)."""
    if network != "ballet":
        raise ValueError(f"ppo.reconstruction_coef needs the ballet network, not {network!r}")


def build_policy(
    network: str,
    obs_shape: tuple[int, ...],
    num_actions: int,
    hidden_size: int = 256,
    lstm_size: int = 0,
    lstm_layers: int = 1,
    memory: MemoryConfig | None = None,
    decoder: bool = False,
) -> ActorCritic:
    """`network` is "minigrid", "ballet", "gridworld" or one of the seed's Atari models "A", "B", "C", "D".

    The core: `memory` (unless its kind is "none") builds one of the equal-size memory cores
    (`build_core`); otherwise `lstm_size` > 0 adds a plain LSTM of that size; otherwise the policy
    is feed-forward. `decoder` adds the network's observation decoder (Ballet's only).
    """
    if memory is not None and memory.kind == "none":
        memory = None
    if memory is not None and lstm_size > 0:
        raise ValueError("give either ppo.lstm_size or a memory (--memory), not both")
    if decoder:
        check_decoder(network)
    if network == "minigrid":
        encoder: nn.Module = MiniGridEncoder(obs_shape, hidden_size)
    elif network == "ballet":
        encoder = BalletEncoder(obs_shape, hidden_size)
    elif network == "gridworld":
        encoder = GridWorldEncoder(obs_shape, hidden_size)
    elif network in ATARI_MODELS:
        encoder = ATARI_MODELS[network](tuple(obs_shape))
    else:
        raise ValueError(f"unknown network {network!r}; choose minigrid, ballet, gridworld, A, B, C or D")
    core: Core | None = None
    if memory is not None:
        core = build_core(memory, encoder.output_size)
    elif lstm_size > 0:
        core = LSTMCore(encoder.output_size, lstm_size, lstm_layers)
    policy = ActorCritic(encoder, num_actions, core)
    if decoder:
        policy.decoder = BalletDecoder(policy.feature_size, obs_shape)
    return policy
