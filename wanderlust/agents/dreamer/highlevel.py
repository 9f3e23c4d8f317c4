"""THICK's high-level world model and the THICK Dreamer critic target (Gumbsch et al. 2024).

The C-RSSM's context c changes only at a few steps. From every step t the high-level model jumps
straight to the next of those steps, τ(t), and predicts what happens there:

    change points   τ(t) = min{u > t : c_u ≠ c_{u−1} or is_terminal_u}, within t's episode
    targets         a_{τ−1}, z_{τ−1} (posterior), Δ = τ − t,  r^γ = Σ_{k=0}^{Δ−1} γ^k r_{t+1+k}
    posterior       A_t ~ q(A | c_t, z_t, c_τ, z_{τ−1})     a categorical "high-level action"
    prior           Â_t ~ p(A | c_t, z_t)
    heads on [A, c_t, z_t]:  â_{τ−1},  ẑ_{τ−1},  Δ̂,  r̂^γ

A is what the heads cannot know from (c_t, z_t) alone (which of several possible next changes
happens); the posterior reads the change itself, the prior learns to guess it (KL between them).
THICK Dreamer then values every imagined state with a long-horizon return computed by one
high-level step, and mixes it into the critic's target:

    R^long_t = r̂^γ + γ^Δ̂ · V^c(ŝ_τ),     R^critic_t = ψ·R^λ_t + (1 − ψ)·R^long_t,   ψ = 0.9

Sources: paper = Gumbsch, Sajid, Martius, Butz 2024, "Learning hierarchical world models with
adaptive temporal abstractions from discrete latent dynamics" (ICLR), sections 2.2 (high-level
model) and 3 (THICK Dreamer); official code = CognitiveModeling/THICK (built on DreamerV2):
`common/thick_utils.py` (`gen_thick_data`, `thick_data_gen_step`, `THICKNet`) and `agent.py`
(`preprocess_thick_data`, `thick_imagine`, `ActorCritic.thick_dreamer_target`). docs/thick.md
lists every choice against those sources. Everything here reads plain tensors, so it works with
any world model that provides a context, posterior logits and samples.

Gradients: the official code builds the targets and the inputs under stop_gradient and trains the
high-level model with its own optimiser (`thick_opt`), so no high-level loss reaches the world model.
Here too: `change_point_targets` and `HighLevelModel.loss` detach everything they read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.agents.dreamer.distributions import (
    KLConfig,
    OneHotCategorical,
    TwoHot,
    TwoHotConfig,
    categorical_kl,
    kl_loss,
    symexp,
    symlog,
    unimix_logits,
)
from wanderlust.agents.dreamer.nets import MLP, DreamerSize

# -- targets ---------------------------------------------------------------------------------------


@dataclass
class ChangePointTargets:
    """For every step t of a [T, B] batch, what happens at its next context-change point τ(t).

    action [T, B] long: a_{τ−1}, the action taken just before the change (`action[τ−1]`).
    logits [T, B, S, K]: the posterior logits of z_{τ−1} (as given, i.e. unimixed).
    stoch [T, B, S, K]: the posterior sample z_{τ−1}.
    context [T, B, C]: c_τ, the context after the change (what the posterior reads).
    elapsed [T, B] float: Δ = τ − t ≥ 1.
    reward [T, B]: Σ_{k=0}^{Δ−1} γ^k r_{t+1+k} (rewards r_{t+1} … r_τ).
    valid [T, B] bool: τ(t) exists inside the window and inside t's episode.
    index [T, B] long: τ(t), or T where no change point follows.

    Where `valid` is False the other fields are placeholders (elapsed and reward 0, the rest read
    at a clamped index); every loss must mask them."""

    action: torch.Tensor
    logits: torch.Tensor
    stoch: torch.Tensor
    context: torch.Tensor
    elapsed: torch.Tensor
    reward: torch.Tensor
    valid: torch.Tensor
    index: torch.Tensor


def _gather_time(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [T, B, ...] indexed along time by index [T', B] -> [T', B, ...]."""
    extra = values.shape[2:]
    expanded = index.reshape(*index.shape, *([1] * len(extra))).expand(*index.shape, *extra)
    return values.gather(0, expanded)


