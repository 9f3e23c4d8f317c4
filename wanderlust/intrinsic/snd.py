"""Self-supervised network distillation (SND; Pecháč, Chovanec and Farkaš 2023, arXiv 2302.11563).

RND with a target that learns. A predictor g chases a target f as in RND, and f itself is trained
with a self-supervised objective so that its features keep separating states and the bonus does
not fade as the predictor catches up with a fixed random map. The bonus for reaching s' is

    r_int = clip(scale · mean_k (g(s')_k − f(s')_k)², 0, 1)

Three targets (one class each): SND-V (contrastive distances between pairs of augmented states),
SND-STD (spatio-temporal Deep InfoMax between consecutive frames) and SND-VIC (VICReg). Observation
handling (newest frame on Atari, RGB on Procgen, cells on MiniGrid; running mean with warm-up) and
the networks are RND's: this module subclasses `wanderlust.intrinsic.rnd.RND`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.intrinsic.rnd import RND
from wanderlust.nets.minigrid import CELL_VALUES

# The seed's tile sizes for 96×96 frames; sizes larger than an observation's side are skipped.
TILE_SIZES = (1, 2, 4, 8, 12, 16)


@dataclass
class SNDConfig:
    learning_rate: float = 1e-4
    """Adam learning rate of one optimiser over predictor and target (official code: motivation_lr 1e-4)."""
    update_proportion: float = 0.25
    """Keep-probability of each predictor-loss element: 75 % masked (official SND-V code, the seed)."""
    obs_norm: str = "mean"
    """Inputs are first scaled to [0, 1] (pixels / 255, each cell channel / its largest index); then
    "mean" subtracts the running mean (the seed), "meanstd" also divides by the std, "none" neither."""
    obs_clip: float = 1.0
    """Normalised inputs are clamped to ±obs_clip (the seed's ±1 for SND)."""
    warmup_steps: int = 128
    """Random-action steps per environment that warm up the observation statistics; they count
    towards the frame budget (as RND's)."""
    feature_size: int = 0
    """Output size of target and predictor; 0 means 512 on Atari and Procgen, 128 on MiniGrid (as RND)."""
    epochs: int = 1
    """Passes over the rollout per update (official code: one pass over the trajectory)."""
    minibatch_size: int = 512
    """Transitions per optimiser step (official batch_size 512: 32 steps per 16384-step rollout).
    A size rather than a count because ST-DIM's cost grows with its square."""
    reward_scale: float = 0.0
    """Multiplies the mean squared error before the clip to [0, 1]; 0 means the variant's official
    motivation_eta on Montezuma's Revenge: 0.5 SND-V, 1.0 SND-STD, 0.25 SND-VIC."""
    return_normalization: bool = False
    """Divide the clipped bonus by the running std of its per-env discounted return. Off: the
    official code and the seed use the clipped bonus as it is."""
    contrastive_pairs: int = 64
    """SND-V: state pairs drawn from the whole rollout per optimiser step (official: batch_size / 8)."""
    magnitude_limit: float = 200.0
    """SND-V: mean(z_a²) + mean(z_b²) above this is penalised linearly (official code)."""
    augment_probability: float = 0.5
    """Probability that each augmentation (tile masking, noise) is applied to a sample (official code)."""
    tile_drop_probability: float = 0.1
    """Fraction of tiles zeroed by tile masking (official code)."""
    noise_amplitude: float = 0.2
    """Uniform noise in ±noise_amplitude added by the noise augmentation (official code)."""
    stdim_logit_norm_weight: float = 1e-4
    """SND-STD: weight of the mean L2 norm of the InfoNCE logit matrices (official cnd_loss_target_reg)."""
    vicreg_views: str = "consecutive"
    """SND-VIC: the two views are "consecutive" states s, s' (official code) or two "augmented"
    copies of s' (SYSTEMS.md's reading)."""


def mask_tiles(x: torch.Tensor, tile_size: int, drop_probability: float) -> torch.Tensor:
    """Zeroes square tiles of `tile_size` in [B, C, H, W] inputs, each with `drop_probability`,
    the same tiles in every channel; tiles at the bottom and right edges are cropped."""
    height, width = x.shape[-2:]
    rows, columns = math.ceil(height / tile_size), math.ceil(width / tile_size)
    keep = torch.rand(x.shape[0], 1, rows, columns, device=x.device) >= drop_probability
    keep = keep.repeat_interleave(tile_size, 2).repeat_interleave(tile_size, 3)[..., :height, :width]
    return x * keep


def augment(x: torch.Tensor, probability: float, drop_probability: float, noise_amplitude: float) -> torch.Tensor:
    """The seed's augmentation of normalised inputs [B, C, H, W]: each sample independently gets,
    with `probability` each, tile masking (one tile size per call) and uniform noise."""
    sizes = [size for size in TILE_SIZES if size <= min(x.shape[-2:])]
    tile_size = sizes[int(torch.randint(len(sizes), ()))]
    masked = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < probability
    x = torch.where(masked, mask_tiles(x, tile_size, drop_probability), x)
    noisy = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < probability
    noise = (torch.rand_like(x) * 2.0 - 1.0) * noise_amplitude
    return torch.where(noisy, x + noise, x)


def contrastive_loss(
    features_a: torch.Tensor, features_b: torch.Tensor, labels: torch.Tensor, magnitude_limit: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """SND-V: (loss, distances). The distance mean_k (z_a − z_b)² is regressed onto the label
    (0 same state, 1 another), plus relu(mean(z_a²) + mean(z_b²) − limit) against growing features."""
    distances = (features_a - features_b).pow(2).mean(1)
    magnitude = features_a.pow(2).mean() + features_b.pow(2).mean()
    return F.mse_loss(distances, labels) + F.relu(magnitude - magnitude_limit), distances


def vicreg_terms(
    features_a: torch.Tensor, features_b: torch.Tensor, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """VICReg's (invariance, variance, covariance) terms of two views [B, D], B ≥ 2 (Bardes et al.):
    invariance = MSE(z_a, z_b); variance = Σ_views mean_k relu(1 − √(Var z_k + eps));
    covariance = Σ_views Σ_{k≠l} Cov(z)_kl² / D."""
    invariance = F.mse_loss(features_a, features_b)
    variance = features_a.new_zeros(())
    covariance = features_a.new_zeros(())
    for features in (features_a, features_b):
        variance = variance + F.relu(1.0 - torch.sqrt(features.var(0) + eps)).mean()
        centred = features - features.mean(0)
        cov = centred.T @ centred / (features.shape[0] - 1)
        covariance = covariance + (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / features.shape[1]
    return invariance, variance, covariance


def infonce_over_positions(anchors: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, mean logit-matrix norm) for anchors [P, B, C] against candidates [P, B, C]:
    at each of the P positions, anchor i must pick candidate i among the batch's B."""
    logits = anchors @ candidates.transpose(1, 2)  # [P, B, B]
    labels = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    return loss, torch.linalg.matrix_norm(logits).mean()


@dataclass
class _Minibatch:
    """What a target objective may read for one optimiser step."""

    inputs: torch.Tensor  # normalised next observations [B, C, H, W]
    rows: torch.Tensor  # [B] rows of the flattened rollout
    obs: torch.Tensor  # the flattened rollout's observations [T·N, ...] uint8
    next_obs: torch.Tensor  # the flattened rollout's next observations [T·N, ...] uint8
    valid_rows: torch.Tensor  # rows of every real transition of the rollout


class SND(RND):
    """Shared by the three variants: RND's inputs and networks, a trainable target, one optimiser,
    the official reward rule. Subclasses set `name` and `default_reward_scale` and define
    `_target_objective`. `features` is RND's: the target's output, here the trained target's."""

    default_reward_scale: float

    def __init__(self, config: SNDConfig, spec: BonusSpec):
        super().__init__(config, spec)
        self.target.requires_grad_(True)
        # One optimiser over both networks, as the official code: the summed loss trains each.
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.learning_rate)
        self.reward_scale = config.reward_scale or self.default_reward_scale
        if self.pixels:  # RND's _select already gives frames in [0, 1]
            scale = torch.ones(1, 1, 1)
        else:
            scale = 1.0 / (torch.tensor(CELL_VALUES, dtype=torch.float32) - 1.0).reshape(-1, 1, 1)
        self.register_buffer("input_scale", scale, persistent=False)
        self._last_saturated_fraction = float("nan")

    def _select(self, obs: torch.Tensor) -> torch.Tensor:
        # MiniGrid cells scaled to [0, 1] like frames, so that "mean" normalisation, the ±1 clamp
        # and the augmentations' amplitudes mean what they mean in the seed (frames / 255).
        return super()._select(obs) * self.input_scale

    @torch.no_grad()
    def raw_reward(self, obs: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """mean_k (g(s')_k − f(s')_k)² for uint8 observations [B, ...], before scale and clip."""
        return torch.cat([self.prediction_error(part).mean(1) for part in obs.split(chunk)])

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        raw = self.raw_reward(rollout.next_obs.flatten(0, 1)).reshape(rollout.num_steps, rollout.num_envs)
        scaled = self.reward_scale * raw
        self._last_raw_mean = raw.mean().item()
        self._last_saturated_fraction = (scaled > 1.0).float().mean().item()
        bonus = scaled.clamp(0.0, 1.0)
        if self.config.return_normalization:
            return self.reward_normalizer(bonus)
        return bonus

    def _target_objective(self, batch: _Minibatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(target features of `batch.inputs` for the predictor to match, the target's
        self-supervised loss, metrics as scalar tensors)."""
        raise NotImplementedError

    def update(self, rollout: Rollout) -> dict[str, float]:
        self.warmup(rollout.next_obs)
        cfg = self.config
        obs, next_obs = rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1)
        # Auto-reset steps pair the last observation of one episode with the first of the next.
        valid_rows = rollout.valid.flatten().nonzero().squeeze(1)
        count = valid_rows.shape[0]
        if count < 2:  # batch statistics (VICReg's variance, InfoNCE's negatives) need two samples
            return {}
        sums: dict[str, torch.Tensor] = {}
        updates = 0
        for _ in range(cfg.epochs):
            order = valid_rows[torch.randperm(count, device=valid_rows.device)]
            for rows in order.tensor_split(math.ceil(count / cfg.minibatch_size)):
                batch = _Minibatch(self._inputs(next_obs[rows]), rows, obs, next_obs, valid_rows)
                target_features, target_loss, metrics = self._target_objective(batch)
                error = (self.predictor(batch.inputs) - target_features.detach()).pow(2)
                keep = (torch.rand_like(error) < self.update_proportion).float()
                predictor_loss = (error * keep).sum() / keep.sum().clamp(min=1.0)
                self.optimizer.zero_grad(set_to_none=True)
                (predictor_loss + target_loss).backward()
                self.optimizer.step()
                metrics.update(predictor_loss=predictor_loss, target_loss=target_loss)
                for key, value in metrics.items():
                    sums[key] = sums.get(key, 0.0) + value.detach()
                updates += 1
        out = {f"{self.name}/{key}": value.item() / updates for key, value in sums.items()}
        out[f"{self.name}/raw_reward"] = self._last_raw_mean
        out[f"{self.name}/saturated_fraction"] = self._last_saturated_fraction
        if cfg.return_normalization:
            out[f"{self.name}/return_std"] = self.reward_normalizer.stats.std.item()
        return out


class SNDV(SND):
    """SND-V: the target learns distances, ≈0 between two augmentations of one state and ≈1 between
    different states of the rollout."""

    name = "snd-v"
    default_reward_scale = 0.5
    feature_space = "SND-V target network output (trained: contrastive distances)"

    def _target_objective(self, batch: _Minibatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        with torch.no_grad():
            target_features = self.target(batch.inputs)
        pool = batch.valid_rows
        pairs = cfg.contrastive_pairs
        first = pool[torch.randint(len(pool), (pairs,), device=pool.device)]
        other = pool[torch.randint(len(pool), (pairs,), device=pool.device)]
        labels = (torch.rand(pairs, device=pool.device) < 0.5).float()  # 1: another state, 0: the same
        second = torch.where(labels.bool(), other, first)
        views = [
            augment(self._inputs(batch.next_obs[rows]), cfg.augment_probability, cfg.tile_drop_probability,
                    cfg.noise_amplitude)
            for rows in (first, second)
        ]
        features_a, features_b = self.target(torch.cat(views)).split(pairs)
        loss, distances = contrastive_loss(features_a, features_b, labels, cfg.magnitude_limit)
        accuracy = ((distances > 0.5).float() == labels).float().mean()
        magnitude = 0.5 * (features_a.pow(2).mean() + features_b.pow(2).mean())
        return target_features, loss, {"pair_accuracy": accuracy, "feature_magnitude": magnitude}


class SNDSTD(SND):
    """SND-STD: ST-DIM (Anand et al. 2019). The global features of s' must pick out, at every
    position of the target's local feature map, the local features of s among the minibatch's
    (global-local), and so must the local features of s' at the same position (local-local)."""

    name = "snd-std"
    default_reward_scale = 1.0
    feature_space = "SND-STD target network output (trained: ST-DIM)"

    def __init__(self, config: SNDConfig, spec: BonusSpec):
        super().__init__(config, spec)
        # Local features: the map entering the target's last convolution (ST-DIM reads the third of
        # four conv layers on Atari). The target is nets' Sequential(trunk, linear head).
        trunk = self.target[0]
        self._local_end = max(i for i, layer in enumerate(trunk) if isinstance(layer, nn.Conv2d))
        with torch.no_grad():
            local_channels = trunk[: self._local_end](torch.zeros(1, *self.obs_stats.mean.shape)).shape[1]
        feature_size = self.target[-1].out_features
        self.global_classifier = nn.Linear(feature_size, local_channels)
        self.local_classifier = nn.Linear(local_channels, local_channels)
        self.optimizer.add_param_group(
            {"params": [*self.global_classifier.parameters(), *self.local_classifier.parameters()]}
        )

    def local_and_global(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One target pass: (local features [P, B, C] over the map's P positions, global [B, F])."""
        trunk = self.target[0]
        local_map = trunk[: self._local_end](inputs)
        global_features = self.target[1:](trunk[self._local_end :](local_map))
        return local_map.flatten(2).permute(2, 0, 1), global_features

    def _target_objective(self, batch: _Minibatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        local_prev, _ = self.local_and_global(self._inputs(batch.obs[batch.rows]))
        local_next, global_next = self.local_and_global(batch.inputs)
        global_anchor = self.global_classifier(global_next).expand(local_prev.shape[0], -1, -1)
        global_local, global_norm = infonce_over_positions(global_anchor, local_prev)
        local_local, local_norm = infonce_over_positions(self.local_classifier(local_next), local_prev)
        loss = global_local + local_local + self.config.stdim_logit_norm_weight * (global_norm + local_norm)
        return global_next, loss, {"global_local_loss": global_local, "local_local_loss": local_local}


class SNDVIC(SND):
    """SND-VIC: VICReg (Bardes et al. 2022) with λ = μ = 1, ν = 1/25 between two views."""

    name = "snd-vic"
    default_reward_scale = 0.25
    feature_space = "SND-VIC target network output (trained: VICReg)"

    def __init__(self, config: SNDConfig, spec: BonusSpec):
        if config.vicreg_views not in ("consecutive", "augmented"):
            raise ValueError(f"vicreg_views must be consecutive or augmented, got {config.vicreg_views!r}")
        super().__init__(config, spec)

    def _target_objective(self, batch: _Minibatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        if cfg.vicreg_views == "consecutive":
            size = len(batch.rows)
            both = torch.cat([self._inputs(batch.obs[batch.rows]), batch.inputs])
            features_a, features_b = self.target(both).split(size)
            target_features = features_b
        else:
            views = [
                augment(batch.inputs, cfg.augment_probability, cfg.tile_drop_probability, cfg.noise_amplitude)
                for _ in range(2)
            ]
            features_a, features_b = self.target(torch.cat(views)).split(len(batch.rows))
            with torch.no_grad():
                target_features = self.target(batch.inputs)
        invariance, variance, covariance = vicreg_terms(features_a, features_b)
        loss = invariance + variance + covariance / 25.0
        return target_features, loss, {"invariance": invariance, "variance": variance, "covariance": covariance}
