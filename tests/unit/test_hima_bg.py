"""HIMA's basal ganglia and empowerment (wanderlust.agents.hima.basal_ganglia, .empowerment)."""

import itertools
import math

import numpy as np
import pytest

from wanderlust.agents.hima import (
    BasalGanglia,
    BasalGangliaConfig,
    DualBasalGanglia,
    DualBasalGangliaConfig,
    TransitionMemory,
    TransitionMemoryConfig,
    end_position_counts,
    exact_empowerment,
)

pytestmark = pytest.mark.unit

STIMULUS = np.arange(5)
ARMS = [np.array([0, 1, 2]), np.array([3, 4, 5])]


def _two_armed(config: BasalGangliaConfig, reward_probability: tuple[float, float], trials: int = 1000) -> np.ndarray:
    """Choices of a basal ganglia on a one-step two-armed task (each trial ends the episode)."""
    bg = BasalGanglia(config)
    rng = np.random.default_rng(1)
    choices = np.empty(trials, dtype=np.int64)
    for trial in range(trials):
        arm = bg.choose(STIMULUS, ARMS)
        reward = float(rng.random() < reward_probability[arm])
        bg.update(STIMULUS, ARMS[arm], reward)
        choices[trial] = arm
    return choices


def test_deterministic_two_armed_task_matches_the_softmax_over_disinhibited_bits():
    # Converged: the rewarded arm's bits have value 1/3, the other's 0, so GPi inhibits the other
    # arm's 3 bits with probability 1 and the rewarded arm's with 0; the thalamus then picks the
    # rewarded arm with probability softmax(β · [3, 0]) (mixed with ε).
    softmax_beta, epsilon = 1.0, 0.0
    choices = _two_armed(BasalGangliaConfig(10, 6, softmax_beta=softmax_beta, epsilon=epsilon), (0.0, 1.0))
    expected = (1 - epsilon) / (1 + math.exp(-softmax_beta * 3)) + epsilon / 2
    frequency = np.mean(choices[-200:] == 1)
    tolerance = 4 * math.sqrt(expected * (1 - expected) / 200)
    assert frequency > 0.8
    assert abs(frequency - expected) < tolerance, (frequency, expected)


def test_stochastic_two_armed_task_prefers_the_better_arm():
    choices = _two_armed(BasalGangliaConfig(10, 6), (0.2, 0.8))
    assert np.mean(choices[-200:] == 1) > 0.8


def test_striatum_weights_move_with_the_sign_of_the_td_error():
    bg = BasalGanglia(BasalGangliaConfig(4, 6, alpha=0.1, beta=0.1))
    stimulus, response = np.array([1, 3]), np.array([2, 4])
    touched = np.zeros((4, 6), dtype=bool)
    touched[np.ix_(stimulus, response)] = True

    delta = bg.update(stimulus, response, reward=1.0)  # terminal: δ = 1/2 − 0 per bit
    np.testing.assert_allclose(delta, [0.5, 0.5])
    np.testing.assert_allclose(bg.striatum.d1[touched], 0.05)
    np.testing.assert_allclose(bg.striatum.d2[touched], -0.05)
    assert not bg.striatum.d1[~touched].any() and not bg.striatum.d2[~touched].any()

    delta = bg.update(stimulus, response, reward=-1.0)  # δ = −1/2 − 0.1
    np.testing.assert_allclose(delta, [-0.6, -0.6])
    np.testing.assert_allclose(bg.striatum.d1[touched], 0.05 - 0.06)
    np.testing.assert_allclose(bg.striatum.d2[touched], -0.05 + 0.06)


@pytest.mark.parametrize("off_policy", [True, False])
def test_td_error_discounts_the_next_value_by_gamma_to_the_k(off_policy):
    bg = BasalGanglia(BasalGangliaConfig(2, 2, discount=0.9, off_policy=off_policy))
    bg.striatum.d1[0, 0] = 0.1  # value of response [0] at stimulus [0]
    bg.striatum.d1[1] = [0.5, 0.2]  # next values: response [0] → 0.5, [1] → 0.2
    delta = bg.update([0], [0], 1.0, next_stimulus=[1], next_responses=[[0], [1]], k=3, next_response=1)
    next_value = 0.5 if off_policy else 0.2
    np.testing.assert_allclose(delta, [1.0 + 0.9**3 * next_value - 0.1])