@torch.no_grad()
def change_point_targets(
    context: torch.Tensor,
    logits: torch.Tensor,
    stoch: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    is_terminal: torch.Tensor,
    is_first: torch.Tensor,
    gamma: float,
    changed: torch.Tensor | None = None,
) -> ChangePointTargets:
    """The high-level model's targets for every step of a replayed [T, B] batch (time-major).

    Inputs follow the world model's convention (docs/dreamer.md, "Action convention"): context
    [T, B, C], logits and stoch [T, B, S, K] are the posterior at observation t; action[t] (int) is
    taken after observation t; reward[t] and is_terminal[t] arrive with observation t; is_first[t]
    starts an episode. `changed` [T, B] bool optionally overrides change detection (changed[u]: the
    context changed on entering u, e.g. `(gate > 0).any(-1)` from the C-RSSM's gate indicators, which
    is what the official code thresholds); by default changed[u] = any(c_u ≠ c_{u−1}), exact, which
    is the same because a closed ReTanh gate leaves c exactly unchanged.

    Definitions (official `gen_thick_data` with the `ends` criterion of `gen_thick_segment_data`):

    - u ≥ 1 is a change point if changed[u] or is_terminal[u]: the context changes on entering u,
      or u is the episode's last observation (the terminal step itself is τ, so the accumulated
      reward includes the terminal reward).
    - τ(t) is the first change point u > t. Δ = τ − t, so a change right at t + 1 gives Δ = 1 (the
      official code stores τ − 1 − t and adds 1 again when it imagines).
    - Targets are read just before the change: a_{τ−1} = action[τ−1] (the action that caused it) and
      z_{τ−1}; the posterior also gets c_τ.
    - Reward: Σ_{k=0}^{Δ−1} γ^k r_{t+1+k}, i.e. rewards r_{t+1} … r_τ, the rewards of the
      transitions t → … → τ. The official code (DreamerV2 convention, where a state's value includes
      the reward that arrived with it) sums r_t … r_{τ−1}; shifted by one here so that
      r^γ + γ^Δ·V(s_τ) is a return in the same convention as our λ-returns, whose V(s) counts only
      rewards after s.
    - Episodes: the search for τ stops at the next episode start u (is_first[u], or
      is_terminal[u − 1]); the C-RSSM resets c there, which must not count as a change of the old
      episode. Steps whose episode ends (terminally or by truncation) before any change point get no
      target. The official replay never crosses episodes, so it needs no such rule.
    - Window end: a step with no change point after it inside the window gets no target (official
      `loss_mask`: inputs whose gates never open later are ignored), in particular t = T − 1.
    Targets carry no gradient."""
    steps, batch = action.shape
    device = action.device
    is_terminal = is_terminal.bool()
    is_first = is_first.bool()
    if changed is None:
        changed = torch.zeros(steps, batch, dtype=torch.bool, device=device)
        changed[1:] = (context[1:] != context[:-1]).any(-1)
    else:
        changed = changed.bool()
    stop = changed | is_terminal
    cut = is_first.clone()
    cut[1:] |= is_terminal[:-1]
    point = stop | cut
    point[0] = False  # τ > t ≥ 0, so step 0 is never a change point

    time = torch.arange(steps, device=device).unsqueeze(1).expand(steps, batch)
    candidate = torch.where(point, time, torch.full_like(time, steps))
    # next_from[u] = the first point at or after u: a reverse running minimum.
    next_from = torch.flip(torch.cummin(torch.flip(candidate, [0]), 0).values, [0])
    index = torch.cat([next_from[1:], torch.full((1, batch), steps, dtype=time.dtype, device=device)])
    found = index < steps
    at = index.clamp(max=steps - 1)
    valid = found & ~cut.gather(0, at)
    before = (at - 1).clamp(min=0)

    # Discounted reward to the next point: acc[t] = r[t+1] + γ·(1 − point[t+1])·acc[t+1].
    returns = torch.zeros(steps, batch, dtype=reward.dtype, device=device)
    running = torch.zeros(batch, dtype=reward.dtype, device=device)
    keep = (~point).to(reward.dtype)
    for t in reversed(range(steps - 1)):
        running = reward[t + 1] + gamma * keep[t + 1] * running
        returns[t] = running

    zero = torch.zeros((), dtype=reward.dtype, device=device)
    return ChangePointTargets(
        action=action.gather(0, before),
        logits=_gather_time(logits, before).detach(),
        stoch=_gather_time(stoch, before).detach(),
        context=_gather_time(context, at).detach(),
        elapsed=torch.where(valid, (index - time).to(reward.dtype), zero),
        reward=torch.where(valid, returns, zero).detach(),
        valid=valid,
        index=index,
    )


