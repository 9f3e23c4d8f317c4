"""The actor-critic used by PPO: an encoder, an optional LSTM core, and the seed's heads.

Heads follow the RND/SND seed: the actor is an MLP, and the two critics (extrinsic and intrinsic)
read the features plus a residual hidden layer. Initialisation: orthogonal √2 for features, 0.01
for the actor output, 0.1 for the critic hidden layer, 0.01 for the critic outputs, zero biases.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from wanderlust.nets.atari import ATARI_MODELS
from wanderlust.nets.init import orthogonal
from wanderlust.nets.minigrid import MiniGridEncoder

LSTMState = tuple[torch.Tensor, torch.Tensor]


class PolicyOutput(NamedTuple):
    logits: torch.Tensor  # [B, A]
    value_ext: torch.Tensor  # [B]
    value_int: torch.Tensor  # [B]
    state: LSTMState | None


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
    """encoder → [LSTM] → heads. With an LSTM, the state is reset where `episode_start` is True."""

    def __init__(self, encoder: nn.Module, num_actions: int, lstm_size: int = 0, lstm_layers: int = 1):
        super().__init__()
        self.encoder = encoder
        feature_size = encoder.output_size
        self.lstm: nn.LSTM | None = None
        if lstm_size > 0:
            self.lstm = nn.LSTM(feature_size, lstm_size, num_layers=lstm_layers)
            for name, param in self.lstm.named_parameters():
                if "weight" in name:
                    nn.init.orthogonal_(param, 1.0)
                else:
                    nn.init.zeros_(param)
            feature_size = lstm_size
        self.heads = SeedHeads(feature_size, num_actions)

    @property
    def recurrent(self) -> bool:
        return self.lstm is not None

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LSTMState | None:
        if self.lstm is None:
            return None
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(
        self,
        obs: torch.Tensor,
        state: LSTMState | None = None,
        episode_start: torch.Tensor | None = None,
    ) -> PolicyOutput:
        """obs [B, ...] for one step, or [T·B, ...] with state for B sequences of length T.

        `episode_start` [T·B] (bool) marks steps whose observation begins a new episode; the LSTM
        state is zeroed before those steps. Feed-forward policies ignore state and episode_start.
        """
        features = self.encoder(obs)
        if self.lstm is not None:
            features, state = self._run_lstm(features, state, episode_start)
        logits, value_ext, value_int = self.heads(features)
        return PolicyOutput(logits, value_ext, value_int, state)

    def _run_lstm(
        self, features: torch.Tensor, state: LSTMState | None, episode_start: torch.Tensor | None
    ) -> tuple[torch.Tensor, LSTMState]:
        assert self.lstm is not None
        if state is None:
            state = self.initial_state(features.shape[0], features.device)
        batch = state[0].shape[1]
        steps = features.shape[0] // batch
        features = features.reshape(steps, batch, -1)
        if episode_start is None:
            episode_start = torch.zeros(steps * batch, dtype=torch.bool, device=features.device)
        keep = (~episode_start).reshape(steps, batch, 1).float()
        h, c = state
        outputs = []
        for t in range(steps):
            h, c = h * keep[t], c * keep[t]
            out, (h, c) = self.lstm(features[t : t + 1], (h, c))
            outputs.append(out)
        return torch.cat(outputs).reshape(steps * batch, -1), (h, c)


def build_policy(
    network: str,
    obs_shape: tuple[int, ...],
    num_actions: int,
    hidden_size: int = 256,
    lstm_size: int = 0,
    lstm_layers: int = 1,
) -> ActorCritic:
    """`network` is "minigrid" or one of the seed's Atari models "A", "B", "C", "D"."""
    if network == "minigrid":
        encoder: nn.Module = MiniGridEncoder(obs_shape, hidden_size)
    elif network in ATARI_MODELS:
        encoder = ATARI_MODELS[network](tuple(obs_shape))
    else:
        raise ValueError(f"unknown network {network!r}; choose minigrid, A, B, C or D")
    return ActorCritic(encoder, num_actions, lstm_size, lstm_layers)
