"""DreamerV3's output transforms, distributions, losses and return estimators, in PyTorch.

Sources. "Paper" is Hafner et al. 2023, "Mastering diverse domains through world models"
(arXiv:2301.04104); "official code" is danijar/dreamerv3: the 2023 release (`dreamerv3/nets.py`,
`jaxutils.py`, `agent.py`, `behaviors.py`, `configs.yaml`) and the current release, whose
`configs.yaml` holds the `agent:` block quoted below (`loss_scales`, `retnorm`, `slowvalue`, ...).
Where the two releases differ, the docstring says which one a default follows.

Everything here is stateless except `PercentileReturnNorm`, whose two running percentiles are
buffers, so they travel in the agent's state dict.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def symlog(x: torch.Tensor) -> torch.Tensor:
    """symlog(x) = sign(x)·ln(1 + |x|) (paper eq. 9; official `jaxutils.symlog`).

    Squashes large magnitudes while staying the identity near zero, so that one network output
    scale fits rewards, values and vector inputs of any magnitude."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    """symexp(x) = sign(x)·(exp(|x|) − 1), the inverse of `symlog` (paper eq. 9)."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


@dataclass
class TwoHotConfig:
    num_bins: int = 255
    """Number of bins (official `rewhead.bins` and `value.bins`: 255)."""
    low: float = -20.0
    """Lowest bin, in symlog space (official `Dist`: linspace(-20, 20) over symlog space)."""
    high: float = 20.0
    """Highest bin, in symlog space (the same source; symexp(20) ≈ 4.85e8)."""
    space: str = "symexp"
    """Where the two-hot weights and the expected value are taken.
    "symexp" (default; the official code since its 2023 release, output `symexp_twohot`): bins at
    symexp(linspace(low, high)), weights linear in the raw value, prediction = Σ p·bins.
    "symlog" (the paper's eqs. 10-11, and the code's earlier `symlog_disc`): bins at
    linspace(low, high), weights linear in symlog(value), prediction = symexp(Σ p·bins).
    Both decode an encoded value exactly; they spread the probability mass differently between
    two bins."""


class TwoHot(nn.Module):
    """Two-hot encoding over exponentially spaced bins: the reward and value heads' target and
    read-out (paper section "Robust predictions": twohot(x)_i = |b_{k+1} − x| / |b_{k+1} − b_k| if
    i = k, |b_k − x| / |b_{k+1} − b_k| if i = k + 1, else 0, with k the last bin ≤ x).

    Values beyond the outermost bins are clipped to them (the official code clamps both neighbour
    indices to the valid range, which puts all mass on the edge bin)."""

    bins: torch.Tensor

    def __init__(self, config: TwoHotConfig | None = None):
        super().__init__()
        self.config = config or TwoHotConfig()
        n = self.config.num_bins
        if self.config.space not in ("symexp", "symlog"):
            raise ValueError(f"TwoHotConfig.space must be 'symexp' or 'symlog', not {self.config.space!r}")
        if n < 2:
            raise ValueError("TwoHot needs at least 2 bins")
        positions = torch.linspace(self.config.low, self.config.high, n, dtype=torch.float64)
        if self.config.space == "symexp":
            positions = symexp(positions)
        if self.config.low == -self.config.high:
            # Exactly antisymmetric bins, with an exact 0 in the middle when the count is odd (the
            # official code mirrors one half): a uniform prediction then decodes to exactly 0, so
            # fresh reward and value heads predict 0.
            positions = (positions - positions.flip(0)) / 2
        self.register_buffer("bins", positions.to(torch.get_default_dtype()), persistent=False)

    def _to_bin_space(self, values: torch.Tensor) -> torch.Tensor:
        return symlog(values) if self.config.space == "symlog" else values

    def _from_bin_space(self, values: torch.Tensor) -> torch.Tensor:
        return symexp(values) if self.config.space == "symlog" else values

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """values [...] -> two-hot probabilities [..., num_bins] (weights sum to 1)."""
        bins = self.bins.to(values.dtype)
        x = self._to_bin_space(values).clamp(bins[0], bins[-1])
        # k: the last bin at or below x, kept one short of the end so k + 1 is a bin.
        below = torch.searchsorted(bins, x.contiguous(), right=True) - 1
        below = below.clamp(0, len(bins) - 2)
        above = below + 1
        low, high = bins[below], bins[above]
        weight_above = ((x - low) / (high - low)).clamp(0.0, 1.0)
        probs = torch.zeros(*values.shape, len(bins), dtype=values.dtype, device=values.device)
        probs.scatter_(-1, below.unsqueeze(-1), (1.0 - weight_above).unsqueeze(-1))
        probs.scatter_add_(-1, above.unsqueeze(-1), weight_above.unsqueeze(-1))
        return probs

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [..., num_bins] -> predicted values [...]: the expected bin under softmax(logits),
        mapped back (official `TwoHotDist.mean`). The two halves are summed from the centre out, as
        the official code does, so symmetric probabilities give exactly 0."""
        probs = torch.softmax(logits, dim=-1)
        weighted = probs * self.bins.to(probs.dtype)
        n = weighted.shape[-1]
        middle = n // 2
        left = weighted[..., :middle].flip(-1)
        right = weighted[..., n - middle:]
        total = (left + right).sum(-1)
        if n % 2:
            total = total + weighted[..., middle]
        return self._from_bin_space(total)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of softmax(logits) against twohot(target), per element [...] (paper eq. 10;
        official `TwoHotDist.log_prob`, negated). Targets carry no gradient."""
        target_probs = self.encode(targets.detach().to(logits.dtype))
        return -(target_probs * F.log_softmax(logits, dim=-1)).sum(-1)


