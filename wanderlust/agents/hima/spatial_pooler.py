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
   With local inhibition (`global_inhibition=False`) the columns lie on a topology (a 1-D or 2-D
   grid, ring or torus with `wrap_around`) and each competes only with its neighbourhood: the
   columns within the inhibition radius (Chebyshev distance). A column wins if its overlap reaches
   the stimulus threshold and fewer than round(density · neighbourhood size) of its neighbours (the
   size counts the column itself, the neighbours do not) have a strictly higher boosted overlap,
   ties ordered by the same tie-breaker. With a radius that covers every column this is exactly
   global inhibition.
4. Learning (when asked): winning columns raise the permanences of their potential synapses to
   active inputs and lower those to inactive ones (Hebbian), clipped to [0, 1]; duty cycles
   (moving averages of "was active" and "had overlap") and boost factors are updated; columns
   whose overlap duty cycle is far below the busiest column's get all their potential permanences
   bumped up, so that they start to see some input. With local inhibition the inhibition radius is
   then recomputed (BAMI's updateInhibitionRadius): the average connected receptive-field span of
   the columns (per input dimension, averaged over dimensions; a column with no connected synapse
   counts 0) times the average number of columns per input bit is a diameter, and the radius is
   (diameter − 1) / 2 rounded half up, at least 1.

Topology: column i of `column_dimensions` maps to input position floor((i_d + 0.5) · inputs_d /
columns_d) in each dimension d of `input_dimensions`. With `potential_radius` set, a column's
potential pool is drawn (potential_pct of them) from the inputs within that Chebyshev distance of its
position; unset, from the whole input.

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
    global_inhibition: bool = True
    """True: the round(density · columns) best columns win (the HIMA seed's configs:
    globalInhibition true). False: local inhibition within the inhibition radius on the column
    topology (module docstring)."""
    column_dimensions: tuple[int, ...] | None = None
    """The columns' topology, 1-D or 2-D (row-major); its product must equal `columns`. None:
    (columns,), a line (a ring with wrap_around)."""
    input_dimensions: tuple[int, ...] | None = None
    """The input's topology, with as many dimensions as column_dimensions; its product must equal
    `input_size`. None: (input_size,)."""
    potential_radius: int | None = None
    """Potential pools are drawn from the inputs within this Chebyshev distance of the column's
    mapped input position. None: the whole input (the default, as before local inhibition)."""
    wrap_around: bool = True
    """Whether both topologies wrap at their edges (ring / torus), for potential pools, receptive
    field spans and inhibition neighbourhoods."""

    @property
    def active_columns_count(self) -> int:
        return max(1, int(round(self.density * self.columns)))

    def dimensions(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(column_dimensions, input_dimensions) with the defaults filled in; ValueError where they
        do not fit `columns` / `input_size` or each other."""
        columns = tuple(int(d) for d in (self.column_dimensions or (self.columns,)))
        inputs = tuple(int(d) for d in (self.input_dimensions or (self.input_size,)))
        for name, dims, total in (("column_dimensions", columns, self.columns), ("input_dimensions", inputs, self.input_size)):
            if not 1 <= len(dims) <= 2 or min(dims) < 1:
                raise ValueError(f"{name} must be 1 or 2 positive sizes, got {dims}")
            if int(np.prod(dims)) != total:
                raise ValueError(f"{name} {dims} hold {int(np.prod(dims))} positions, not {total}")
        if len(columns) != len(inputs):
            raise ValueError(f"column_dimensions {columns} and input_dimensions {inputs} differ in rank")
        if self.potential_radius is not None and int(self.potential_radius) < 0:
            raise ValueError(f"potential_radius must be >= 0 or None, got {self.potential_radius}")
        return columns, inputs


class SpatialPooler:
    """Spatial pooler with global or local inhibition; `compute` returns the sorted indices of
    active columns."""

    def __init__(self, config: SpatialPoolerConfig):
        self.config = config
        self.column_dimensions, self.input_dimensions = config.dimensions()
        rng = np.random.default_rng(config.seed)
        columns, inputs = config.columns, config.input_size
        keys = rng.random((columns, inputs))
        if config.potential_radius is None:
            pool_size = max(1, int(round(config.potential_pct * inputs)))
            # Each row picks its own random subset of inputs: rank a row of random keys and keep the
            # pool_size smallest.
            pool_order = np.argsort(keys, axis=1)[:, :pool_size]
            self.potential = np.zeros((columns, inputs), dtype=bool)
            np.put_along_axis(self.potential, pool_order, True, axis=1)
        else:
            # The same, within each column's neighbourhood: keys outside it rank last.
            near = self._input_neighbourhoods(int(config.potential_radius))
            pool_sizes = np.maximum(1, np.floor(config.potential_pct * near.sum(axis=1) + 0.5)).astype(np.int64)
            ranks = np.argsort(np.argsort(np.where(near, keys, np.inf), axis=1), axis=1)
            self.potential = ranks < pool_sizes[:, None]
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
        self._column_distances: np.ndarray | None = None
        self._neighbours: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self._spans: np.ndarray | None = None
        self.inhibition_radius = max(self.column_dimensions)
        """Local inhibition's radius in columns (Chebyshev distance), recomputed at the end of every
        learning step; with global inhibition it stays the largest column dimension. May be set by
        hand; the next learning step recomputes it."""
        if not config.global_inhibition:
            self.update_inhibition_radius()

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
        if not self.config.global_inhibition:
            self.update_inhibition_radius()

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
        if config.global_inhibition:
            k = config.active_columns_count
            winners = np.argpartition(-scores, k - 1)[:k]
            winners = np.sort(winners[np.isfinite(scores[winners])])
        else:
            winners = self._inhibit_locally(scores)
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
        weak = self._bump_weak_columns()
        if not config.global_inhibition:
            self.update_inhibition_radius(np.union1d(winners, weak))

    def _bump_weak_columns(self) -> np.ndarray:
        """Raise every potential permanence of columns that (almost) never overlap the input, by a
        tenth of the connected threshold (htm.core's synPermBelowStimulusInc)."""
        config = self.config
        floor = config.min_pct_overlap_duty_cycle * self.overlap_duty_cycles.max()
        weak = np.flatnonzero(self.overlap_duty_cycles < floor)
        if weak.size == 0:
            return weak
        bump = np.float32(config.connected_threshold / 10.0)
        rows = self.permanences[weak] + bump * self.potential[weak]
        self.permanences[weak] = np.clip(rows, 0.0, 1.0)
        return weak

    # ------------------------------------------------------------------ topology, local inhibition

    def _positions(self, dims: tuple[int, ...]) -> np.ndarray:
        """[len(dims), prod(dims)]: the grid coordinates of every flat index (row-major)."""
        return np.stack(np.unravel_index(np.arange(int(np.prod(dims))), dims))

    def _axis_distances(self, a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
        """|a[:, None] − b[None, :]| along one axis of length `size`, the shorter way round when the
        topology wraps."""
        distance = np.abs(a[:, None] - b[None, :])
        if self.config.wrap_around:
            distance = np.minimum(distance, size - distance)
        return distance

    def column_centres(self) -> np.ndarray:
        """[rank, columns]: each column's mapped position in input coordinates."""
        positions = self._positions(self.column_dimensions)
        scale = np.array(self.input_dimensions, dtype=float) / np.array(self.column_dimensions, dtype=float)
        return np.floor((positions + 0.5) * scale[:, None]).astype(np.int64)

    def _input_neighbourhoods(self, radius: int) -> np.ndarray:
        """[columns, inputs] bool: the inputs within Chebyshev `radius` of each column's centre."""
        centres = self.column_centres()
        inputs = self._positions(self.input_dimensions)
        near = np.ones((self.config.columns, self.config.input_size), dtype=bool)
        for axis, size in enumerate(self.input_dimensions):
            near &= self._axis_distances(centres[axis], inputs[axis], size) <= radius
        return near

    def connected_spans(self, rows: np.ndarray | None = None) -> np.ndarray:
        """[columns (or len(rows)), rank]: per column and input dimension, the span (in input
        positions) of its connected synapses: max − min + 1, or with wrap_around the shortest arc
        holding them all; 0 for a column with none."""
        connected = self.permanences if rows is None else self.permanences[rows]
        connected = (connected >= self.config.connected_threshold).reshape((-1, *self.input_dimensions))
        rank = len(self.input_dimensions)
        spans = np.zeros((connected.shape[0], rank))
        for axis, size in enumerate(self.input_dimensions):
            others = tuple(1 + a for a in range(rank) if a != axis)
            occupied = connected.any(axis=others) if others else connected  # [columns, size]
            has_any = occupied.any(axis=1)
            if self.config.wrap_around:
                # The shortest covering arc is size − the largest step between circularly
                # consecutive occupied positions + 1. Over the doubled row, last[x] is the last
                # occupied position at or before x; the step into an occupied q is q − last[q − 1].
                doubled = np.concatenate((occupied, occupied), axis=1)
                index = np.where(doubled, np.arange(2 * size), -1)
                last = np.maximum.accumulate(index, axis=1)
                steps = np.arange(size, 2 * size) - last[:, size - 1 : 2 * size - 1]
                largest = np.where(doubled[:, size:], steps, 0).max(axis=1)
                span = size - largest + 1
            else:
                first = occupied.argmax(axis=1)
                final = size - 1 - occupied[:, ::-1].argmax(axis=1)
                span = final - first + 1
            spans[:, axis] = np.where(has_any, span, 0)
        return spans

    def update_inhibition_radius(self, changed: np.ndarray | None = None) -> int:
        """BAMI's updateInhibitionRadius: diameter = average connected span × average columns per
        input position; radius = (diameter − 1) / 2 rounded half up, at least 1. Sets and returns
        `inhibition_radius` (with global inhibition: the largest column dimension). `changed`: the
        only columns whose permanences changed since the last call (None: recompute all)."""
        if self.config.global_inhibition:
            self.inhibition_radius = max(self.column_dimensions)
            return self.inhibition_radius
        if changed is None or self._spans is None:
            self._spans = self.connected_spans()
        elif changed.size:
            self._spans[changed] = self.connected_spans(changed)
        average_span = float(self._spans.mean())
        columns_per_input = float(np.mean(np.array(self.column_dimensions) / np.array(self.input_dimensions)))
        diameter = average_span * columns_per_input
        self.inhibition_radius = max(1, int(np.floor((diameter - 1.0) / 2.0 + 0.5)))
        return self.inhibition_radius

    def neighbourhood(self, radius: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(near, k) for a radius (default: the current one). near: [columns, columns] bool, the
        columns within the radius of each column, itself excluded; k: [columns], the winners allowed
        per neighbourhood, max(1, round(density · (neighbours + 1)))."""
        radius = self.inhibition_radius if radius is None else int(radius)
        if radius in self._neighbours:
            return self._neighbours[radius][:2]
        columns = self.config.columns
        if self._column_distances is None:
            positions = self._positions(self.column_dimensions)
            distances = np.zeros((columns, columns), dtype=np.int32)
            for axis, size in enumerate(self.column_dimensions):
                np.maximum(distances, self._axis_distances(positions[axis], positions[axis], size), out=distances)
            self._column_distances = distances
        near = self._column_distances <= radius
        np.fill_diagonal(near, False)
        sizes = near.sum(axis=1) + 1
        # np.rint rounds half to even, as round() does for global inhibition's k.
        k = np.maximum(1, np.rint(self.config.density * sizes)).astype(np.int64)
        # How many of the best columns _inhibit_locally screens with (see there).
        screen = int(min(columns, np.ceil((3 * k * columns / sizes).max())))
        if len(self._neighbours) >= 4:  # the radius moves by a step or two at a time
            self._neighbours.pop(next(iter(self._neighbours)))
        self._neighbours[radius] = (near, k, screen)
        return near, k

    def _inhibit_locally(self, scores: np.ndarray) -> np.ndarray:
        """Winners: finite score and fewer than k[i] neighbours with a higher one. Exact, but only
        the undecided columns are counted in full: with t the m-th largest score, a column below t
        has at least (its neighbours scoring >= t) higher neighbours, and loses if those alone reach
        its k. m is chosen so that a neighbourhood expects about 3k of them."""
        self.neighbourhood()
        near, k, m = self._neighbours[self.inhibition_radius]
        columns = scores.size
        finite = np.isfinite(scores)
        if m < columns:
            top = np.argpartition(-scores, m - 1)[:m]
            threshold = scores[top].min()
        else:
            threshold = -np.inf
        if np.isfinite(threshold):
            above = scores >= threshold
            lower = near[:, np.flatnonzero(above)].sum(axis=1)
            rows = np.flatnonzero(finite & (above | (lower < k)))
        else:
            rows = np.flatnonzero(finite)
        higher = (near[rows] & (scores[None, :] > scores[rows, None])).sum(axis=1)
        return rows[higher < k[rows]].astype(np.int64)
