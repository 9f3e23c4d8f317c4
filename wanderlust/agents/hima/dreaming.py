"""HIMA's dreaming: acting and learning inside the agent's own model of the world.

Written from SYSTEMS.md section 4 and the HIMA paper (Dzhivelikian, Latyshev, Kuderov and Panov,
Brain Informatics 2022, doi:10.1186/s40708-022-00156-6); where they are silent, from the seed's
dreamer (cog-isa/htm-rl, `hima/modules/dreaming/dreamer.py`) and its four-rooms config
(`agent.SEED_CONFIG`, "the seed config" below).

The models a dream runs on:
- the state encoder: the visual block's spatial pooler, whose columns cluster similar windows;
- the state-action → next-state model: the visual block's temporal memory, whose apical input is
  the chosen action (the agent wraps it in a `Transition`, see `wanderlust.agents.hima.agent`);
- a reward model (`StateScalarModel`: one estimate per state bit, read out as the median over a
  state's active bits; learning rate 1.0, so each bit keeps the last reward seen with it) and an
  anomaly model (the same, one estimate per state bit and action that led there, starting at 1:
  an unseen arrival is as surprising as can be), as the seed's dreamer.

When (`dream_probability`): only after a real step whose reward is at most 0.2 and whose anomaly
(the visual memory's surprise) is below 0.4, with probability min(((1 − anomaly) / 0.75)^1.3, 0.12).

A dream (`dream`) is several rollouts from the real state, as the seed's dreamer does (SYSTEMS.md
gives their length, not their number): at least 3, and up to 12 while the rollouts so far average
depth^0.6 ≥ 2.5 (their depths, the imagined steps tried, are long enough for the model to be worth
dreaming in: about 4.6 steps and more). The transition model's activity state is saved before the
dream, restored before each further rollout and after the last, so the waking agent continues
exactly where it was. A rollout (`rollout`), each imagined step: the agent chooses an action for the
imagined state, the transition model predicts the next state (a prediction larger than 1.2 × the
start state is subsampled to that size, as the seed does); the rollout stops when
- the prediction has thinned below 0.6 × the start state's size (the model does not know where this
  action leads; nothing is learned from that step),
- the anomaly model predicts an anomaly above 0.7 for arriving in the next state by that action
  (the model is unreliable there; nothing is learned from that step), or
- the reward model predicts a reward above 0.3 (a goal, in imagination: the agent learns the step as
  the end of an episode),
and otherwise the agent learns the step (its basal ganglia's TD update with the predicted reward)
and moves on, for at most 15 steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class DreamingConfig:
    reward_threshold: float = 0.2
    """Dream only after a real step with reward ≤ this (SYSTEMS.md §4)."""
    anomaly_threshold: float = 0.4
    """Dream only when the real step's anomaly is < this (SYSTEMS.md §4)."""
    anomaly_scale: float = 0.75
    """The 0.75 of the probability ((1 − anomaly) / 0.75)^1.3 (SYSTEMS.md §4)."""
    probability_exponent: float = 1.3
    """The 1.3 of the probability formula (SYSTEMS.md §4)."""
    max_probability: float = 0.12
    """The cap of the dreaming probability (SYSTEMS.md §4)."""
    max_length: int = 15
    """Imagined steps per rollout at most (SYSTEMS.md §4)."""
    min_rollouts: int = 3
    """Rollouts per dream at least (the seed config: `n_prediction_rollouts: [3, 12]`)."""
    max_rollouts: int = 12
    """Rollouts per dream at most (the seed config)."""
    depth_exponent: float = 0.6
    """After min_rollouts, another rollout while the mean over the rollouts so far of
    depth^depth_exponent is ≥ continue_depth; a rollout's depth is the imagined steps it tried,
    the stopping one included (the seed's dreamer)."""
    continue_depth: float = 2.5
    """See depth_exponent (the seed's dreamer)."""
    stop_reward: float = 0.3
    """A rollout ends when the predicted reward exceeds this (SYSTEMS.md §4)."""
    min_prediction_ratio: float = 0.6
    """A rollout ends when the predicted state has fewer than this × the start state's active bits
    (SYSTEMS.md §4: "the prediction thins below 0.6× its start")."""
    max_prediction_ratio: float = 1.2
    """A predicted state with more than this × the start state's active bits is subsampled to that
    many (the seed's dreamer)."""
    stop_anomaly: float = 0.7
    """A rollout ends when the predicted anomaly exceeds this (SYSTEMS.md §4)."""
    update_priorities: bool = True
    """Imagined steps drive the basal ganglia's priorities as real ones do (the seed's dreams
    reinforce the same basal ganglia). False: the agent puts the priorities back after each dream,
    so only the striata's values learn from it (docs/benchmarks.md, HIMA, measures both)."""
    reward_learning_rate: float = 1.0
    """Step size of the reward model's per-bit estimates (the seed config,
    `reward_model.learning_rate`)."""
    anomaly_learning_rate: float = 0.1
    """Step size of the anomaly model's per-bit estimates (the seed config,
    `anomaly_model.learning_rate`)."""

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")
        if not 1 <= self.min_rollouts <= self.max_rollouts:
            raise ValueError(
                f"need 1 <= min_rollouts <= max_rollouts, got {self.min_rollouts} and {self.max_rollouts}"
            )
        if not 0.0 <= self.max_probability <= 1.0:
            raise ValueError(f"max_probability must be in [0, 1], got {self.max_probability}")
        if self.anomaly_scale <= 0:
            raise ValueError(f"anomaly_scale must be > 0, got {self.anomaly_scale}")
        if self.max_prediction_ratio < 1.0:
            raise ValueError(f"max_prediction_ratio must be >= 1, got {self.max_prediction_ratio}")
        for name in ("reward_learning_rate", "anomaly_learning_rate"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


def dream_probability(reward: float, anomaly: float, config: DreamingConfig) -> float:
    """The probability of a dream after a real step with this reward and anomaly: 0 unless
    reward ≤ reward_threshold and anomaly < anomaly_threshold, else
    min(((1 − anomaly) / anomaly_scale)^exponent, max_probability)."""
    if reward > config.reward_threshold or anomaly >= config.anomaly_threshold:
        return 0.0
    base = max(1.0 - anomaly, 0.0) / config.anomaly_scale
    return float(min(base**config.probability_exponent, config.max_probability))


class StateScalarModel:
    """A scalar of a sparse state (the reward, the anomaly) learned per state bit, and optionally
    per action (the one that led into the state): the prediction is the median of the active
    bits' estimates; learning moves each active bit's estimate towards the observed value by
    `learning_rate`."""

    def __init__(self, size: int, initial: float, learning_rate: float, actions: int = 1):
        self.values = np.full((size, actions), float(initial))
        self.initial = float(initial)
        self.learning_rate = learning_rate

    def predict(self, state: np.ndarray, action: int = 0) -> float:
        """The median estimate over the state's active bits; the initial value for an empty state."""
        return float(np.median(self.values[state, action])) if len(state) else self.initial

    def learn(self, state: np.ndarray, value: float, action: int = 0) -> None:
        self.values[state, action] += self.learning_rate * (value - self.values[state, action])

    def load_values(self, values: np.ndarray) -> None:
        """Restore saved estimates, which must have this model's (bits, actions) shape."""
        values = np.asarray(values, dtype=np.float64)
        if values.shape != self.values.shape:
            raise ValueError(
                f"saved model estimates have shape {values.shape}, this model {self.values.shape} "
                f"(a checkpoint from another configuration or an older version)"
            )
        self.values = values.copy()


class Transition(Protocol):
    """The state-action → next-state model a dream runs on, from its current (imagined) state."""

    def save_state(self) -> Any: ...

    def restore_state(self, state: Any) -> None: ...

    def predict(self, action: int) -> np.ndarray:
        """The state (sorted active bits) the model expects after `action` from its current state."""
        ...

    def advance(self, state: np.ndarray) -> None:
        """Make the predicted `state` the current one."""
        ...


@dataclass
class Rollout:
    depth: int
    """Imagined steps tried, the stopping one included."""
    length: int
    """Imagined steps the agent learned from."""
    stop: str
    """Why it ended: "reward", "thin", "anomaly" or "length"."""


@dataclass
class Dream:
    rollouts: list[Rollout]

    @property
    def length(self) -> int:
        """Imagined steps the agent learned from, over all rollouts."""
        return sum(rollout.length for rollout in self.rollouts)


def rollout(
    start: np.ndarray,
    transition: Transition,
    choose: Callable[[np.ndarray], int],
    learn: Callable[[np.ndarray, int, float, np.ndarray | None], None],
    reward_model: StateScalarModel,
    anomaly_model: StateScalarModel,
    config: DreamingConfig,
    rng: np.random.Generator,
) -> Rollout:
    """One imagined trajectory from `start`, the transition model's current state (module
    docstring). `choose(state)` picks an action; `learn(state, action, reward, next_state)` is the
    agent's TD update (next_state None: the imagined episode ended)."""
    minimum_size = config.min_prediction_ratio * len(start)
    maximum_size = int(config.max_prediction_ratio * len(start))
    state = start
    for depth in range(1, config.max_length + 1):
        action = choose(state)
        next_state = transition.predict(action)
        if len(next_state) < minimum_size:
            return Rollout(depth, depth - 1, "thin")
        if len(next_state) > maximum_size:
            next_state = np.sort(rng.choice(next_state, maximum_size, replace=False))
        if anomaly_model.predict(next_state, action) > config.stop_anomaly:
            return Rollout(depth, depth - 1, "anomaly")
        reward = reward_model.predict(next_state)
        reached = reward > config.stop_reward
        learn(state, action, reward, None if reached else next_state)
        if reached:
            return Rollout(depth, depth, "reward")
        transition.advance(next_state)
        state = next_state
    return Rollout(config.max_length, config.max_length, "length")


def dream(transition: Transition, run_rollout: Callable[[], Rollout], config: DreamingConfig) -> Dream:
    """One dream: rollouts (`run_rollout()`, e.g. `rollout` from the real state) until the rule of
    the module docstring says stop. The transition model's state is saved first, restored before
    each further rollout and before returning."""
    saved = transition.save_state()
    rollouts: list[Rollout] = []
    smoothed_depth = 0.0
    try:
        while len(rollouts) < config.min_rollouts or (
            len(rollouts) < config.max_rollouts and smoothed_depth / len(rollouts) >= config.continue_depth
        ):
            if rollouts:
                transition.restore_state(saved)
            rollouts.append(run_rollout())
            smoothed_depth += rollouts[-1].depth ** config.depth_exponent
        return Dream(rollouts)
    finally:
        transition.restore_state(saved)
