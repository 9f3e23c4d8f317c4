"""The HTM spatial pooler: a binary input becomes a sparse set of active columns.

Written from the algorithm descriptions of Cui, Ahmad & Hawkins (2017), "The HTM spatial pooler:
a neocortical algorithm for online sparse distributed coding", and Numenta's BAMI spatial pooling
chapter. One step:

1. Overlap: each column counts the active inputs it is connected to (potential synapses whose
   permanence is at or above the connected threshold). Columns below the stimulus threshold cannot
   win.
2. Boosting: the overlap is multiplied by the column's boost factor,
   exp(-boost_strength · (active duty cycle − target density)), so columns that fire less often than
   their share get a larger say.
3. Inhibition: the k = round(density · columns) columns with the largest boosted overlap win
   (global inhibition). A fixed random tie-breaker per column makes the choice deterministic.
4. Learning (when asked): winning columns raise the permanences of their potential synapses to
   active inputs and lower those to inactive ones (Hebbian), clipped to [0, 1]; duty cycles
   (moving averages of "was active" and "had overlap") and boost factors are updated; columns
   whose overlap duty cycle is far below the busiest column's get all their potential permanences
   bumped up, so that they start to see some input.

The permanences are a dense [columns, inputs] matrix with a boolean potential mask: at HIMA's
sizes (1000 columns × a few hundred input bits) that is a few megabytes and every step is a handful
of vectorised NumPy operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SpatialPoolerConfig:
    input_size: int
    """Number of input bits (HIMA's visual block: a 5×5 egocentric window × 4 binary channels = 100)."""
    columns: int = 1000
    """Number of columns (SYSTEMS.md section 4: "e.g. 1000 columns")."""
    density: float = 0.02
    """Fraction of columns active after inhibition (SYSTEMS.md: "local density 0.02"; htm.core's
    localAreaDensity default is also 0.02)."""
    potential_pct: float = 0.5
    """Fraction of the input bits in each column's potential pool, drawn at random per column
    (htm.core's potentialPct default 0.5)."""
    connected_threshold: float = 0.1
    """A potential synapse with permanence at or above this is connected (htm.core's
    synPermConnected default 0.1)."""
    initial_permanence_spread: float = 0.1
    """Initial permanences are uniform in connected_threshold ± this, so about half of each
    potential pool starts connected (Cui et al. 2017 initialise "around the connection threshold";
    the spread is our choice)."""
    permanence_increment: float = 0.05
    """Added to a winning column's permanences to active inputs (htm.core synPermActiveInc)."""
    permanence_decrement: float = 0.008
    """Subtracted from a winning column's permanences to inactive inputs (htm.core
    synPermInactiveDec)."""
    stimulus_threshold: int = 1
    """A column needs at least this many connected active inputs to win. htm.core's default is 0,
    but its inhibition never activates a column with zero overlap either; 1 says that directly."""
    boost_strength: float = 1.0
    """Strength of homeostatic boosting; 0 turns it off (htm.core's default). SYSTEMS.md says
    HIMA's pooler boosts but gives no value; 1.0 is our choice, within the range that Cui et al.
    (2017) study."""
    duty_cycle_period: int = 1000
    """Window of the duty-cycle moving averages (htm.core dutyCyclePeriod)."""
    min_pct_overlap_duty_cycle: float = 0.001
    """A column whose overlap duty cycle falls below this fraction of the largest one has its
    permanences bumped (htm.core minPctOverlapDutyCycle)."""
    seed: int = 0
    """Seeds the potential pools, the initial permanences and the tie-breaker."""

    @property
    def active_columns_count(self) -> int:
        return max(1, int(round(self.density * self.columns)))


class SpatialPooler:
    """Global-inhibition spatial pooler; `compute` returns the sorted indices of active columns."""

    def __init__(self, config: SpatialPoolerConfig):
        self.config = config
        rng = np.random.default_rng(config.seed)
        columns, inputs = config.columns, config.input_size
        pool_size = max(1, int(round(config.potential_pct * inputs)))
        # Each row picks its own random subset of inputs: rank a row of random keys and keep the
        # pool_size smallest.
        pool_order = np.argsort(rng.random((columns, inputs)), axis=1)[:, :pool_size]
        self.potential = np.zeros((columns, inputs), dtype=bool)
        np.put_along_axis(self.potential, pool_order, True, axis=1)
        spread = config.initial_permanence_spread
        initial = rng.uniform(
            config.connected_threshold - spread, config.connected_threshold + spread, (columns, inputs)
        )
        self.permanences = np.where(self.potential, np.clip(initial, 0.0, 1.0), 0.0).astype(np.float32)
        # Smaller than any difference of two boosted overlaps that matters (overlaps are integers
        # scaled by boost factors near 1), so it only orders exact ties.
        self._tie_breaker = rng.random(columns) * 1e-6
        self.active_duty_cycles = np.zeros(columns)
        self.overlap_duty_cycles = np.zeros(columns)
        self.boost_factors = np.ones(columns)
        self.iteration = 0
        self.overlaps = np.zeros(columns, dtype=np.int64)
        """The raw overlaps of the last `compute` (connected active inputs per column)."""

    def state_dict(self) -> dict:
        """Everything learning or initialisation set, as NumPy arrays and plain values."""
        return {
            "potential": self.potential.copy(),
            "permanences": self.permanences.copy(),
            "tie_breaker": self._tie_breaker.copy(),
            "active_duty_cycles": self.active_duty_cycles.copy(),
            "overlap_duty_cycles": self.overlap_duty_cycles.copy(),
            "boost_factors": self.boost_factors.copy(),
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["permanences"].shape != self.permanences.shape:
            raise ValueError(f"saved permanences {state['permanences'].shape} do not fit {self.permanences.shape}")
        self.potential = np.asarray(state["potential"], dtype=bool).copy()
        self.permanences = np.asarray(state["permanences"], dtype=np.float32).copy()
        self._tie_breaker = np.asarray(state["tie_breaker"], dtype=np.float64).copy()
        self.active_duty_cycles = np.asarray(state["active_duty_cycles"], dtype=np.float64).copy()
        self.overlap_duty_cycles = np.asarray(state["overlap_duty_cycles"], dtype=np.float64).copy()
        self.boost_factors = np.asarray(state["boost_factors"], dtype=np.float64).copy()
        self.iteration = int(state["iteration"])

    @property
    def connected(self) -> np.ndarray:
        """[columns, inputs] bool: the potential synapses that are connected now."""
        return self.permanences >= self.config.connected_threshold

    def dense_input(self, active_input: np.ndarray) -> np.ndarray:
        """A bool vector of input_size from active indices, or from a binary (0/1 or bool) vector of
        length input_size."""
        values = np.asarray(active_input)
        size = self.config.input_size
        if values.dtype == bool:
            if values.shape != (size,):
                raise ValueError(f"a bool input must have shape ({size},), got {values.shape}")
            return values
        values = values.ravel()
        if values.size == size and size > 2 and np.isin(values, (0, 1)).all():
            return values.astype(bool)
        dense = np.zeros(size, dtype=bool)
        dense[values.astype(np.int64)] = True
        return dense

    def compute(self, active_input: np.ndarray, learn: bool = True) -> np.ndarray:
        """One step: returns the active columns as a sorted int64 array (see the module docstring)."""
        config = self.config
        input_bits = self.dense_input(active_input)
        overlaps = (self.connected & input_bits).sum(axis=1)
        self.overlaps = overlaps
        eligible = overlaps >= config.stimulus_threshold
        scores = np.where(eligible, overlaps * self.boost_factors + self._tie_breaker, -np.inf)
        k = config.active_columns_count
        winners = np.argpartition(-scores, k - 1)[:k]
        winners = np.sort(winners[np.isfinite(scores[winners])])
        if learn:
            self._learn(input_bits, winners, overlaps)
        return winners

    def _learn(self, input_bits: np.ndarray, winners: np.ndarray, overlaps: np.ndarray) -> None:
        config = self.config
        self.iteration += 1
        step = np.where(input_bits, config.permanence_increment, -config.permanence_decrement)
        rows = self.permanences[winners] + step.astype(np.float32) * self.potential[winners]
        self.permanences[winners] = np.clip(rows, 0.0, 1.0)

        # Until a full period has passed, average over the steps seen so far so that the duty
        # cycles are not biased towards 0 at the start.
        period = min(self.iteration, config.duty_cycle_period)
        active = np.zeros(config.columns)
        active[winners] = 1.0
        self.active_duty_cycles += (active - self.active_duty_cycles) / period
        had_overlap = (overlaps > 0).astype(float)
        self.overlap_duty_cycles += (had_overlap - self.overlap_duty_cycles) / period

        target_density = config.active_columns_count / config.columns
        self.boost_factors = np.exp(-config.boost_strength * (self.active_duty_cycles - target_density))
        self._bump_weak_columns()

    def _bump_weak_columns(self) -> None:
        """Raise every potential permanence of columns that (almost) never overlap the input, by a
        tenth of the connected threshold (htm.core's synPermBelowStimulusInc)."""
        config = self.config
        floor = config.min_pct_overlap_duty_cycle * self.overlap_duty_cycles.max()
        weak = np.flatnonzero(self.overlap_duty_cycles < floor)
        if weak.size == 0:
            return
        bump = np.float32(config.connected_threshold / 10.0)
        rows = self.permanences[weak] + bump * self.potential[weak]
        self.permanences[weak] = np.clip(rows, 0.0, 1.0)
