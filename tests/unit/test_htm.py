"""HIMA's HTM neocortex: the spatial pooler's sparsity, similarity and homeostasis; the temporal
memory's sequence learning, high-order disambiguation, apical tiebreak, punishment and state."""

import numpy as np
import pytest

from wanderlust.agents.hima import SpatialPooler, SpatialPoolerConfig, TemporalMemory, TemporalMemoryConfig
from wanderlust.agents.hima.temporal_memory import DendriteSegments

pytestmark = pytest.mark.unit

INPUT_BITS, INPUT_ACTIVE = 400, 40
COLUMNS, ACTIVE_COLUMNS = 1000, 20


def sdr(rng, size=COLUMNS, active=ACTIVE_COLUMNS):
    return np.sort(rng.choice(size, active, replace=False))


def with_noise(bits, flipped, rng, size=INPUT_BITS):
    """`bits` with `flipped` of its active bits moved to random inactive positions."""
    inactive = np.setdiff1d(np.arange(size), bits)
    kept = rng.choice(bits, bits.size - flipped, replace=False)
    return np.concatenate((kept, rng.choice(inactive, flipped, replace=False)))


def code_overlap(a, b):
    return np.intersect1d(a, b).size / ACTIVE_COLUMNS


# ---------------------------------------------------------------- spatial pooler


def test_pooler_output_has_exactly_the_set_sparsity():
    rng = np.random.default_rng(0)
    pooler = SpatialPooler(SpatialPoolerConfig(input_size=INPUT_BITS, seed=0))
    for step in range(200):
        active = pooler.compute(sdr(rng, INPUT_BITS, int(rng.integers(10, 120))), learn=step % 2 == 0)
        assert active.size == ACTIVE_COLUMNS
        assert np.all(np.diff(active) > 0)


def test_pooler_accepts_indices_and_binary_vectors_alike():
    rng = np.random.default_rng(1)
    pooler = SpatialPooler(SpatialPoolerConfig(input_size=INPUT_BITS, seed=1))
    bits = sdr(rng, INPUT_BITS, INPUT_ACTIVE)
    dense = np.zeros(INPUT_BITS, dtype=np.uint8)
    dense[bits] = 1
    from_indices = pooler.compute(bits, learn=False)
    assert np.array_equal(from_indices, pooler.compute(dense, learn=False))
    assert np.array_equal(from_indices, pooler.compute(dense.astype(bool), learn=False))


def test_similar_inputs_share_codes_and_unrelated_ones_do_not():
    # Seen on seeds 0-2: inputs sharing 90 % of their bits get codes overlapping 0.56-0.58 on
    # average; unrelated inputs 0.023-0.027, where chance is 20/1000 = 0.02. An SP that ignores its
    # input scores ~0.02 on both; one that copies noise into the code scores low on the first.
    rng = np.random.default_rng(2)
    pooler = SpatialPooler(SpatialPoolerConfig(input_size=INPUT_BITS, seed=2))
    similar, unrelated = [], []
    for _ in range(50):
        bits = sdr(rng, INPUT_BITS, INPUT_ACTIVE)
        code = pooler.compute(bits, learn=False)
        similar.append(code_overlap(code, pooler.compute(with_noise(bits, 4, rng), learn=False)))
        unrelated.append(code_overlap(code, pooler.compute(sdr(rng, INPUT_BITS, INPUT_ACTIVE), learn=False)))
    assert np.mean(similar) > 0.4
    # Unrelated inputs themselves share 40/400 = 10 % of their bits by chance: the codes must not
    # overlap more than that.
    assert np.mean(unrelated) < 0.1