def test_gpi_inhibition_probabilities_are_min_max_normalised_and_fall_with_value():
    bg = BasalGanglia(BasalGangliaConfig(20, 12, seed=3))
    rng = np.random.default_rng(0)
    bg.striatum.d1[:] = rng.normal(size=(20, 12))
    bg.striatum.d2[:] = rng.normal(size=(20, 12))
    responses = [np.arange(3 * a, 3 * a + 3) for a in range(4)]
    for _ in range(5):
        stimulus = rng.choice(20, size=6, replace=False)
        bg.choose(stimulus, responses)
        probabilities = bg.inhibition_probabilities
        assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
        assert probabilities.min() == 0.0 and probabilities.max() == pytest.approx(1.0)
        values = bg.striatum.bit_values(np.unique(stimulus))
        order = np.argsort(values)
        assert np.all(np.diff(probabilities[order]) <= 1e-12)  # higher value, less inhibition
        np.testing.assert_allclose(bg.probabilities.sum(), 1.0)


def test_untrained_basal_ganglia_inhibits_nothing():
    bg = BasalGanglia(BasalGangliaConfig(10, 6))
    bg.choose(STIMULUS, ARMS)
    assert not bg.inhibition_probabilities.any()
    np.testing.assert_array_equal(bg.response_activity, [3, 3])


def test_dual_priorities_fall_by_0_9_on_disappointment_and_rise_by_1_2_capped_at_1():
    bg = DualBasalGanglia(DualBasalGangliaConfig(10, 6))
    assert bg.priority_extrinsic == 1.0 and bg.priority_intrinsic == 0.0
    bg.update(STIMULUS, ARMS[0], reward=1.0)  # δ > 0: stays at the cap
    assert bg.priority_extrinsic == 1.0
    bg.update(STIMULUS, ARMS[0], reward=0.0)  # δ = −(α+β)/3 per bit < −0.01
    assert bg.td_error.sum() < -0.01
    assert bg.priority_extrinsic == pytest.approx(0.9)
    assert bg.priority_intrinsic == pytest.approx(0.1)
    bg.update(STIMULUS, ARMS[0], reward=0.0)
    assert bg.priority_extrinsic == pytest.approx(0.81)
    bg.update(STIMULUS, ARMS[0], reward=1.0)
    assert bg.priority_extrinsic == pytest.approx(0.81 * 1.2)
    bg.update(STIMULUS, ARMS[0], reward=1.0)
    assert bg.priority_extrinsic == 1.0
    assert bg.priority_extrinsic + bg.priority_intrinsic == 1.0


def test_reward_modulated_priority_by_hand():
    """The "reward" rule, its running mean, max and min computed by hand for three updates."""
    bg = DualBasalGanglia(DualBasalGangliaConfig(10, 6, priority_rule="reward"))
    bg.update(STIMULUS, ARMS[0], reward=-0.01)  # below the mean 0: slow smoothing; a new minimum
    assert bg.reward_mean == pytest.approx(-0.01 * 0.002)
    assert bg.reward_min == pytest.approx(0.01 * bg.reward_mean) and bg.reward_max == 0.0
    assert bg.priority_extrinsic == 0.0 and bg.intrinsic_gate == pytest.approx(0.999)  # no reward seen yet
    bg.update(STIMULUS, ARMS[0], reward=1.0)  # above the mean: fast smoothing; a new maximum
    mean = 0.9 * (-0.01 * 0.002) + 0.1
    minimum = 0.999 * 0.01 * (-0.01 * 0.002)
    assert bg.reward_mean == pytest.approx(mean) and bg.reward_min == pytest.approx(minimum)
    assert bg.reward_max == pytest.approx(0.01 * mean)
    assert bg.priority_extrinsic == 1.0 and bg.intrinsic_gate == 1.0  # (m − μ) / M clipped at 1
    bg.update(STIMULUS, ARMS[0], reward=-0.01)  # the mean falls slowly and still lies above the max
    next_mean = 0.998 * mean - 0.01 * 0.002
    assert bg.reward_mean == pytest.approx(next_mean)
    assert bg.reward_max == pytest.approx(0.99 * 0.01 * mean + 0.01 * next_mean)
    assert bg.reward_min == pytest.approx(0.999 * minimum)


