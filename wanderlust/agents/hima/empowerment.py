"""Empowerment on grid worlds: exact, and estimated by a temporal memory (HIMA's intrinsic reward).

Written from SYSTEMS.md section 4 and the HIMA paper (doi:10.1186/s40708-022-00156-6), checked
against the seed's `empowerment.py` (cog-isa/htm-rl, `htm_rl/modules/`).

Exact empowerment of a cell, with deterministic moves: run every one of the A^h action sequences of
length h from the cell (a move into a wall or off the grid leaves the agent in place), and take the
entropy, in bits, of the distribution of end cells. A = 4 (right, down, left, up) as in the seed's
reference (`real_empowerment`: `product(range(4), repeat=horizon)`); `include_stay=True` adds the
grid world's fifth action. The seed uses natural logarithms; we report bits (SYSTEMS.md: log2).
Counting sequences through a [height, width] array h times costs O(h · cells) instead of O(A^h).

TM empowerment: a temporal memory (`TransitionMemory`) learns one-step transitions, state SDR → next
state SDR, each pair on its own (the seed resets its TM around every pair, so the memory is
first-order). The dreams' state-action → next-state model is another `TransitionMemory`, with
actions (dreaming.py). The seed's empowerment TM is action-free: its `learn(state_0, state_1)` is
given no action, so it learns the union of the successors the behaviour policy produced. We do the
same by default; with `action_bits > 0` the action's bits join the state's in the basal context
(state-action pairs), and the estimate takes the union of the predictions for each action.
(Activating all actions' bits at once would not do: a segment that learned one successor for several
actions, e.g. bumping into the walls of a dead end, would become active from the action bits alone.)
The estimate from a state: predict the next superposition, feed it back as the context, h times;
empowerment = log2(|predicted columns| / |one state's SDR|), i.e. log2 of the number of states the
superposition holds when state SDRs do not overlap: the log of the support of the exact
distribution, an upper bound on its entropy that ranks states the same way in small rooms. (The seed
takes the entropy of the predicted columns' cell counts, natural log, which is the same number in
nats when each predicted column holds one predicted cell.) 0 when nothing is predicted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wanderlust.agents.hima.temporal_memory import TemporalMemory, TemporalMemoryConfig, sorted_unique

# The grid world's moves as (row, column) steps, in its action order: right, down, left, up, stay.
_MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0), (0, 0))


def _walls_of(grid: Any) -> np.ndarray:
    walls = grid.wall_mask() if hasattr(grid, "wall_mask") else grid
    walls = np.asarray(walls, dtype=bool)
    if walls.ndim != 2:
        raise ValueError(f"a wall mask must be 2-D, got shape {walls.shape}")
    return walls


def end_position_counts(grid: Any, position: tuple[int, int], horizon: int = 4,
                        include_stay: bool = False) -> np.ndarray:
    """int64 [height, width]: how many of the action sequences of length `horizon` from `position`
    (row, column) end in each cell. `grid`: a bool wall mask or an env with `wall_mask()`."""
    walls = _walls_of(grid)
    row, column = (int(p) for p in position)
    height, width = walls.shape
    if not (0 <= row < height and 0 <= column < width) or walls[row, column]:
        raise ValueError(f"position {position} is not a floor cell of a {height}x{width} grid")
    if horizon < 0:
        raise ValueError(f"horizon must be >= 0, got {horizon}")
    # blocked[a]: cells where action a does not move the agent.
    padded = np.pad(walls, 1, constant_values=True)
    moves = _MOVES if include_stay else _MOVES[:4]
    blocked = [padded[1 + dr : 1 + dr + height, 1 + dc : 1 + dc + width] for dr, dc in moves]
    counts = np.zeros((height, width), dtype=np.int64)
    counts[row, column] = 1
    for _ in range(horizon):
        arrived = np.zeros_like(counts)
        for (dr, dc), stuck in zip(moves, blocked):
            arrived += np.where(stuck, counts, 0)
            moving = np.where(stuck, 0, counts)
            # A free move never leaves the grid, so the roll never wraps a nonzero count.
            arrived += np.roll(moving, (dr, dc), axis=(0, 1))
        counts = arrived
    return counts


def exact_empowerment(grid: Any, position: tuple[int, int] | None = None, horizon: int = 4,
                      include_stay: bool = False) -> float:
    """Entropy in bits of the end cell over all 4^h (5^h with stay) action sequences from
    `position` = (row, column). `grid`: a bool wall mask or a GridWorldEnv; with an env and no
    position, the agent's cell (note: `env.agent_pos` is (column, row); `env.agent` is (row, column))."""
    if position is None:
        if not hasattr(grid, "agent"):
            raise ValueError("position is required with a wall mask")
        position = grid.agent
    counts = end_position_counts(grid, position, horizon, include_stay)
    probabilities = counts[counts > 0] / counts.sum()
    return float((probabilities * np.log2(1.0 / probabilities)).sum())


