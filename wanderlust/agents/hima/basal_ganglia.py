"""HIMA's basal ganglia: action selection and TD learning over sparse stimuli and responses.

Written from SYSTEMS.md section 4 and the HIMA paper (doi:10.1186/s40708-022-00156-6), checked
against the rules of the seed's `basal_ganglia.py` (cog-isa/htm-rl, `htm_rl/agents/htm/`).

Stimuli and responses are sets of bits. A stimulus is the sparse cortical state (e.g. the visual
block's active cells, `stimulus_size` bits); a response is a group of response bits (an elementary
action = 3 of the motor block's 12 columns; an option = its cells). The striatum holds two weight
matrices, D1 and D2, of shape [stimulus_size, response_size].

Pathway, one `choose(stimulus, responses)` call:
- Striatum: per response bit j, d1_j and d2_j = the mean over the active stimulus bits of D1[:, j]
  and D2[:, j]; the bit's value is d1_j − d2_j. A response's value summarises its bits' values
  (the seed takes the median; `response_statistic`).
- STN: the running average firing of the stimulus bits (counts / steps, averaged over bits), a
  scalar excitation shared by GPe and GPi.
- GPe = STN − d2 (the indirect pathway); GPi = STN − d1 − GPe, then min-max normalised over the
  response bits into inhibition probabilities. (The STN terms cancel, so GPi ∝ d2 − d1: bits with
  a high value are the least inhibited.)
- Each response bit is inhibited with its probability; the thalamus scores each candidate response
  by its number of disinhibited bits, adds boost × the largest score when a boost is given (option
  feedback), and samples from softmax(softmax_beta × score), mixed with ε-uniform noise.

Learning, `update(stimulus, response, reward, next_stimulus, next_responses, k)` after a response
that ran k steps and collected `reward`: per bit j of the response,
    δ_j = reward / |response| + γ^k · V(next) − value_j(stimulus),
where V(next) is the next state's best response value (off-policy, Q-learning) or the value of the
response actually taken next (on-policy, SARSA), and 0 at the end of an episode; then on the rows
of the active stimulus bits, D1[:, j] += α δ_j and D2[:, j] −= β δ_j, so a bit's value moves by
(α + β) δ_j.

`DualBasalGanglia` keeps an extrinsic and an intrinsic striatum that share the STN, GPe, GPi and
thalamus: the pathway reads d = s_ext · p_ext · d_ext + g · s_int · p_int · d_int, with fixed
scales s_ext and s_int (1 and 1 by default), and p_int = 1 − p_ext. The extrinsic priority p_ext
adapts after each update by one of these rules (`priority_rule`):
- "td_error" (SYSTEMS.md §4): p_ext ← p_ext × 0.9 when the extrinsic TD error (summed over the
  response bits) is below −0.01, else min(p_ext × 1.2, 1): disappointment hands control to the
  intrinsic (exploration) striatum, success takes it back. g = 1.
- "reward" (the seed's `use_reward_modulation`, used by its four-rooms configs): a running mean m of
  the extrinsic reward, which rises fast (m ← 0.9 m + 0.1 r when r > m) and falls slowly
  (m ← 0.998 m + 0.002 r); a running maximum M that follows m upward (M ← 0.99 M + 0.01 m when
  m > M) and otherwise decays (M ← 0.999 M), and a running minimum μ likewise downward; then
  p_ext = clip((m − μ) / M, 0, 1), and 0 while M is 0. While p_ext is 0 the intrinsic gate g decays
  (g ← 0.999 g), so that an agent that finds no reward at all does not explore forever; any
  p_ext above 0 resets g to 1. Rewards that stop coming (a goal that moved) let m sink below the
  level the agent was used to, so control passes to the intrinsic striatum within some hundred
  steps, however well the extrinsic values predict the step costs.
- "fixed": p_ext stays 1 and g 1, so choices follow the extrinsic striatum alone (the seed's
  single-striatum `BasalGanglia`, which its agent uses when it has no intrinsic reward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wanderlust.agents.hima.temporal_memory import sorted_unique

_MINMAX_EPS = 1e-12  # keeps the min-max normalisation finite when all bits are equal (the seed's 1e-12)
_STATISTICS = ("median", "mean")
_PRIORITY_RULES = ("td_error", "reward", "fixed")


@dataclass
class BasalGangliaConfig:
    stimulus_size: int
    """Number of stimulus bits (HIMA: the visual block's cells feeding the striatum)."""
    response_size: int
    """Number of response bits (HIMA level 1: 4 actions × 3 bits = 12 motor columns, SYSTEMS.md §4)."""
    alpha: float = 0.1
    """D1 learning rate: D1 += α·δ (SYSTEMS.md §4: 0.1 for the extrinsic striatum)."""
    beta: float = 0.1
    """D2 learning rate: D2 −= β·δ (SYSTEMS.md §4: 0.1 for the extrinsic striatum)."""
    discount: float = 0.997
    """γ; a response that ran k steps bootstraps with γ^k (the seed's DualBasalGanglia default)."""
    off_policy: bool = True
    """True: bootstrap from the best next response (Q-learning); False: from the response taken
    next (SARSA). SYSTEMS.md §4: "max or median"; the seed's DualBasalGanglia default is True."""
    response_statistic: str = "median"
    """How a response's value summarises its bits' values: "median" (the seed's Striatum, for the
    bootstrap and the reported values) or "mean"."""
    softmax_beta: float = 1.0
    """Inverse temperature of the thalamus softmax over disinhibited-bit counts (seed default 1)."""
    epsilon: float = 0.0
    """Mixes uniform noise into the thalamus probabilities: ε/n + (1 − ε)·softmax (seed default 0)."""
    seed: int = 0
    """Seeds the GPi inhibition draws and the thalamus sampling."""

    def __post_init__(self) -> None:
        for name in ("stimulus_size", "response_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.response_statistic not in _STATISTICS:
            raise ValueError(f"response_statistic must be one of {_STATISTICS}, got {self.response_statistic!r}")
        rule = getattr(self, "priority_rule", None)
        if rule is not None and rule not in _PRIORITY_RULES:
            raise ValueError(f"priority_rule must be one of {_PRIORITY_RULES}, got {rule!r}")


@dataclass
class DualBasalGangliaConfig(BasalGangliaConfig):
    """BasalGangliaConfig's fields (alpha, beta, discount, off_policy: the extrinsic striatum), plus
    the intrinsic striatum's and the priorities'."""

    alpha_intrinsic: float = 0.01
    """D1 learning rate of the intrinsic striatum (SYSTEMS.md §4: 0.01)."""
    beta_intrinsic: float = 0.01
    """D2 learning rate of the intrinsic striatum (SYSTEMS.md §4: 0.01)."""
    discount_intrinsic: float = 0.997
    """γ of the intrinsic striatum (the seed's DualBasalGanglia default)."""
    off_policy_intrinsic: bool = True
    """As off_policy, for the intrinsic striatum (seed default True)."""
    td_error_threshold: float = 0.01
    """The extrinsic priority falls when the summed extrinsic TD error is below −threshold
    (SYSTEMS.md §4: δ < −0.01; seed default 0.01)."""
    priority_decrease: float = 0.9
    """Factor applied to the extrinsic priority on a disappointment (SYSTEMS.md §4, seed: 0.9)."""
    priority_increase: float = 1.2
    """Factor applied otherwise, capped at 1 (SYSTEMS.md §4, seed: 1.2)."""
    priority_rule: str = "td_error"
    """"td_error" (the rule above, SYSTEMS.md §4), "reward" (reward modulation) or "fixed" (p_ext = 1):
    module docstring."""
    reward_rise: float = 0.9
    """"reward" rule: smoothing of the mean reward when a reward lies above it (seed `sm_reward_inc`)."""
    reward_fall: float = 0.998
    """"reward" rule: smoothing of the mean reward otherwise (seed config `sm_reward_dec`)."""
    extreme_smoothing: float = 0.99
    """"reward" rule: smoothing with which the running max and min follow the mean outward (seed
    config `sm_max_reward`, `sm_min_reward`)."""
    extreme_decay: float = 0.999
    """"reward" rule: decay of the running max and min otherwise (seed config `max_reward_decay`,
    `min_reward_decay`)."""
    intrinsic_decay: float = 0.999
    """"reward" rule: decay of the intrinsic gate g while p_ext is 0 (seed default)."""
    extrinsic_scale: float = 1.0
    """s_ext, a fixed factor on the extrinsic striatum's activity and values (seed `priority_ext`)."""
    intrinsic_scale: float = 1.0
    """s_int, the same for the intrinsic striatum (seed `priority_int`; its four-rooms config: 0.1)."""


def _as_bits(bits: np.ndarray | Sequence[int] | None, size: int, name: str) -> np.ndarray:
    if bits is None:
        return np.empty(0, dtype=np.int64)
    bits = sorted_unique(bits)
    if bits.size and (bits[0] < 0 or bits[-1] >= size):
        raise ValueError(f"{name} bits must lie in [0, {size}), got {bits[0]}..{bits[-1]}")
    return bits


def _summarise(values: np.ndarray, statistic: str) -> np.ndarray:
    """The statistic over the last axis. The median is np.median's value (the mean of the two
    middle values for an even count), without its overhead on the few values of a response."""
    if statistic == "mean":
        return values.mean(axis=-1)
    ordered = np.sort(values, axis=-1)
    middle = ordered.shape[-1] // 2
    return ordered[..., middle] if ordered.shape[-1] % 2 else (ordered[..., middle - 1] + ordered[..., middle]) / 2


def _stacked(responses: Sequence[np.ndarray]) -> np.ndarray | None:
    """The responses as the rows of one array when they are several and of one nonempty size (as
    motor patterns and option codes are), so that per-response sums and statistics are one NumPy
    call; else None."""
    if len(responses) > 1 and responses[0].size and all(r.size == responses[0].size for r in responses):
        return np.stack(responses)
    return None


def _summaries(values: np.ndarray, responses: Sequence[np.ndarray], statistic: str) -> np.ndarray:
    """_summarise(values[r], statistic) for each response r, 0 for an empty one."""
    rows = _stacked(responses)
    if rows is None:
        return np.array([float(_summarise(values[r], statistic)) if r.size else 0.0 for r in responses])
    return _summarise(values[rows], statistic)


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max())
    return shifted / shifted.sum()


class Striatum:
    """D1 and D2 weights [stimulus_size, response_size] and their TD learning (module docstring)."""

    def __init__(self, stimulus_size: int, response_size: int, alpha: float, beta: float, discount: float,
                 off_policy: bool, response_statistic: str):
        self.d1 = np.zeros((stimulus_size, response_size))
        self.d2 = np.zeros((stimulus_size, response_size))
        self.alpha = alpha
        self.beta = beta
        self.discount = discount
        self.off_policy = off_policy
        self.response_statistic = response_statistic

    def activity(self, stimulus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d1, d2 per response bit: the mean over the active stimulus bits (zeros without any)."""
        if stimulus.size == 0:
            zeros = np.zeros(self.d1.shape[1])
            return zeros, zeros.copy()
        return self.d1[stimulus].mean(axis=0), self.d2[stimulus].mean(axis=0)

    def bit_values(self, stimulus: np.ndarray) -> np.ndarray:
        """d1 − d2 per response bit."""
        d1, d2 = self.activity(stimulus)
        return d1 - d2

    def response_values(self, stimulus: np.ndarray, responses: Sequence[np.ndarray]) -> np.ndarray:
        """Each response's value: its bits' values, summarised by `response_statistic`."""
        return _summaries(self.bit_values(stimulus), responses, self.response_statistic)

    def learn(self, stimulus: np.ndarray, response: np.ndarray, reward: float, next_stimulus: np.ndarray,
              next_responses: Sequence[np.ndarray], k: int, next_response: int | None) -> np.ndarray:
        """One TD update; returns δ per bit of `response` (empty when there is nothing to learn)."""
        if stimulus.size == 0 or response.size == 0:
            return np.empty(0)
        previous = self.bit_values(stimulus)[response]
        next_value = 0.0
        if next_stimulus.size and len(next_responses):
            values = self.response_values(next_stimulus, next_responses)
            if self.off_policy:
                next_value = float(values.max())
            else:
                if next_response is None:
                    raise ValueError("an on-policy striatum needs next_response, the index of the response taken next")
                next_value = float(values[next_response])
        delta = reward / response.size + self.discount**k * next_value - previous
        rows = stimulus[:, None]
        self.d1[rows, response] += self.alpha * delta
        self.d2[rows, response] -= self.beta * delta
        return delta


class _Pathway:
    """STN, GPe, GPi and thalamus, shared by BasalGanglia and DualBasalGanglia."""

    def __init__(self, config: BasalGangliaConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.stimulus_counts = np.zeros(config.stimulus_size)
        self.steps = 0
        self.inhibition_probabilities = np.zeros(config.response_size)
        """GPi's inhibition probability per response bit, from the last `choose`."""
        self.response_activity = np.empty(0)
        """The thalamus score (disinhibited bits, plus boost) of each candidate, from the last `choose`."""
        self.probabilities = np.empty(0)
        """The probability of each candidate at the last `choose`."""

    def stn(self, stimulus: np.ndarray, learn: bool) -> float:
        """The stimulus bits' running average firing rate, averaged over the bits."""
        if learn:
            self.stimulus_counts[stimulus] += 1
            self.steps += 1
        return float(self.stimulus_counts.mean() / self.steps) if self.steps else 0.0

    def select(self, stimulus: np.ndarray, d1: np.ndarray, d2: np.ndarray, responses: Sequence[np.ndarray],
               boost: np.ndarray | None, learn: bool) -> int:
        if not len(responses):
            raise ValueError("choose needs at least one candidate response")
        stn = self.stn(stimulus, learn)
        gpe = stn - d2
        gpi = stn - d1 - gpe
        low, high = gpi.min(), gpi.max()
        self.inhibition_probabilities = (gpi - low) / (high - low + _MINMAX_EPS)
        disinhibited = self.rng.random(self.config.response_size) >= self.inhibition_probabilities
        rows = _stacked(responses)
        if rows is None:
            activity = np.array([disinhibited[r].sum() for r in responses], dtype=np.float64)
        else:
            activity = disinhibited[rows].sum(axis=1).astype(np.float64)
        if boost is not None:
            activity = activity + np.asarray(boost, dtype=np.float64) * activity.max()
        self.response_activity = activity
        epsilon = self.config.epsilon
        self.probabilities = epsilon / activity.size + (1.0 - epsilon) * _softmax(self.config.softmax_beta * activity)
        return int(self.rng.choice(activity.size, p=self.probabilities))

    def state_dict(self) -> dict:
        return {"stimulus_counts": self.stimulus_counts.copy(), "steps": self.steps, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.stimulus_counts = np.asarray(state["stimulus_counts"], dtype=np.float64).copy()
        self.steps = int(state["steps"])
        self.rng.bit_generator.state = state["rng"]

    def reset(self) -> None:
        self.inhibition_probabilities = np.zeros(self.config.response_size)
        self.response_activity = np.empty(0)
        self.probabilities = np.empty(0)


class _Selection:
    """What both basal ganglia share: the pathway's last choice, and response parsing."""

    config: BasalGangliaConfig
    _pathway: _Pathway

    @property
    def rng(self) -> np.random.Generator:
        return self._pathway.rng

    @property
    def inhibition_probabilities(self) -> np.ndarray:
        """GPi's min-max normalised inhibition probability per response bit, from the last choose."""
        return self._pathway.inhibition_probabilities

    @property
    def response_activity(self) -> np.ndarray:
        return self._pathway.response_activity

    @property
    def probabilities(self) -> np.ndarray:
        return self._pathway.probabilities

    def _responses(self, responses: Sequence) -> list[np.ndarray]:
        return [_as_bits(r, self.config.response_size, "response") for r in responses]


class BasalGanglia(_Selection):
    """Striatum + STN/GPe/GPi + thalamus (module docstring). Stimuli and responses are index arrays."""

    def __init__(self, config: BasalGangliaConfig):
        self.config = config
        self.striatum = Striatum(config.stimulus_size, config.response_size, config.alpha, config.beta,
                                 config.discount, config.off_policy, config.response_statistic)
        self._pathway = _Pathway(config)
        self.td_error = np.empty(0)
        """δ per response bit of the last update."""

    def response_values(self, stimulus, responses: Sequence) -> np.ndarray:
        """The striatum's value of each response for this stimulus."""
        stimulus = _as_bits(stimulus, self.config.stimulus_size, "stimulus")
        return self.striatum.response_values(stimulus, self._responses(responses))

    def choose(self, stimulus, responses: Sequence, boost: np.ndarray | None = None, learn: bool = True) -> int:
        """The index of the response selected among `responses` (lists of response bits).
        `boost`: per-response feedback (e.g. from the running option), scaled by the best score.
        `learn`: whether this stimulus counts in the STN's running average."""
        stimulus = _as_bits(stimulus, self.config.stimulus_size, "stimulus")
        d1, d2 = self.striatum.activity(stimulus)
        return self._pathway.select(stimulus, d1, d2, self._responses(responses), boost, learn)

    def update(self, stimulus, response, reward: float, next_stimulus=None, next_responses: Sequence = (),
               k: int = 1, next_response: int | None = None) -> np.ndarray:
        """TD update for `response` taken at `stimulus`, which ran `k` steps and collected `reward`.
        `next_stimulus`/`next_responses`: the state and candidates where the next choice is made
        (None / empty at the end of an episode); `next_response`: the index chosen there (needed
        on-policy). Returns δ per response bit."""
        size = self.config.stimulus_size
        self.td_error = self.striatum.learn(
            _as_bits(stimulus, size, "stimulus"),
            _as_bits(response, self.config.response_size, "response"),
            float(reward),
            _as_bits(next_stimulus, size, "next_stimulus"),
            self._responses(next_responses),
            int(k),
            next_response,
        )
        return self.td_error

    def reset(self) -> None:
        """End of an episode: forget the last choice's diagnostics (weights and the STN stay)."""
        self._pathway.reset()
        self.td_error = np.empty(0)


class DualBasalGanglia(_Selection):
    """An extrinsic and an intrinsic striatum with adaptive priorities (module docstring)."""

    def __init__(self, config: DualBasalGangliaConfig):
        self.config = config
        self.extrinsic = Striatum(config.stimulus_size, config.response_size, config.alpha, config.beta,
                                  config.discount, config.off_policy, config.response_statistic)
        self.intrinsic = Striatum(config.stimulus_size, config.response_size, config.alpha_intrinsic,
                                  config.beta_intrinsic, config.discount_intrinsic, config.off_policy_intrinsic,
                                  config.response_statistic)
        self._pathway = _Pathway(config)
        self.priority_extrinsic = 1.0
        """Weight of the extrinsic striatum (the seed starts at 1: extrinsic control)."""
        self.intrinsic_gate = 1.0
        """g of the "reward" rule (1 under "td_error")."""
        self.reward_mean = self.reward_max = self.reward_min = 0.0
        """The "reward" rule's running mean, maximum and minimum of the extrinsic reward."""
        self.td_error = np.empty(0)
        """The extrinsic δ per response bit of the last update."""
        self.td_error_intrinsic = np.empty(0)

    @property
    def priority_intrinsic(self) -> float:
        return 1.0 - self.priority_extrinsic

    @property
    def priority_state(self) -> tuple[float, float, float, float, float]:
        """What the priority rules adapt (p_ext, g, and the reward rule's mean, maximum, minimum),
        to be put back with `restore_priority_state`."""
        return (self.priority_extrinsic, self.intrinsic_gate, self.reward_mean, self.reward_max, self.reward_min)

    def restore_priority_state(self, state: tuple[float, float, float, float, float]) -> None:
        self.priority_extrinsic, self.intrinsic_gate, self.reward_mean, self.reward_max, self.reward_min = state

    def _weights(self) -> tuple[float, float]:
        """The factors on the extrinsic and the intrinsic striatum: s_ext · p_ext and g · s_int · p_int."""
        c = self.config
        return c.extrinsic_scale * self.priority_extrinsic, self.intrinsic_gate * c.intrinsic_scale * self.priority_intrinsic

    def response_values(self, stimulus, responses: Sequence) -> np.ndarray:
        """Priority-weighted sum of the extrinsic and intrinsic values of each response."""
        stimulus = _as_bits(stimulus, self.config.stimulus_size, "stimulus")
        responses = self._responses(responses)
        w_ext, w_int = self._weights()
        return (w_ext * self.extrinsic.response_values(stimulus, responses)
                + w_int * self.intrinsic.response_values(stimulus, responses))

    def choose(self, stimulus, responses: Sequence, boost: np.ndarray | None = None, learn: bool = True) -> int:
        """As BasalGanglia.choose, with d1 and d2 the priority-weighted sums of the two striata's."""
        stimulus = _as_bits(stimulus, self.config.stimulus_size, "stimulus")
        d1_ext, d2_ext = self.extrinsic.activity(stimulus)
        d1_int, d2_int = self.intrinsic.activity(stimulus)
        p_ext, p_int = self._weights()
        d1 = p_ext * d1_ext + p_int * d1_int
        d2 = p_ext * d2_ext + p_int * d2_int
        return self._pathway.select(stimulus, d1, d2, self._responses(responses), boost, learn)

    def update(self, stimulus, response, reward: float, reward_intrinsic: float = 0.0, next_stimulus=None,
               next_responses: Sequence = (), k: int = 1, next_response: int | None = None) -> np.ndarray:
        """TD updates of both striata (as BasalGanglia.update), then the priorities. Returns the
        extrinsic δ per response bit."""
        size = self.config.stimulus_size
        args = (
            _as_bits(stimulus, size, "stimulus"),
            _as_bits(response, self.config.response_size, "response"),
        )
        rest = (_as_bits(next_stimulus, size, "next_stimulus"), self._responses(next_responses), int(k), next_response)
        self.td_error = self.extrinsic.learn(*args, float(reward), *rest)
        self.td_error_intrinsic = self.intrinsic.learn(*args, float(reward_intrinsic), *rest)
        c = self.config
        if c.priority_rule == "reward":
            self._modulate(float(reward))
        elif c.priority_rule == "td_error":
            if self.td_error.sum() < -c.td_error_threshold:
                self.priority_extrinsic *= c.priority_decrease
            else:
                self.priority_extrinsic = min(self.priority_extrinsic * c.priority_increase, 1.0)
        return self.td_error

    def _modulate(self, reward: float) -> None:
        """The "reward" rule (module docstring)."""
        c = self.config
        smoothing = c.reward_rise if reward > self.reward_mean else c.reward_fall
        mean = self.reward_mean = smoothing * self.reward_mean + (1.0 - smoothing) * reward
        if mean > self.reward_max:
            self.reward_max = c.extreme_smoothing * self.reward_max + (1.0 - c.extreme_smoothing) * mean
        else:
            self.reward_max *= c.extreme_decay
        if mean < self.reward_min:
            self.reward_min = c.extreme_smoothing * self.reward_min + (1.0 - c.extreme_smoothing) * mean
        else:
            self.reward_min *= c.extreme_decay
        if abs(self.reward_max) < _MINMAX_EPS:
            self.priority_extrinsic = 0.0
        else:
            self.priority_extrinsic = float(np.clip((mean - self.reward_min) / self.reward_max, 0.0, 1.0))
        self.intrinsic_gate = self.intrinsic_gate * c.intrinsic_decay if self.priority_extrinsic < _MINMAX_EPS else 1.0

    def state_dict(self) -> dict:
        """The striata's weights, the STN's counts, the priority and the rng (NumPy arrays and plain
        values)."""
        return {
            "extrinsic_d1": self.extrinsic.d1.copy(),
            "extrinsic_d2": self.extrinsic.d2.copy(),
            "intrinsic_d1": self.intrinsic.d1.copy(),
            "intrinsic_d2": self.intrinsic.d2.copy(),
            "priority_extrinsic": self.priority_extrinsic,
            "modulation": [self.intrinsic_gate, self.reward_mean, self.reward_max, self.reward_min],
            "pathway": self._pathway.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        for name, striatum in (("extrinsic", self.extrinsic), ("intrinsic", self.intrinsic)):
            for weights in ("d1", "d2"):
                saved = np.asarray(state[f"{name}_{weights}"], dtype=np.float64)
                if saved.shape != getattr(striatum, weights).shape:
                    raise ValueError(f"saved {name} {weights} {saved.shape} does not fit {getattr(striatum, weights).shape}")
                setattr(striatum, weights, saved.copy())
        self.priority_extrinsic = float(state["priority_extrinsic"])
        self.intrinsic_gate, self.reward_mean, self.reward_max, self.reward_min = (
            float(value) for value in state.get("modulation", (1.0, 0.0, 0.0, 0.0))
        )
        self._pathway.load_state_dict(state["pathway"])
        self.reset()

    def reset(self) -> None:
        """End of an episode: forget the last choice's diagnostics (weights, STN, priorities stay)."""
        self._pathway.reset()
        self.td_error = np.empty(0)
        self.td_error_intrinsic = np.empty(0)