def test_learning_makes_a_repeated_inputs_code_stable_and_robust():
    # Without boosting, so that only the Hebbian learning acts. Seen on seeds 0-2: the code's
    # overlap with the code of a 30 %-noisy copy rises from 0.30-0.36 to 0.59-0.63 in 30 steps.
    rng = np.random.default_rng(3)
    pooler = SpatialPooler(SpatialPoolerConfig(input_size=INPUT_BITS, seed=3, boost_strength=0.0))
    bits = sdr(rng, INPUT_BITS, INPUT_ACTIVE)

    def robustness():
        reference = pooler.compute(bits, learn=False)
        noisy = [pooler.compute(with_noise(bits, 12, rng), learn=False) for _ in range(20)]
        return np.mean([code_overlap(reference, code) for code in noisy])

    before = robustness()
    codes = [pooler.compute(bits, learn=True) for _ in range(30)]
    after = robustness()
    assert all(np.array_equal(code, codes[-1]) for code in codes[-10:])
    assert after > before + 0.15


def test_boosting_wakes_up_columns_that_never_win():
    # Five inputs cycled for 300 steps: without boosting the same ~96 columns win every time; with
    # strong boosting the losers' boost factors grow until ~420 distinct columns have won.
    rng = np.random.default_rng(4)
    inputs = [sdr(rng, INPUT_BITS, INPUT_ACTIVE) for _ in range(5)]
    ever_active = {}
    for boost_strength in (0.0, 10.0):
        pooler = SpatialPooler(SpatialPoolerConfig(input_size=INPUT_BITS, seed=4, boost_strength=boost_strength))
        won = np.zeros(COLUMNS, dtype=bool)
        for step in range(300):
            won[pooler.compute(inputs[step % 5], learn=True)] = True
        ever_active[boost_strength] = won.sum()
        if boost_strength > 0:
            assert pooler.boost_factors[~won].min() > 1.0
    assert ever_active[10.0] > 2 * ever_active[0.0]


def test_pooler_is_deterministic_under_a_seed():
    outputs = []
    for _ in range(2):
        rng = np.random.default_rng(5)
        pooler = SpatialPooler(SpatialPoolerConfig(input_size=INPUT_BITS, seed=5))
        outputs.append([pooler.compute(sdr(rng, INPUT_BITS, INPUT_ACTIVE), learn=True) for _ in range(30)])
    assert all(np.array_equal(a, b) for a, b in zip(*outputs))


def brute_force_local_winners(pooler):
    """Local inhibition by its definition, column by column, from the last compute's overlaps."""
    config = pooler.config
    positions = np.stack(np.unravel_index(np.arange(config.columns), pooler.column_dimensions))
    scores = np.where(
        pooler.overlaps >= config.stimulus_threshold,
        pooler.overlaps * pooler.boost_factors + pooler._tie_breaker,
        -np.inf,
    )
    winners = []
    for column in range(config.columns):
        distance = np.abs(positions - positions[:, [column]])
        if config.wrap_around:
            distance = np.minimum(distance, np.array(pooler.column_dimensions)[:, None] - distance)
        neighbours = np.flatnonzero(distance.max(axis=0) <= pooler.inhibition_radius)
        neighbours = neighbours[neighbours != column]
        k = max(1, round(config.density * (neighbours.size + 1)))
        if np.isfinite(scores[column]) and (scores[neighbours] > scores[column]).sum() < k:
            winners.append(column)
    return np.array(winners, dtype=np.int64)


@pytest.mark.parametrize("columns, density", [(COLUMNS, 0.02), (1004, 0.15)])
def test_local_inhibition_with_a_radius_covering_all_columns_is_global_inhibition(columns, density):
    # The computed radius stays below half the ring (receptive fields never span the whole input),
    # so it is pinned before every step; learning then keeps both poolers in the same state.
    # 1004 × 0.15 = 150.6 → 151 winners, where 1003 × 0.15 would give 150: the neighbourhood's size
    # counts the column itself.
    rng = np.random.default_rng(6)
    poolers = [
        SpatialPooler(SpatialPoolerConfig(
            input_size=INPUT_BITS, columns=columns, density=density, seed=6, global_inhibition=flag, boost_strength=5.0,
        ))
        for flag in (True, False)
    ]
    for step in range(60):
        bits = sdr(rng, INPUT_BITS, int(rng.integers(5, 120)))
        poolers[1].inhibition_radius = columns // 2
        codes = [pooler.compute(bits, learn=step % 3 != 2) for pooler in poolers]
        assert np.array_equal(codes[0], codes[1])
    assert np.array_equal(poolers[0].permanences, poolers[1].permanences)
    assert len(np.unique(poolers[0].boost_factors)) > 2  # the scores were boosted, not bare overlaps