@dataclass
class TransitionMemoryConfig:
    state_size: int
    """Bits of a state SDR (e.g. cells × bits per cell for a one-hot position code, or the visual
    block's output size)."""
    state_active_bits: int
    """Active bits in one state's SDR: the size the superposition is measured against."""
    action_bits: int = 0
    """0: action-free transitions, as the seed's empowerment TM. > 0: bits per action in the basal
    context (state-action pairs)."""
    num_actions: int = 4
    """Actions encoded when action_bits > 0 (the seed's 4 moves)."""
    cells_per_column: int = 1
    """One cell per column suffices: each pair is learned from a reset TM, so no column needs to
    tell contexts apart (ours; the seed passes its TM config through)."""
    activation_threshold: int | None = None
    """Connected synapses to active context bits that make a segment active; None: 3/4 of a
    context (state + action bits), rounded up (ours)."""
    learning_threshold: int | None = None
    """Potential synapses for a segment to match; None: half a context, rounded up (ours)."""
    connected_threshold: float = 0.5
    """As TemporalMemoryConfig (HIMA GeneralFeedbackTM)."""
    initial_permanence: float = 0.4
    """As TemporalMemoryConfig (HIMA): a transition is connected after its second occurrence."""
    permanence_increment: float = 0.1
    """As TemporalMemoryConfig (HIMA)."""
    permanence_decrement: float = 0.01
    """As TemporalMemoryConfig (HIMA)."""
    predicted_segment_decrement: float = 0.001
    """As TemporalMemoryConfig (HIMA): a rarely taken successor is punished slowly."""
    max_segments_per_cell: int = 255
    """As TemporalMemoryConfig."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.state_size < 1 or not 1 <= self.state_active_bits <= self.state_size:
            raise ValueError("need 1 <= state_active_bits <= state_size")
        if self.action_bits < 0 or self.num_actions < 1:
            raise ValueError("action_bits must be >= 0 and num_actions >= 1")

    @property
    def context_bits(self) -> int:
        """Active bits of one context: a state, plus an action when actions are encoded."""
        return self.state_active_bits + self.action_bits


class TransitionMemory:
    """A first-order memory of one-step transitions in a TemporalMemory: learns them, predicts
    successors and estimates empowerment (module docstring)."""

    def __init__(self, config: TransitionMemoryConfig):
        self.config = config
        context = config.context_bits
        activation = config.activation_threshold or -(-3 * context // 4)
        learning = config.learning_threshold or -(-context // 2)
        self.memory = TemporalMemory(TemporalMemoryConfig(
            columns=config.state_size,
            cells_per_column=config.cells_per_column,
            basal_input_size=config.state_size + config.action_bits * config.num_actions,
            activation_threshold=activation,
            learning_threshold=min(learning, activation),
            new_synapse_count=context,
            connected_threshold=config.connected_threshold,
            initial_permanence=config.initial_permanence,
            permanence_increment=config.permanence_increment,
            permanence_decrement=config.permanence_decrement,
            predicted_segment_decrement=config.predicted_segment_decrement,
            max_synapses_per_segment=max(32, context),
            max_segments_per_cell=config.max_segments_per_cell,
            seed=config.seed,
        ))

    def state_dict(self) -> dict:
        return self.memory.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.memory.load_state_dict(state)

    def _state(self, state) -> np.ndarray:
        state = sorted_unique(state)
        if state.size and (state[0] < 0 or state[-1] >= self.config.state_size):
            raise ValueError(f"state bits must lie in [0, {self.config.state_size})")
        return state

    def _context(self, state: np.ndarray, action: int | None) -> np.ndarray:
        bits = self.config.action_bits
        if bits == 0:
            return state
        if action is None or not 0 <= action < self.config.num_actions:
            raise ValueError(f"action must be in [0, {self.config.num_actions}), got {action}")
        return np.concatenate((state, self.config.state_size + action * bits + np.arange(bits)))

    def learn(self, state, action: int | None, next_state) -> float:
        """Learn one transition; returns the anomaly of `next_state` (the fraction of its columns
        that were not predicted before learning). `action` is ignored when action_bits == 0."""
        self.memory.reset()
        self.memory.depolarize(basal_input=self._context(self._state(state), action))
        self.memory.activate(self._state(next_state), learn=True)
        anomaly = self.memory.anomaly
        self.memory.reset()
        return anomaly

    def successors(self, state, action: int | None = None) -> np.ndarray:
        """The columns predicted one step after `state` under `action` (sorted indices; `action`
        is ignored when action_bits == 0)."""
        self.memory.reset()
        self.memory.depolarize(basal_input=self._context(self._state(state), action))
        predicted = self.memory.predicted_columns
        self.memory.reset()
        return predicted

    def predict(self, state, horizon: int = 4) -> np.ndarray:
        """The columns predicted `horizon` steps ahead, over all actions (sorted indices)."""
        superposition = self._state(state)
        actions = range(self.config.num_actions) if self.config.action_bits else (None,)
        self.memory.reset()
        for _ in range(horizon):
            predicted = []
            for action in actions:
                self.memory.depolarize(basal_input=self._context(superposition, action))
                predicted.append(self.memory.predicted_columns)
            superposition = np.unique(np.concatenate(predicted))
            if superposition.size == 0:
                break
        self.memory.reset()
        return superposition

    def estimate(self, state, horizon: int = 4) -> float:
        """log2(|h-step predicted superposition| / one state's size); 0 when nothing is predicted
        (SYSTEMS.md §4; the paper's h = 4)."""
        size = self.predict(state, horizon).size
        return float(np.log2(size / self.config.state_active_bits)) if size else 0.0
