"""THICK's C-RSSM: the DreamerV3 RSSM with a sparsely changing context c (Gumbsch et al. 2024).

A context c_t of a few dimensions is updated by a GateL0RD cell and changes only where its gate
opens; the sparsity loss (`sparsity_loss`) keeps the openings rare, so c marks the few moments where
the latent dynamics change (the points THICK's high-level model predicts).

    x_t       = in(z_{t−1}, a_{t−1})                                 shared input projection
    Λ_t       = ReTanh(W_g [x_t, c_{t−1}] + b_g + ε),  ε ~ N(0, σ²) in training only
    c_t       = c_{t−1} + Λ_t ⊙ (tanh(W_r [x_t, c_{t−1}] + b_r) − c_{t−1})   GateL0RD
    Θ_t       = Heaviside(Λ_t), straight-through (forward 0/1, backward ∂Λ)  what sparsity counts
    h_t       = GRU(h_{t−1}, [x_t, c_t])
    prior        p(z_t | h_t, c_t)                 logits from [h_t, c_t]
    posterior    q(z_t | h_t, c_t, x_t)            logits from [h_t, c_t, embed(x_t)]
    coarse prior p(z_t | c_t, z_{t−1}, a_{t−1})    no h: what c alone predicts

with ReTanh(x) = max(0, tanh(x)), so Λ = 0 exactly where the gate is closed and c_t = c_{t−1}
exactly there. Fine heads read `features()` = [h, z, c]; coarse heads read `coarse_features()` =
[c, z].

Sources: paper = Gumbsch, Sajid, Martius, Butz 2024, "Learning hierarchical world models with
adaptive temporal abstractions from discrete latent dynamics" (ICLR), section 2 (C-RSSM); GateL0RD =
Gumbsch, Butz, Martius 2021 (NeurIPS), its reference cell `martius-lab/GateL0RD` `gatel0rd.py`;
official code = CognitiveModeling/THICK (built on DreamerV2), `common/nets.py` `ContextRSSM` and
`SimpleGateL0RDCell`, `configs.yaml`. Choices against those sources:

- GateL0RD's gate and candidate networks read [input, c_{t−1}] (reference cell: `gr_input =
  cat(x_t, h_{t−1})`; THICK: `overall_inp = concat(inputs, state)`), one linear layer each
  (`num_layers_internal=1`; THICK `Dense`). The input is the RSSM's own projection in(z, a) (THICK
  feeds the `img_in` output to the cell).
- GateL0RD's output function y = tanh(p(x, c)) ⊙ σ(o(x, c)) is dropped: THICK builds the cell with
  `headless=True`, so c_t itself is what the GRU, the prior and the posterior read.
- Gate noise is on only in training (`module.train()`) and only with `sample=True`, as GateL0RD's
  `if self.training`; THICK's configs set `ctxt_always_sample: True` (noise in evaluation too).
  Without noise the whole step is deterministic with `sample=False`.
- The coarse prior is `coarse_layers` dense layers on [c_t, z_{t−1}, a_{t−1}] and an output layer.
  THICK's (`_get_coarse_out_internal`) is a 3-layer MLP on [z_{t−1}, a_{t−1}, c_t] to a deter-sized
  vector, concatenated with z_{t−1} and passed through one more hidden layer; the skip of z_{t−1}
  is left out here.
- The context starts at 0 (THICK's `get_initial_state`; GateL0RD without `h_init_net`), also with
  `initial="learned"`, and is reset to 0 where is_first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wanderlust.agents.dreamer.nets import MLP, init_weights
from wanderlust.agents.dreamer.rssm import RSSM, RSSMConfig, RSSMState


def retanh(x: torch.Tensor) -> torch.Tensor:
    """ReTanh(x) = max(0, tanh(x)) ∈ [0, 1): exactly 0 for x ≤ 0 (GateL0RD's gate activation)."""
    return torch.tanh(x).clamp_min(0.0)


def straight_through_step(gate: torch.Tensor) -> torch.Tensor:
    """Θ(gate) = 1 where gate > 0, else 0, with the gradient of the identity (GateL0RD's
    `HeavisideST`: forward ceil(clamp(gate, 0, 1)), backward passes the gradient through;
    THICK: `sg(ceil(gate)) + gate − sg(gate)`). Forward the value is exactly 0 or 1."""
    step = (gate > 0).to(gate.dtype)
    return step + (gate - gate.detach())


def sparsity_loss(gate: torch.Tensor, free: float = 1.0) -> torch.Tensor:
    """The per-sequence sparsity loss of the context gates, gate indicators Θ [T, B, C] -> [B]:

        L_b = max(free, Σ_t mean_d Θ_{t,b,d}) / T

    Σ_t mean_d Θ counts context changes (a step where every dimension opens counts 1). Up to `free`
    changes per sequence (inclusive) cost a constant and send no gradient, so the context may be
    set once, e.g. from its initial 0 at an episode's start. Without the floor this is THICK's
    `post['gates'].mean()` (the L0 norm of GateL0RD, averaged); the floor is ours (SYSTEMS.md).
    Scaled by β^sparse in the world model."""
    steps = gate.shape[0]
    changes = gate.mean(-1).sum(0)
    # Strictly above the floor only: exactly `free` changes (one full reset) must send no gradient,
    # which clamp_min would (it passes the gradient at the tie).
    return torch.where(changes > free, changes, torch.full_like(changes, free)) / steps


class GateL0RDCell(nn.Module):
    """GateL0RD's latent update (Gumbsch et al. 2021), headless as in THICK:

        Λ = ReTanh(W_g [x, c] + b_g + ε),  c' = c + Λ ⊙ (tanh(W_r [x, c] + b_r) − c)

    ε ~ N(0, noise²) when asked (training). Returns (c', Θ(Λ)) with Θ the straight-through step."""

    def __init__(self, input_size: int, context_size: int, noise: float = 0.1):
        super().__init__()
        if noise < 0:
            raise ValueError("the gate noise is a standard deviation and must be ≥ 0")
        self.noise = noise
        self.gate = nn.Linear(input_size + context_size, context_size)
        self.candidate = nn.Linear(input_size + context_size, context_size)
        init_weights(self)

    def forward(self, x: torch.Tensor, context: torch.Tensor, noisy: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x [..., input_size], context [..., C] -> (new context [..., C], gate indicator Θ [..., C])."""
        inputs = torch.cat([x, context], -1)
        pre_gate = self.gate(inputs)
        if noisy and self.noise > 0:
            noise = torch.randn(pre_gate.shape, generator=generator, device=pre_gate.device,
                                dtype=pre_gate.dtype)
            pre_gate = pre_gate + self.noise * noise
        gate = retanh(pre_gate)
        candidate = torch.tanh(self.candidate(inputs))
        return context + gate * (candidate - context), straight_through_step(gate)


@dataclass
class CRSSMState(RSSMState):
    """A C-RSSM state, or a stack of them: the `RSSMState` fields and

    context [..., C]: c_t. gate [..., C]: the indicator Θ_t of the gates that opened into this state
    (0/1 forward, straight-through gradient; 0 in the initial state). coarse_logits [..., stoch,
    classes]: the coarse prior's mixed logits for z_t (the prior's logits in the initial state, which
    no loss reads). A posterior state shares h, c, gate and coarse logits with the prior of its step.
    Indexing, `stack`, `where`, `flatten` and `detach` carry all six fields."""

    context: torch.Tensor
    gate: torch.Tensor
    coarse_logits: torch.Tensor

    def features(self) -> torch.Tensor:
        """concat(h, flatten(z), c) [..., deter + stoch·classes + C]: the input of the fine heads, the
        actor and the critic (THICK `get_feat` = [z, h, c])."""
        return torch.cat([self.deter, self.stoch.flatten(-2), self.context], -1)

    def coarse_features(self) -> torch.Tensor:
        """concat(c, flatten(z)) [..., C + stoch·classes]: the input of the coarse heads (THICK
        `get_coarse_out` = [z, c])."""
        return torch.cat([self.context, self.stoch.flatten(-2)], -1)


@dataclass
class CRSSMConfig(RSSMConfig):
    context: int = 8
    """Width of the context c (SYSTEMS.md: 8; THICK's configs use `context: 16`)."""
    gate_noise: float = 0.1
    """σ of the Gaussian noise on the gate's pre-activation in training (GateL0RD
    `gate_noise_level=0.1`; THICK configs `ctxt_sample_noise: 0.1`)."""
    coarse_layers: int = 3
    """Hidden layers of the coarse prior (THICK `_ctxt_head = MLP(..., layers=3, units=hidden)`)."""


class CRSSM(RSSM):
    """The RSSM with a GateL0RD context (see the module docstring). Same steps, signatures, reset
    semantics and carry handling as `RSSM` (`observe` and `imagine` are inherited); its states are
    `CRSSMState`s. Gate noise only in training mode with `sample=True`."""

    config: CRSSMConfig

    def __init__(self, embed_size: int, num_actions: int, config: CRSSMConfig | None = None):
        config = config or CRSSMConfig()
        super().__init__(embed_size, num_actions, config, context_size=config.context)
        c = config
        self.context_size = c.context
        self.feature_size = c.deter + self.stoch_size + c.context
        self.coarse_feature_size = c.context + self.stoch_size
        self.context_cell = GateL0RDCell(c.hidden, c.context, c.gate_noise)
        self.coarse_net = MLP(c.context + self.stoch_size + num_actions, c.hidden, c.coarse_layers,
                              out_features=self.stoch_size, norm=c.norm)

    # -- pieces -----------------------------------------------------------------------------------

    def prior_logits(self, deter: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Mixed prior logits [..., stoch, classes] from [h, c]."""
        return self._logits(self.prior_net, torch.cat([deter, context], -1))

    def posterior_logits(self, deter: torch.Tensor, context: torch.Tensor,
                         embedding: torch.Tensor) -> torch.Tensor:
        """Mixed posterior logits [..., stoch, classes] from [h, c, embedding]."""
        return self._logits(self.post_net, torch.cat([deter, context, embedding], -1))

    def coarse_logits(self, context: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Mixed coarse-prior logits for z_t from (c_t, z_{t−1}, a_{t−1}) — never from h."""
        return self._logits(self.coarse_net, torch.cat([context, stoch.flatten(-2), action], -1))

    def _observed_logits(self, prior: CRSSMState, embedding: torch.Tensor) -> torch.Tensor:
        return self.posterior_logits(prior.deter, prior.context, embedding)

    def initial(self, batch: int) -> CRSSMState:
        """`RSSM.initial` with c = 0 and closed gates; the prior there reads [h0, 0]."""
        c = self.config
        device, dtype = self.gru.weight.device, self.gru.weight.dtype
        context = torch.zeros(batch, c.context, device=device, dtype=dtype)
        if c.initial == "zeros":
            deter = torch.zeros(batch, c.deter, device=device, dtype=dtype)
            stoch = torch.zeros(batch, c.stoch, c.classes, device=device, dtype=dtype)
            logits = torch.full_like(stoch, -torch.log(torch.tensor(float(c.classes))).item())
        else:
            deter = torch.tanh(self.initial_deter).expand(batch, c.deter)
            logits = self.prior_logits(deter, context)
            stoch = self._draw(logits, sample=False)
        return CRSSMState(deter, stoch, logits, context, torch.zeros_like(context), logits)

    # -- steps ------------------------------------------------------------------------------------

    def img_step(self, carry: CRSSMState, action: torch.Tensor, sample: bool = True,
                 generator: torch.Generator | None = None) -> CRSSMState:
        """One prior step: x = in(z, a); (c', Θ) = GateL0RD(x, c); h' = GRU(h, [x, c']);
        z' ~ prior(h', c'); coarse logits from (c', z, a). action is a_{t−1}. `sample=False` takes
        the mode of z and, like eval mode, uses no gate noise (deterministic)."""
        action = self.action_input(action)
        x = self.img_in(torch.cat([carry.stoch.flatten(-2), action], -1))
        noisy = self.training and sample
        context, gate = self.context_cell(x, carry.context, noisy, generator)
        deter = self.gru(torch.cat([x, context], -1), carry.deter)
        logits = self.prior_logits(deter, context)
        coarse = self.coarse_logits(context, carry.stoch, action)
        return CRSSMState(deter, self._draw(logits, sample, generator), logits, context, gate, coarse)

    def coarse_step(self, context: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor,
                    sample: bool = True, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the context and the coarse prior alone, without h: from (c_{t−1}, z_{t−1},
        a_{t−1}) to (c_t, z_t) with z_t ~ coarse prior. THICK Dreamer takes this step from the state
        the high-level model predicts before a change to value the state after it (official
        `thick_imagine` steps its `img_step` with a dummy h and reads only c and the coarse z)."""
        action = self.action_input(action)
        x = self.img_in(torch.cat([stoch.flatten(-2), action], -1))
        context, _ = self.context_cell(x, context, self.training and sample, generator)
        logits = self.coarse_logits(context, stoch, action)
        return context, self._draw(logits, sample, generator)