def unimix_logits(logits: torch.Tensor, unimix: float = 0.01) -> torch.Tensor:
    """Mix `unimix` of the uniform distribution into softmax(logits) and return the log of the
    result: p = (1 − unimix)·softmax(logits) + unimix/K (paper section "World model learning": 1%
    uniform; official `RSSM._logit` and `Dist` with `unimix: 0.01`). Every probability is then at
    least unimix/K, which keeps KL terms and log-probabilities finite."""
    if unimix <= 0.0:
        return logits
    probs = torch.softmax(logits, dim=-1)
    probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return torch.log(probs)


class OneHotCategorical:
    """A factorised one-hot categorical over logits [..., groups, classes] (the RSSM's 32 × 32
    stochastic state, or one group for a discrete actor).

    `unimix` is applied to the logits on construction (see `unimix_logits`); pass 0 for logits
    that are already mixed. Entropy, log-probability and KL sum over the groups, as the official
    code's `tfd.Independent(OneHotDist(logit), 1)` does."""

    def __init__(self, logits: torch.Tensor, unimix: float = 0.01):
        self.logits = F.log_softmax(unimix_logits(logits, unimix), dim=-1)

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.exp()

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A one-hot sample with straight-through gradients: sample + (probs − sg(probs)) (paper
        section "World model learning"; official `OneHotDist.sample`). Forward it is exactly the
        sample (the bracket is exactly 0); backward the gradient of probs."""
        probs = self.probs
        flat = probs.detach().reshape(-1, probs.shape[-1])
        index = torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])
        sample = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
        return sample + (probs - probs.detach())

    def mode(self) -> torch.Tensor:
        """The most likely class per group, one-hot, with the same straight-through gradient."""
        probs = self.probs
        sample = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
        return sample + (probs - probs.detach())

    def log_prob(self, onehot: torch.Tensor) -> torch.Tensor:
        """Σ over groups of log p(class), for one-hot values [..., groups, classes]."""
        return (onehot * self.logits).sum((-2, -1))

    def entropy(self) -> torch.Tensor:
        """Σ over groups of −Σ p log p."""
        return -(self.probs * self.logits).sum((-2, -1))

    def kl(self, other: OneHotCategorical) -> torch.Tensor:
        """KL(self ‖ other), summed over groups."""
        return categorical_kl(self.logits, other.logits)


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) for categoricals over [..., groups, classes], summed over the groups: Σ p (log p −
    log q). The logits need not be normalised."""
    log_p = F.log_softmax(p_logits, dim=-1)
    log_q = F.log_softmax(q_logits, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum((-2, -1))


@dataclass
class KLConfig:
    dyn_scale: float = 0.5
    """β_dyn, the weight of the dynamics loss (paper: 0.5; the official 2023 release
    `loss_scales.dyn: 0.5`; the current release uses 1.0, and THICK's coarse prior uses 1)."""
    rep_scale: float = 0.1
    """β_rep, the weight of the representation loss (paper and both official releases: 0.1)."""
    free_nats: float = 1.0
    """Each KL term is floored at this many nats (paper: "free bits" of 1 nat; official
    `rssm_loss.free: 1.0` / `rssm.free_nats: 1.0`)."""


def kl_balance(
    post_logits: torch.Tensor, prior_logits: torch.Tensor, free_nats: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dynamics and representation losses of KL balancing, per step [...] (paper eq. 5):
    dyn = max(free, KL(sg(post) ‖ prior)) trains only the prior; rep = max(free, KL(post ‖ sg(prior)))
    trains only the posterior. As in the official `RSSM.dyn_loss` / `rep_loss` (and `RSSM.loss` of
    the current release), the floor is taken per step on the KL summed over the 32 groups, before
    any averaging over batch and time; below the floor a term contributes no gradient.

    The logits are the unimixed logits the RSSM samples from (the official RSSM stores
    log(unimixed probs) as its `logit`)."""
    dyn = categorical_kl(post_logits.detach(), prior_logits)
    rep = categorical_kl(post_logits, prior_logits.detach())
    return dyn.clamp_min(free_nats), rep.clamp_min(free_nats)


def kl_loss(
    post_logits: torch.Tensor, prior_logits: torch.Tensor, config: KLConfig | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """β_dyn·dyn + β_rep·rep per step [...], and the two terms (detached) for logging. The caller
    averages over batch and time, as the official agent does for all its world-model losses."""
    config = config or KLConfig()
    dyn, rep = kl_balance(post_logits, prior_logits, config.free_nats)
    loss = config.dyn_scale * dyn + config.rep_scale * rep
    return loss, {"dyn_loss": dyn.detach(), "rep_loss": rep.detach()}


@dataclass
class ReturnNormConfig:
    decay: float = 0.99
    """EMA decay of the two percentiles (paper: decay 0.99; official `retnorm.rate: 0.01`)."""
    limit: float = 1.0
    """The scale is floored here, so small returns are not blown up (paper: max(1, S); official
    `retnorm.limit: 1.0`, the 2023 release's `max: 1.0`)."""
    low_percentile: float = 5.0
    """Official `retnorm.perclo: 5.0`."""
    high_percentile: float = 95.0
    """Official `retnorm.perchi: 95.0`."""


class PercentileReturnNorm(nn.Module):
    """The actor's return normaliser (paper eq. 7 and section "Robust predictions"): track P5 and
    P95 of the λ-returns of each imagined batch by EMAs started at 0 and without bias correction
    (official `Moments` with `impl: perc`, `debias: False`), and divide advantages by
    scale = max(limit, EMA(P95) − EMA(P5)). Only the scale matters for the advantage
    (R − v)/scale; the offset EMA(P5) is returned too, as the official code does."""

    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, config: ReturnNormConfig | None = None):
        super().__init__()
        self.config = config or ReturnNormConfig()
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        """Move both EMAs toward this batch's percentiles."""
        flat = returns.detach().reshape(-1).to(self.low.dtype)
        quantiles = torch.tensor(
            [self.config.low_percentile / 100.0, self.config.high_percentile / 100.0],
            dtype=flat.dtype, device=flat.device)
        low, high = torch.quantile(flat, quantiles)
        rate = 1.0 - self.config.decay
        self.low.lerp_(low, rate)
        self.high.lerp_(high, rate)

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset, scale) = (EMA(P5), max(limit, EMA(P95) − EMA(P5)))."""
        scale = (self.high - self.low).clamp_min(self.config.limit)
        return self.low.clone(), scale

    def forward(self, returns: torch.Tensor, update: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        if update:
            self.update(returns)
        return self.stats()


@torch.no_grad()
def slow_critic_update(slow: nn.Module, online: nn.Module, fraction: float = 0.02) -> None:
    """Move the slow critic toward the online one: θ_slow ← (1 − fraction)·θ_slow + fraction·θ
    (paper: an EMA of the critic, which regularises the critic toward it; official `SlowUpdater`
    with `slowvalue: {rate: 0.02, every: 1}`, the 2023 release's `slow_critic_fraction: 0.02`,
    `slow_critic_update: 1`). Call it after every critic update. The official updater copies fully
    on its first call; make the slow critic with `copy.deepcopy(online)` to start the same way.
    Floating-point buffers (norm statistics, if any) are averaged the same way."""
    slow_tensors = list(slow.parameters()) + [b for b in slow.buffers() if b.is_floating_point()]
    online_tensors = list(online.parameters()) + [b for b in online.buffers() if b.is_floating_point()]
    if len(slow_tensors) != len(online_tensors):
        raise ValueError("slow and online critics must have the same structure")
    for slow_tensor, online_tensor in zip(slow_tensors, online_tensors, strict=True):
        slow_tensor.lerp_(online_tensor, fraction)


def lambda_returns(
    rewards: torch.Tensor,
    values: torch.Tensor,
    continues: torch.Tensor,
    discount: float = 1.0 - 1.0 / 333,
    lambda_: float = 0.95,
) -> torch.Tensor:
    """TD(λ) returns of an imagined trajectory, bootstrapped with its last value (paper eq. 7:
    R_t = r_t + γ c_t ((1 − λ) v_{t+1} + λ R_{t+1}), R_T = v_T; official `VFunction.score` /
    `agent.py` `lambda_return`).

    Shapes: rewards and continues [T, ...], values [T + 1, ...]; returns [T, ...]. Step t's reward
    and continue flag belong to the transition into state t + 1 (the heads' predictions at state
    t + 1), and values[t] is v(s_t). Defaults: γ = 1 − 1/333 (official `horizon: 333`), λ = 0.95
    (official `lam: 0.95`)."""
    if values.shape[0] != rewards.shape[0] + 1:
        raise ValueError("values must have one more step than rewards (the bootstrap value)")
    discounts = discount * continues
    next_return = values[-1]
    returns = []
    for t in reversed(range(rewards.shape[0])):
        next_return = rewards[t] + discounts[t] * ((1.0 - lambda_) * values[t + 1] + lambda_ * next_return)
        returns.append(next_return)
    return torch.stack(returns[::-1])