@pytest.mark.parametrize(
    "dimensions",
    [dict(), dict(wrap_around=False), dict(column_dimensions=(25, 40), input_dimensions=(20, 20))],
    ids=["ring", "line", "2d-torus"],
)
def test_local_winners_are_the_top_of_their_neighbourhoods(dimensions):
    rng = np.random.default_rng(7)
    config = SpatialPoolerConfig(
        input_size=INPUT_BITS, seed=7, global_inhibition=False, potential_radius=6, boost_strength=3.0, **dimensions
    )
    pooler = SpatialPooler(config)
    checked = 0
    for step in range(40):
        bits = sdr(rng, INPUT_BITS, int(rng.integers(20, 160)))
        active = pooler.compute(bits, learn=step % 2 == 0)
        if step % 2 == 1:
            assert 0 < pooler.inhibition_radius < max(pooler.column_dimensions) // 2
            assert np.array_equal(active, brute_force_local_winners(pooler))
            checked += active.size
    assert checked > 0


def test_local_inhibition_spreads_winners_over_the_columns():
    # A line of 200 columns over 200 inputs, each column connected to the 11 inputs around it. The
    # left half of the input is all on, the right half has every 4th bit: global inhibition gives all
    # 20 winners to the left block (overlap 11 beats 2-3); local inhibition (radius 5) lets the
    # right half's columns win their own neighbourhoods too.
    bits = np.concatenate((np.arange(100), np.arange(100, 200, 4)))
    codes = {}
    for flag in (True, False):
        pooler = SpatialPooler(SpatialPoolerConfig(
            input_size=200, columns=200, density=0.1, seed=8, global_inhibition=flag, potential_radius=5,
            potential_pct=1.0, initial_permanence_spread=0.0, wrap_around=False,
        ))
        codes[flag] = pooler.compute(bits, learn=False)
        if not flag:
            assert pooler.inhibition_radius == 5
    assert codes[True].size == 20 and codes[True].max() < 100
    right = codes[False][codes[False] >= 110]
    assert right.size >= 5
    assert np.diff(right).min() > 5  # at most one winner per neighbourhood (k = round(0.1 · 11) = 1)


def test_inhibition_radius_from_the_connected_spans():
    def pooler_with(connections, **kwargs):
        pooler = SpatialPooler(SpatialPoolerConfig(input_size=50, columns=100, global_inhibition=False, **kwargs))
        pooler.permanences[:] = 0.0
        for column, inputs in enumerate(connections):
            pooler.permanences[column, inputs] = 1.0
        return pooler

    # Half the columns span 3 inputs, half span 8 (two inputs 7 apart): mean 5.5 × 2 columns per
    # input = diameter 11, radius (11 − 1) / 2 = 5.
    connections = [[c % 40, c % 40 + 1, c % 40 + 2] for c in range(50)] + [[c % 40, c % 40 + 7] for c in range(50)]
    assert pooler_with(connections, wrap_around=False).update_inhibition_radius() == 5
    # Inputs 0 and 49 are 2 apart around the ring (diameter 4, radius 1.5 → 2) but span all 50 on a
    # line (diameter 100, radius 49.5 → 50).
    ends = [[0, 49]] * 100
    assert pooler_with(ends, wrap_around=True).update_inhibition_radius() == 2
    assert pooler_with(ends, wrap_around=False).update_inhibition_radius() == 50
    # 2-D: 10×10 columns over 5×10 inputs (2 and 1 columns per input, mean 1.5); each column connects
    # a 3-row × 2-column block: spans (3, 2), mean 2.5, diameter 3.75, radius 1.375 → 1.
    pooler = SpatialPooler(SpatialPoolerConfig(
        input_size=50, columns=100, column_dimensions=(10, 10), input_dimensions=(5, 10), global_inhibition=False,
    ))
    pooler.permanences[:] = 0.0
    block = np.zeros((5, 10), dtype=bool)
    block[1:4, 2:4] = True
    pooler.permanences[:, block.ravel()] = 1.0
    assert np.array_equal(pooler.connected_spans()[0], [3, 2])
    assert pooler.update_inhibition_radius() == 1
    # Radius 1 on the torus: 8 neighbours each.
    near, k = pooler.neighbourhood()
    assert (near.sum(axis=1) == 8).all() and (k == 1).all()


