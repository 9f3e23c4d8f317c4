"""DreamerV3's actor-critic, trained purely on trajectories imagined by the world model.

From every posterior state of a replayed batch the actor imagines `horizon` steps in the world
model's prior; the world model's heads predict the rewards and continue flags along the way, the
critic values every imagined state, and both networks learn from λ-returns of those trajectories:

    R_t   = r_t + γ c_{t+1} ((1 − λ) v(s_{t+1}) + λ R_{t+1}),   R_H = v(s_H)   (r_t predicted at s_{t+1})
    w_t   = Π_{i ≤ t} γ c_i / γ                      (stop-gradient; c_0 = 1 − is_terminal of the start)
    A_t   = (R_t − v(s_t)) / max(1, S),  S = EMA(P95(R)) − EMA(P5(R))
    L_π   = mean_t,b  w_t · (−log π(a_t | s_t) · sg(A_t) − η H[π(· | s_t)])
    L_v   = mean_t,b  w_t · (−log p_v(sg(R_t) | s_t) − β_slow log p_v(sg(v_slow(s_t)) | s_t))

(paper section "Actor-critic learning", eqs. 6-8 and Table W.1; official 2023 release
`agent.py` `WorldModel.imagine`, `ImagActorCritic.loss`, `VFunction.loss` / `score`, and
`configs.yaml`). Discrete actions only: the actor learns by REINFORCE (official
`actor_grad_disc: reinforce`), so imagination runs without a graph and no actor or critic loss can
reach the world model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from wanderlust.agents.dreamer.distributions import (
    OneHotCategorical,
    PercentileReturnNorm,
    ReturnNormConfig,
    TwoHot,
    TwoHotConfig,
    lambda_returns,
    slow_critic_update,
)
from wanderlust.agents.dreamer.highlevel import mix_critic_target
from wanderlust.agents.dreamer.nets import MLP, DreamerSize
from wanderlust.agents.dreamer.rssm import RSSMState


@dataclass
class ActorCriticConfig:
    horizon: int = 15
    """Imagined steps per start state (paper H = 15; official 2023 `imag_horizon: 15`, current
    release `imag_length: 15`)."""
    discount_horizon: float = 333.0
    """γ = 1 − 1/discount_horizon ≈ 0.997 (official `horizon: 333` in both releases)."""
    lambda_: float = 0.95
    """λ of the λ-returns (paper; official 2023 `return_lambda: 0.95`, current `imag_loss.lam`)."""
    entropy_scale: float = 3e-4
    """η, the actor's entropy bonus (paper; official 2023 `actent: 3e-4`, current
    `imag_loss.actent: 3e-4`)."""
    return_norm: ReturnNormConfig = field(default_factory=ReturnNormConfig)
    """Percentiles 5/95, decay 0.99 (rate 0.01), limit 1 (official 2023 `retnorm: {impl: perc_ema,
    decay: 0.99, max: 1.0, perclo: 5.0, perchi: 95.0}`; current `retnorm: {impl: perc, rate: 0.01,
    limit: 1.0, ...}`)."""
    slow_critic_rate: float = 0.02
    """Fraction the slow critic moves toward the critic per update (official 2023
    `slow_critic_fraction: 0.02`; current `slowvalue.rate: 0.02`)."""
    slow_critic_every: int = 1
    """Update the slow critic on every `every`-th call (official 2023 `slow_critic_update: 1`;
    current `slowvalue.every: 1`)."""
    slowreg: float = 1.0
    """β_slow, weight of the critic's regulariser toward the slow critic's prediction (official
    2023 `loss_scales.slowreg: 1.0`, `critic_slowreg: logprob`; current `imag_loss.slowreg: 1.0`)."""
    actor_scale: float = 1.0
    """Official 2023 `loss_scales.actor: 1.0` (current `policy: 1.0`)."""
    critic_scale: float = 1.0
    """Official 2023 `loss_scales.critic: 1.0` (current `value: 1.0`)."""
    unimix: float = 0.01
    """Uniform mixed into the actor's categorical (paper: 1%; official `actor.unimix: 0.01`)."""
    continue_mode: str = "mode"
    """How imagined continue flags are read from the continue head: "mode" (1 where σ(logit) >
    0.5, else 0: the official 2023 `heads['cont'](traj).mode()`) or "mean" (σ(logit))."""
    units: int = 32
    """Width of the actor and critic MLPs (set from a size preset with `from_size`)."""
    layers: int = 3
    """Hidden layers of the actor and critic (current release `policy/value.layers: 3`; the 2023
    release used 5, its small presets 2)."""
    norm: str = "layer"
    critic_bins: TwoHotConfig = field(default_factory=TwoHotConfig)
    """255 symexp-spaced bins (official 2023 `critic: {dist: symlog_disc, bins: 255, outscale:
    0.0}`; current `value: {output: symexp_twohot, bins: 255, outscale: 0.0}`)."""
    actor_lr: float = 3e-5
    """Adam learning rate of the actor (official 2023 `actor_opt: {opt: adam, lr: 3e-5, eps: 1e-5,
    clip: 100.0}`). The current release trains everything with one LaProp optimiser at 4e-5 with
    adaptive gradient clipping 0.3 (`opt: {lr: 4e-5, agc: 0.3, eps: 1e-20}`), not implemented here."""
    critic_lr: float = 3e-5
    """Adam learning rate of the critic (official 2023 `critic_opt.lr: 3e-5`)."""
    adam_eps: float = 1e-5
    """Official 2023 `actor_opt.eps` and `critic_opt.eps: 1e-5`."""
    grad_clip: float = 100.0
    """Global gradient-norm clip of each optimiser (official 2023 `actor_opt.clip` and
    `critic_opt.clip: 100.0`)."""

    psi: float = 0.9
    """THICK Dreamer's ψ: the critics regress onto ψ·R^λ + (1 − ψ)·R^long when the update is given
    a long-horizon return (SYSTEMS.md and the paper: 0.9; official `critic_psi`). Unused otherwise."""

    @property
    def discount(self) -> float:
        return 1.0 - 1.0 / self.discount_horizon

    @classmethod
    def from_size(cls, size: DreamerSize, **overrides) -> ActorCriticConfig:
        kw = dict(units=size.units)
        kw.update(overrides)
        return cls(**kw)