# -- the model -------------------------------------------------------------------------------------


@dataclass
class HighLevelConfig:
    num_high_level_actions: int = 3
    """Classes of the high-level action A (SYSTEMS.md: 3; official `thick_hl_act_dim`)."""
    units: int = 256
    """Width of every layer (set from a size preset with `from_size`; the official `THICKNet` uses
    one width, `thick_feat`, for its body and heads)."""
    trunk_layers: int = 3
    """Hidden layers of the shared body on [A, c, z] (official `THICKNet(int_layers=3)`)."""
    head_layers: int = 1
    """Hidden layers of each output head (official: one hidden layer before the ẑ logits,
    `thick_logit_pre`) and of the A prior and posterior (official `hl_act_prior_pre`,
    `hl_act_post_pre`: one hidden layer, then the logits)."""
    norm: str = "layer"
    """Our DreamerV3 layers (Linear → LayerNorm → SiLU); the official DreamerV2-based code uses
    ELU without a norm."""
    unimix: float = 0.01
    """Uniform mixed into the A prior and posterior, ẑ and â (DreamerV3's 1%, as our RSSM and actor);
    the official code mixes none. Keeps every KL and log-probability finite."""
    kl: KLConfig = field(default_factory=KLConfig)
    """Balancing of KL(q(A) ‖ p(A)): dyn 0.5·max(1, KL(sg(q) ‖ p)) + rep 0.1·max(1, KL(q ‖ sg(p))),
    DreamerV3's rule as in our world model (`kl_loss`). The official code balances the same two
    terms the DreamerV2 way (`THICKNet.kl_loss` with config `thick_hl_act_kl`). With 3 classes
    KL ≤ ln 3 ≈ 1.1 nats for a deterministic posterior against a uniform prior, so the 1-nat floor
    leaves A almost free to carry its information."""
    state_free_nats: float = 0.0
    """Floor of the ẑ_{τ−1} loss KL(sg(z_{τ−1} logits) ‖ ẑ logits) per step (official: the same KL,
    `THICKNet.kl_loss(targets, stats)` with config `thick_kl`). 0 makes it a plain cross-entropy to
    the target distribution up to a constant."""
    action_scale: float = 1.0
    """Weight of −log p(a_{τ−1}) (official `thick_loss_scales`, default 1 for every term)."""
    state_scale: float = 1.0
    """Weight of the ẑ_{τ−1} KL."""
    time_scale: float = 1.0
    """Weight of the Δ loss."""
    reward_scale: float = 1.0
    """Weight of the r^γ two-hot loss."""
    kl_scale: float = 1.0
    """Weight of the balanced A KL (on top of its dyn/rep scales)."""
    time_space: str = "symlog"
    """Δ is regressed with a squared error on symlog(Δ) ("symlog", DreamerV3's rule for unbounded
    regression targets) or on Δ itself ("raw"). The official head is a unit-variance Gaussian on
    Δ − 1 clamped positive (`pos_clamp_normal`), i.e. the "raw" squared error up to constants."""
    max_elapsed: float = 64.0
    """Predicted Δ is clamped to [1, max_elapsed] (official: clipped to the replay's sequence length,
    `replay.maxlen`); set it to the training window length, which no target can exceed."""
    posterior_state: str = "stoch"
    """What the posterior reads of z_{τ−1}: "stoch", the posterior sample (official
    `posterior_step`/`thick_loss` concatenate `thick_stoch`, the flattened sample), or "probs", its
    probabilities (SYSTEMS.md's "next logits")."""
    reward_bins: TwoHotConfig = field(default_factory=TwoHotConfig)
    """Two-hot over 255 symexp-spaced bins, as our reward head (DreamerV3); the official head is a
    unit-variance Gaussian (`dist='mse'`)."""
    lr: float = 1e-4
    """Adam learning rate of `update` (DreamerV3 2023 `model_opt.lr: 1e-4`, as our world model; the
    official THICK trains this model with its own optimiser, `thick_opt`)."""
    adam_eps: float = 1e-8
    """DreamerV3 2023 `model_opt.eps: 1e-8`."""
    grad_clip: float = 1000.0
    """Global gradient-norm clip (DreamerV3 2023 `model_opt.clip: 1000`)."""

    @classmethod
    def from_size(cls, size: DreamerSize, **overrides) -> HighLevelConfig:
        kw = dict(units=size.units)
        kw.update(overrides)
        return cls(**kw)


