"""Learned dynamics in an embedding space, and inverse-model training, shared by the bonuses that
train φ with them.

ICM (Pathak et al. 2017) and RIDE (Raileanu & Rocktäschel 2020) train φ with an inverse model
(predict the action from φ(s), φ(s')) and a forward model (predict φ(s') from φ(s) and the action);
E3B and NGU train φ with the inverse model alone. Sizes are RIDE's: forward (F + |A|) → 256 → F,
inverse 2F → 256 → |A|, ReLU, with φ from wanderlust.nets.embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.nets.embedding import Embedding
from wanderlust.nets.init import orthogonal_all


@dataclass
class DynamicsLosses:
    """Per-sample terms [B]; `features` and `next_features` are φ(s) and φ(s') [B, F]."""

    forward: torch.Tensor | None  # ½‖f(φ(s), a) − φ(s')‖², summed over features; None without a forward model
    inverse: torch.Tensor  # cross-entropy of the inverse model's action prediction
    inverse_accuracy: torch.Tensor
    features: torch.Tensor
    next_features: torch.Tensor


class DynamicsModels(nn.Module):
    def __init__(self, spec: BonusSpec, feature_size: int = 128, hidden_size: int = 256, forward_model: bool = True):
        super().__init__()
        self.num_actions = spec.num_actions
        self.embedding = Embedding(spec.obs_shape, spec.family, feature_size)
        self.inverse_model = orthogonal_all(
            nn.Sequential(nn.Linear(2 * feature_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, spec.num_actions))
        )
        self.forward_model = (
            orthogonal_all(
                nn.Sequential(
                    nn.Linear(feature_size + spec.num_actions, hidden_size), nn.ReLU(), nn.Linear(hidden_size, feature_size)
                )
            )
            if forward_model
            else None
        )

    def losses(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> DynamicsLosses:
        """obs and next_obs uint8 [B, ...], actions int64 [B]."""
        both = self.embedding(torch.cat([obs, next_obs]))
        features, next_features = both.chunk(2)
        logits = self.inverse_model(torch.cat([features, next_features], dim=1))
        inverse = F.cross_entropy(logits, actions, reduction="none")
        accuracy = (logits.argmax(1) == actions).float()
        forward = None
        if self.forward_model is not None:
            one_hot = F.one_hot(actions, self.num_actions).to(features.dtype)
            predicted = self.forward_model(torch.cat([features, one_hot], dim=1))
            forward = 0.5 * (predicted - next_features).pow(2).sum(1)
        return DynamicsLosses(forward, inverse, accuracy, features, next_features)


def train_inverse_model(
    dynamics: DynamicsModels,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    minibatch_size: int,
    epochs: int,
    max_grad_norm: float,
) -> dict[str, float]:
    """Trains φ and the inverse model on the rollout's real transitions (reset steps are left out);
    returns the mean cross-entropy and action accuracy over the steps taken."""
    obs, next_obs, actions = rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1), rollout.actions.flatten()
    valid = rollout.valid.flatten().float()
    size = obs.shape[0]
    batch = max(1, min(minibatch_size, size))
    parameters = list(dynamics.parameters())
    totals = torch.zeros(2, device=obs.device)
    steps = 0
    for _ in range(epochs):
        order = torch.randperm(size, device=obs.device)
        for start in range(0, size, batch):
            index = order[start : start + batch]
            terms = dynamics.losses(obs[index], actions[index], next_obs[index])
            weights = valid[index]
            count = weights.sum().clamp(min=1.0)
            loss = terms.inverse @ weights / count
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, max_grad_norm)
            optimizer.step()
            totals += torch.stack([loss.detach(), terms.inverse_accuracy @ weights / count])
            steps += 1
    inverse_loss, inverse_accuracy = (totals / max(steps, 1)).tolist()
    return {"inverse_loss": inverse_loss, "inverse_accuracy": inverse_accuracy}