def test_reward_modulation_hands_control_to_the_intrinsic_striatum_when_rewards_stop():
    bg = DualBasalGanglia(DualBasalGangliaConfig(10, 6, priority_rule="reward"))
    for _ in range(20):  # a goal every 5 steps
        for reward in (-0.005, -0.005, -0.005, -0.005, 1.0):
            bg.update(STIMULUS, ARMS[0], reward=reward)
    assert bg.priority_extrinsic == 1.0
    priorities = []
    for _ in range(2000):  # the goal moved: step costs only
        bg.update(STIMULUS, ARMS[0], reward=-0.005)
        priorities.append(bg.priority_extrinsic)
    # Full control for a while, then it passes to the intrinsic striatum: half by 1000 steps, and
    # most of it by 2000 (the td_error rule's stalls in the four-rooms scenario last 20 000 steps).
    assert priorities[99] == 1.0 and priorities[999] < 0.5 and priorities[-1] < 0.2
    assert all(a >= b for a, b in zip(priorities, priorities[1:]))  # it only falls
    # The td_error rule, on the same rewards, keeps the extrinsic striatum in control.
    td = DualBasalGanglia(DualBasalGangliaConfig(10, 6))
    for _ in range(20):
        for reward in (-0.005, -0.005, -0.005, -0.005, 1.0):
            td.update(STIMULUS, ARMS[0], reward=reward)
    for _ in range(2000):
        td.update(STIMULUS, ARMS[0], reward=-0.005)
    assert td.priority_extrinsic > 0.9


def test_fixed_priorities_choose_by_the_extrinsic_striatum_alone():
    fixed = DualBasalGanglia(DualBasalGangliaConfig(10, 6, priority_rule="fixed"))
    for reward in (0.0, 0.0, -1.0, 1.0, -1.0):  # disappointments and successes move nothing
        fixed.update(STIMULUS, ARMS[0], reward=reward, reward_intrinsic=-5.0)
        assert fixed.priority_extrinsic == 1.0 and fixed.priority_intrinsic == 0.0
    assert fixed.intrinsic.d2.any()  # the intrinsic striatum learned, but has no say
    np.testing.assert_array_equal(fixed.response_values(STIMULUS, ARMS), fixed.extrinsic.response_values(STIMULUS, ARMS))
    # GPi reads the extrinsic striatum alone: inhibition = min-max of d2 − d1 over its bits.
    fixed.choose(STIMULUS, ARMS)
    d1, d2 = fixed.extrinsic.activity(STIMULUS)
    gpi = d2 - d1
    np.testing.assert_allclose(fixed.inhibition_probabilities, (gpi - gpi.min()) / (gpi.max() - gpi.min() + 1e-12))


def test_striatum_scales_weight_the_selection():
    config = DualBasalGangliaConfig(10, 6, priority_rule="reward", intrinsic_scale=0.1, extrinsic_scale=2.0)
    bg = DualBasalGanglia(config)
    bg.priority_extrinsic = 0.25
    bg.update(STIMULUS, ARMS[1], reward=0.0, reward_intrinsic=3.0)
    bg.priority_extrinsic, bg.intrinsic_gate = 0.25, 0.5
    values = bg.response_values(STIMULUS, ARMS)
    expected = (2.0 * 0.25 * bg.extrinsic.response_values(STIMULUS, ARMS)
                + 0.5 * 0.1 * 0.75 * bg.intrinsic.response_values(STIMULUS, ARMS))
    np.testing.assert_allclose(values, expected)
    assert values[1] != 0


def test_dual_intrinsic_striatum_learns_at_its_own_rate():
    bg = DualBasalGanglia(DualBasalGangliaConfig(10, 6))
    bg.update(STIMULUS, ARMS[1], reward=0.0, reward_intrinsic=3.0)
    np.testing.assert_allclose(bg.intrinsic.d1[np.ix_(STIMULUS, ARMS[1])], 0.01 * 1.0)
    np.testing.assert_allclose(bg.extrinsic.d1, 0.0)


# ----------------------------------------------------------------------------------- empowerment

