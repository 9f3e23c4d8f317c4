"""HIMA's HTM neocortex: the spatial pooler's sparsity, similarity and homeostasis; the temporal
memory's sequence learning, high-order disambiguation, apical tiebreak, punishment and state."""

import numpy as np
import pytest

from wanderlust.agents.hima import SpatialPooler, SpatialPoolerConfig, TemporalMemory, TemporalMemoryConfig

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