@dataclass
class HighLevelOutputs:
    """Raw head outputs for inputs [...]: state_logits [..., S, K] (unimixed), action_logits
    [..., num_actions] (unimixed), elapsed [...] (in `time_space`), reward_logits [..., bins]."""

    state_logits: torch.Tensor
    action_logits: torch.Tensor
    elapsed: torch.Tensor
    reward_logits: torch.Tensor


@dataclass
class HighLevelPrediction:
    """One high-level step from states (c_t, z_t) [...]:

    hl_action [..., A] one-hot: the high-level action used (from the prior unless given).
    context [..., C]: c_t, unchanged (c stays constant from t to τ − 1 by definition of τ).
    stoch [..., S, K] one-hot and logits [..., S, K]: ẑ_{τ−1}, the state just before the change.
    action [..., num_actions] one-hot: â_{τ−1}, the action that causes the change.
    elapsed [...]: Δ̂ ∈ [1, max_elapsed].  reward [...]: r̂^γ, the discounted reward to the change."""

    hl_action: torch.Tensor
    context: torch.Tensor
    stoch: torch.Tensor
    logits: torch.Tensor
    action: torch.Tensor
    elapsed: torch.Tensor
    reward: torch.Tensor


class HighLevelModel(nn.Module):
    """The high-level model: A prior and posterior, a body on [A, c, z] and four heads (ẑ_{τ−1},
    â_{τ−1}, Δ, r^γ), with its own Adam optimiser (the official `thick_opt`)."""

    def __init__(self, context_size: int, stoch: int, classes: int, num_actions: int,
                 config: HighLevelConfig | None = None):
        super().__init__()
        self.config = c = config or HighLevelConfig()
        if c.time_space not in ("symlog", "raw"):
            raise ValueError(f"time_space must be 'symlog' or 'raw', not {c.time_space!r}")
        if c.posterior_state not in ("stoch", "probs"):
            raise ValueError(f"posterior_state must be 'stoch' or 'probs', not {c.posterior_state!r}")
        self.context_size, self.stoch, self.classes = context_size, stoch, classes
        self.num_actions = num_actions
        state_size = context_size + stoch * classes
        hl = c.num_high_level_actions
        self.prior_net = MLP(state_size, c.units, c.head_layers, out_features=hl, norm=c.norm)
        self.posterior_net = MLP(2 * state_size, c.units, c.head_layers, out_features=hl, norm=c.norm)
        self.trunk = MLP(hl + state_size, c.units, c.trunk_layers, norm=c.norm)
        width = self.trunk.out_features
        self.state_head = MLP(width, c.units, c.head_layers, out_features=stoch * classes, norm=c.norm)
        self.action_head = MLP(width, c.units, c.head_layers, out_features=num_actions, norm=c.norm)
        self.time_head = MLP(width, c.units, c.head_layers, out_features=1, norm=c.norm)
        self.twohot = TwoHot(c.reward_bins)
        self.reward_head = MLP(width, c.units, c.head_layers, out_features=c.reward_bins.num_bins,
                               norm=c.norm, zero_output=True)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=c.lr, eps=c.adam_eps)

    # -- networks ---------------------------------------------------------------------------------

    @staticmethod
    def _state(context: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        return torch.cat([context, stoch.flatten(-2)], -1)

    def prior_logits(self, context: torch.Tensor, stoch: torch.Tensor) -> torch.Tensor:
        """p(A | c_t, z_t): unimixed logits [..., A]."""
        return unimix_logits(self.prior_net(self._state(context, stoch)), self.config.unimix)

    def posterior_logits(self, context: torch.Tensor, stoch: torch.Tensor, next_context: torch.Tensor,
                         next_stoch: torch.Tensor) -> torch.Tensor:
        """q(A | c_t, z_t, c_τ, z_{τ−1}): unimixed logits [..., A]. `next_stoch` is z_{τ−1} as
        `posterior_state` says: the one-hot sample ("stoch") or logits turned into probabilities
        ("probs")."""
        if self.config.posterior_state == "probs":
            next_stoch = torch.softmax(next_stoch, -1)
        inputs = torch.cat([self._state(context, stoch), self._state(next_context, next_stoch)], -1)
        return unimix_logits(self.posterior_net(inputs), self.config.unimix)

    def heads(self, context: torch.Tensor, stoch: torch.Tensor, hl_action: torch.Tensor) -> HighLevelOutputs:
        """The four heads on body([A, c_t, z_t]); hl_action [..., A] one-hot."""
        features = self.trunk(torch.cat([hl_action, self._state(context, stoch)], -1))
        unimix = self.config.unimix
        state_logits = self.state_head(features).unflatten(-1, (self.stoch, self.classes))
        return HighLevelOutputs(
            state_logits=unimix_logits(state_logits, unimix),
            action_logits=unimix_logits(self.action_head(features), unimix),
            elapsed=self.time_head(features).squeeze(-1),
            reward_logits=self.reward_head(features),
        )

    def _elapsed_target(self, elapsed: torch.Tensor) -> torch.Tensor:
        return symlog(elapsed) if self.config.time_space == "symlog" else elapsed

    def decode_elapsed(self, output: torch.Tensor) -> torch.Tensor:
        """The time head's output -> Δ̂, clamped to [1, max_elapsed]."""
        elapsed = symexp(output) if self.config.time_space == "symlog" else output
        return elapsed.clamp(1.0, self.config.max_elapsed)

    # -- prediction -------------------------------------------------------------------------------

    def predict(self, context: torch.Tensor, stoch: torch.Tensor, hl_action: torch.Tensor | None = None,
                sample: bool = True, generator: torch.Generator | None = None) -> HighLevelPrediction:
        """One high-level step from (c_t [..., C], z_t [..., S, K]). Without `hl_action`, A is drawn
        from the prior (official `sample_step`, which THICK Dreamer's `thick_imagine` calls); ẑ_{τ−1}
        and â_{τ−1} are drawn from their heads (official `sample_step` samples both); Δ̂ and r̂^γ are
        the heads' point predictions. `sample=False` takes modes throughout."""
        if hl_action is None:
            prior = OneHotCategorical(self.prior_logits(context, stoch).unsqueeze(-2), unimix=0.0)
            hl_action = (prior.sample(generator) if sample else prior.mode()).squeeze(-2)
        outputs = self.heads(context, stoch, hl_action)
        state = OneHotCategorical(outputs.state_logits, unimix=0.0)
        action = OneHotCategorical(outputs.action_logits.unsqueeze(-2), unimix=0.0)
        return HighLevelPrediction(
            hl_action=hl_action,
            context=context,
            stoch=state.sample(generator) if sample else state.mode(),
            logits=outputs.state_logits,
            action=(action.sample(generator) if sample else action.mode()).squeeze(-2),
            elapsed=self.decode_elapsed(outputs.elapsed),
            reward=self.twohot.decode(outputs.reward_logits),
        )

    # -- training ---------------------------------------------------------------------------------

    def loss(self, context: torch.Tensor, stoch: torch.Tensor, targets: ChangePointTargets,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, metrics) on a replayed batch: context [T, B, C] and stoch [T, B, S, K] are the
        posterior's c_t and z_t (sample), `targets` from `change_point_targets` on the same batch.

            L = mean over valid steps of  kl_scale·(0.5·dyn + 0.1·rep)(q(A), p(A))
                  + action_scale·(−log p(a_{τ−1})) + state_scale·max(free, KL(sg(z_{τ−1}) ‖ ẑ))
                  + time_scale·(f(Δ̂) − f(Δ))² + reward_scale·twohot_nll(r^γ)

        with A drawn from the posterior with straight-through gradients (paper: the heads are
        trained with A ~ q; official `thick_loss`), so the head losses train the posterior too.
        Inputs are detached: nothing reaches the world model. Steps without a target are masked
        out; the official code multiplies by its mask and then averages over all steps, which
        differs from this masked mean only in scale."""
        c = self.config
        context, stoch = context.detach(), stoch.detach()
        valid = targets.valid
        weight = valid.to(context.dtype)
        count = weight.sum().clamp_min(1.0)

        def masked_mean(values: torch.Tensor) -> torch.Tensor:
            return (values * weight).sum() / count

        next_state = targets.logits if c.posterior_state == "probs" else targets.stoch
        post_logits = self.posterior_logits(context, stoch, targets.context, next_state)
        prior_logits = self.prior_logits(context, stoch)
        kl, kl_terms = kl_loss(post_logits.unsqueeze(-2), prior_logits.unsqueeze(-2), c.kl)
        posterior = OneHotCategorical(post_logits.unsqueeze(-2), unimix=0.0)
        hl_action = posterior.sample(generator).squeeze(-2)

        outputs = self.heads(context, stoch, hl_action)
        state_loss = categorical_kl(targets.logits.detach(), outputs.state_logits).clamp_min(c.state_free_nats)
        action_loss = F.cross_entropy(outputs.action_logits.flatten(0, -2), targets.action.reshape(-1),
                                      reduction="none").reshape(targets.action.shape)
        time_loss = (outputs.elapsed - self._elapsed_target(targets.elapsed)).square()
        reward_loss = self.twohot.loss(outputs.reward_logits, targets.reward)

        total = masked_mean(
            c.kl_scale * kl + c.action_scale * action_loss + c.state_scale * state_loss
            + c.time_scale * time_loss + c.reward_scale * reward_loss)

        with torch.no_grad():
            prior = OneHotCategorical(prior_logits.unsqueeze(-2), unimix=0.0)
            predicted_action = outputs.action_logits.argmax(-1)
            metrics = {
                "hl_loss": total.detach(),
                "hl_kl_loss": masked_mean(c.kl_scale * kl).detach(),
                "hl_dyn_loss": masked_mean(kl_terms["dyn_loss"]),
                "hl_rep_loss": masked_mean(kl_terms["rep_loss"]),
                "hl_action_loss": masked_mean(action_loss).detach(),
                "hl_state_loss": masked_mean(state_loss).detach(),
                "hl_time_loss": masked_mean(time_loss).detach(),
                "hl_reward_loss": masked_mean(reward_loss).detach(),
                "hl_prior_ent": masked_mean(prior.entropy()),
                "hl_post_ent": masked_mean(posterior.entropy()),
                "hl_action_acc": masked_mean((predicted_action == targets.action).to(weight.dtype)),
                "hl_elapsed": masked_mean(targets.elapsed),
                "hl_elapsed_mae": masked_mean((self.decode_elapsed(outputs.elapsed) - targets.elapsed).abs()),
                "hl_reward_mae": masked_mean((self.twohot.decode(outputs.reward_logits) - targets.reward).abs()),
                "hl_valid_frac": weight.mean(),
            }
        return total, metrics

    def update(self, context: torch.Tensor, stoch: torch.Tensor, targets: ChangePointTargets,
               generator: torch.Generator | None = None) -> dict[str, float]:
        """One Adam step on `loss`, gradients clipped by global norm `grad_clip`."""
        total, metrics = self.loss(context, stoch, targets, generator)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        metrics["hl_grad_norm"] = nn.utils.clip_grad_norm_(self.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return {k: float(v) for k, v in metrics.items()}


# -- THICK Dreamer ---------------------------------------------------------------------------------


@torch.no_grad()
def long_horizon_return(
    model: HighLevelModel,
    context: torch.Tensor,
    stoch: torch.Tensor,
    value_fn: Callable[[HighLevelPrediction], torch.Tensor],
    gamma: float,
    sample: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """R^long = r̂^γ + γ^Δ̂ · value_fn(prediction) [...] for states (c_t [..., C], z_t [..., S, K]),
    e.g. every imagined state of the actor-critic's rollout (official `thick_imagine` runs one
    high-level step from each imagined state). Without a graph: it is a critic target.

    One high-level action is sampled from the prior (official `sample_step`, not an average over
    the classes), then ẑ_{τ−1}, â_{τ−1}, Δ̂ and r̂^γ as in `HighLevelModel.predict`.

    What `value_fn` must return. The high-level model predicts the state just before the change,
    (c_t, ẑ_{τ−1}) and â_{τ−1}, not h, so the fine critic V(h, z, c) cannot value it. The official
    THICK Dreamer (`thick_imagine`, `thick_dreamer_target`):
    1. steps the C-RSSM once from (c_t, ẑ_{τ−1}) with â_{τ−1}: GateL0RD gives c_τ, the coarse prior
       p(z_τ | c_τ, ẑ_{τ−1}, â_{τ−1}) gives ẑ_τ (no h needed; its `img_step` gets a dummy h);
    2. values ŝ_τ = (c_τ, ẑ_τ) with a second, *coarse* critic V^c that reads only the coarse
       features [c, z], in its slow (target) copy. V^c is trained next to the fine critic, on the
       same imagined states' coarse features and toward the same mixed target (`mix_critic_target`).
    So value_fn should do exactly that and return V^c_slow(ŝ_τ) [...]. The official target also
    reads the coarse continue head at ŝ_τ; multiplying the value by its continue probability (so a
    predicted episode end bootstraps 0) is the natural way to do that in our convention. Rewards up
    to and including τ are in r̂^γ already (see `change_point_targets`), so nothing is added for ŝ_τ.
    `gamma` must be the γ the targets were built with (the actor-critic's discount)."""
    prediction = model.predict(context, stoch, sample=sample, generator=generator)
    value = value_fn(prediction)
    return prediction.reward + gamma ** prediction.elapsed * value


def mix_critic_target(lambda_return: torch.Tensor, long_return: torch.Tensor, psi: float = 0.9) -> torch.Tensor:
    """THICK Dreamer's critic target ψ·R^λ + (1 − ψ)·R^long (paper, THICK Dreamer; official
    `thick_dreamer_target` with `critic_psi`; SYSTEMS.md ψ = 0.9).

    Which steps: every imagined state s_t that has a λ-return, t = 0 … H − 1 of the rollout (the
    `[H, N]` output of `lambda_returns`; the bootstrap state s_H has none), with R^long_t from
    `long_horizon_return` on that same state's (c_t, z_t). Both the fine critic and the coarse critic
    V^c regress onto this target with the usual weights w_t (official `thick_dreamer_loss`). The
    actor is unchanged: its advantages use the plain λ-return (official `ActorCritic.train` computes
    the actor loss from `self.target(seq)`), so ψ reaches the policy only through the critic. ψ = 1
    is plain Dreamer."""
    if lambda_return.shape != long_return.shape:
        raise ValueError(f"shapes differ: λ-return {tuple(lambda_return.shape)}, long {tuple(long_return.shape)}")
    if not 0.0 <= psi <= 1.0:
        raise ValueError("psi must lie in [0, 1]")
    return psi * lambda_return + (1.0 - psi) * long_return