def _walls(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


OPEN_ROOM = _walls(["#######"] + ["#.....#"] * 5 + ["#######"])
ROOM_WITH_DEAD_END = _walls(["#######", "#.....#", "#.....#", "#.....#", "###.###", "###.###", "#######"])
MIDDLE, DEAD_END = (2, 3), (5, 3)


def test_exact_empowerment_by_hand():
    assert exact_empowerment(OPEN_ROOM, (3, 3), horizon=1) == pytest.approx(math.log2(4))
    assert exact_empowerment(OPEN_ROOM, (3, 3), horizon=1, include_stay=True) == pytest.approx(math.log2(5))
    # h = 2 from the middle: 16 sequences end back home 4×, on the 4 diagonals 2× each and 2 cells
    # away 1× each: H = 1/4·2 + 4·1/8·3 + 4·1/16·4 = 3 bits.
    assert exact_empowerment(OPEN_ROOM, (3, 3), horizon=2) == pytest.approx(3.0)
    enclosed = _walls(["###", "#.#", "###"])
    assert exact_empowerment(enclosed, (1, 1), horizon=4) == 0.0


def test_exact_empowerment_is_lower_in_a_dead_end():
    middle = exact_empowerment(ROOM_WITH_DEAD_END, MIDDLE, horizon=4)
    dead_end = exact_empowerment(ROOM_WITH_DEAD_END, DEAD_END, horizon=4)
    assert dead_end < middle - 1.0


@pytest.mark.parametrize("include_stay", [False, True])
def test_end_position_counts_match_enumerating_every_sequence(include_stay):
    moves = ((0, 1), (1, 0), (0, -1), (-1, 0), (0, 0))[: 5 if include_stay else 4]
    walls = ROOM_WITH_DEAD_END
    for start in [(1, 1), MIDDLE, DEAD_END]:
        expected = np.zeros(walls.shape, dtype=np.int64)
        for sequence in itertools.product(moves, repeat=3):
            row, column = start
            for d_row, d_column in sequence:
                if not walls[row + d_row, column + d_column]:
                    row, column = row + d_row, column + d_column
            expected[row, column] += 1
        np.testing.assert_array_equal(end_position_counts(walls, start, 3, include_stay), expected)


def test_exact_empowerment_reads_an_env():
    from wanderlust.envs.gridworld import GridWorldEnv

    env = GridWorldEnv("four_rooms_9x9")
    env.reset(seed=0)
    assert exact_empowerment(env) == exact_empowerment(env.wall_mask(), env.agent)


def _trained_tm_empowerment(action_bits: int, steps: int = 1500) -> tuple[TransitionMemory, callable]:
    walls = ROOM_WITH_DEAD_END
    cells = [tuple(int(i) for i in cell) for cell in np.argwhere(~walls)]
    index = {cell: i for i, cell in enumerate(cells)}
    bits = 6

    def sdr(cell):
        return index[cell] * bits + np.arange(bits)

    model = TransitionMemory(TransitionMemoryConfig(state_size=len(cells) * bits, state_active_bits=bits,
                                                    action_bits=action_bits))
    moves = ((0, 1), (1, 0), (0, -1), (-1, 0))
    rng = np.random.default_rng(0)
    position = MIDDLE
    for _ in range(steps):
        action = int(rng.integers(4))
        target = (position[0] + moves[action][0], position[1] + moves[action][1])
        next_position = position if walls[target] else target
        model.learn(sdr(position), action, sdr(next_position))
        position = next_position
    return model, sdr


@pytest.mark.parametrize("action_bits", [0, 4])
def test_tm_empowerment_counts_the_reachable_cells_and_ranks_like_the_exact_value(action_bits):
    model, sdr = _trained_tm_empowerment(action_bits)
    for cell in (MIDDLE, DEAD_END):
        for horizon in (1, 4):
            support = np.count_nonzero(end_position_counts(ROOM_WITH_DEAD_END, cell, horizon))
            assert model.estimate(sdr(cell), horizon) == pytest.approx(math.log2(support)), (cell, horizon)
    middle, dead_end = model.estimate(sdr(MIDDLE), 4), model.estimate(sdr(DEAD_END), 4)
    assert middle - dead_end > 0.5
    assert exact_empowerment(ROOM_WITH_DEAD_END, MIDDLE) > exact_empowerment(ROOM_WITH_DEAD_END, DEAD_END)


def test_untrained_tm_empowerment_is_zero():
    model = TransitionMemory(TransitionMemoryConfig(state_size=60, state_active_bits=6))
    assert model.estimate(np.arange(6), 4) == 0.0


@pytest.mark.parametrize("statistic", ["median", "mean"])
@pytest.mark.parametrize("sizes", [(20, 20, 20), (4, 4), (5, 5, 5), (3, 7, 0, 3), (6,)])
def test_response_summaries_equal_the_statistic_of_each_response_exactly(statistic, sizes):
    """Responses of one size are summarised in one NumPy call; the values must be exactly those of
    summarising each response on its own (np.median / np.mean), and 0 for an empty response."""
    from wanderlust.agents.hima.basal_ganglia import _summaries

    rng = np.random.default_rng(len(sizes) * 100 + sum(sizes))
    values = rng.normal(size=64)
    responses = [np.sort(rng.choice(64, size, replace=False)) for size in sizes]
    summarise = np.median if statistic == "median" else np.mean
    expected = [float(summarise(values[r])) if r.size else 0.0 for r in responses]
    assert _summaries(values, responses, statistic).tolist() == expected
