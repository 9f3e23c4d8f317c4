"""DreamerV3's recurrent state-space model (RSSM) in PyTorch.

The latent state at step t is s_t = (h_t, z_t): h_t the deterministic state of a normalised GRU,
z_t a factorised categorical (`stoch` groups × `classes`) sampled with straight-through gradients.

    h_t = GRU(h_{t−1}, in(z_{t−1}, a_{t−1}))                    sequence model
    prior      p(z_t | h_t)        logits from h_t alone          dynamics predictor
    posterior  q(z_t | h_t, x_t)   logits from [h_t, embed(x_t)]  representation model

Sources: paper = Hafner et al. 2023 (arXiv:2301.04104), section "World model learning", eq. 1;
official code = danijar/dreamerv3, the 2023 release (`nets.py` `RSSM`: `img_step`, `obs_step`,
`initial: learned`, `_stats` with unimix) and the current release (`rssm.py`: zeros initial state,
resets by masking the carry and the action). Layout of this module (the 2023 release's dense
variant, with our block-diagonal `GRUCell`): in = Linear([z, a]) → norm → SiLU; prior = Linear(h) →
norm → SiLU → Linear; posterior = Linear([h, e]) → norm → SiLU → Linear.

The carry is an `RSSMState`, passed in and returned explicitly (no hidden module state), so
recurrent and hierarchical agents can hold, reset and slice it themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.agents.dreamer.distributions import OneHotCategorical, unimix_logits
from wanderlust.agents.dreamer.nets import MLP, DreamerSize, GRUCell, init_weights


@dataclass
class RSSMState:
    """One latent state, or a stack of them: any leading dims [...].

    deter [..., deter]: h. stoch [..., stoch, classes]: the one-hot sample z (straight-through
    gradients). logits [..., stoch, classes]: the log-probabilities z was drawn from, with unimix
    already applied (what `kl_loss` takes, as the official 2023 RSSM stores its mixed `logit`)."""

    deter: torch.Tensor
    stoch: torch.Tensor
    logits: torch.Tensor

    def features(self) -> torch.Tensor:
        """concat(h, flatten(z)) [..., deter + stoch·classes]: the input of every head."""
        return torch.cat([self.deter, self.stoch.flatten(-2)], -1)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> RSSMState:
        """Apply `fn` to each tensor field (fn sees the leading dims first). Subclasses that add
        fields (`CRSSMState`) get this and everything below for free."""
        return type(self)(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def detach(self) -> RSSMState:
        return self.map(torch.Tensor.detach)

    def __getitem__(self, index) -> RSSMState:
        """Index the leading dims, e.g. `states[t]` or `states[:, mask]`."""
        return self.map(lambda x: x[index])

    def flatten(self, dims: int = 2) -> RSSMState:
        """Merge the first `dims` leading dims: [T, B, ...] -> [T·B, ...] (imagination starts)."""
        return self.map(lambda x: x.reshape(math.prod(x.shape[:dims]), *x.shape[dims:]))

    @staticmethod
    def stack(states: list[RSSMState], dim: int = 0) -> RSSMState:
        first = states[0]
        return type(first)(**{f.name: torch.stack([getattr(s, f.name) for s in states], dim)
                              for f in fields(first)})

    @staticmethod
    def where(mask: torch.Tensor, a: RSSMState, b: RSSMState) -> RSSMState:
        """Per batch element: a where mask [...] is True, else b."""
        pick = lambda x, y: torch.where(mask.reshape(*mask.shape, *[1] * (x.dim() - mask.dim())), x, y)
        return type(a)(**{f.name: pick(getattr(a, f.name), getattr(b, f.name)) for f in fields(a)})


@dataclass
class RSSMConfig:
    deter: int = 64
    """Width of h (the size presets set it; see `DreamerSize`)."""
    hidden: int = 32
    """Width of the input projection and of the prior's and posterior's hidden layers."""
    stoch: int = 4
    """Groups of z (official default 32)."""
    classes: int = 4
    """Classes per group (the paper's 32)."""
    blocks: int = 1
    """Diagonal blocks of the GRU's weights (see `GRUCell`)."""
    unimix: float = 0.01
    """Uniform mixed into the prior and posterior (paper: 1%; official `rssm.unimix: 0.01`)."""
    initial: str = "learned"
    """The state a sequence starts from and is reset to on `is_first`. "learned": h0 = tanh(W)
    with W a parameter started at zero and z0 the mode of the prior at h0 (the 2023 release's
    `initial: learned`); "zeros": h0 = 0, z0 = 0 and uniform logits (the current release's
    `RSSM.initial`)."""
    norm: str = "layer"
    """Norm of every hidden layer and the GRU (see `make_norm`)."""

    @classmethod
    def from_size(cls, size: DreamerSize, **overrides) -> RSSMConfig:
        kw = dict(deter=size.deter, hidden=size.hidden, stoch=size.stoch, classes=size.classes,
                  blocks=size.blocks)
        kw.update(overrides)
        return cls(**kw)


class RSSM(nn.Module):
    """Observe (posterior) and imagine (prior) steps over an explicit carry. Actions are one-hot
    [..., num_actions] or integer indices [...] (converted to one-hot); continuous actions pass
    as floats and are scaled to magnitude ≤ 1 as the official `_gru`/`_core` does."""

    def __init__(self, embed_size: int, num_actions: int, config: RSSMConfig | None = None, *,
                 context_size: int = 0):
        """`context_size` > 0 widens the inputs of the GRU, the prior and the posterior by a context
        vector that each also reads (the C-RSSM, `crssm.py`); 0 is the flat DreamerV3 RSSM."""
        super().__init__()
        self.config = c = config or RSSMConfig()
        if c.initial not in ("learned", "zeros"):
            raise ValueError(f"RSSMConfig.initial must be 'learned' or 'zeros', not {c.initial!r}")
        self.embed_size = embed_size
        self.num_actions = num_actions
        self.stoch_size = c.stoch * c.classes
        self.feature_size = c.deter + self.stoch_size
        self.img_in = MLP(self.stoch_size + num_actions, c.hidden, 1, norm=c.norm)
        self.gru = GRUCell(c.hidden + context_size, c.deter, blocks=c.blocks, norm=c.norm)
        self.prior_net = MLP(c.deter + context_size, c.hidden, 1, out_features=self.stoch_size, norm=c.norm)
        self.post_net = MLP(c.deter + context_size + embed_size, c.hidden, 1, out_features=self.stoch_size,
                            norm=c.norm)
        init_weights(self)
        if c.initial == "learned":
            self.initial_deter = nn.Parameter(torch.zeros(c.deter))

    # -- pieces -----------------------------------------------------------------------------------

    def _logits(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        logits = net(x).reshape(*x.shape[:-1], self.config.stoch, self.config.classes)
        return unimix_logits(logits, self.config.unimix)

    def prior_logits(self, deter: torch.Tensor) -> torch.Tensor:
        """Mixed prior logits [..., stoch, classes] from h alone."""
        return self._logits(self.prior_net, deter)

    def posterior_logits(self, deter: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Mixed posterior logits [..., stoch, classes] from [h, embedding]."""
        return self._logits(self.post_net, torch.cat([deter, embedding], -1))

    @staticmethod
    def _draw(logits: torch.Tensor, sample: bool, generator: torch.Generator | None = None) -> torch.Tensor:
        dist = OneHotCategorical(logits, unimix=0.0)  # the logits are already mixed
        return dist.sample(generator) if sample else dist.mode()

    def action_input(self, action: torch.Tensor) -> torch.Tensor:
        """Integer indices -> one-hot floats; float actions divided by sg(max(1, |a|)) (official
        `action /= sg(max(1, abs(action)))`, which leaves one-hot actions unchanged)."""
        if not action.is_floating_point():
            action = F.one_hot(action.long(), self.num_actions).to(self.gru.weight.dtype)
        return action / action.abs().clamp_min(1.0).detach()

    def initial(self, batch: int) -> RSSMState:
        """The start state for `batch` sequences (see `RSSMConfig.initial`)."""
        c = self.config
        device, dtype = self.gru.weight.device, self.gru.weight.dtype
        if c.initial == "zeros":
            deter = torch.zeros(batch, c.deter, device=device, dtype=dtype)
            stoch = torch.zeros(batch, c.stoch, c.classes, device=device, dtype=dtype)
            logits = torch.full_like(stoch, -torch.log(torch.tensor(float(c.classes))).item())
            return RSSMState(deter, stoch, logits)
        deter = torch.tanh(self.initial_deter).expand(batch, c.deter)
        logits = self.prior_logits(deter)
        return RSSMState(deter, self._draw(logits, sample=False), logits)

    def _reset(self, carry: RSSMState, action: torch.Tensor, is_first: torch.Tensor
               ) -> tuple[RSSMState, torch.Tensor]:
        """Where is_first: carry := initial state, action := 0 (official 2023 `obs_step`; the
        current release masks both to zero, which `initial="zeros"` reproduces)."""
        is_first = is_first.to(torch.bool)
        if not is_first.any():
            return carry, action
        carry = RSSMState.where(is_first, self.initial(is_first.shape[0]), carry)
        action = torch.where(is_first.unsqueeze(-1), torch.zeros_like(action), action)
        return carry, action

    # -- steps ------------------------------------------------------------------------------------

    def img_step(self, carry: RSSMState, action: torch.Tensor, sample: bool = True,
                 generator: torch.Generator | None = None) -> RSSMState:
        """One prior step: h' = GRU(h, in(z, a)); z' ~ prior(h'). action is a_{t−1}, the action
        taken in the carry's state. `sample=False` takes the mode (deterministic)."""
        action = self.action_input(action)
        x = self.img_in(torch.cat([carry.stoch.flatten(-2), action], -1))
        deter = self.gru(x, carry.deter)
        logits = self.prior_logits(deter)
        return RSSMState(deter, self._draw(logits, sample, generator), logits)

    def obs_step(self, carry: RSSMState, action: torch.Tensor, embedding: torch.Tensor,
                 is_first: torch.Tensor, sample: bool = True,
                 generator: torch.Generator | None = None) -> tuple[RSSMState, RSSMState]:
        """One filtering step -> (posterior, prior) at step t, both with the same h_t.

        carry: the posterior state at t − 1; action: a_{t−1}; embedding: embed(x_t) [B, E];
        is_first [B]: where True the carry and action are first replaced by the initial state and
        0, so the step is exactly the first step of a fresh sequence. The posterior state is the
        next carry."""
        action = self.action_input(action)
        carry, action = self._reset(carry, action, is_first)
        prior = self.img_step(carry, action, sample, generator)
        logits = self._observed_logits(prior, embedding)
        post = replace(prior, stoch=self._draw(logits, sample, generator), logits=logits)
        return post, prior

    def _observed_logits(self, prior: RSSMState, embedding: torch.Tensor) -> torch.Tensor:
        """The posterior logits at the step of `prior`: what the posterior reads of that state (here
        h) with the embedding. The posterior state is the prior state with z and logits replaced."""
        return self.posterior_logits(prior.deter, embedding)

    def observe(self, embeddings: torch.Tensor, actions: torch.Tensor, is_first: torch.Tensor,
                carry: RSSMState | None = None, sample: bool = True,
                generator: torch.Generator | None = None) -> tuple[RSSMState, RSSMState, RSSMState]:
        """Filter a sequence: embeddings [T, B, E], actions [T, B, A] (or [T, B] indices) where
        actions[t] = a_{t−1} is the action *into* step t, is_first [T, B].
        Returns (posterior states [T, B, ...], prior states [T, B, ...], carry = posterior at T − 1).
        carry None starts from `initial` (as does any step with is_first)."""
        steps, batch = embeddings.shape[:2]
        if carry is None:
            carry = self.initial(batch)
        posts, priors = [], []
        for t in range(steps):
            post, prior = self.obs_step(carry, actions[t], embeddings[t], is_first[t], sample, generator)
            posts.append(post)
            priors.append(prior)
            carry = post
        return RSSMState.stack(posts), RSSMState.stack(priors), carry

    def imagine(self, policy: Callable[[RSSMState], torch.Tensor], start: RSSMState, horizon: int,
                detach: bool = True, sample: bool = True,
                generator: torch.Generator | None = None) -> tuple[RSSMState, torch.Tensor]:
        """Roll the prior forward from `start` [B, ...] for `horizon` steps under `policy`.

        Returns states [horizon + 1, B, ...] (states[0] = start) and actions [horizon + 1, B, A]
        one-hot, actions[t] = policy(states[t]) (the last is chosen but not stepped; the official
        2023 `imagine` returns the same layout). The policy sees detached states (official
        `actor(sg(s))`) and its output keeps its own graph, so an actor loss reaches the actor.

        `detach=True` (default; discrete actions, where DreamerV3 trains the actor by REINFORCE):
        the start states are detached (as the official agent's `sg(start)`) and the rollout runs
        without a graph, so no loss on the imagined states can reach the world model's parameters.
        `detach=False` keeps the graph through the dynamics (for dynamics backprop with continuous
        actions); the world model then receives gradients, and only its optimiser decides whether
        they are applied."""
        state = start.detach() if detach else start
        states, actions = [state], []
        for t in range(horizon + 1):
            action = self.action_input(policy(state.detach()))
            actions.append(action)
            if t == horizon:
                break
            with torch.set_grad_enabled(torch.is_grad_enabled() and not detach):
                state = self.img_step(state, action.detach() if detach else action, sample, generator)
            states.append(state)
        return RSSMState.stack(states), torch.stack(actions)
