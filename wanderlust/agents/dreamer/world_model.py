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

With `kind="thick"` the RSSM is THICK's C-RSSM (`crssm.py`) and the loss gains the coarse terms and
the sparsity loss (Gumbsch et al. 2024, section 2; official CognitiveModeling/THICK `agent.py`
`WorldModel.loss`):

    L_thick = L + β_cdec·(L_image^c + L_vector^c) + β_crew·L_reward^c + β_ccont·L_cont^c
                + β^c_dyn·L^c_dyn + β^c_rep·L^c_rep + β^sparse·L_sparse

where the coarse heads (a second decoder, reward and continue heads) read [c, z] of the posterior
and, like the fine heads, send gradients into the representation (official `ctxt_grad_heads`),
L^c_dyn, L^c_rep balance the posterior against the coarse prior as `kl_loss` does, and L_sparse is
`sparsity_loss` of the gate indicators. See `ThickConfig` for the scales and docs/thick.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.agents.dreamer.crssm import CRSSM, CRSSMConfig, CRSSMState, sparsity_loss
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
class ThickConfig:
    """THICK's C-RSSM settings and loss scales, read when `WorldModelConfig.kind == "thick"`."""

    context: int = 8
    """Width of the context c (SYSTEMS.md: 8; the official THICK configs use `context: 16`)."""
    gate_noise: float = 0.1
    """σ of the gate noise in training (GateL0RD `gate_noise_level=0.1`; THICK configs
    `ctxt_sample_noise: 0.1`)."""
    coarse_layers: int = 3
    """Hidden layers of the coarse prior (THICK `_ctxt_head = MLP(..., layers=3)`)."""
    sparse: float = 1.0
    """β^sparse, the scale of the sparsity loss (SYSTEMS.md and the official `thick` /
    `thick_pinpad` configs `loss_scales.ctxt_sparsity: 1.0`; `thick_minihack` 10, `thick_multiworld`
    25; SYSTEMS.md: 10 for Atari100k. Tune over 1/10/100 for few but non-zero context changes)."""
    sparse_free: float = 1.0
    """Context changes per sequence that cost nothing (SYSTEMS.md: one free change; see
    `sparsity_loss`)."""
    coarse_kl: KLConfig = field(default_factory=lambda: KLConfig(dyn_scale=1.0, rep_scale=0.1, free_nats=1.0))
    """KL balancing of the posterior against the coarse prior: β_dyn 1, β_rep 0.1, free nats 1
    (SYSTEMS.md). The official DreamerV2-based code balances it as its fine KL (`ctxt_kl: {balance:
    0.8, free: 0.0}`, scale `ctxt_kl: 1.0`)."""
    coarse_decoder: float = 2.0
    """Scale of the coarse image and vector losses (SYSTEMS.md: ×2; the official configs set
    `ctxt_image: 1.0`)."""
    coarse_reward: float = 1.0
    """Scale of the coarse reward loss (official `ctxt_reward: 1.0`)."""
    coarse_cont: float = 1.0
    """Scale of the coarse continue loss (official `ctxt_discount: 1.0`)."""


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
    kind: str = "flat"
    """"flat": DreamerV3's RSSM. "thick": THICK's C-RSSM with coarse heads and the sparsity loss;
    `rssm` then gives the shared RSSM settings and `thick` the context ones."""
    thick: ThickConfig = field(default_factory=ThickConfig)


