"""Self-supervised exploration via disagreement (Pathak, Gandhi and Gupta, ICML 2019).

An ensemble of K forward models f_1 … f_K predicts the embedding φ(s') of the next state from φ(s)
and the action; the bonus for a transition is the variance of their predictions across the
ensemble, averaged over the features:

    r_int = (1/F) Σ_j Var_k[f_k(φ(s), a)_j]

Members start from different random weights and each trains on its own random subset of every
minibatch, so they agree where data is plentiful and disagree where it is not. Unlike a prediction
error, the variance goes to zero on transitions whose outcome is random but well sampled, so a
noisy TV stops paying once the models have seen it. As in the official code, φ is a fixed random
network by default, the forward models are wide residual MLPs fed the action at every layer, and
the bonus is divided by the running std of its discounted return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout
from wanderlust.intrinsic.dynamics import DynamicsModels
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer
from wanderlust.nets.embedding import Embedding

# tf.nn.leaky_relu's default slope, which the official forward models use.
LEAKY_SLOPE = 0.2


@dataclass
class DisagreementConfig:
    num_models: int = 5
    """Forward models in the ensemble (the paper and its official code: 5)."""
    features: str = "random"
    """φ: "random" keeps the embedding at its random initialisation (the official code's default,
    feat_learning=none); "inverse" trains it with an inverse-dynamics loss (its feat_learning=idf)."""
    feature_size: int = 0
    """Size of φ; 0 means 512 on pixels (the official code) and 128 on MiniGrid (RIDE's φ)."""
    hidden_size: int = 0
    """Width of each forward model; 0 means 512 on pixels (the official code) and 256 on MiniGrid
    (RIDE's forward model, to keep CPU runs affordable)."""
    residual_blocks: int = 4
    """Residual blocks per forward model, two layers each (the official code: 4)."""
    keep_probability: float = 0.8
    """Each member's loss keeps each transition with this probability, drawn independently per
    member, so that members train on different subsets (the official code: dropout with
    keep_prob 0.8 on the per-sample losses)."""
    learning_rate: float = 1e-4
    """Adam learning rate (the official code: 1e-4, shared with PPO there)."""
    epochs: int = 3
    """Passes over the rollout per update (the official code trains with PPO's 3 epochs)."""
    minibatches: int = 8
    """Minibatches per epoch (the official code: PPO's 8)."""
    return_normalization: bool = True
    """Divide the bonus by the running std of its per-env discounted return (the official code:
    norm_rew=1)."""


class EnsembleLinear(nn.Module):
    """K independent linear layers applied at once, each also fed the one-hot action.

    Input [K, B, in] and actions [B] → output [K, B, out]. A layer's action weights are rows of
    its weight matrix indexed by the action, which equals concatenating a one-hot action to the
    input without building it. Weights are Glorot-uniform over the layer's in + |A| inputs and
    biases zero, TensorFlow's dense-layer defaults that the official code uses (orthogonal
    initialisation would cost a QR decomposition per member and layer, seconds on a CPU).
    """

    def __init__(self, num_models: int, in_features: int, out_features: int, num_actions: int):
        super().__init__()
        bound = math.sqrt(6.0 / (in_features + num_actions + out_features))
        self.weight = nn.Parameter(torch.empty(num_models, in_features, out_features).uniform_(-bound, bound))
        self.action_weight = nn.Parameter(torch.empty(num_models, num_actions, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(num_models, 1, out_features))

    def forward(self, x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight) + self.action_weight[:, actions]


class ForwardEnsemble(nn.Module):
    """K forward models (φ(s), a) → φ(s'), evaluated as one batched module.

    Each member is the official code's residual MLP: a layer to `hidden_size`, `residual_blocks`
    blocks h ← h + W₂·lrelu(W₁·h), and an output layer, with the action fed to every layer.
    """

    def __init__(self, num_models: int, feature_size: int, hidden_size: int, num_actions: int, residual_blocks: int):
        super().__init__()
        self.num_models = num_models
        self.input = EnsembleLinear(num_models, feature_size, hidden_size, num_actions)
        self.blocks = nn.ModuleList(
            nn.ModuleList([
                EnsembleLinear(num_models, hidden_size, hidden_size, num_actions),
                EnsembleLinear(num_models, hidden_size, hidden_size, num_actions),
            ])
            for _ in range(residual_blocks)
        )
        self.output = EnsembleLinear(num_models, hidden_size, feature_size, num_actions)

    def forward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """features [B, F] (shared by all members) or [K, B, F], actions [B] → predictions [K, B, F]."""
        if features.dim() == 2:
            features = features.expand(self.num_models, *features.shape)
        h = F.leaky_relu(self.input(features, actions), LEAKY_SLOPE)
        for first, second in self.blocks:
            h = h + second(F.leaky_relu(first(h, actions), LEAKY_SLOPE), actions)
        return self.output(h, actions)


class Disagreement(IntrinsicReward):
    name = "disagreement"
    requires = frozenset({"obs", "actions", "next_obs", "valid"})
    feature_space = "disagreement embedding φ(s) read by the forward-model ensemble"

    def __init__(self, config: DisagreementConfig, spec: BonusSpec):
        super().__init__()
        if config.num_models < 2:
            raise ValueError(f"disagreement needs at least 2 forward models, got num_models={config.num_models}")
        if not 0.0 < config.keep_probability <= 1.0:
            raise ValueError(f"keep_probability must be in (0, 1], got {config.keep_probability}")
        if config.features not in ("random", "inverse"):
            raise ValueError(f"features must be 'random' or 'inverse', got {config.features!r}")
        self.config = config
        self.feature_space = (
            "disagreement embedding φ(s) read by the forward-model ensemble ("
            + ("random, frozen)" if config.features == "random" else "trained by inverse dynamics)")
        )
        pixels = spec.family != "minigrid"
        feature_size = config.feature_size or (512 if pixels else 128)
        hidden_size = config.hidden_size or (512 if pixels else 256)
        self.embedding: Embedding | None = None
        self.inverse_dynamics: DynamicsModels | None = None
        if config.features == "inverse":
            self.inverse_dynamics = DynamicsModels(spec, feature_size, hidden_size, forward_model=False)
        else:
            self.embedding = Embedding(spec.obs_shape, spec.family, feature_size).requires_grad_(False)
        self.ensemble = ForwardEnsemble(
            config.num_models, feature_size, hidden_size, spec.num_actions, config.residual_blocks
        )
        self.reward_normalizer = DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int)
        trained = [p for p in self.parameters() if p.requires_grad]
        # The fused step is several times faster for the ensemble's millions of weights, on CPUs too.
        self.optimizer = torch.optim.Adam(trained, lr=config.learning_rate, fused=True)
        self._last_raw_mean = float("nan")

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """φ of uint8 observations [B, ...] → [B, F]."""
        embedding = self.embedding if self.inverse_dynamics is None else self.inverse_dynamics.embedding
        return embedding(obs)

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """φ(s) [B, F], the embedding the forward models read and predict."""
        return self.embed(obs).float()

    @torch.no_grad()
    def raw_reward(self, obs: torch.Tensor, actions: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Variance of the K predictions, averaged over features, for transitions [B]; chunked to
        bound memory. The population variance (divide by K), as the official code's np.var."""
        out = []
        for obs_part, actions_part in zip(obs.split(chunk), actions.split(chunk)):
            predictions = self.ensemble(self.embed(obs_part), actions_part)
            out.append(predictions.var(0, unbiased=False).mean(1))
        return torch.cat(out)

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        raw = self.raw_reward(rollout.obs.flatten(0, 1), rollout.actions.flatten())
        raw = raw.reshape(rollout.num_steps, rollout.num_envs)
        self._last_raw_mean = raw.mean().item()
        return self.reward_normalizer(raw) if self.config.return_normalization else raw

    def update(self, rollout: Rollout) -> dict[str, float]:
        cfg = self.config
        valid = rollout.valid.flatten()
        obs = rollout.obs.flatten(0, 1)[valid]
        next_obs = rollout.next_obs.flatten(0, 1)[valid]
        actions = rollout.actions.flatten()[valid]
        batch_size = obs.shape[0]
        if batch_size == 0:
            return self._metrics(float("nan"), float("nan"))
        fixed_features = self.inverse_dynamics is None
        if fixed_features:  # φ is fixed: embed the rollout once, not once per epoch
            with torch.no_grad():
                features = torch.cat([self.embed(part) for part in obs.split(2048)])
                next_features = torch.cat([self.embed(part) for part in next_obs.split(2048)])
        forward_total = torch.zeros((), device=obs.device)
        inverse_total = torch.zeros((), device=obs.device)
        updates = 0
        for _ in range(cfg.epochs):
            order = torch.randperm(batch_size, device=obs.device)
            for index in order.tensor_split(min(cfg.minibatches, batch_size)):
                if fixed_features:
                    inputs, targets, inverse_loss = features[index], next_features[index], None
                else:
                    losses = self.inverse_dynamics.losses(obs[index], actions[index], next_obs[index])
                    # As in the official code, the forward losses do not shape φ: only the inverse model does.
                    inputs, targets = losses.features.detach(), losses.next_features.detach()
                    inverse_loss = losses.inverse.mean()
                forward_loss = self.forward_loss(inputs, actions[index], targets)
                loss = forward_loss if inverse_loss is None else forward_loss + inverse_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                forward_total += forward_loss.detach()
                if inverse_loss is not None:
                    inverse_total += inverse_loss.detach()
                updates += 1
        inverse_mean = float("nan") if fixed_features else inverse_total.item() / updates
        return self._metrics(forward_total.item() / updates / cfg.num_models, inverse_mean)

    def forward_loss(self, features: torch.Tensor, actions: torch.Tensor, next_features: torch.Tensor) -> torch.Tensor:
        """Σ over members of each member's mean squared error (mean over features), each member
        averaging only over its own random subset of the minibatch."""
        predictions = self.ensemble(features, actions)
        error = (predictions - next_features).pow(2).mean(2)  # [K, B]
        keep = (torch.rand_like(error) < self.config.keep_probability).to(error.dtype)
        return ((error * keep).sum(1) / keep.sum(1).clamp(min=1.0)).sum()

    def _metrics(self, forward_loss: float, inverse_loss: float) -> dict[str, float]:
        metrics = {"disagreement/raw_reward": self._last_raw_mean, "disagreement/forward_loss": forward_loss}
        if self.inverse_dynamics is not None:
            metrics["disagreement/inverse_loss"] = inverse_loss
        if self.config.return_normalization:
            metrics["disagreement/return_std"] = self.reward_normalizer.stats.std.item()
        return metrics
