"""The HTM temporal memory with basal, apical and feedback segments.

Written from the algorithm descriptions of Hawkins & Ahmad (2016), "Why neurons have thousands of
synapses, a theory of sequence memory in neocortex", and Numenta's BAMI temporal memory pseudocode,
with the apical tiebreak that HIMA's blocks use (the HIMA paper, doi:10.1186/s40708-022-00156-6).

Cells sit in columns (cells_per_column each). A cell has distal segments of three kinds, each a set
of synapses (presynaptic bit, permanence) onto its own input:
- basal: the context. By default the TM's own active cells of the previous step (sequence memory);
  with `basal_input_size` set, an external SDR instead (HIMA's blocks take it from the level below).
- apical: an external SDR (HIMA: the paired visual or motor block).
- feedback: an external SDR (HIMA: the level above, e.g. the running option).

A segment is active when at least `activation_threshold` of its connected synapses (permanence ≥
connected_threshold) see active input bits, and matching when at least `learning_threshold` of all
its synapses do.

One `compute(active_columns, ...)` call:
1. Activation, with the predictions made at the end of the previous call. In an active column the
   predicted cells become active ("correctly predicted"); a column without predicted cells bursts:
   all its cells become active, and one winner cell is picked to learn the transition: the cell of
   the best matching basal segment in the column, else the cell with the fewest segments.
   anomaly = the fraction of active columns that burst.
2. Learning (when asked). Active basal segments of correctly predicted cells and the best matching
   segment of each bursting column are reinforced (+increment on synapses to active bits,
   −decrement on the others) and grow synapses to the growth candidates (previous winner cells, or
   the external basal input) up to `new_synapse_count` active synapses; a bursting column with no
   matching segment grows a new segment on its winner cell. Matching basal segments on cells of
   inactive columns are punished (−predicted_segment_decrement on synapses to active bits). Apical
   and feedback segments learn the same way on the winner cells: the best matching segment per
   winner cell is reinforced, a winner cell without one grows a new one, and matching segments in
   inactive columns are punished.
3. Prediction for the next step (`depolarize`), from this call's context: a cell is basally
   predicted when it has an active basal segment. Apical and feedback segments only break ties:
   in each column, among its basally predicted cells, only those with the most kinds of active
   modulatory segment (apical, feedback) stay predicted. With apical input alone this is HIMA's
   rule ("basal and apical coincidence predict first; other columns keep all basal predictions"),
   applied per column. Cells with active feedback segments are also reported on their own
   (`feedback_predictive_cells`), so that an agent can take their union with the basal prediction,
   as HIMA's option block does to read out the actions of the running option.

Inputs given to `compute` at step t are the context that predicts the columns of step t+1.

Storage: each kind keeps preallocated 2-D arrays [segments, max_synapses_per_segment] of
presynaptic indices and permanences, the used slots of each row first (empty slots point at a
sentinel bit that is never active). Capacity doubles when full. The activity of all segments, the
main cost of a step, is counted from the active bits through an index of the synapses onto each
bit (as htm.core's Connections does), so that it costs what the active input touches, not the
number of segments, which grows through a run. The index holds (segment, permanence) per synapse,
its permanences kept equal to the segments' by `adapt`, so a query reads it in order. It is
rebuilt now and then; segments whose slots moved since (grown, shrunk, recycled) or were created
after it are counted by a pass over their used slots instead. Both are compiled with Numba and give
exactly the counts of one pass over every segment. Permanences are therefore changed only through
DendriteSegments' methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# Permanences at or below this after learning are destroyed, freeing their slot (htm.core destroys
# synapses whose permanence falls to ~0).
_DEAD_PERMANENCE = 1e-6
_INITIAL_SEGMENT_CAPACITY = 1024


def sorted_unique(bits) -> np.ndarray:
    """np.unique of an index array, as int64; an array that already is sorted without repeats (as
    most SDRs passed around here are) is returned as it is, without a copy or a sort."""
    bits = np.asarray(bits, dtype=np.int64)
    if bits.ndim == 1 and (bits.size < 2 or (bits[1:] > bits[:-1]).all()):
        return bits
    return np.unique(bits)


@numba.njit(cache=True, nogil=True)
def _count_row(presynaptic, permanence, synapse_count, segment, input_mask, connected_threshold, connected, potential):
    """Adds `segment`'s active synapses to potential[segment] and its connected active ones to
    connected[segment]: one pass over its used slots."""
    for slot in range(synapse_count[segment]):
        if input_mask[presynaptic[segment, slot]]:
            potential[segment] += 1
            if permanence[segment, slot] >= connected_threshold:
                connected[segment] += 1


@numba.njit(cache=True, nogil=True)
def _unreached(row, used, candidates):
    """The candidates (in their order) that row[:used] does not contain."""
    keep = np.ones(candidates.size, dtype=np.bool_)
    for i in range(candidates.size):
        for slot in range(used):
            if row[slot] == candidates[i]:
                keep[i] = False
                break
    return candidates[keep]


@numba.njit(cache=True, nogil=True)
def _build_index(presynaptic, permanence, synapse_count, input_size, entry_of):
    """The synapses of the first len(synapse_count) segments grouped by presynaptic bit: those onto
    bit b are entries start[b]:start[b + 1] of (segment, permanence), in segment order; the
    permanences are copies, kept equal by _adapt_segments through entry_of[segment, slot]."""
    start = np.zeros(input_size + 2, dtype=np.int64)
    for segment in range(synapse_count.size):
        for slot in range(synapse_count[segment]):
            start[presynaptic[segment, slot] + 2] += 1
    for bit in range(2, input_size + 2):
        start[bit] += start[bit - 1]
    segments = np.empty(start[-1], dtype=np.int32)
    permanences = np.empty(start[-1], dtype=np.float32)
    for segment in range(synapse_count.size):
        for slot in range(synapse_count[segment]):
            entry = start[presynaptic[segment, slot] + 1]
            segments[entry] = segment
            permanences[entry] = permanence[segment, slot]
            entry_of[segment, slot] = entry
            start[presynaptic[segment, slot] + 1] += 1
    return start[: input_size + 1], segments, permanences


@numba.njit(cache=True, nogil=True)
def _indexed_activity(
    presynaptic, permanence, synapse_count, size, input_mask, connected_threshold,
    start, index_segments, index_permanences, indexed_size, moved, moved_list, moved_count,
):
    """(connected active synapses, active synapses) of each of the first `size` segments: through
    the index for those of the first `indexed_size` not in moved_list[:moved_count], by _count_row
    for the others."""
    connected = np.zeros(size, dtype=np.int64)
    potential = np.zeros(size, dtype=np.int64)
    for bit in range(input_mask.size - 1):
        if input_mask[bit]:
            for entry in range(start[bit], start[bit + 1]):
                segment = index_segments[entry]
                if not moved[segment]:
                    potential[segment] += 1
                    if index_permanences[entry] >= connected_threshold:
                        connected[segment] += 1
    for i in range(moved_count):
        _count_row(presynaptic, permanence, synapse_count, moved_list[i], input_mask, connected_threshold, connected, potential)
    for segment in range(indexed_size, size):
        _count_row(presynaptic, permanence, synapse_count, segment, input_mask, connected_threshold, connected, potential)
    return connected, potential


@numba.njit(cache=True, nogil=True)
def _adapt_segments(presynaptic, permanence, synapse_count, segments, input_mask, increment, decrement, dead, sentinel,
                    indexed_size, moved, moved_list, moved_count, entry_of, index_permanences):
    """DendriteSegments.adapt on the given rows, in place: each used slot's permanence moves by
    +increment (active bit) or -decrement, clipped to [0, 1]; slots at or below `dead` are freed and
    the survivors move to the front of their row in their order. The index's copies of the
    permanences follow; an indexed row that lost a synapse is added to moved_list instead. Returns
    the new moved_count."""
    for segment in segments:
        kept = 0
        used = synapse_count[segment]
        indexed = segment < indexed_size and not moved[segment]
        for slot in range(used):
            bit = presynaptic[segment, slot]
            value = permanence[segment, slot] + (increment if input_mask[bit] else -decrement)
            value = min(max(value, np.float32(0.0)), np.float32(1.0))
            if indexed:
                index_permanences[entry_of[segment, slot]] = value
            if value > dead:
                presynaptic[segment, kept] = bit
                permanence[segment, kept] = value
                kept += 1
        for slot in range(kept, used):
            presynaptic[segment, slot] = sentinel
            permanence[segment, slot] = 0.0
        synapse_count[segment] = kept
        if kept < used and indexed:
            moved[segment] = True
            moved_list[moved_count] = segment
            moved_count += 1
    return moved_count


@numba.njit(cache=True, nogil=True)
def _tiebreak_prediction(basal_cells, apical_cells, feedback_cells, columns, cells_per_column):
    """The predictive-cell mask (module docstring, step 3) from the cells with an active segment of
    each kind: in each column, of the cells with an active basal segment, those with the most kinds
    of active modulatory segment."""
    score = np.full(columns * cells_per_column, -1, dtype=np.int8)  # -1: not basally predicted
    apical = np.zeros(score.size, dtype=np.bool_)
    apical[apical_cells] = True
    feedback = np.zeros(score.size, dtype=np.bool_)
    feedback[feedback_cells] = True
    predicted = np.zeros(score.size, dtype=np.bool_)
    for cell in basal_cells:
        score[cell] = np.int8(apical[cell]) + np.int8(feedback[cell])
    for cell in basal_cells:
        first = cell - cell % cells_per_column
        best = score[first : first + cells_per_column].max()
        predicted[cell] = score[cell] == best
    return predicted


@dataclass
class TemporalMemoryConfig:
    columns: int = 1000
    """Number of columns, the spatial pooler's output size (SYSTEMS.md section 4: 1000)."""
    cells_per_column: int = 16
    """Cells per column: distinct contexts one column can represent (our brief's 16; Numenta's
    TemporalMemory default is 32)."""
    basal_input_size: int | None = None
    """None: basal segments read this TM's own previous active cells (sequence memory). An int:
    they read an external SDR of this size (HIMA's blocks: the input from below)."""
    apical_input_size: int = 0
    """Size of the apical SDR (HIMA: the paired block's cells); 0 disables apical segments."""
    feedback_input_size: int = 0
    """Size of the feedback SDR (HIMA: the level above); 0 disables feedback segments."""
    activation_threshold: int = 13
    """Active connected synapses for a basal segment to be active (Numenta TM default 13)."""
    learning_threshold: int = 10
    """Active potential synapses for a basal segment to be matching (Numenta TM minThreshold 10)."""
    apical_activation_threshold: int = 13
    """As activation_threshold, for apical segments (Numenta's ApicalTiebreak TM uses one value)."""
    apical_learning_threshold: int = 10
    """As learning_threshold, for apical segments."""
    feedback_activation_threshold: int = 13
    """As activation_threshold, for feedback segments."""
    feedback_learning_threshold: int = 10
    """As learning_threshold, for feedback segments."""
    new_synapse_count: int = 20
    """A learning segment grows synapses until it has this many to active bits (Numenta
    maxNewSynapseCount 20; equal to the SP's 20 active columns at HIMA's sizes)."""
    connected_threshold: float = 0.5
    """Permanence at which a synapse is connected (HIMA GeneralFeedbackTM and Numenta: 0.5)."""
    initial_permanence: float = 0.4
    """Permanence of a new synapse (HIMA GeneralFeedbackTM default 0.4; Numenta's 0.21)."""
    permanence_increment: float = 0.1
    """Reinforcement of synapses to active bits (HIMA and Numenta: 0.1)."""
    permanence_decrement: float = 0.01
    """Decay of synapses to inactive bits on a learning segment (HIMA GeneralFeedbackTM 0.01)."""
    predicted_segment_decrement: float = 0.001
    """Punishment of matching segments whose column did not become active (HIMA GeneralFeedbackTM
    0.001, for basal, apical and feedback segments alike)."""
    max_segments_per_cell: int = 255
    """When a cell is full, its least recently used segment is recycled (HIMA and Numenta: 255)."""
    max_synapses_per_segment: int = 32
    """Synapse slots per segment; when full, the weakest synapses make room. Numenta uses 255 and
    HIMA no limit; segments here rarely exceed new_synapse_count plus a few, and the slot count
    sets the cost of every activity computation, so we keep it compact."""
    seed: int = 0
    """Seeds the tie-breaks between equally good cells and the sampling of new synapses."""

    @property
    def num_cells(self) -> int:
        return self.columns * self.cells_per_column