def test_potential_pools_lie_around_each_columns_input_position():
    pooler = SpatialPooler(SpatialPoolerConfig(input_size=100, columns=200, potential_radius=4, wrap_around=False))
    for column in (0, 57, 199):
        centre = int((column + 0.5) * 100 / 200)
        pool = np.flatnonzero(pooler.potential[column])
        assert np.abs(pool - centre).max() <= 4
        window = min(99, centre + 4) - max(0, centre - 4) + 1
        assert pool.size == int(np.floor(0.5 * window + 0.5))


@pytest.mark.parametrize(
    "fields",
    [
        dict(column_dimensions=(30, 30)),
        dict(input_dimensions=(7, 7)),
        dict(column_dimensions=(20, 50), input_dimensions=(100,)),
        dict(column_dimensions=(10, 10, 10), input_dimensions=(4, 5, 5)),
        dict(potential_radius=-1),
    ],
)
def test_pooler_config_rejects_topologies_that_do_not_fit(fields):
    with pytest.raises(ValueError):
        SpatialPooler(SpatialPoolerConfig(input_size=100, global_inhibition=False, **fields))


# ---------------------------------------------------------------- temporal memory


def run_sequence(memory, sequence, learn, **inputs):
    memory.reset()
    anomalies = []
    for columns in sequence:
        memory.compute(columns, learn, **inputs)
        anomalies.append(memory.anomaly)
    return anomalies


def test_repeated_sequence_is_learned_and_predicted():
    rng = np.random.default_rng(10)
    sequence = [sdr(rng) for _ in range(4)]
    memory = TemporalMemory(TemporalMemoryConfig(seed=10))
    for _ in range(10):
        anomalies = run_sequence(memory, sequence, learn=True)
    # The first element follows a reset, so nothing can predict it.
    assert anomalies[0] == 1.0
    assert max(anomalies[1:]) < 0.05
    memory.reset()
    for current, following in zip(sequence[:-1], sequence[1:]):
        memory.compute(current, learn=False)
        assert np.array_equal(memory.predicted_columns, following)
        # One cell per column: the sequence's context, not a burst.
        assert memory.predictive_cells.size == ACTIVE_COLUMNS


def test_untrained_memory_bursts():
    rng = np.random.default_rng(11)
    memory = TemporalMemory(TemporalMemoryConfig(seed=11))
    columns = sdr(rng)
    memory.compute(columns, learn=False)
    assert memory.anomaly == 1.0
    assert memory.active_cells.size == ACTIVE_COLUMNS * memory.config.cells_per_column


