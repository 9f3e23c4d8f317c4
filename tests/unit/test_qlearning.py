"""Tabular Q(λ), HIMA's baseline: its update, its traces, its exploration and its checkpoints."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from fakes import Corridor

from wanderlust.agents.qlearning import QLearning, QLearningConfig
from wanderlust.run.cli import main

pytestmark = pytest.mark.unit


def agent(exploration="egreedy", num_envs=1, **overrides) -> QLearning:
    config = QLearningConfig(exploration=exploration, steps_per_iteration=1, **overrides)
    return QLearning(config, Corridor(num_envs=num_envs, length=4, max_steps=20), total_frames=10_000, seed=0)


def test_one_step_update_is_the_q_learning_rule():
    learner = agent(learning_rate=0.5, gamma=0.9, trace_decay=0.0, epsilon=0.0)
    learner.q[:] = 0.0
    start = learner.states[0]
    learner.act = lambda states: np.ones(len(states), dtype=np.int64)  # always right
    learner.iterate()
    after = learner.states[0]
    # r = 0, next max Q = 0: nothing to learn yet; now give the next state a value
    learner.q[after] = [0.0, 2.0, 0.0]
    learner.q[start] = [0.0, 1.0, 0.0]
    learner.states[0] = start
    learner.env.position[:] = 0
    learner.iterate()
    # δ = 0 + 0.9 · 2 − 1 = 0.8; Q ← 1 + 0.5 · 0.8
    assert learner.q[start, 1] == pytest.approx(1.4)


def test_traces_carry_the_reward_back_along_the_episode():
    with_traces, without = agent(trace_decay=0.9, epsilon=0.0), agent(trace_decay=0.0, epsilon=0.0)
    for learner in (with_traces, without):
        learner.act = lambda states: np.ones(len(states), dtype=np.int64)
        for _ in range(4):  # four moves right reach the end of the corridor
            learner.iterate()
    first_state = with_traces.index[bytes(Corridor(num_envs=1).reset()[0][0].tobytes())]
    # with λ the first move already earned part of the reward; without, only the last one did
    assert with_traces.q[first_state, 1] == pytest.approx(0.1 * (0.99 * 0.9) ** 3)
    assert without.q[first_state, 1] == 0.0
    assert (without.q > 0).sum() == 1


def test_an_exploratory_action_cuts_the_traces():
    learner = agent(trace_decay=0.9, epsilon=0.0)
    learner.q[:] = 0.0
    learner.q[:, 0] = 0.5  # "stay" is greedy everywhere
    moves = iter([1, 1])
    learner.act = lambda states: np.array([next(moves, 0)])  # right (exploratory), right, then stay
    learner.iterate()
    assert learner.traces[0] == {}  # the next action (right) was not greedy: Watkins cuts the trace
    state = learner.states[0]
    learner.iterate()  # right again, and the next action (stay) is greedy: the trace decays by γλ
    assert learner.traces[0] == {(state, 1): pytest.approx(0.99 * 0.9)}


def test_ucb_tries_every_action_of_a_state_before_repeating_one():
    learner = agent(exploration="ucb")
    state = learner.states[:1]
    tried = []
    for _ in range(3):
        action = int(learner.act(state)[0])
        tried.append(action)
        learner.visits[state[0], action] += 1
    assert sorted(tried) == [0, 1, 2]


def test_softmax_follows_the_values():
    learner = agent(exploration="softmax", temperature=0.1)
    state = learner.states[:1]
    learner.q[state[0]] = [0.0, 1.0, 0.0]
    choices = np.array([learner.act(state)[0] for _ in range(300)])
    assert (choices == 1).mean() > 0.95  # e^10 : 1 : 1


def test_it_learns_the_corridor():
    learner = QLearning(QLearningConfig(exploration="egreedy", epsilon=0.1, steps_per_iteration=50), Corridor(4, 4, 20), 10_000, seed=1)
    returns = []
    for _ in range(20):
        returns += learner.iterate()["episodes"]["episode_return"]
    assert np.mean(returns[-20:]) > 0.8  # ε-greedy at 0.1 still reaches the end in 4 moves
    start = learner.states[0]
    assert int(np.argmax(learner.q[start])) == 1


def test_state_round_trips_through_a_checkpoint():
    learner = agent(exploration="softmax", num_envs=2)
    for _ in range(30):
        learner.iterate()
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    restored = agent(exploration="softmax", num_envs=2)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    size = len(learner.keys)
    assert restored.keys == learner.keys and np.array_equal(restored.q[:size], learner.q[:size])
    assert np.array_equal(restored.visits[:size], learner.visits[:size]) and restored.frames == learner.frames
    states = learner.states
    assert np.array_equal(restored.act(states), learner.act(states))  # the same random stream


def test_cli_trains_and_resumes_on_a_grid_world_and_refuses_a_bonus(tmp_path, capsys):
    run_dir = tmp_path / "q"
    args = ["train", "--algo", "qlearning", "--bonus", "none", "--env", "wanderlust/GridWorld-FourRooms9x9-v0",
            "--num-envs", "2", "--frames", "2000", "--run-dir", str(run_dir)]
    assert main(args) == 0
    assert main(["train", "--resume", str(run_dir), "--frames", "3000"]) == 0
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"rooms", "episode_rooms", "states", "td_error"} <= set(header)
    assert main(["train", "--algo", "qlearning", "--bonus", "rnd", "--env", "wanderlust/GridWorld-FourRooms9x9-v0", "--run-dir", str(tmp_path / "x")]) == 2
    assert "use --bonus none" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["eval", str(run_dir)]) == 2


def test_a_row_shows_a_gauge_at_its_last_iteration_not_its_mean(tmp_path):
    """Four iterations a row: `states` (the table's size, still growing) is the size at the row's end."""
    import csv

    from wanderlust.run import checkpoint

    run_dir = tmp_path / "run"
    args = ["train", "--algo", "qlearning", "--env", "wanderlust/GridWorld-FourRooms18x18-v0", "--num-envs", "1",
            "--frames", "512", "--set", "log.interval=4", "--run-dir", str(run_dir)]
    assert main(args) == 0
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    saved = checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))["agent"]
    assert len(rows) == 1 and float(rows[0]["states"]) == len(saved["observations"])