class DendriteSegments:
    """All segments of one kind (basal, apical or feedback), in preallocated arrays."""

    def __init__(self, num_cells: int, input_size: int, max_synapses: int, max_segments_per_cell: int):
        self.num_cells = num_cells
        self.input_size = input_size
        self.max_synapses = max_synapses
        self.max_segments_per_cell = max_segments_per_cell
        self.size = 0
        self.segments_per_cell = np.zeros(num_cells, dtype=np.int32)
        self._allocate(_INITIAL_SEGMENT_CAPACITY)
        self._forget_index()

    def _allocate(self, capacity: int) -> None:
        old_size = self.size
        presynaptic = np.full((capacity, self.max_synapses), self.input_size, dtype=np.int32)
        permanence = np.zeros((capacity, self.max_synapses), dtype=np.float32)
        synapse_count = np.zeros(capacity, dtype=np.int32)
        cell = np.zeros(capacity, dtype=np.int32)
        last_used = np.zeros(capacity, dtype=np.int64)
        moved = np.zeros(capacity, dtype=bool)
        moved_list = np.zeros(capacity, dtype=np.int64)
        entry_of = np.zeros((capacity, self.max_synapses), dtype=np.int32)
        if old_size:
            presynaptic[:old_size] = self.presynaptic[:old_size]
            permanence[:old_size] = self.permanence[:old_size]
            synapse_count[:old_size] = self.synapse_count[:old_size]
            cell[:old_size] = self.cell[:old_size]
            last_used[:old_size] = self.last_used[:old_size]
            moved[:old_size] = self._moved[:old_size]
            moved_list[: self._moved_count] = self._moved_list[: self._moved_count]
            entry_of[:old_size] = self._entry_of[:old_size]
        self.presynaptic, self.permanence = presynaptic, permanence
        self.synapse_count, self.cell, self.last_used = synapse_count, cell, last_used
        self._moved, self._moved_list, self._entry_of = moved, moved_list, entry_of

    # The index of synapses by presynaptic bit (module docstring): it covers the first
    # _indexed_size segments as they were when built, except the _moved_count segments in
    # _moved_list (flagged in _moved), whose slots have changed since. _entry_of[segment, slot] is
    # where an indexed synapse's permanence is copied in the index.

    def _forget_index(self) -> None:
        self._index = (np.zeros(self.input_size + 1, dtype=np.int64), np.empty(0, np.int32), np.empty(0, np.float32))
        self._indexed_size = 0
        self._moved[:] = False
        self._moved_count = 0
        self._rows_outside_index = 0

    def _mark_moved(self, segment: int) -> None:
        if segment < self._indexed_size and not self._moved[segment]:
            self._moved[segment] = True
            self._moved_list[self._moved_count] = segment
            self._moved_count += 1

    def _rebuild_index_if_stale(self) -> None:
        """Rebuild once the rows counted slot by slot since the last rebuild add up to more than
        the number of segments. A rebuild is about one pass over every row, so the rows counted
        outside the index cost about as much as the rebuilds, and both stay small."""
        self._rows_outside_index += self._moved_count + self.size - self._indexed_size
        if self._rows_outside_index > self.size:
            self._forget_index()
            self._index = _build_index(
                self.presynaptic, self.permanence, self.synapse_count[: self.size], self.input_size, self._entry_of
            )
            self._indexed_size = self.size

    def state_dict(self) -> dict:
        """The segments and synapses in use, as NumPy arrays."""
        n = self.size
        return {
            "presynaptic": self.presynaptic[:n].copy(),
            "permanence": self.permanence[:n].copy(),
            "synapse_count": self.synapse_count[:n].copy(),
            "cell": self.cell[:n].copy(),
            "last_used": self.last_used[:n].copy(),
            "segments_per_cell": self.segments_per_cell.copy(),
        }

    def load_state_dict(self, state: dict) -> None:
        n = len(state["cell"])
        if state["presynaptic"].shape[1:] != (self.max_synapses,) or len(state["segments_per_cell"]) != self.num_cells:
            raise ValueError("the saved segments do not fit this memory's sizes")
        self.size = 0
        self._allocate(max(_INITIAL_SEGMENT_CAPACITY, n))
        self._forget_index()
        self.size = n
        self.presynaptic[:n] = state["presynaptic"]
        self.permanence[:n] = state["permanence"]
        self.synapse_count[:n] = state["synapse_count"]
        self.cell[:n] = state["cell"]
        self.last_used[:n] = state["last_used"]
        self.segments_per_cell[:] = state["segments_per_cell"]

    def padded_mask(self, active_bits: np.ndarray) -> np.ndarray:
        """A bool mask over the input plus the always-inactive sentinel bit of empty slots."""
        mask = np.zeros(self.input_size + 1, dtype=bool)
        mask[active_bits] = True
        return mask

    def activity(self, input_mask: np.ndarray, connected_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(connected active synapses, active synapses) per segment."""
        if not input_mask.any():  # no active input (e.g. no feedback): nothing to count
            return np.zeros(self.size, dtype=np.int64), np.zeros(self.size, dtype=np.int64)
        self._rebuild_index_if_stale()
        return _indexed_activity(
            self.presynaptic, self.permanence, self.synapse_count, self.size, input_mask, np.float32(connected_threshold),
            *self._index, self._indexed_size, self._moved, self._moved_list, self._moved_count,
        )

    def create(self, cell: int, iteration: int) -> int:
        """A new empty segment on `cell`; a full cell recycles its least recently used segment."""
        if self.segments_per_cell[cell] >= self.max_segments_per_cell:
            own = np.flatnonzero(self.cell[: self.size] == cell)
            segment = int(own[np.argmin(self.last_used[own])])
            self._mark_moved(segment)
            self.presynaptic[segment] = self.input_size
            self.permanence[segment] = 0.0
            self.synapse_count[segment] = 0
        else:
            if self.size == len(self.cell):
                self._allocate(2 * len(self.cell))
            segment = self.size
            self.size += 1
            self.cell[segment] = cell
            self.segments_per_cell[cell] += 1
        self.last_used[segment] = iteration
        return segment

    def adapt(self, segments: np.ndarray, input_mask: np.ndarray, increment: float, decrement: float) -> None:
        """Add `increment` to synapses onto active bits and subtract `decrement` from the others, on
        each of `segments` (distinct), then destroy synapses that reached zero."""
        self._moved_count = _adapt_segments(
            self.presynaptic, self.permanence, self.synapse_count, np.asarray(segments, dtype=np.int64), input_mask,
            np.float32(increment), np.float32(decrement), np.float32(_DEAD_PERMANENCE), self.input_size,
            self._indexed_size, self._moved, self._moved_list, self._moved_count, self._entry_of, self._index[2],
        )

    def grow(
        self,
        segment: int,
        candidates: np.ndarray,
        count: int,
        initial_permanence: float,
        rng: np.random.Generator,
    ) -> None:
        """Add up to `count` synapses from `segment` to randomly chosen `candidates` it does not
        reach yet; when the slots run out, the weakest synapses make room."""
        used = self.synapse_count[segment]
        new_bits = _unreached(self.presynaptic[segment], used, candidates)
        count = min(count, new_bits.size, self.max_synapses)
        if count <= 0:
            return
        if new_bits.size > count:
            new_bits = rng.choice(new_bits, size=count, replace=False)
        self._mark_moved(segment)
        overflow = used + count - self.max_synapses
        if overflow > 0:
            keep = np.sort(np.argsort(self.permanence[segment, :used], kind="stable")[overflow:])
            kept = used - overflow
            self.presynaptic[segment, :kept] = self.presynaptic[segment, keep]
            self.permanence[segment, :kept] = self.permanence[segment, keep]
            used = kept
        self.presynaptic[segment, used : used + count] = new_bits
        self.permanence[segment, used : used + count] = initial_permanence
        self.synapse_count[segment] = used + count


@dataclass
class _DendriteActivity:
    """What one kind of segment computed for the current prediction, and the context it saw."""

    active_segments: np.ndarray
    matching_segments: np.ndarray
    potential_counts: np.ndarray
    input_mask: np.ndarray
    growth_candidates: np.ndarray

    def copy(self) -> "_DendriteActivity":
        return _DendriteActivity(*(np.copy(value) for value in vars(self).values()))


@dataclass
class TemporalMemoryState:
    """The activity state of a TemporalMemory, for save_state/restore_state (not its synapses)."""

    active_cells: np.ndarray
    winner_cells: np.ndarray
    predictive_cells: np.ndarray
    predictive_mask: np.ndarray
    anomaly: float
    dendrites: dict[str, _DendriteActivity]
    rng_state: dict
    iteration: int = 0


class TemporalMemory:
    """See the module docstring. Cell c lives in column c // cells_per_column."""

    def __init__(self, config: TemporalMemoryConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.iteration = 0
        num_cells = config.num_cells
        basal_size = num_cells if config.basal_input_size is None else config.basal_input_size
        input_sizes = {
            "basal": basal_size,
            "apical": config.apical_input_size,
            "feedback": config.feedback_input_size,
        }
        self.segments = {
            kind: DendriteSegments(num_cells, size, config.max_synapses_per_segment, config.max_segments_per_cell)
            for kind, size in input_sizes.items()
            if size > 0
        }
        self._thresholds = {
            "basal": (config.activation_threshold, config.learning_threshold),
            "apical": (config.apical_activation_threshold, config.apical_learning_threshold),
            "feedback": (config.feedback_activation_threshold, config.feedback_learning_threshold),
        }
        self.reset()

    # ------------------------------------------------------------------ state

    def reset(self) -> None:
        """Forget the sequence: no active, winner or predictive cells, no context."""
        self._active_cells = np.empty(0, dtype=np.int64)
        self._winner_cells = np.empty(0, dtype=np.int64)
        self._predictive_cells = np.empty(0, dtype=np.int64)
        self._predictive_mask = np.zeros(self.config.num_cells, dtype=bool)
        self._anomaly = 0.0
        self._dendrites = {kind: self._idle_activity(store) for kind, store in self.segments.items()}

    @staticmethod
    def _idle_activity(store: DendriteSegments) -> _DendriteActivity:
        empty = np.empty(0, dtype=np.int64)
        return _DendriteActivity(empty, empty, np.zeros(store.size, dtype=np.int64), store.padded_mask(empty), empty)

    def save_state(self) -> TemporalMemoryState:
        """A copy of the activity state (not the synapses), e.g. before a dream."""
        return TemporalMemoryState(
            active_cells=self._active_cells.copy(),
            winner_cells=self._winner_cells.copy(),
            predictive_cells=self._predictive_cells.copy(),
            predictive_mask=self._predictive_mask.copy(),
            anomaly=self._anomaly,
            dendrites={kind: activity.copy() for kind, activity in self._dendrites.items()},
            rng_state=self.rng.bit_generator.state,
            iteration=self.iteration,
        )

    def restore_state(self, state: TemporalMemoryState) -> None:
        """Return to a saved activity state. Segments created since the save (by learning) are
        neither active nor matching in the restored prediction."""
        self._active_cells = state.active_cells.copy()
        self._winner_cells = state.winner_cells.copy()
        self._predictive_cells = state.predictive_cells.copy()
        self._predictive_mask = state.predictive_mask.copy()
        self._anomaly = state.anomaly
        self._dendrites = {kind: activity.copy() for kind, activity in state.dendrites.items()}
        self.rng.bit_generator.state = state.rng_state
        self.iteration = state.iteration

    def state_dict(self) -> dict:
        """What learning changed: the segments of each kind, the step counter and the rng (NumPy
        arrays and plain values). The activity state is not included; `load_state_dict` resets it."""
        return {
            "iteration": self.iteration,
            "rng": self.rng.bit_generator.state,
            "segments": {kind: store.state_dict() for kind, store in self.segments.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if set(state["segments"]) != set(self.segments):
            raise ValueError(f"saved segment kinds {sorted(state['segments'])} differ from {sorted(self.segments)}")
        for kind, store in self.segments.items():
            store.load_state_dict(state["segments"][kind])
        self.iteration = int(state["iteration"])
        self.rng.bit_generator.state = state["rng"]
        self.reset()

    @property
    def active_cells(self) -> np.ndarray:
        """Sorted indices of the cells active at the last step."""
        return self._active_cells

    @property
    def winner_cells(self) -> np.ndarray:
        """Sorted indices of the cells that learned at the last step (one per active column)."""
        return self._winner_cells

    @property
    def predictive_cells(self) -> np.ndarray:
        """Sorted indices of the cells predicted for the next step."""
        return self._predictive_cells

    @property
    def predicted_columns(self) -> np.ndarray:
        """Sorted indices of the columns predicted for the next step."""
        return np.unique(self._predictive_cells // self.config.cells_per_column)

    @property
    def feedback_predictive_cells(self) -> np.ndarray:
        """Sorted cells with an active feedback segment, whether or not they are basally predicted."""
        if "feedback" not in self.segments:
            return np.empty(0, dtype=np.int64)
        return np.unique(self.segments["feedback"].cell[self._dendrites["feedback"].active_segments])

    @property
    def apical_predictive_cells(self) -> np.ndarray:
        """Sorted predicted cells that also have an active apical segment: the prediction that the
        apical input (HIMA: the chosen action) supports, without the columns it does not reach."""
        if "apical" not in self.segments:
            return np.empty(0, dtype=np.int64)
        apical = self.segments["apical"].cell[self._dendrites["apical"].active_segments]
        return np.intersect1d(self._predictive_cells, apical)

    @property
    def anomaly(self) -> float:
        """Fraction of the last step's active columns that were not predicted (0 with none active)."""
        return self._anomaly

    # ------------------------------------------------------------------ step

    def compute(
        self,
        active_columns: np.ndarray,
        learn: bool = True,
        basal_input: np.ndarray | None = None,
        apical_input: np.ndarray | None = None,
        feedback_input: np.ndarray | None = None,
    ) -> np.ndarray:
        """Activate `active_columns` against the current prediction, learn, then predict the next
        step from this step's context. Inputs are sorted or unsorted index arrays. Returns the
        active cells."""
        self.activate(active_columns, learn)
        self.depolarize(basal_input, apical_input, feedback_input)
        return self._active_cells

    def activate(self, active_columns: np.ndarray, learn: bool = True) -> np.ndarray:
        """The first half of `compute`: activate `active_columns` against the current prediction
        and learn, without predicting the next step. Call `depolarize` before the next `activate`
        (HIMA does so once it has chosen the action that its apical input encodes). Returns the
        active cells."""
        active_columns = sorted_unique(active_columns)
        self.iteration += 1
        self._activate(active_columns, learn)
        return self._active_cells

    def depolarize(
        self,
        basal_input: np.ndarray | None = None,
        apical_input: np.ndarray | None = None,
        feedback_input: np.ndarray | None = None,
    ) -> np.ndarray:
        """Recompute the prediction for the next step from a context (called by `compute`; call it
        again to replace the context, e.g. when the apical input arrives later). Returns the
        predictive cells."""
        config = self.config
        external = {"basal": basal_input, "apical": apical_input, "feedback": feedback_input}
        if config.basal_input_size is None:
            if basal_input is not None:
                raise ValueError("this TM's basal context is its own cells; set basal_input_size for an external one")
            external["basal"] = self._active_cells
        empty = np.empty(0, dtype=np.int64)
        cells_with_active = {"basal": empty, "apical": empty, "feedback": empty}
        for kind, store in self.segments.items():
            bits = external[kind]
            bits = empty if bits is None else sorted_unique(bits)
            growth = self._winner_cells if (kind == "basal" and config.basal_input_size is None) else bits
            input_mask = store.padded_mask(bits)
            connected, potential = store.activity(input_mask, config.connected_threshold)
            activation_threshold, learning_threshold = self._thresholds[kind]
            active = np.flatnonzero(connected >= activation_threshold)
            self._dendrites[kind] = _DendriteActivity(
                active_segments=active,
                matching_segments=np.flatnonzero(potential >= learning_threshold),
                potential_counts=potential,
                input_mask=input_mask,
                growth_candidates=growth,
            )
            cells_with_active[kind] = store.cell[active]
        self._predictive_mask = _tiebreak_prediction(
            cells_with_active["basal"], cells_with_active["apical"], cells_with_active["feedback"],
            config.columns, config.cells_per_column,
        )
        self._predictive_cells = np.flatnonzero(self._predictive_mask)
        return self._predictive_cells

    def _activate(self, active_columns: np.ndarray, learn: bool) -> None:
        config = self.config
        cells_per_column = config.cells_per_column
        column_is_active = np.zeros(config.columns, dtype=bool)
        column_is_active[active_columns] = True
        predicted_by_column = self._predictive_mask.reshape(config.columns, cells_per_column)
        column_was_predicted = predicted_by_column.any(axis=1)
        column_bursts = column_is_active & ~column_was_predicted
        bursting_columns = np.flatnonzero(column_bursts)
        correct_cells = np.flatnonzero((predicted_by_column & column_is_active[:, None]).ravel())
        bursting_cells = (bursting_columns[:, None] * cells_per_column + np.arange(cells_per_column)).ravel()
        self._anomaly = bursting_columns.size / active_columns.size if active_columns.size else 0.0

        winner_cells, basal_plan = self._plan_basal_learning(column_is_active, column_bursts, bursting_columns, correct_cells)
        if learn:
            self._learn_basal(*basal_plan)
            for kind in ("apical", "feedback"):
                if kind in self.segments:
                    self._learn_modulatory(kind, winner_cells, column_is_active)
        self._active_cells = np.sort(np.concatenate((correct_cells, bursting_cells)))
        self._winner_cells = np.sort(winner_cells)

    # ------------------------------------------------------------------ learning

    def _column_of_segments(self, store: DendriteSegments, segments: np.ndarray) -> np.ndarray:
        return store.cell[segments] // self.config.cells_per_column

    def _plan_basal_learning(
        self, column_is_active: np.ndarray, column_bursts: np.ndarray, bursting_columns: np.ndarray,
        correct_cells: np.ndarray,
    ) -> tuple[np.ndarray, tuple]:
        """Winner cells, and which basal segments to reinforce, create and punish."""
        if "basal" not in self.segments:
            return correct_cells, (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64))
        store = self.segments["basal"]
        activity = self._dendrites["basal"]
        active_segments = activity.active_segments
        cell_is_correct = np.zeros(self.config.num_cells, dtype=bool)
        cell_is_correct[correct_cells] = True
        reinforced = active_segments[cell_is_correct[store.cell[active_segments]]]

        matching = activity.matching_segments
        matching_columns = self._column_of_segments(store, matching)
        in_bursting = column_bursts[matching_columns]
        candidates = matching[in_bursting]
        # Best matching segment per bursting column: most active potential synapses, ties to a
        # random one.
        noise = self.rng.random(candidates.size)
        order = np.lexsort((noise, -activity.potential_counts[candidates], matching_columns[in_bursting]))
        candidates = candidates[order]
        first_in_column = np.ones(candidates.size, dtype=bool)
        candidate_columns = self._column_of_segments(store, candidates)
        first_in_column[1:] = candidate_columns[1:] != candidate_columns[:-1]
        best_matching = candidates[first_in_column]

        column_has_candidate = np.zeros(self.config.columns, dtype=bool)
        column_has_candidate[candidate_columns] = True
        unmatched_columns = bursting_columns[~column_has_candidate[bursting_columns]]
        new_segment_cells = self._least_used_cells(unmatched_columns)

        punished = matching[~column_is_active[matching_columns]]
        winner_cells = np.concatenate((correct_cells, store.cell[best_matching], new_segment_cells))
        return winner_cells, (np.concatenate((reinforced, best_matching)), new_segment_cells, punished)

    def _least_used_cells(self, columns: np.ndarray) -> np.ndarray:
        """Per column, the cell with the fewest segments of all kinds, ties to a random one."""
        cells_per_column = self.config.cells_per_column
        cells = columns[:, None] * cells_per_column + np.arange(cells_per_column)
        counts = sum(store.segments_per_cell[cells] for store in self.segments.values())
        keys = counts + self.rng.random(cells.shape) * 0.5
        return cells[np.arange(columns.size), np.argmin(keys, axis=1)] if columns.size else columns

    def _learn_basal(self, learning_segments: np.ndarray, new_segment_cells: np.ndarray, punished: np.ndarray) -> None:
        config = self.config
        store = self.segments["basal"]
        activity = self._dendrites["basal"]
        store.adapt(learning_segments, activity.input_mask, config.permanence_increment, config.permanence_decrement)
        store.last_used[learning_segments] = self.iteration
        self._grow_to_target(store, learning_segments, activity)
        if config.predicted_segment_decrement > 0:
            store.adapt(punished, activity.input_mask, -config.predicted_segment_decrement, 0.0)
        if activity.growth_candidates.size:
            for cell in new_segment_cells:
                segment = store.create(int(cell), self.iteration)
                store.grow(segment, activity.growth_candidates, config.new_synapse_count, config.initial_permanence, self.rng)

    def _grow_to_target(self, store: DendriteSegments, segments: np.ndarray, activity: _DendriteActivity) -> None:
        """Each learning segment grows synapses until new_synapse_count of them see active bits."""
        if activity.growth_candidates.size == 0:
            return
        potential = activity.potential_counts
        for segment in segments:
            missing = self.config.new_synapse_count - int(potential[segment])
            if missing > 0:
                store.grow(int(segment), activity.growth_candidates, missing, self.config.initial_permanence, self.rng)

    def _learn_modulatory(self, kind: str, winner_cells: np.ndarray, column_is_active: np.ndarray) -> None:
        """Apical or feedback learning on the winner cells (see the module docstring)."""
        config = self.config
        store = self.segments[kind]
        activity = self._dendrites[kind]
        matching = activity.matching_segments
        matching_cells = store.cell[matching]
        cell_is_winner = np.zeros(config.num_cells, dtype=bool)
        cell_is_winner[winner_cells] = True
        on_winners = cell_is_winner[matching_cells]
        candidates = matching[on_winners]
        order = np.lexsort((candidates, -activity.potential_counts[candidates], store.cell[candidates]))
        candidates = candidates[order]
        first_of_cell = np.ones(candidates.size, dtype=bool)
        candidate_cells = store.cell[candidates]
        first_of_cell[1:] = candidate_cells[1:] != candidate_cells[:-1]
        learning = candidates[first_of_cell]

        store.adapt(learning, activity.input_mask, config.permanence_increment, config.permanence_decrement)
        store.last_used[learning] = self.iteration
        self._grow_to_target(store, learning, activity)
        if config.predicted_segment_decrement > 0:
            punished = matching[~column_is_active[matching_cells // config.cells_per_column]]
            store.adapt(punished, activity.input_mask, -config.predicted_segment_decrement, 0.0)
        if activity.growth_candidates.size:
            cell_is_winner[candidate_cells] = False  # winner cells are distinct
            for cell in np.sort(winner_cells[cell_is_winner[winner_cells]]):
                segment = store.create(int(cell), self.iteration)
                store.grow(segment, activity.growth_candidates, config.new_synapse_count, config.initial_permanence, self.rng)
