"""HIMA's dreaming: acting and learning inside the agent's own model of the world.

Written from SYSTEMS.md section 4 and the HIMA paper (Dzhivelikian, Latyshev, Kuderov and Panov,
Brain Informatics 2022, doi:10.1186/s40708-022-00156-6).

The models a dream runs on:
- the state encoder: the visual block's spatial pooler, whose columns cluster similar windows;
- the state-action → next-state model: the visual block's temporal memory, whose apical input is
  the chosen action (the agent wraps it in a `Transition`, see `wanderlust.agents.hima.agent`);
- a reward model and an anomaly model (`StateScalarModel` here): one running estimate per state
  bit, read out as the mean over a state's active bits.

When (`dream_probability`): only after a real step whose reward is at most 0.2 and whose anomaly
(the visual memory's surprise) is below 0.4, with probability min(((1 − anomaly) / 0.75)^1.3, 0.12).

A dream (`dream`) starts from the real state. Each imagined step: the agent chooses an action for
the imagined state, the transition model predicts the next state; the rollout stops when
- the prediction has thinned below 0.6 × the start state's size (the model does not know where this
  action leads; nothing is learned from that step),
- the anomaly model predicts an anomaly above 0.7 for the next state (the model is unreliable
  there; nothing is learned from that step), or
- the reward model predicts a reward above 0.3 (a goal, in imagination: the agent learns the step as
  the end of an episode),
and otherwise the agent learns the step (its basal ganglia's TD update with the predicted reward)
and moves on, for at most 15 steps. The transition model's activity state is saved before the dream
and restored after it, so the waking agent continues exactly where it was.
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
    """Imagined steps per dream at most (SYSTEMS.md §4)."""
    stop_reward: float = 0.3
    """A dream ends when the predicted reward exceeds this (SYSTEMS.md §4)."""
    min_prediction_ratio: float = 0.6
    """A dream ends when the predicted state has fewer than this × the start state's active bits
    (SYSTEMS.md §4: "the prediction thins below 0.6× its start")."""
    stop_anomaly: float = 0.7
    """A dream ends when the predicted anomaly exceeds this (SYSTEMS.md §4)."""
    reward_learning_rate: float = 0.1
    """Step size of the reward model's per-bit running estimates (ours; not in SYSTEMS.md)."""
    anomaly_learning_rate: float = 0.1
    """Step size of the anomaly model's per-bit running estimates (ours)."""

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")
        if not 0.0 <= self.max_probability <= 1.0:
            raise ValueError(f"max_probability must be in [0, 1], got {self.max_probability}")
        if self.anomaly_scale <= 0:
            raise ValueError(f"anomaly_scale must be > 0, got {self.anomaly_scale}")
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
    """A scalar of a sparse state (the reward, the anomaly) learned per state bit: the prediction is
    the mean of the active bits' estimates; learning moves each active bit's estimate towards the
    observed value by `learning_rate`."""

    def __init__(self, size: int, initial: float, learning_rate: float):
        self.values = np.full(size, float(initial))
        self.initial = float(initial)
        self.learning_rate = learning_rate

    def predict(self, state: np.ndarray) -> float:
        """The mean estimate over the state's active bits; the initial value for an empty state."""
        return float(self.values[state].mean()) if len(state) else self.initial

    def learn(self, state: np.ndarray, value: float) -> None:
        self.values[state] += self.learning_rate * (value - self.values[state])


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
class Dream:
    length: int
    """Imagined steps the agent learned from."""
    stop: str
    """Why it ended: "reward", "thin", "anomaly" or "length"."""


def dream(
    start: np.ndarray,
    transition: Transition,
    choose: Callable[[np.ndarray], int],
    learn: Callable[[np.ndarray, int, float, np.ndarray | None], None],
    reward_model: StateScalarModel,
    anomaly_model: StateScalarModel,
    config: DreamingConfig,
) -> Dream:
    """One dream from the real state `start` (module docstring). `choose(state)` picks an action;
    `learn(state, action, reward, next_state)` is the agent's TD update (next_state None: the
    imagined episode ended). The transition model's state is restored before returning."""
    saved = transition.save_state()
    try:
        minimum_size = config.min_prediction_ratio * len(start)
        state, length = start, 0
        for _ in range(config.max_length):
            action = choose(state)
            next_state = transition.predict(action)
            if len(next_state) < minimum_size:
                return Dream(length, "thin")
            if anomaly_model.predict(next_state) > config.stop_anomaly:
                return Dream(length, "anomaly")
            reward = reward_model.predict(next_state)
            reached = reward > config.stop_reward
            learn(state, action, reward, None if reached else next_state)
            length += 1
            if reached:
                return Dream(length, "reward")
            transition.advance(next_state)
            state = next_state
        return Dream(length, "length")
    finally:
        transition.restore_state(saved)