class WorldModel(nn.Module):
    """Encoder → RSSM → {decoder, reward head, continue head} on `features()` (concat(h, z); with
    kind "thick" concat(h, z, c), plus a coarse decoder, reward and continue head on [c, z])."""

    def __init__(self, config: WorldModelConfig):
        super().__init__()
        self.config = c = config
        if c.kind not in ("flat", "thick"):
            raise ValueError(f"WorldModelConfig.kind must be 'flat' or 'thick', not {c.kind!r}")
        size = SIZES[c.size] if isinstance(c.size, str) else c.size
        self.size = size
        conv = c.conv or ConvConfig(depth=size.depth, norm=c.norm)
        self.encoder = Encoder(c.image_shape, c.vector_size, conv, size.units, c.mlp_layers, c.norm)
        rssm_config = c.rssm or RSSMConfig.from_size(size, norm=c.norm)
        if c.kind == "thick":
            self.rssm = CRSSM(self.encoder.out_features, c.num_actions, _crssm_config(rssm_config, c.thick))
        else:
            self.rssm = RSSM(self.encoder.out_features, c.num_actions, rssm_config)
        self.decoder, self.reward_head, self.cont_head = self._heads(self.rssm.feature_size, conv)
        self.twohot = TwoHot(c.reward_bins)
        if c.kind == "thick":
            self.coarse_decoder, self.coarse_reward_head, self.coarse_cont_head = self._heads(
                self.rssm.coarse_feature_size, conv)

    def _heads(self, features: int, conv: ConvConfig) -> tuple[Decoder, MLP, MLP]:
        """A decoder, a reward head and a continue head reading `features` inputs."""
        c, units = self.config, self.size.units
        decoder = Decoder(features, c.image_shape, c.vector_size, conv, units, c.mlp_layers, c.norm)
        reward_head = MLP(features, units, c.head_layers, out_features=c.reward_bins.num_bins,
                          norm=c.norm, zero_output=True)  # official rewhead `outscale: 0.0`
        cont_head = MLP(features, units, c.head_layers, out_features=1, norm=c.norm)
        return decoder, reward_head, cont_head

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

    def coarse_reward(self, coarse_features: torch.Tensor) -> torch.Tensor:
        """The coarse reward head's prediction [...] from `CRSSMState.coarse_features()` (thick)."""
        return self.twohot.decode(self.coarse_reward_head(coarse_features))

    def coarse_cont_logits(self, coarse_features: torch.Tensor) -> torch.Tensor:
        """The coarse continue head's logits [...] from `CRSSMState.coarse_features()` (thick)."""
        return self.coarse_cont_head(coarse_features).squeeze(-1)

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
        if batch.get("image") is not None and batch["image"].dtype == torch.uint8:
            # Scaled once here for the encoder and every decoder's loss (each would scale its own).
            batch = {**batch, "image": batch["image"].float() / 255.0}
        embeddings = self.embed(batch)
        actions = self.previous_actions(batch["action"], prev_action)
        post, prior, _ = self.rssm.observe(embeddings, actions, batch["is_first"], latent, sample)

        s = c.scales
        losses, reward_logits = self._prediction_losses(
            post.features(), batch, self.decoder, self.reward_head, self.cont_head,
            (s.image, s.vector, s.reward, s.cont))
        kl, kl_terms = kl_loss(post.logits, prior.logits, c.kl)
        losses["kl"] = kl
        if c.kind == "thick":
            thick = c.thick
            coarse, _ = self._prediction_losses(
                post.coarse_features(), batch, self.coarse_decoder, self.coarse_reward_head,
                self.coarse_cont_head, (thick.coarse_decoder, thick.coarse_decoder, thick.coarse_reward,
                                        thick.coarse_cont))
            losses.update({f"coarse_{k}": v for k, v in coarse.items()})
            coarse_kl, coarse_terms = kl_loss(post.logits, post.coarse_logits, thick.coarse_kl)
            losses["coarse_kl"] = coarse_kl
            losses["sparse"] = thick.sparse * sparsity_loss(post.gate, thick.sparse_free)
        total = sum(v.mean() for v in losses.values())

        metrics = {f"{k}_loss": v.detach().mean() for k, v in losses.items()}
        metrics.update({k: v.mean() for k, v in kl_terms.items()})
        metrics["model_loss"] = total.detach()
        metrics["prior_ent"] = OneHotCategorical(prior.logits.detach(), 0.0).entropy().mean()
        metrics["post_ent"] = OneHotCategorical(post.logits.detach(), 0.0).entropy().mean()
        with torch.no_grad():
            metrics["reward_mae"] = (self.twohot.decode(reward_logits) - batch["reward"].float()).abs().mean()
        if c.kind == "thick":
            metrics.update(self._thick_metrics(post, coarse_terms))
        return total, metrics, post

    def _prediction_losses(self, features: torch.Tensor, batch: dict[str, torch.Tensor], decoder: Decoder,
                           reward_head: MLP, cont_head: MLP, scales: tuple[float, float, float, float]
                           ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Scaled per-step losses {image, vector, reward, cont} of one set of heads reading
        `features` [T, B, F], and the reward logits. scales: (image, vector, reward, cont)."""
        image_scale, vector_scale, reward_scale, cont_scale = scales
        losses: dict[str, torch.Tensor] = {}
        recon = decoder(features)
        if "image" in recon:
            losses["image"] = image_scale * image_loss(recon["image"], batch["image"].movedim(-1, -3))
        if "vector" in recon:
            losses["vector"] = vector_scale * vector_loss(recon["vector"], batch["vector"].float())
        reward_logits = reward_head(features)
        losses["reward"] = reward_scale * self.twohot.loss(reward_logits, batch["reward"].float())
        cont_target = 1.0 - batch["is_terminal"].float()
        losses["cont"] = cont_scale * F.binary_cross_entropy_with_logits(
            cont_head(features).squeeze(-1), cont_target, reduction="none")
        return losses, reward_logits

    @staticmethod
    @torch.no_grad()
    def _thick_metrics(post: CRSSMState, coarse_terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """coarse_dyn_loss, coarse_rep_loss (unscaled, after the floor), coarse_prior_ent,
        context_changes (steps per sequence where any gate opened, mean over sequences) and
        gate_open (fraction of open gates over steps, sequences and context dims)."""
        opened = post.gate > 0
        return {
            "coarse_dyn_loss": coarse_terms["dyn_loss"].mean(),
            "coarse_rep_loss": coarse_terms["rep_loss"].mean(),
            "coarse_prior_ent": OneHotCategorical(post.coarse_logits, 0.0).entropy().mean(),
            "context_changes": opened.any(-1).float().sum(0).mean(),
            "gate_open": opened.float().mean(),
        }

    def next_carry(self, post: RSSMState, batch: dict[str, torch.Tensor]) -> tuple[RSSMState, torch.Tensor]:
        """The carry for the next chunk of the same sequences: the last posterior and the last action
        taken (detached, truncating backpropagation at the chunk boundary)."""
        return post[-1].detach(), self.rssm.action_input(batch["action"][-1]).detach()


def _crssm_config(rssm: RSSMConfig, thick: ThickConfig) -> CRSSMConfig:
    """The C-RSSM's config: the shared settings of `rssm`, the context ones of `thick` (their one
    place in a world model's config)."""
    if isinstance(rssm, CRSSMConfig):
        raise ValueError("with kind='thick' pass an RSSMConfig as `rssm` and set the context in `thick`")
    shared = {f.name: getattr(rssm, f.name) for f in fields(RSSMConfig)}
    return CRSSMConfig(**shared, context=thick.context, gate_noise=thick.gate_noise,
                       coarse_layers=thick.coarse_layers)
