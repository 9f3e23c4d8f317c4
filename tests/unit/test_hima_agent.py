"""The assembled HIMA agent (wanderlust/agents/hima/agent.py) and its dreaming (dreaming.py)."""

import io
from dataclasses import replace

import numpy as np
import pytest
import torch

import wanderlust.envs as envs
from wanderlust.agents.hima import (
    HIMA,
    ClusterTransition,
    DreamingConfig,
    HIMAConfig,
    Level2Config,
    StateClusters,
    StateScalarModel,
    TransitionMemory,
    dream,
    dream_probability,
    rollout,
)
from wanderlust.envs.gridworld import GridWorldEnv
from wanderlust.envs.vector import EpisodeStatistics, GymnasiumBackend

FOUR_ROOMS = "wanderlust/GridWorld-FourRooms9x9-v0"
METRICS = (
    "anomaly", "intrinsic_reward", "empowerment", "extrinsic_priority", "td_error",
    "dreams", "dream_rollouts", "dream_length",
)


def four_rooms_agent(seed=0, max_steps=20, **config):
    env = envs.make(FOUR_ROOMS, 1, seed, max_steps=max_steps)
    return HIMA(HIMAConfig(**config), env, total_frames=10_000, seed=seed)


# ------------------------------------------------------------------ the learner interface


def test_iterate_counts_frames_and_reports_episodes_and_metrics():
    agent = four_rooms_agent(steps_per_iteration=64)
    assert agent.warmup() == 0
    results = [agent.iterate() for _ in range(2)]
    assert agent.frames == 128 and agent.iteration == 2
    lengths = results[0]["episodes"]["episode_length"] + results[1]["episodes"]["episode_length"]
    # 20-step episodes (or shorter, at the goal), each followed by the auto-reset step.
    assert len(lengths) >= 128 // 21
    assert all(1 <= length <= 20 for length in lengths)
    assert sum(lengths) + len(lengths) >= 128 - 21
    for result in results:
        assert len(result["episodes"]["episode_return"]) == len(result["episodes"]["episode_length"])
        assert set(METRICS) <= set(result["metrics"])
        assert all(type(value) is float for value in result["metrics"].values())
    assert agent.reports_rooms and agent.rooms_seen


def test_one_env_only_and_a_valid_boost_range():
    with pytest.raises(ValueError, match="num_envs=1"):
        HIMA(HIMAConfig(), envs.make(FOUR_ROOMS, 2, 0), total_frames=100)
    with pytest.raises(ValueError, match="feedback_boost_range"):
        Level2Config(feedback_boost_range=[0.8, 0.0])


