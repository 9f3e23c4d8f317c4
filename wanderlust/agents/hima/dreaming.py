"""HIMA's dreaming: acting and learning inside the agent's own model of the world.

Written from SYSTEMS.md section 4 and the HIMA paper (Dzhivelikian, Latyshev, Kuderov and Panov,
Brain Informatics 2022, doi:10.1186/s40708-022-00156-6); where they are silent, from the seed's
dreamer (cog-isa/htm-rl, `hima/modules/dreaming/dreamer.py`) and its four-rooms config
(`agent.SEED_CONFIG`, "the seed config" below).

The models a dream runs on (`DreamingConfig.model = "clusters"`, the default, as SYSTEMS.md lists
them: "state encoder (SP clusters), state-action → next-state TM, reward model, anomaly model"):
- the state encoder: the visual block's spatial pooler, its codes grouped into prototype states
  (`StateClusters`): a code joins the cluster on whose bits at least 0.7 of the cluster's density
  lies, else starts a new one; a cluster's state is its 20 densest bits, and it keeps the last
  observation seen in it (the seed's dreamer and its cluster memory);
- the state-action → next-state model: a first-order `TransitionMemory` (one cell per column) whose
  context is the prototype state plus a 20-bit bucket for the action, learned from every real step
  (`ClusterTransition`; the seed config's transition TM). A prediction that lands on a cluster
  (≥ 0.7 of its density) becomes that cluster's state, so imagined states stay clean prototypes;
- a reward model (`StateScalarModel`: one estimate per state bit, read out as the median over a
  state's active bits; learning rate 1.0, so each bit keeps the last reward seen with it) and an
  anomaly model (the same, one estimate per state bit and action that led there, starting at 1:
  an unseen arrival is as surprising as can be; it learns the transition memory's anomaly), as the
  seed's dreamer;
- the basal ganglia act in a dream on the pooler's code of the imagined cluster's last observation
  (the seed's agent acts on the decoded observation), or on the prediction itself where it matched
  no cluster.
With `model = "visual_memory"` (the earlier version, kept for comparison), the states are the visual
pooler's columns and the transition model is the visual block's own temporal memory, whose apical
input is the chosen action (`wanderlust.agents.hima.agent.VisualTransition`).

When (`dream_probability`): only after a real step whose reward is at most 0.2 and whose anomaly
(the dream model's surprise at the step: the transition memory's, or the visual memory's with
"visual_memory") is below 0.4, with probability min(((1 − anomaly) / 0.75)^1.3, 0.12).

A dream (`dream`) is several rollouts from the real state, as the seed's dreamer does (SYSTEMS.md
gives their length, not their number): at least 3, and up to 12 while the rollouts so far average
depth^0.6 ≥ 2.5 (their depths, the imagined steps tried, are long enough for the model to be worth
dreaming in: about 4.6 steps and more). The transition model's activity state is saved before the
dream, restored before each further rollout and after the last, so the waking agent continues
exactly where it was. A rollout (`rollout`), each imagined step: the agent chooses an action for the
imagined state, the transition model predicts the next state (a prediction larger than 1.2 × the
start state is subsampled to that size, as the seed does, then snapped to its cluster); the
rollout stops when
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
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from wanderlust.agents.hima.empowerment import TransitionMemory, TransitionMemoryConfig

MODELS = ("clusters", "visual_memory")


def _transition_memory_config() -> TransitionMemoryConfig:
    # The seed config's transition_model.tm, for 20 state bits and a 20-bit action bucket (its
    # bucket is the state's active-bit count): a 40-bit context, activation at .88 of it (35) and
    # learning at .8 (32), new synapses up to the context, permanences .3 / .3 (a transition is
    # predicted after one sight), +.05 / −.01, −.001 for a wrong prediction, 8 segments per cell.
    # state_size, state_active_bits, num_actions and seed are set by the agent.
    return TransitionMemoryConfig(
        state_size=1000, state_active_bits=20, action_bits=20, activation_threshold=35, learning_threshold=32,
        connected_threshold=0.3, initial_permanence=0.3, permanence_increment=0.05, permanence_decrement=0.01,
        predicted_segment_decrement=0.001, max_segments_per_cell=8,
    )


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
    model: str = "clusters"
    """The world model dreams run on (module docstring): "clusters" (SYSTEMS.md §4, the seed's
    dreamer) or "visual_memory" (the visual block's temporal memory; the earlier version)."""
    cluster_similarity: float = 0.7
    """A code belongs to a cluster when at least this much of the cluster's density lies on its
    bits (the seed config's `clusters_similarity_threshold`)."""
    cluster_decay: float = 0.9
    """A cluster's density decays by this at each code it takes in, which adds the rest evenly on
    the code's bits (the seed's cluster memory)."""
    max_clusters: int = 1000
    """Clusters kept at most; a new one then replaces the least recently used (the seed's cluster
    memory has a capacity; its value for this task is not in the config: ours)."""
    transition_memory: TransitionMemoryConfig = field(default_factory=_transition_memory_config)
    """The first-order (state, action) → next-state memory of the "clusters" model (the seed
    config's transition TM; `_transition_memory_config`)."""

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
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not 0.0 < self.cluster_similarity <= 1.0:
            raise ValueError(f"cluster_similarity must be in (0, 1], got {self.cluster_similarity}")
        if not 0.0 <= self.cluster_decay < 1.0:
            raise ValueError(f"cluster_decay must be in [0, 1), got {self.cluster_decay}")
        if self.max_clusters < 1:
            raise ValueError(f"max_clusters must be >= 1, got {self.max_clusters}")


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


class StateClusters:
    """Prototype states of the dreams' state encoder (module docstring): each cluster is a density
    over the code's bits (unit mass), its state the `active_bits` densest bits, and it keeps the
    last input (observation bits) it took in."""

    def __init__(self, size: int, active_bits: int, input_size: int, similarity: float, decay: float,
                 capacity: int):
        self.size, self.active_bits = size, active_bits
        self.similarity, self.decay, self.capacity = similarity, decay, capacity
        self.density = np.zeros((0, size))
        self.inputs = np.zeros((0, input_size), dtype=bool)
        self.last_used = np.zeros(0, dtype=np.int64)
        self.clock = 0

    def __len__(self) -> int:
        return len(self.density)

    def match(self, code: np.ndarray) -> int | None:
        """The cluster with the most density on `code`'s bits, if that is ≥ `similarity`."""
        if not len(self) or not len(code):
            return None
        mass = self.density[:, code].sum(axis=1)
        best = int(np.argmax(mass))
        return best if mass[best] >= self.similarity else None

    def learn(self, code: np.ndarray, input_bits: np.ndarray) -> int:
        """Take in a real step's code and observation bits; returns its cluster."""
        self.clock += 1
        index = self.match(code)
        if index is None:
            if len(self) < self.capacity:
                index = len(self)
                self.density = np.vstack((self.density, np.zeros(self.size)))
                self.inputs = np.vstack((self.inputs, np.zeros(self.inputs.shape[1], dtype=bool)))
                self.last_used = np.append(self.last_used, 0)
            else:
                index = int(np.argmin(self.last_used))
                self.density[index] = 0.0
            self.density[index, code] = 1.0 / len(code)
        else:
            self.density[index] *= self.decay
            self.density[index, code] += (1.0 - self.decay) / len(code)
        self.inputs[index] = input_bits
        self.last_used[index] = self.clock
        return index

    def state(self, index: int) -> np.ndarray:
        """The cluster's state: its `active_bits` densest bits (ties to the lower bit), sorted."""
        order = np.argsort(-self.density[index], kind="stable")[: self.active_bits]
        return np.sort(order[self.density[index, order] > 0])

    def snap(self, code: np.ndarray) -> np.ndarray:
        """The state of `code`'s cluster, or `code` itself when it matches none."""
        index = self.match(code)
        return code if index is None else self.state(index)

    def state_dict(self) -> dict:
        return {"density": self.density.copy(), "inputs": self.inputs.copy(), "last_used": self.last_used.copy(),
                "clock": self.clock}

    def load_state_dict(self, state: dict) -> None:
        density = np.asarray(state["density"], dtype=np.float64)
        if density.ndim != 2 or density.shape[1] != self.size:
            raise ValueError(f"saved clusters are over {density.shape[-1]} bits, these over {self.size}")
        self.density = density.copy()
        self.inputs = np.asarray(state["inputs"], dtype=bool).copy()
        self.last_used = np.asarray(state["last_used"], dtype=np.int64).copy()
        self.clock = int(state["clock"])


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

    def snap(self, state: np.ndarray) -> np.ndarray:
        """The model's own state nearest a (subsampled) prediction, or the prediction itself."""
        ...


class ClusterTransition:
    """The "clusters" model's transitions (dreaming.Transition): a first-order TransitionMemory of
    (cluster state, action) → next state, from the current state; predictions snap to clusters."""

    def __init__(self, memory: TransitionMemory, clusters: StateClusters):
        self.memory = memory
        self.clusters = clusters
        self.state = np.empty(0, dtype=np.int64)

    def save_state(self) -> np.ndarray:
        return self.state

    def restore_state(self, state: np.ndarray) -> None:
        self.state = state

    def predict(self, action: int) -> np.ndarray:
        return self.memory.successors(self.state, action)

    def advance(self, state: np.ndarray) -> None:
        self.state = state

    def snap(self, state: np.ndarray) -> np.ndarray:
        return self.clusters.snap(state)


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
        next_state = transition.snap(next_state)
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