class ImaginingWorldModel(Protocol):
    """What the actor-critic reads from a world model (`WorldModel` provides it)."""

    rssm: nn.Module

    def reward(self, features: torch.Tensor) -> torch.Tensor: ...

    def cont_logits(self, features: torch.Tensor) -> torch.Tensor: ...


LongReturn = Callable[["Rollout"], torch.Tensor]
"""THICK Dreamer's long-horizon return R^long [H, N] of a rollout's states 0 … H − 1."""


@dataclass
class Rollout:
    """An imagined trajectory, all without a graph, time-major over H + 1 steps.

    states [H+1, N]; actions [H+1, N, A] one-hot, actions[t] chosen at states[t] (the last is never
    stepped); features [H+1, N, F]; rewards [H, N]: rewards[t] predicted at states[t+1];
    continues [H+1, N]: continues[0] = 1 − is_terminal of the start, continues[t] predicted at
    states[t]; weights [H+1, N] = cumprod(γ·continues) / γ, the chance the imagined episode is
    still running, discounted (official 2023 `traj['weight']`)."""

    states: RSSMState
    actions: torch.Tensor
    features: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    weights: torch.Tensor


class ActorCritic(nn.Module):
    """Actor (features → categorical over actions) and critic (features → two-hot value), a slow
    copy of the critic, the return normaliser, and the two Adam optimisers.

    Inputs are the RSSM features concat(h, flatten(z)) (official `inputs: [deter, stoch]`)."""

    def __init__(self, feature_size: int, num_actions: int, config: ActorCriticConfig | None = None,
                 coarse_feature_size: int = 0):
        super().__init__()
        self.config = c = config or ActorCriticConfig()
        if c.continue_mode not in ("mode", "mean"):
            raise ValueError(f"continue_mode must be 'mode' or 'mean', not {c.continue_mode!r}")
        self.num_actions = num_actions
        self.actor = MLP(feature_size, c.units, c.layers, out_features=num_actions, norm=c.norm)
        self.twohot = TwoHot(c.critic_bins)
        # Official critic `outscale: 0.0`: a fresh critic predicts exactly 0.
        self.critic = MLP(feature_size, c.units, c.layers, out_features=c.critic_bins.num_bins,
                          norm=c.norm, zero_output=True)
        self.slow_critic = copy.deepcopy(self.critic)
        self.slow_critic.requires_grad_(False)
        self.return_norm = PercentileReturnNorm(c.return_norm)
        self.register_buffer("critic_updates", torch.zeros((), dtype=torch.long))
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, eps=c.adam_eps)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, eps=c.adam_eps)
        self.coarse_critic = None
        if coarse_feature_size > 0:
            # THICK Dreamer's coarse critic V^c on [c, z], which values the states the high-level
            # model predicts (they have no h); trained like the critic (official `thick_dreamer_loss`).
            self.coarse_critic = MLP(coarse_feature_size, c.units, c.layers, out_features=c.critic_bins.num_bins,
                                     norm=c.norm, zero_output=True)
            self.slow_coarse_critic = copy.deepcopy(self.coarse_critic)
            self.slow_coarse_critic.requires_grad_(False)
            self.coarse_critic_optimizer = torch.optim.Adam(self.coarse_critic.parameters(), lr=c.critic_lr,
                                                            eps=c.adam_eps)

    # -- networks ---------------------------------------------------------------------------------

    def actor_dist(self, features: torch.Tensor) -> OneHotCategorical:
        """π(· | s): one group of `num_actions` classes, with `unimix` uniform mixed in."""
        return OneHotCategorical(self.actor(features).unsqueeze(-2), self.config.unimix)

    @torch.no_grad()
    def policy(self, state: RSSMState, sample: bool = True,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One-hot actions [B, A] for latent states [B] (no graph: the actor learns by REINFORCE from
        log-probabilities recomputed in `loss`). `sample=False` takes the most likely action. This is
        the callable `RSSM.imagine` expects, and the acting policy."""
        dist = self.actor_dist(state.features())
        action = dist.sample(generator) if sample else dist.mode()
        return action.squeeze(-2)

    def value(self, features: torch.Tensor) -> torch.Tensor:
        """The critic's prediction v(s) [...]."""
        return self.twohot.decode(self.critic(features))

    # -- imagination ------------------------------------------------------------------------------

    @torch.no_grad()
    def imagine(self, world_model: ImaginingWorldModel, start: RSSMState, is_terminal: torch.Tensor,
                generator: torch.Generator | None = None) -> Rollout:
        """Imagine `horizon` steps from the detached starts [N] with the actor and read rewards and
        continue flags off the world model's heads (official 2023 `WorldModel.imagine`). The first
        continue flag is the real one of the start (1 − is_terminal), since the start is a posterior
        of real data; later ones are the continue head's predictions."""
        c = self.config
        states, actions = world_model.rssm.imagine(
            lambda s: self.policy(s, generator=generator), start.detach(), c.horizon,
            detach=True, generator=generator)
        features = states.features()
        rewards = world_model.reward(features[1:])
        logits = world_model.cont_logits(features[1:])
        predicted = (logits > 0).to(features.dtype) if c.continue_mode == "mode" else torch.sigmoid(logits)
        continues = torch.cat([(1.0 - is_terminal.to(features.dtype)).unsqueeze(0), predicted], 0)
        weights = torch.cumprod(c.discount * continues, 0) / c.discount
        return Rollout(states, actions.detach(), features, rewards, continues, weights)

    # -- losses -----------------------------------------------------------------------------------

    def loss(self, world_model: ImaginingWorldModel, start: RSSMState, is_terminal: torch.Tensor,
             generator: torch.Generator | None = None, long_return: LongReturn | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(actor loss, critic loss, metrics) from one imagination of `horizon` steps from the
        posterior states `start` [N] (e.g. `post.flatten()` of a replayed [T, B] batch) whose real
        is_terminal flags are `is_terminal` [N]. Updates the return normaliser (as the official
        agent does in its loss). The actor loss reaches only the actor, the critic loss only the
        critic."""
        rollout = self.imagine(world_model, start, is_terminal, generator)
        return self.rollout_loss(rollout, long_return)

    def rollout_loss(self, rollout: Rollout, long_return: LongReturn | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The two losses on a given rollout (see the module docstring). With `long_return` (THICK
        Dreamer), the critic and the coarse critic regress onto ψ·R^λ + (1 − ψ)·R^long with R^long =
        long_return(rollout) [H, N]; the actor's advantages keep the plain λ-return (official
        `ActorCritic.train`). The critic loss then includes the coarse critic's."""
        c = self.config
        features = rollout.features.detach()
        critic_logits = self.critic(features)
        values = self.twohot.decode(critic_logits).detach()
        returns = lambda_returns(rollout.rewards, values, rollout.continues[1:], c.discount, c.lambda_)
        _, scale = self.return_norm(returns)
        advantages = (returns - values[:-1]) / scale
        weights = rollout.weights[:-1].detach()

        dist = self.actor_dist(features[:-1])
        log_probs = dist.log_prob(rollout.actions[:-1].detach().unsqueeze(-2))
        entropy = dist.entropy()
        actor_loss = c.actor_scale * (
            weights * (-log_probs * advantages.detach() - c.entropy_scale * entropy)).mean()

        target = returns.detach()
        extra: dict[str, torch.Tensor] = {}
        if long_return is not None:
            with torch.no_grad():
                long = long_return(rollout)
            target = mix_critic_target(target, long, c.psi)
            extra["long_return"] = long.mean()
        with torch.no_grad():
            slow_values = self.twohot.decode(self.slow_critic(features[:-1]))
        critic_loss = self._critic_loss(critic_logits[:-1], target, slow_values, weights)
        if long_return is not None:
            if self.coarse_critic is None:
                raise ValueError("a long-horizon return needs the coarse critic: build with coarse_feature_size")
            coarse = rollout.states.coarse_features()[:-1].detach()
            coarse_logits = self.coarse_critic(coarse)
            with torch.no_grad():
                slow_coarse = self.twohot.decode(self.slow_coarse_critic(coarse))
            coarse_loss = self._critic_loss(coarse_logits, target, slow_coarse, weights)
            critic_loss = critic_loss + coarse_loss
            extra["coarse_critic_loss"] = coarse_loss.detach()
            extra["coarse_value"] = self.twohot.decode(coarse_logits.detach()).mean()

        metrics = {
            "actor_loss": actor_loss.detach(),
            "critic_loss": critic_loss.detach(),
            "policy_entropy": entropy.detach().mean(),
            "policy_logprob": log_probs.detach().mean(),
            "advantage": advantages.detach().mean(),
            "advantage_std": advantages.detach().std(),
            "return_raw": returns.detach().mean(),
            "return_scale": scale.detach(),
            "value": values.mean(),
            "slow_value": slow_values.mean(),
            "imag_reward": rollout.rewards.detach().mean(),
            "imag_weight": rollout.weights.detach().mean(),
            **extra,
        }
        return actor_loss, critic_loss, metrics

    def _critic_loss(self, logits: torch.Tensor, target: torch.Tensor, slow_values: torch.Tensor,
                     weights: torch.Tensor) -> torch.Tensor:
        """mean w · (−log p(target) − β_slow log p(slow value)) of a two-hot critic head."""
        c = self.config
        target_loss = self.twohot.loss(logits, target)
        slow_loss = self.twohot.loss(logits, slow_values)
        return c.critic_scale * (weights * (target_loss + c.slowreg * slow_loss)).mean()

    # -- updates ----------------------------------------------------------------------------------

    @torch.no_grad()
    def update_slow_critic(self) -> None:
        """θ_slow ← θ_slow + rate·(θ − θ_slow) on every `slow_critic_every`-th call (official
        `SlowUpdater`; the slow critic starts as a copy of the critic, as the official first call
        copies fully)."""
        self.critic_updates += 1
        if int(self.critic_updates) % self.config.slow_critic_every == 0:
            slow_critic_update(self.slow_critic, self.critic, self.config.slow_critic_rate)
            if self.coarse_critic is not None:
                slow_critic_update(self.slow_coarse_critic, self.coarse_critic, self.config.slow_critic_rate)

    def update(self, world_model: ImaginingWorldModel, start: RSSMState, is_terminal: torch.Tensor,
               generator: torch.Generator | None = None, long_return: LongReturn | None = None,
               ) -> dict[str, float]:
        """One gradient step of actor and critic on one imagination, then the slow critic update
        (official 2023 `ImagActorCritic.train`: actor step, critic step on the same trajectory, slow
        update). Gradients are clipped by global norm `grad_clip` per network."""
        actor_loss, critic_loss, metrics = self.loss(world_model, start, is_terminal, generator, long_return)
        optimizers = self._optimizers()
        for optimizer in optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        (actor_loss + critic_loss).backward()
        for name, optimizer in optimizers.items():
            params = [p for group in optimizer.param_groups for p in group["params"]]
            metrics[f"{name}_grad_norm"] = nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            optimizer.step()
        self.update_slow_critic()
        return {k: float(v) for k, v in metrics.items()}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"actor": self.actor_optimizer, "critic": self.critic_optimizer}
        if self.coarse_critic is not None:
            optimizers["coarse_critic"] = self.coarse_critic_optimizer
        return optimizers

    def optimizer_state_dict(self) -> dict[str, dict]:
        """The optimisers' states, for checkpoints (the module's `state_dict` holds the networks,
        the slow critics, the return normaliser and the update counter)."""
        return {name: optimizer.state_dict() for name, optimizer in self._optimizers().items()}

    def load_optimizer_state_dict(self, state: dict[str, dict]) -> None:
        for name, optimizer in self._optimizers().items():
            optimizer.load_state_dict(state[name])