def _assert_same(a, b, path="state"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


@pytest.mark.parametrize("model", ["clusters", "visual_memory"])
def test_state_dict_round_trips_through_torch_load_and_continues_identically(model):
    # The dreaming gate opened wide (anomaly < 1.01), so that the young memory's dreams happen and
    # the agent's own rng is part of what must continue identically.
    dreamer = DreamingConfig(anomaly_threshold=1.01, model=model)
    agent = four_rooms_agent(steps_per_iteration=128, max_steps=200, dreamer=dreamer)
    agent.iterate()
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    twin = four_rooms_agent(steps_per_iteration=128, max_steps=200, seed=0, dreamer=dreamer)
    twin.load_state_dict(saved)
    _assert_same(twin.state_dict(), saved)
    assert twin.memory.segments["basal"].size > 0 and np.abs(twin.basal_ganglia.extrinsic.d1).sum() > 0

    # Both restart from the same checkpoint: the same actions, episodes and learned arrays follow.
    agent.load_state_dict(saved)
    first, second = agent.iterate(), twin.iterate()
    assert first["metrics"]["dreams"] > 0  # so the agent's own rng mattered too
    assert first == second
    _assert_same(agent.state_dict(), twin.state_dict())
    if model == "clusters":
        assert len(twin.clusters) > 0 and twin.dream_memory.memory.segments["basal"].size > 0
    other = four_rooms_agent(dreamer=DreamingConfig(model="visual_memory" if model == "clusters" else "clusters"))
    with pytest.raises(ValueError, match="dreams ran on"):
        other.load_state_dict(saved)


def test_without_dreaming_a_checkpoint_loads_whatever_its_dream_model():
    agent = four_rooms_agent(steps_per_iteration=64, dreaming=False, dreamer=DreamingConfig(model="visual_memory"))
    agent.iterate()
    saved = agent.state_dict()
    twin = four_rooms_agent(steps_per_iteration=64, dreaming=False)  # the "clusters" model
    twin.load_state_dict(saved)
    agent.load_state_dict(saved)
    assert agent.iterate() == twin.iterate()


def test_state_dict_round_trips_with_the_hierarchy_on():
    agent = four_rooms_agent(steps_per_iteration=160, max_steps=60, hierarchy=True)
    agent.iterate()
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert len(agent.level2.options) > 0 and agent.level2.motor_memory.segments["feedback"].size > 0

    twin = four_rooms_agent(steps_per_iteration=160, max_steps=60, seed=0, hierarchy=True)
    twin.load_state_dict(saved)
    _assert_same(twin.state_dict(), saved)
    assert twin.level2.options.codes and all(
        np.array_equal(a, b) for a, b in zip(twin.level2.options.codes, agent.level2.options.codes)
    )
    agent.load_state_dict(saved)
    first, second = agent.iterate(), twin.iterate()
    assert first == second and first["metrics"]["option_length"] > 0
    _assert_same(agent.state_dict(), twin.state_dict())


def test_empowerment_off_gives_zero_intrinsic_reward():
    agent = four_rooms_agent(steps_per_iteration=96, empowerment=False)
    metrics = agent.iterate()["metrics"]
    assert metrics["intrinsic_reward"] == 0.0 and metrics["empowerment"] == 0.0
    assert not agent.basal_ganglia.intrinsic.d1.any() and not agent.basal_ganglia.intrinsic.d2.any()
    assert agent.empowerment.memory.segments["basal"].size == 0
    # One striatum in effect, as the seed's agent without intrinsic reward: the priorities stay
    # fixed at both levels (the reward rule would hand control to the empty intrinsic striatum).
    assert metrics["extrinsic_priority"] == 1.0 and agent.basal_ganglia.config.priority_rule == "fixed"
    assert agent.level2.basal_ganglia.config.priority_rule == "fixed"
    # ...while on, the same run has a positive empowerment, an intrinsic reward below 0 (E − 10
    # bits, and E is at most 2h = 8 bits), an intrinsic striatum that learned and moving priorities.
    on = four_rooms_agent(steps_per_iteration=256, max_steps=200)
    metrics = on.iterate()["metrics"]
    assert metrics["empowerment"] > 0.0 and metrics["intrinsic_reward"] < 0.0
    assert on.basal_ganglia.intrinsic.d2.any() and on.basal_ganglia.config.priority_rule == "reward"


def test_intrinsic_offset_shifts_the_reward_and_makes_tried_actions_look_worse():
    seeded = four_rooms_agent(steps_per_iteration=256, max_steps=200, dreaming=False)
    plain = four_rooms_agent(steps_per_iteration=256, max_steps=200, dreaming=False, intrinsic_offset=0.0)
    m_seeded, m_plain = seeded.iterate()["metrics"], plain.iterate()["metrics"]
    # r = E + offset, in bits (the metrics are step means); the default is the seed's −10.
    assert m_seeded["intrinsic_reward"] == pytest.approx(m_seeded["empowerment"] - 10.0)
    assert m_plain["intrinsic_reward"] == pytest.approx(m_plain["empowerment"]) and m_plain["intrinsic_reward"] > 0.0
    # The intrinsic striatum learned negative values for what it tried (D1 down, D2 up), and
    # positive ones without the offset.
    values_seeded = seeded.basal_ganglia.intrinsic.d1 - seeded.basal_ganglia.intrinsic.d2
    values_plain = plain.basal_ganglia.intrinsic.d1 - plain.basal_ganglia.intrinsic.d2
    assert values_seeded.min() < 0.0 and values_seeded.max() <= 0.0
    assert values_plain.max() > 0.0


# ------------------------------------------------------------------ dreaming


def test_dream_probability_thresholds_and_formula():
    config = DreamingConfig()
    # Inside the gate the formula exceeds the cap, so the probability is the cap.
    assert dream_probability(0.2, 0.0, config) == pytest.approx(0.12)
    assert dream_probability(-0.005, 0.399, config) == pytest.approx(0.12)
    assert dream_probability(0.2001, 0.0, config) == 0.0  # reward above 0.2
    assert dream_probability(0.0, 0.4, config) == 0.0  # anomaly not below 0.4
    open_gate = DreamingConfig(anomaly_threshold=1.01, max_probability=1.0)
    assert dream_probability(0.0, 0.25, open_gate) == pytest.approx(1.0)
    assert dream_probability(0.0, 0.7, open_gate) == pytest.approx((0.3 / 0.75) ** 1.3)
    assert dream_probability(0.0, 1.0, open_gate) == 0.0
    capped = DreamingConfig(anomaly_threshold=1.01, max_probability=0.2)
    assert dream_probability(0.0, 0.7, capped) == pytest.approx(0.2)


class StubTransition:
    """Predicts the states of a script, one per imagined step, from the start again after each
    restore; records saves and restores."""

    def __init__(self, states):
        self.states = [np.asarray(s) for s in states]
        self.step = 0
        self.events = []

    def save_state(self):
        self.events.append("save")
        return "saved"

    def restore_state(self, state):
        self.events.append(("restore", state))
        self.step = 0

    def predict(self, action):
        return self.states[self.step]

    def advance(self, state):
        assert np.isin(state, self.states[self.step]).all()
        self.step += 1

    def snap(self, state):
        return state


def stub_models(states, rewards=None, anomalies=None):
    """Reward and anomaly models with per-state values (bits 10(k+1).. of state k)."""
    size = 10 * (len(states) + 2)
    reward_model = StateScalarModel(size, 0.0, 0.1)
    anomaly_model = StateScalarModel(size, 0.0, 0.1, actions=2)
    for k, state in enumerate(states):
        reward_model.values[state] = (rewards or {}).get(k, 0.0)
        anomaly_model.values[state, 0] = (anomalies or {}).get(k, 0.0)
    return reward_model, anomaly_model


def run_stub_rollout(states, rewards=None, anomalies=None, max_length=15):
    """One rollout over `states` with action 0 throughout; returns it and what was learned."""
    learned = []

    def learn(state, action, reward, next_state):
        learned.append((reward, next_state is None))

    models = stub_models(states, rewards, anomalies)
    result = rollout(np.arange(10), StubTransition(states), lambda state: 0, learn, *models,
                     DreamingConfig(max_length=max_length), np.random.default_rng(0))
    return result, learned


def chain(n, size=10):
    return [np.arange(10 * (k + 1), 10 * (k + 1) + size) for k in range(n)]


def test_rollout_stops_when_predicted_reward_exceeds_threshold():
    result, learned = run_stub_rollout(chain(6), rewards={2: 0.31})
    assert (result.depth, result.length, result.stop) == (3, 3, "reward")
    assert learned == [(0.0, False), (0.0, False), (pytest.approx(0.31), True)]
    result, _ = run_stub_rollout(chain(20), rewards={2: 0.3})  # not above 0.3: goes on
    assert result.stop == "length"


def test_rollout_stops_when_prediction_thins():
    states = chain(20)
    states[3] = states[3][:5]  # 5 of the start's 10 bits: below 0.6
    result, learned = run_stub_rollout(states)
    assert (result.depth, result.length, result.stop) == (4, 3, "thin") and len(learned) == 3
    states[3] = np.arange(40, 46)  # 6 bits: exactly 0.6, not below
    assert run_stub_rollout(states)[0].stop == "length"


def test_rollout_stops_on_anomaly_of_the_action_taken_and_at_max_length():
    result, learned = run_stub_rollout(chain(5), anomalies={1: 0.71})
    assert (result.depth, result.length, result.stop) == (2, 1, "anomaly") and len(learned) == 1
    result, _ = run_stub_rollout(chain(20), anomalies={1: 0.7})
    assert result.stop == "length"
    result, learned = run_stub_rollout(chain(20), max_length=15)
    assert (result.depth, result.length, result.stop) == (15, 15, "length") and len(learned) == 15


def test_rollout_subsamples_a_prediction_larger_than_1_2_times_the_start():
    states = chain(4)
    states[1] = np.arange(20, 40)  # 20 bits, twice the start's 10
    seen = []
    result = rollout(np.arange(10), StubTransition(states), lambda state: 0,
                     lambda state, action, reward, next_state: seen.append(next_state), *stub_models(states),
                     DreamingConfig(max_length=3), np.random.default_rng(0))
    assert result.length == 3
    kept = seen[1]
    assert len(kept) == 12 and np.isin(kept, states[1]).all() and np.all(np.diff(kept) > 0)


def test_scalar_model_takes_the_median_per_action():
    model = StateScalarModel(6, 1.0, 0.5, actions=2)
    model.values[:, 0] = [0.0, 0.0, 0.9, 0.0, 0.0, 0.0]
    assert model.predict(np.array([0, 1, 2]), 0) == 0.0  # the mean would be 0.3
    assert model.predict(np.array([0, 1, 2]), 1) == 1.0  # the other action: untouched
    model.learn(np.array([3, 4]), 0.0, action=1)
    assert model.values[3, 1] == model.values[4, 1] == 0.5 and model.values[3, 0] == 0.0
    assert model.predict(np.array([], dtype=int)) == 1.0
    with pytest.raises(ValueError, match="shape"):
        model.load_values(np.zeros(6))


@pytest.mark.parametrize("thin_at, rollouts", [(None, 12), (4, 12), (3, 3), (0, 3)])
def test_dream_runs_3_rollouts_and_more_while_they_average_4_6_steps(thin_at, rollouts):
    """Depth d continues the dream while d^0.6 >= 2.5: d = 5 (2.63) does, d = 4 (2.30) does not."""
    states = chain(20)
    if thin_at is not None:
        states[thin_at] = states[thin_at][:3]
    transition = StubTransition(states)
    learned = []
    models, config = stub_models(states), DreamingConfig()
    result = dream(transition, lambda: rollout(np.arange(10), transition, lambda state: 0,
                                               lambda *step: learned.append(step), *models, config,
                                               np.random.default_rng(0)), config)
    assert len(result.rollouts) == rollouts
    depth = 15 if thin_at is None else thin_at + 1
    assert all(r.depth == depth for r in result.rollouts)
    assert result.length == len(learned) == rollouts * (depth if thin_at is None else depth - 1)
    # Saved once, restored before each further rollout and at the end.
    assert transition.events == ["save"] + [("restore", "saved")] * rollouts


def test_dream_rollout_counts_are_configurable():
    states = chain(20)
    transition, models = StubTransition(states), stub_models(states)
    config = DreamingConfig(min_rollouts=1, max_rollouts=2)
    result = dream(transition, lambda: rollout(np.arange(10), transition, lambda state: 0, lambda *step: None,
                                               *models, config, np.random.default_rng(0)), config)
    assert len(result.rollouts) == 2
    with pytest.raises(ValueError, match="min_rollouts"):
        DreamingConfig(min_rollouts=4, max_rollouts=3)


@pytest.mark.parametrize("model", ["clusters", "visual_memory"])
def test_agent_dream_leaves_the_waking_memories_exactly_as_they_were(model):
    agent = four_rooms_agent(steps_per_iteration=128, max_steps=200, dreamer=DreamingConfig(model=model))
    agent.iterate()
    memory = agent.memory
    before, start = memory.save_state(), agent.transition.save_state()
    predictions = []
    predict = agent.transition.predict
    agent.transition.predict = lambda action: predictions.append(action) or predict(action)
    values_before = agent.basal_ganglia.extrinsic.d1.copy()
    dreams, dream_steps = agent._metrics["dreams"], agent._metrics["dream_steps"]
    agent._dream()
    assert predictions, "the dream ran no imagined step"
    after = memory.save_state()
    for name in ("active_cells", "winner_cells", "predictive_cells", "predictive_mask"):
        assert np.array_equal(getattr(before, name), getattr(after, name)), name
    assert before.anomaly == after.anomaly and before.iteration == after.iteration
    assert before.rng_state == after.rng_state
    for kind, activity in before.dendrites.items():
        for name, value in vars(activity).items():
            assert np.array_equal(value, getattr(after.dendrites[kind], name)), (kind, name)
    if model == "clusters":  # the dream model is back at the real state
        assert np.array_equal(agent.transition.save_state(), start)
        assert np.array_equal(start, agent.dream_state)
    assert agent._metrics["dreams"] == dreams + 1
    if agent._metrics["dream_steps"] > dream_steps:
        assert not np.array_equal(values_before, agent.basal_ganglia.extrinsic.d1)  # learned inside


@pytest.mark.parametrize("update_priorities", [True, False])
def test_dreams_drive_the_priorities_unless_told_not_to(update_priorities):
    agent = four_rooms_agent(steps_per_iteration=64, max_steps=200,
                             dreamer=DreamingConfig(update_priorities=update_priorities))
    agent.iterate()
    start = agent.dream_state
    # Every imagined step predicts the start again and reads as a goal (reward 1).
    agent.transition = StubTransition([start] * 20)
    agent.reward_model.values[:] = 1.0
    agent.anomaly_model.values[:] = 0.0
    bg = agent.basal_ganglia
    before, values_before = bg.priority_state, bg.extrinsic.d1.copy()
    agent._dream()
    assert not np.array_equal(values_before, bg.extrinsic.d1)  # the striatum learned either way
    assert (bg.priority_state != before) == update_priorities
    if update_priorities:  # the imagined goal rewards raised the reward rule's running mean
        assert bg.reward_mean > before[2]


# ------------------------------------------------------------------ the "clusters" dream model


def _clusters(capacity=10):
    return StateClusters(size=100, active_bits=10, input_size=3, similarity=0.7, decay=0.9, capacity=capacity)


def test_state_clusters_take_a_code_with_0_7_of_their_density_and_start_new_ones_below():
    clusters = _clusters()
    first, second = np.array([1, 0, 0], bool), np.array([0, 1, 0], bool)
    assert clusters.learn(np.arange(10), first) == 0
    assert clusters.learn(np.arange(3, 13), second) == 0  # 7 of its 10 bits: 0.7 of the density
    # Decayed by 0.9, the other 0.1 spread over the code's bits; unit mass.
    np.testing.assert_allclose(clusters.density[0, [0, 3, 10, 13]], [0.09, 0.1, 0.01, 0.0])
    assert clusters.density[0].sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(clusters.state(0), np.arange(10))  # the ten densest bits
    np.testing.assert_array_equal(clusters.inputs[0], second)  # the last observation it took in
    assert clusters.learn(np.arange(50, 60), first) == 1
    assert clusters.learn(np.arange(5, 15), first) == 2  # 5 × 0.1 + 3 × 0.01 = 0.53 of cluster 0
    assert len(clusters) == 3


def test_state_clusters_snap_a_prediction_to_its_cluster_and_follow_a_drifting_code():
    clusters = _clusters()
    bits = np.ones(3, bool)
    clusters.learn(np.arange(10), bits)
    clusters.learn(np.arange(50, 60), bits)
    np.testing.assert_array_equal(clusters.snap(np.arange(2, 12)), np.arange(10))  # 0.8 of cluster 0
    np.testing.assert_array_equal(clusters.snap(np.arange(52, 60)), np.arange(50, 60))  # 0.8 of cluster 1
    np.testing.assert_array_equal(clusters.snap(np.arange(54, 60)), np.arange(54, 60))  # 0.6: no cluster
    assert clusters.match(np.array([], dtype=np.int64)) is None
    for _ in range(30):  # the code drifts three bits: the cluster follows it
        assert clusters.learn(np.arange(3, 13), bits) == 0
    np.testing.assert_array_equal(clusters.state(0), np.arange(3, 13))


def test_state_clusters_replace_the_least_recently_used_when_full():
    clusters = _clusters(capacity=2)
    bits = np.ones(3, bool)
    clusters.learn(np.arange(10), bits)
    clusters.learn(np.arange(50, 60), bits)
    clusters.learn(np.arange(10), bits)  # cluster 0 used again
    assert clusters.learn(np.arange(80, 90), bits) == 1 and len(clusters) == 2
    np.testing.assert_array_equal(clusters.state(1), np.arange(80, 90))
    np.testing.assert_array_equal(clusters.state(0), np.arange(10))
    twin = _clusters(capacity=2)
    twin.load_state_dict(clusters.state_dict())
    np.testing.assert_array_equal(twin.density, clusters.density)
    assert twin.clock == clusters.clock
    with pytest.raises(ValueError, match="bits"):
        StateClusters(50, 10, 3, 0.7, 0.9, 2).load_state_dict(clusters.state_dict())


def _dream_transition_memory():
    return TransitionMemory(replace(DreamingConfig().transition_memory, state_size=100, num_actions=4))


def test_dream_transition_memory_predicts_a_transition_after_one_sight_for_its_action_only():
    memory = _dream_transition_memory()
    state, next_state = np.arange(20), np.arange(40, 60)
    assert memory.learn(state, 2, next_state) == 1.0  # unseen: nothing was predicted
    np.testing.assert_array_equal(memory.successors(state, 2), next_state)
    assert memory.successors(state, 1).size == 0
    # 15 of the state's 20 bits and the action's 20 reach the 35 of 40 synapses; 14 do not.
    np.testing.assert_array_equal(memory.successors(np.arange(15), 2), next_state)
    assert memory.successors(np.arange(14), 2).size == 0
    assert memory.learn(state, 2, next_state) == 0.0


def test_a_rollout_in_the_clusters_model_follows_learned_transitions_to_an_imagined_goal():
    a, b, goal = np.arange(20), np.arange(20, 40), np.arange(40, 60)
    clusters = StateClusters(100, 20, 3, 0.7, 0.9, 10)
    for code in (a, b, goal):
        clusters.learn(code, np.ones(3, bool))
    memory = _dream_transition_memory()
    memory.learn(a, 0, b)
    memory.learn(b, 0, goal)
    reward_model, anomaly_model = StateScalarModel(100, 0.0, 1.0), StateScalarModel(100, 1.0, 1.0, actions=4)
    reward_model.learn(goal, 1.0)
    for code in (b, goal):
        anomaly_model.learn(code, 0.0, action=0)
    transition = ClusterTransition(memory, clusters)
    transition.advance(a)
    learned = []
    config = DreamingConfig(min_rollouts=1, max_rollouts=1)
    result = dream(transition, lambda: rollout(
        a, transition, lambda state: 0, lambda *step: learned.append(step), reward_model, anomaly_model,
        config, np.random.default_rng(0),
    ), config)
    assert [(r.depth, r.length, r.stop) for r in result.rollouts] == [(2, 2, "reward")]
    np.testing.assert_array_equal(learned[0][3], b)
    assert learned[1][2] == 1.0 and learned[1][3] is None
    np.testing.assert_array_equal(transition.state, a)  # back at the start
    # Action 1 was never taken from a: its prediction is empty, the rollout stops at once.
    result = rollout(a, transition, lambda state: 1, lambda *step: None, reward_model, anomaly_model, config,
                     np.random.default_rng(0))
    assert (result.depth, result.stop) == (1, "thin")


def test_dream_model_must_be_known():
    with pytest.raises(ValueError, match="model must be one of"):
        DreamingConfig(model="world")
    with pytest.raises(ValueError, match="cluster_similarity"):
        DreamingConfig(cluster_similarity=0.0)


def test_dreaming_switch():
    agent = four_rooms_agent(steps_per_iteration=200, max_steps=200, dreaming=False)
    assert agent.iterate()["metrics"]["dreams"] == 0.0


# ------------------------------------------------------------------ level 2 (hierarchy.py)


def test_level2_steps_only_at_option_boundaries():
    agent = four_rooms_agent(steps_per_iteration=300, max_steps=50, hierarchy=True)
    level2 = agent.level2
    option_at_level2_step, ended, level1_choices = [], [], []
    choose, boundary, record = level2._choose, level2._boundary, level2.record

    def spy_choose(state):
        option_at_level2_step.append(level2.option)
        choose(state)

    def spy_boundary(*args, **kwargs):
        ended.append(level2.option)
        boundary(*args, **kwargs)

    def spy_record(action):
        level1_choices.append(action)
        record(action)

    level2._choose, level2._boundary, level2.record = spy_choose, spy_boundary, spy_record
    episodes = agent.iterate()["episodes"]
    # A level-2 step happens only at an episode's start (no option) or once the option has ended.
    assert option_at_level2_step and all(option is None or option.done for option in option_at_level2_step)
    assert all(option.done or len(option.actions) for option in ended)
    assert level2.steps == len(option_at_level2_step)
    # Every level-1 choice belongs to exactly one option, and options run several steps.
    lengths = [len(option.actions) for option in ended]
    assert sum(lengths) + len(level2.option.actions) == len(level1_choices) > 250
    assert all(1 <= length <= level2.config.max_option_length for length in lengths)
    assert level2.steps < len(level1_choices) / 1.5
    # The level-2 blocks saw one state per boundary (and at episode ends), not one per step.
    assert level2.visual_pooler.iteration <= level2.steps + len(episodes["episode_length"]) + 1
    assert level2.basal_ganglia._pathway.steps <= level2.steps


def test_option_feedback_boosts_exactly_the_actions_of_its_predicted_pattern():
    agent = four_rooms_agent(hierarchy=True, level2=Level2Config(feedback_boost_range=[0.5, 0.5]))
    level2 = agent.level2
    right, down, left, up = range(4)
    level2._learn_executed([right, right, down])  # the option "right, right, down"
    assert len(level2.options) == 1
    columns = agent.pooler.compute(agent.first_observation.reshape(-1) != 0, learn=False)

    # Through the agent: the level-1 thalamus adds boost × the best score to the boosted action
    # only (untrained, nothing is inhibited: every action scores its 3 bits).
    agent._choose(columns)
    np.testing.assert_allclose(agent.basal_ganglia.response_activity, [3 + 0.5 * 3, 3, 3, 3])

    # Step by step: the option's pattern follows its sequence, then runs out (level 1 alone).
    level2.option = None
    np.testing.assert_array_equal(level2.boost(columns), [0.5, 0, 0, 0])
    level2.record(right)
    np.testing.assert_array_equal(level2.boost(columns), [0.5, 0, 0, 0])
    level2.record(right)
    np.testing.assert_array_equal(level2.boost(columns), [0, 0.5, 0, 0])
    level2.record(down)
    assert not level2.option.done
    np.testing.assert_array_equal(level2.boost(columns), [0, 0, 0, 0])
    level2.record(left)
    level2.record(up)
    assert level2.option.done and level2.option.actions == [right, right, down, left, up]

    # An action outside the predicted pattern ends the option after that step.
    level2.end_episode(columns, terminated=True)
    level2.boost(columns)
    chosen = level2.options.codes[level2.option.index]
    level2.option.predicted_actions = np.array([right])
    level2.record(up)
    assert level2.option.done and len(level2.option.actions) == 1 and chosen.size


def _episodes_and_weights(**config):
    agent = four_rooms_agent(steps_per_iteration=300, max_steps=40, **config)
    episodes = agent.iterate()["episodes"]
    return episodes, agent.basal_ganglia.extrinsic.d1.copy(), agent


def test_a_zero_boost_range_leaves_level_1_choices_as_without_the_hierarchy():
    plain, plain_weights, _ = _episodes_and_weights(hierarchy=False)
    zero, zero_weights, agent = _episodes_and_weights(hierarchy=True, level2=Level2Config(feedback_boost_range=[0.0, 0.0]))
    assert agent.level2.steps > 10 and len(agent.level2.options) > 1
    assert zero == plain and np.array_equal(zero_weights, plain_weights)
    # ...while a boost changes them.
    boosted, boosted_weights, _ = _episodes_and_weights(hierarchy=True, level2=Level2Config(feedback_boost_range=[0.8, 0.8]))
    assert not np.array_equal(boosted_weights, plain_weights)


# ------------------------------------------------------------------ learning


class FixedTaskGridWorld(GridWorldEnv):
    """A grid world whose every episode has the same start and goal."""

    def __init__(self, start, goal, **kwargs):
        super().__init__(**kwargs)
        self.task = (start, goal)

    def _draw_episode(self):
        return self.task


def fixed_task_env(seed):
    # The empty 8×8 map; the goal 5 steps east of the start, out of view at the start.
    make_one = lambda: FixedTaskGridWorld((1, 1), (1, 6), map_name="empty", max_steps=100)  # noqa: E731
    return EpisodeStatistics(GymnasiumBackend([make_one], seed))


@pytest.mark.parametrize("model", [
    "visual_memory",
    pytest.param("clusters", marks=pytest.mark.xfail(strict=True, reason=(
        "dreams in the seed's cluster model slow the learning of this small task: median of the last "
        "10 episodes within 1200 steps 12.0 over seeds 0-7, against 7.4 with visual-memory dreams and 7.2 "
        "without dreams (docs/hima.md, Dreaming); they help on the swap scenario"))),
])
def test_hima_learns_a_fixed_goal(model):
    """Episodes shorten within 1200 steps, with HIMAConfig's defaults but for the dream model
    (docs/hima.md, "The agent" and "Dreaming"); the default model is the expected failure."""
    config = HIMAConfig(steps_per_iteration=100, hierarchy=False, dreamer=DreamingConfig(model=model))
    agent = HIMA(config, fixed_task_env(seed=3), total_frames=1200, seed=3)
    lengths = []
    while agent.frames < 1200:
        lengths += agent.iterate()["episodes"]["episode_length"]
    assert len(lengths) >= 30
    first, last = np.mean(lengths[:10]), np.mean(lengths[-10:])
    assert last < 0.5 * first and last <= 9, (first, last)


def test_hima_with_the_hierarchy_runs_a_short_learning_run():
    agent = HIMA(HIMAConfig(steps_per_iteration=100, hierarchy=True), fixed_task_env(seed=3), total_frames=600, seed=3)
    lengths, metrics = [], []
    while agent.frames < 600:
        result = agent.iterate()
        lengths += result["episodes"]["episode_length"]
        metrics.append(result["metrics"])
    assert lengths and agent.level2.steps > 0 and len(agent.level2.options) > 0
    assert all(type(value) is float for row in metrics for value in row.values())
    assert {"option_length", "options", "options_used", "feedback_boost", "level2_anomaly"} <= set(metrics[-1])
    assert max(row["feedback_boost"] for row in metrics) > 0
