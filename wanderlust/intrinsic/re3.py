"""Random encoders for efficient exploration, RE3 (Seo et al., ICML 2021).

A randomly initialised encoder y = f(s), never trained, maps states to a low-dimensional space in
which a k-nearest-neighbour estimator measures state entropy. Each state of the rollout earns

    r_int = β_t · log(‖y − y^{k-NN}‖₂ / σ + 1),    β_t = (1 − ρ)^t

with y^{k-NN} its k-th nearest neighbour among the rollout's other states, σ the running std of
those distances (the official code's normalisation; `normalize_distance`), and t the number of
updates so far. β₀ is PPO's `int_coef`; the decay (1 − ρ)^t lives here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer, RunningMeanStd
from wanderlust.nets.embedding import Embedding


@dataclass
class RE3Config:
    k: int = 3
    """Which neighbour measures the distance (the paper and its official RAD config: 3)."""
    feature_size: int = 0
    """Size of the random encoding y; 0 means 128 on MiniGrid (RIDE's φ, no extra layer) and 50 on
    pixels (the official code's random encoder)."""
    decay: float = 0.0
    """ρ of the coefficient decay β_t = β₀(1 − ρ)^t, applied once per update (rollout). The
    official on-policy code (A2C on MiniGrid) keeps β constant, so 0; its off-policy RAD config
    decays by ρ = 1e-5 per environment step, i.e. 1 − (1 − 1e-5)^(T·N) per update here."""
    normalize_distance: bool = True
    """Divide each k-NN distance by the running std of those distances before the log (both
    official implementations do; the paper's formula leaves it out)."""
    return_normalization: bool = False
    """Divide the bonus by the running std of its per-env discounted return (the official code
    does not)."""
    chunk_size: int = 1024
    """States per block of the distance computation: memory is chunk_size × T·N floats
    (64 MiB for 128 × 128 Atari steps), never the full T·N × T·N matrix."""


@torch.no_grad()
def kth_neighbour_distance(features: torch.Tensor, k: int, chunk_size: int = 1024) -> torch.Tensor:
    """Euclidean distance from each row of features [B, F] to its k-th nearest other row → [B].

    A row never counts as its own neighbour; duplicates of it elsewhere in the batch do (at
    distance 0). Computed in blocks of `chunk_size` rows so that memory stays chunk_size × B.
    """
    batch_size = features.shape[0]
    if not 1 <= k < batch_size:
        raise ValueError(f"the {k}-th nearest neighbour needs more than {k} states, got {batch_size}")
    features = features.float()
    squared_norms = features.pow(2).sum(1)
    out = []
    for start in range(0, batch_size, chunk_size):
        block = features[start : start + chunk_size]
        # ‖a‖² + ‖b‖² − 2a·b is one matrix product (several times faster than differences), but
        # its rounding leaves equal states slightly apart; it only ranks the neighbours, and the
        # k-th one's distance is then taken directly, so that duplicates are exactly 0 apart.
        squared = squared_norms[start : start + chunk_size, None] + squared_norms[None] - 2.0 * block @ features.T
        rows = torch.arange(block.shape[0], device=features.device)
        squared[rows, rows + start] = float("inf")
        neighbour = squared.topk(k, dim=1, largest=False).indices[:, -1]  # sorted: the last is the k-th
        out.append((block - features[neighbour]).norm(dim=1))
    return torch.cat(out)


class RE3(IntrinsicReward):
    name = "re3"
    requires = frozenset({"next_obs"})
    feature_space = "RE3 random encoder output y = f(s) (random, frozen; k-NN state entropy)"

    def __init__(self, config: RE3Config, spec: BonusSpec):
        super().__init__()
        if config.k < 1:
            raise ValueError(f"k must be at least 1, got {config.k}")
        if not 0.0 <= config.decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {config.decay}")
        self.config = config
        feature_size = config.feature_size or (128 if spec.family == "minigrid" else 50)
        self.encoder = Embedding(spec.obs_shape, spec.family, feature_size).requires_grad_(False)
        self.distance_stats = RunningMeanStd(())
        self.reward_normalizer = DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int)
        # Updates so far: the t of β_t, saved with the module so that a resumed run keeps decaying.
        self.register_buffer("updates", torch.zeros((), dtype=torch.int64))
        self._last_distance_mean = float("nan")
        self._last_raw_mean = float("nan")

    @property
    def coefficient(self) -> float:
        """(1 − ρ)^t after t updates."""
        return (1.0 - self.config.decay) ** int(self.updates)

    @torch.no_grad()
    def encode(self, obs: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """uint8 observations [B, ...] → random features [B, F]."""
        return torch.cat([self.encoder(part) for part in obs.split(chunk)])

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """y = f(s) [B, F], the encoding whose k-NN distances measure state entropy."""
        return self.encode(obs).float()

    @torch.no_grad()
    def state_entropy(self, obs: torch.Tensor) -> torch.Tensor:
        """log(d + 1) per state of the batch [B, ...], d the (normalised) k-NN distance; updates
        the running distance std when normalising. No decay, no return normalisation."""
        if obs.shape[0] < 2:  # no other state to be near
            return torch.zeros(obs.shape[0], device=obs.device)
        # A rollout smaller than k + 1 states (only in tiny test runs) uses its farthest neighbour.
        k = min(self.config.k, obs.shape[0] - 1)
        distances = kth_neighbour_distance(self.encode(obs), k, self.config.chunk_size)
        self._last_distance_mean = distances.mean().item()
        if self.config.normalize_distance:
            self.distance_stats.update(distances)
            distances = distances / (self.distance_stats.std.float() + 1e-8)
        return torch.log1p(distances)

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        raw = self.state_entropy(rollout.next_obs.flatten(0, 1)).reshape(rollout.num_steps, rollout.num_envs)
        self._last_raw_mean = raw.mean().item()
        if self.config.return_normalization:
            raw = self.reward_normalizer(raw)
        return raw * self.coefficient

    def update(self, rollout: Rollout) -> dict[str, float]:
        self.updates += 1
        metrics = {
            "re3/raw_reward": self._last_raw_mean,
            "re3/knn_distance": self._last_distance_mean,
            "re3/coefficient": self.coefficient,
        }
        if self.config.normalize_distance:
            metrics["re3/distance_std"] = self.distance_stats.std.item()
        if self.config.return_normalization:
            metrics["re3/return_std"] = self.reward_normalizer.stats.std.item()
        return metrics