def test_high_order_sequences_are_disambiguated():
    # HIMA's punishment (0.001) unlearns the wrong prediction that forms while B-C is still
    # ambiguous only after hundreds of repetitions; 0.05 does it within the 10 used here.
    rng = np.random.default_rng(12)
    a, b, c, d, x, y = (sdr(rng) for _ in range(6))
    memory = TemporalMemory(TemporalMemoryConfig(seed=12, predicted_segment_decrement=0.05))
    for _ in range(10):
        run_sequence(memory, [a, b, c, d], learn=True)
        run_sequence(memory, [x, b, c, y], learn=True)
    context_cells = {}
    for first, last in ((a, d), (x, y)):
        run_sequence(memory, [first, b, c], learn=False)
        assert np.array_equal(memory.predicted_columns, last)
        context_cells[first[0]] = memory.active_cells.copy()
    # C is represented by other cells of the same columns in the two contexts.
    cells_after_a, cells_after_x = context_cells.values()
    assert np.array_equal(cells_after_a // 16, cells_after_x // 16)
    assert np.intersect1d(cells_after_a, cells_after_x).size == 0


def test_reset_clears_predictions():
    rng = np.random.default_rng(13)
    sequence = [sdr(rng) for _ in range(3)]
    memory = TemporalMemory(TemporalMemoryConfig(seed=13))
    for _ in range(5):
        run_sequence(memory, sequence, learn=True)
    memory.compute(sequence[0], learn=False)
    assert memory.predictive_cells.size > 0
    memory.reset()
    assert memory.predictive_cells.size == 0 and memory.active_cells.size == 0
    memory.compute(sequence[1], learn=False)
    assert memory.anomaly == 1.0


def test_apical_input_breaks_ties_between_predicted_cells():
    # A→C under apical context P, X→C under context Q: C gets one cell per column for each. After
    # A and X together (both burst), both of C's cells are predicted; the apical context keeps
    # only its own.
    rng = np.random.default_rng(14)
    a, c, x, apical_p, apical_q = (sdr(rng) for _ in range(5))
    memory = TemporalMemory(TemporalMemoryConfig(seed=14, apical_input_size=COLUMNS))
    for _ in range(4):
        run_sequence(memory, [a, c], learn=True, apical_input=apical_p)
        run_sequence(memory, [x, c], learn=True, apical_input=apical_q)
    cells_for = {}
    for first, apical in ((a, apical_p), (x, apical_q)):
        run_sequence(memory, [first, c], learn=False, apical_input=apical)
        cells_for[apical[0]] = memory.active_cells.copy()
    assert np.intersect1d(*cells_for.values()).size == 0

    both = np.union1d(a, x)
    run_sequence(memory, [both, c], learn=False)
    assert memory.anomaly == 0.0
    assert np.array_equal(memory.active_cells, np.union1d(*cells_for.values()))
    for apical in (apical_p, apical_q):
        memory.reset()
        memory.compute(both, learn=False, apical_input=apical)
        memory.compute(c, learn=False)
        assert np.array_equal(memory.active_cells, cells_for[apical[0]])


def test_feedback_segments_break_ties_and_report_their_own_prediction():
    rng = np.random.default_rng(15)
    a, c, x, feedback_p, feedback_q = (sdr(rng) for _ in range(5))
    memory = TemporalMemory(TemporalMemoryConfig(seed=15, feedback_input_size=COLUMNS))
    for _ in range(4):
        run_sequence(memory, [a, c], learn=True, feedback_input=feedback_p)
        run_sequence(memory, [x, c], learn=True, feedback_input=feedback_q)
    run_sequence(memory, [a, c], learn=False, feedback_input=feedback_p)
    cells_after_a = memory.active_cells.copy()
    memory.reset()
    memory.compute(np.union1d(a, x), learn=False, feedback_input=feedback_p)
    assert np.isin(cells_after_a, memory.feedback_predictive_cells).all()
    memory.compute(c, learn=False)
    assert np.array_equal(memory.active_cells, cells_after_a)


def test_external_basal_input_predicts_columns():
    # HIMA's blocks: the context comes from another block's SDR, not from this TM's own cells.
    rng = np.random.default_rng(16)
    contexts = [sdr(rng, 500, 20) for _ in range(3)]
    targets = [sdr(rng) for _ in range(3)]
    memory = TemporalMemory(TemporalMemoryConfig(seed=16, basal_input_size=500))
    for _ in range(4):
        for context, target in zip(contexts, targets):
            memory.depolarize(basal_input=context)
            memory.compute(target, learn=True)
    for context, target in zip(contexts, targets):
        memory.depolarize(basal_input=context)
        assert np.array_equal(memory.predicted_columns, target)


def test_punishment_lowers_the_permanences_of_wrong_predictions():
    rng = np.random.default_rng(17)
    a, b, other = (sdr(rng) for _ in range(3))
    other = np.setdiff1d(other, b)
    memory = TemporalMemory(TemporalMemoryConfig(seed=17, predicted_segment_decrement=0.05))
    for _ in range(4):
        run_sequence(memory, [a, b], learn=True)
    basal = memory.segments["basal"]
    b_segments = np.flatnonzero(np.isin(basal.cell[: basal.size] // 16, b))
    assert b_segments.size == b.size
    before = basal.permanence[b_segments].copy()
    in_use = np.arange(basal.max_synapses) < basal.synapse_count[b_segments, None]
    # A is now followed by something else: B's segments predicted wrongly. A burst after the reset,
    # so every synapse of theirs saw an active cell and loses exactly the punishment.
    run_sequence(memory, [a, other], learn=True)
    after = basal.permanence[b_segments]
    assert np.allclose((before - after)[in_use], 0.05, atol=1e-6)
    # Without learning, nothing changes.
    run_sequence(memory, [a, other], learn=False)
    assert np.array_equal(basal.permanence[b_segments], after)


def random_segments(rng, count=300, input_size=500, max_synapses=8):
    """Segments with 0..max_synapses synapses each, onto random bits at random permanences."""
    store = DendriteSegments(num_cells=200, input_size=input_size, max_synapses=max_synapses, max_segments_per_cell=255)
    for _ in range(count):
        segment = store.create(int(rng.integers(200)), iteration=0)
        store.grow(segment, rng.choice(input_size, 20, replace=False), int(rng.integers(max_synapses + 1)), 0.5, rng)
        used = store.synapse_count[segment]
        store.permanence[segment, :used] = rng.choice([0.0005, 0.2, 0.49999, 0.5, 0.8, 0.99], used).astype(np.float32)
    return store


def activity_by_definition(store, active, connected_threshold):
    """(connected active synapses, active synapses) per segment, read off each segment's used slots."""
    connected, potential = np.zeros(store.size, dtype=np.int64), np.zeros(store.size, dtype=np.int64)
    for segment in range(store.size):
        used = store.synapse_count[segment]
        sees = np.isin(store.presynaptic[segment, :used], active)
        potential[segment] = sees.sum()
        connected[segment] = (sees & (store.permanence[segment, :used] >= connected_threshold)).sum()
    return connected, potential


def test_segment_activity_counts_active_and_connected_synapses():
    rng = np.random.default_rng(5)
    store = random_segments(rng)
    active = rng.choice(store.input_size, 150, replace=False)
    connected, potential = store.activity(store.padded_mask(active), connected_threshold=0.5)
    expected_connected, expected_potential = activity_by_definition(store, active, 0.5)
    assert np.array_equal(connected, expected_connected) and np.array_equal(potential, expected_potential)
    assert potential.sum() > 0 and 0 < connected.sum() < potential.sum()


def test_indexed_activity_matches_a_pass_over_every_segment_as_segments_change():
    """The synapse index (rebuilt now and then, rows that moved since counted slot by slot) gives
    exactly the counts of the definition, through growth, shrinking, recycling and reloading."""
    rng = np.random.default_rng(11)
    store = DendriteSegments(num_cells=60, input_size=300, max_synapses=8, max_segments_per_cell=6)
    rebuilds = 0
    for step in range(400):
        for _ in range(int(rng.integers(4))):  # new segments; full cells recycle their oldest
            segment = store.create(int(rng.integers(60)), iteration=step)
            store.grow(segment, rng.choice(300, 12, replace=False), int(rng.integers(0, 9)), 0.5, rng)
        if store.size:
            touched = rng.choice(store.size, min(store.size, 5), replace=False)
            for segment in touched[:2]:  # growth, with overflow when the row is full
                store.grow(int(segment), rng.choice(300, 6, replace=False), 3, 0.45, rng)
            mask = store.padded_mask(rng.choice(300, 60, replace=False))
            store.adapt(touched, mask, increment=0.05, decrement=0.3)  # some synapses die
        if step == 250:
            saved = store.state_dict()
        if step == 300:  # back to step 250's segments
            store.load_state_dict(saved)
        active = rng.choice(300, int(rng.integers(1, 120)), replace=False)
        indexed_before = store._indexed_size
        connected, potential = store.activity(store.padded_mask(active), connected_threshold=0.5)
        rebuilds += store._indexed_size != indexed_before
        expected_connected, expected_potential = activity_by_definition(store, active, 0.5)
        assert np.array_equal(connected, expected_connected) and np.array_equal(potential, expected_potential), step
    assert store.size > 300 and rebuilds > 5
    assert store.segments_per_cell.max() == 6  # recycling happened


def test_adapt_moves_permanences_and_frees_dead_synapses_keeping_the_order():
    rng = np.random.default_rng(6)
    store = random_segments(rng)
    active = rng.choice(store.input_size, 150, replace=False)
    before = {s: list(zip(store.presynaptic[s, : store.synapse_count[s]], store.permanence[s, : store.synapse_count[s]]))
              for s in range(store.size)}
    learning = rng.choice(store.size, 100, replace=False)
    store.adapt(learning, store.padded_mask(active), increment=0.1, decrement=0.2)
    for segment in range(store.size):
        expected = before[segment]
        if segment in learning:
            moved = [(bit, min(1.0, max(0.0, p + (0.1 if bit in active else -0.2)))) for bit, p in expected]
            expected = [(bit, p) for bit, p in moved if p > 1e-6]
        used = store.synapse_count[segment]
        assert used == len(expected)
        assert store.presynaptic[segment, :used].tolist() == [bit for bit, _ in expected]
        assert np.allclose(store.permanence[segment, :used], [p for _, p in expected], atol=1e-6)
        assert (store.presynaptic[segment, used:] == store.input_size).all()
        assert (store.permanence[segment, used:] == 0).all()
    assert store.synapse_count[learning].sum() < sum(len(before[s]) for s in learning)  # some died


def test_save_and_restore_state_give_identical_continuations():
    def trained_memory():
        rng = np.random.default_rng(18)
        sequence = [sdr(rng) for _ in range(5)]
        novel = sdr(rng)
        memory = TemporalMemory(TemporalMemoryConfig(seed=18))
        for _ in range(3):
            run_sequence(memory, sequence, learn=True)
        memory.reset()
        memory.compute(sequence[0], learn=True)
        memory.compute(sequence[1], learn=True)
        return memory, sequence[2:] + [novel], rng

    memory, continuation, rng = trained_memory()
    saved = memory.save_state()
    # A "dream": other inputs without learning, whose bursts also draw winner cells from the rng.
    for _ in range(3):
        memory.compute(sdr(rng), learn=False)
    memory.restore_state(saved)
    dreamt = [(memory.compute(columns, learn=False).copy(), memory.winner_cells.copy()) for columns in continuation]

    twin, continuation, _ = trained_memory()
    awake = [(twin.compute(columns, learn=False).copy(), twin.winner_cells.copy()) for columns in continuation]
    for (cells, winners), (twin_cells, twin_winners) in zip(dreamt, awake):
        assert np.array_equal(cells, twin_cells) and np.array_equal(winners, twin_winners)


def test_memory_is_deterministic_under_a_seed():
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(19)
        memory = TemporalMemory(TemporalMemoryConfig(seed=19))
        steps = [memory.compute(sdr(rng), learn=True).copy() for _ in range(20)]
        runs.append(steps + [memory.winner_cells.copy()])
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
