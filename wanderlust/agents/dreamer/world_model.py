"""DreamerV3's world model: encoder, RSSM, decoder, reward and continue heads, and its loss.

    L = mean over (t, b) of  β_pred·(L_image + L_vector + L_reward + L_cont) + β_dyn·L_dyn + β_rep·L_rep

(paper eqs. 4-5, β_pred = 1, β_dyn = 0.5, β_rep = 0.1; official 2023 release `loss_scales: {image:
1.0, vector: 1.0, reward: 1.0, cont: 1.0, dyn: 0.5, rep: 0.1}`; the current release's `{rec: 1,
rew: 1, con: 1, dyn: 1, rep: 0.1}` differs only in dyn). All heads read the posterior features and
send their gradients into the representation (official `grad_heads: [decoder, reward, cont]`).

Batch layout (time-major, as `RSSM.observe`): image uint8 [T, B, H, W, C] and/or vector float
[T, B, V]; action int [T, B]; reward, is_first, is_terminal [T, B].

Action convention (the official embodied driver's and `WorldModel.loss`'s): `action[t]` is the
action the agent took *at* step t, after seeing observation t; `reward[t]` and `is_terminal[t]`
came with observation t, so they belong to the transition *into* step t. The RSSM at step t
therefore takes a_{t−1}: the loss shifts the actions by one, filling step 0 with the carry's
previous action (zeros at the start), and the reward and continue heads at step t predict
reward[t] and 1 − is_terminal[t].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.agents.dreamer.distributions import (
    KLConfig,
    OneHotCategorical,
    TwoHot,
    TwoHotConfig,
    kl_loss,
)
from wanderlust.agents.dreamer.nets import (
    MLP,
    SIZES,
    ConvConfig,
    Decoder,
    DreamerSize,
    Encoder,
    image_loss,
    vector_loss,
)
from wanderlust.agents.dreamer.rssm import RSSM, RSSMConfig, RSSMState


@dataclass
class WorldModelLossScales:
    """The official 2023 release's `loss_scales` (and the paper's β_pred = 1 for the first four);
    the KL scales live in `WorldModelConfig.kl`."""

    image: float = 1.0
    vector: float = 1.0
    reward: float = 1.0
    cont: float = 1.0


@dataclass
class WorldModelConfig:
    num_actions: int
    """Discrete actions; the RSSM takes them one-hot."""
    image_shape: tuple[int, int, int] | None = (3, 64, 64)
    """(C, H, W) of image observations, or None. The batch holds them channels-last."""
    vector_size: int = 0
    """Size of vector observations (0: none)."""
    size: str | DreamerSize = "debug"
    """A `SIZES` preset name or a `DreamerSize`."""
    conv: ConvConfig | None = None
    """Encoder/decoder convs; None: `ConvConfig(depth=size.depth)` (64×64 images)."""
    mlp_layers: int = 3
    """Layers of the vector encoder and decoder MLPs (current release `enc/dec.simple.layers: 3`)."""
    head_layers: int = 1
    """Layers of the reward and continue heads (current release `rewhead/conhead.layers: 1`; the
    2023 release used 5)."""
    norm: str = "layer"
    rssm: RSSMConfig | None = None
    """None: `RSSMConfig.from_size(size, norm=norm)`."""
    kl: KLConfig = field(default_factory=KLConfig)
    """β_dyn 0.5, β_rep 0.1, free nats 1 (see `KLConfig`)."""
    scales: WorldModelLossScales = field(default_factory=WorldModelLossScales)
    reward_bins: TwoHotConfig = field(default_factory=TwoHotConfig)
    """255 symexp-spaced bins (official `rewhead: {output: symexp_twohot, bins: 255}`)."""


class WorldModel(nn.Module):
    """Encoder → RSSM → {decoder, reward head, continue head} on features concat(h, z)."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = c = config
        size = SIZES[c.size] if isinstance(c.size, str) else c.size
        self.size = size
        conv = c.conv or ConvConfig(depth=size.depth, norm=c.norm)
        self.encoder = Encoder(c.image_shape, c.vector_size, conv, size.units, c.mlp_layers, c.norm)
        rssm_config = c.rssm or RSSMConfig.from_size(size, norm=c.norm)
        self.rssm = RSSM(self.encoder.out_features, c.num_actions, rssm_config)
        features = self.rssm.feature_size
        self.decoder = Decoder(features, c.image_shape, c.vector_size, conv, size.units, c.mlp_layers, c.norm)
        self.twohot = TwoHot(c.reward_bins)
        self.reward_head = MLP(features, size.units, c.head_layers, out_features=c.reward_bins.num_bins,
                               norm=c.norm, zero_output=True)  # official rewhead `outscale: 0.0`
        self.cont_head = MLP(features, size.units, c.head_layers, out_features=1, norm=c.norm)

    # -- pieces -----------------------------------------------------------------------------------

    def initial(self, batch: int) -> tuple[RSSMState, torch.Tensor]:
        """The world model's carry: (latent state, previous action one-hot), zeros action."""
        device = self.rssm.gru.weight.device
        return self.rssm.initial(batch), torch.zeros(batch, self.config.num_actions, device=device)

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        image = batch.get("image") if self.config.image_shape is not None else None
        if image is not None:
            image = image.movedim(-1, -3)  # [..., H, W, C] -> [..., C, H, W]
        vector = batch.get("vector") if self.config.vector_size > 0 else None
        if vector is not None:
            vector = vector.float()
        return self.encoder(image, vector)

    def reward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted reward [...] (expected value of the two-hot head)."""
        return self.twohot.decode(self.reward_head(features))

    def cont_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Continue logits [...]; P(continue) = σ(logit), a Bernoulli (official `output: binary`)."""
        return self.cont_head(features).squeeze(-1)

    def previous_actions(self, action: torch.Tensor, prev_action: torch.Tensor) -> torch.Tensor:
        """action [T, B] (taken at each step) -> one-hot a_{t−1} [T, B, A], step 0 from the carry."""
        onehot = self.rssm.action_input(action)
        return torch.cat([prev_action.unsqueeze(0).to(onehot.dtype), onehot[:-1]], 0)

    # -- loss -------------------------------------------------------------------------------------

    def loss(self, batch: dict[str, torch.Tensor], carry: tuple[RSSMState, torch.Tensor] | None = None,
             sample: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor], RSSMState]:
        """(total loss (scalar), metrics (detached scalars), posterior states [T, B, ...]).

        carry: the (latent, previous action) left by the previous chunk of the same sequences
        (`next_carry`), or None to start from `initial`; steps with is_first reset either way."""
        c = self.config
        steps, batch_size = batch["action"].shape[:2]
        latent, prev_action = carry if carry is not None else self.initial(batch_size)
        embeddings = self.embed(batch)
        actions = self.previous_actions(batch["action"], prev_action)
        post, prior, _ = self.rssm.observe(embeddings, actions, batch["is_first"], latent, sample)
        features = post.features()

        losses: dict[str, torch.Tensor] = {}
        recon = self.decoder(features)
        if "image" in recon:
            losses["image"] = c.scales.image * image_loss(recon["image"], batch["image"].movedim(-1, -3))
        if "vector" in recon:
            losses["vector"] = c.scales.vector * vector_loss(recon["vector"], batch["vector"].float())
        reward_logits = self.reward_head(features)
        losses["reward"] = c.scales.reward * self.twohot.loss(reward_logits, batch["reward"].float())
        cont_target = 1.0 - batch["is_terminal"].float()
        losses["cont"] = c.scales.cont * F.binary_cross_entropy_with_logits(
            self.cont_logits(features), cont_target, reduction="none")
        kl, kl_terms = kl_loss(post.logits, prior.logits, c.kl)
        losses["kl"] = kl
        total = sum(v.mean() for v in losses.values())

        metrics = {f"{k}_loss": v.detach().mean() for k, v in losses.items()}
        metrics.update({k: v.mean() for k, v in kl_terms.items()})
        metrics["model_loss"] = total.detach()
        metrics["prior_ent"] = OneHotCategorical(prior.logits.detach(), 0.0).entropy().mean()
        metrics["post_ent"] = OneHotCategorical(post.logits.detach(), 0.0).entropy().mean()
        with torch.no_grad():
            metrics["reward_mae"] = (self.twohot.decode(reward_logits) - batch["reward"].float()).abs().mean()
        return total, metrics, post

    def next_carry(self, post: RSSMState, batch: dict[str, torch.Tensor]) -> tuple[RSSMState, torch.Tensor]:
        """The carry for the next chunk of the same sequences: the last posterior and the last action
        taken (detached, truncating backpropagation at the chunk boundary)."""
        return post[-1].detach(), self.rssm.action_input(batch["action"][-1]).detach()
