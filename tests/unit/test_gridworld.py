"""HIMA's grid worlds (wanderlust/envs/gridworld.py): maps, window, moves, rewards, scenario.

The reference maps below are the seed's .map files (1 = wall) as published in cog-isa/htm-rl; the
env's ASCII layouts must agree with them cell for cell.
"""

from __future__ import annotations

import collections
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wanderlust.envs import gridworld, make, registry
from wanderlust.envs.gridworld import (
    GOAL,
    OUT_OF_BOUNDS,
    WALL,
    GridWorldEnv,
    floor_pattern,
    grid_map,
)

pytestmark = pytest.mark.unit

SEED_MAPS = {
    "four_rooms_9x9": """
        0 0 0 0 1 0 0 0 0
        0 0 0 0 0 0 0 0 0
        0 0 0 0 1 0 0 0 0
        0 0 0 0 1 0 0 0 0
        1 1 0 1 1 1 0 1 1
        0 0 0 0 1 0 0 0 0
        0 0 0 0 1 0 0 0 0
        0 0 0 0 0 0 0 0 0
        0 0 0 0 1 0 0 0 0
    """,
    "cross_11x11": "\n".join(
        ["1 1 1 1 1 0 1 1 1 1 1"] * 5 + ["0 0 0 0 0 0 0 0 0 0 0"] + ["1 1 1 1 1 0 1 1 1 1 1"] * 5
    ),
    "two_doors_11x11": "\n".join(
        ["0 0 0 0 0 0 0 0 0 0 0"] * 3 + ["1 1 1 0 1 1 1 0 1 1 1"] + ["0 0 0 0 0 0 0 0 0 0 0"] * 7
    ),
    "four_rooms_18x18": "\n".join(
        ["0 0 0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 0"] * 2
        + ["0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"] * 2
        + ["0 0 0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 0"] * 4
        + ["1 1 1 1 0 0 1 1 1 1 1 1 0 0 1 1 1 1"] * 2
        + ["0 0 0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 0"] * 4
        + ["0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"] * 2
        + ["0 0 0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 0"] * 2
    ),
    "empty": "\n".join(["0 0 0 0 0 0 0 0"] * 8),
}
SIZES = {
    "four_rooms_9x9": (9, 9),
    "cross_11x11": (11, 11),
    "two_doors_11x11": (11, 11),
    "four_rooms_18x18": (18, 18),
    "empty": (8, 8),
}
ROOMS = {
    "four_rooms_9x9": 4, "cross_11x11": 1, "two_doors_11x11": 2, "four_rooms_18x18": 4, "empty": 1
}
MOVES = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0), 4: (0, 0)}


@pytest.fixture(autouse=True)
def _quiet_gymnasium_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def seed_walls(name: str) -> np.ndarray:
    rows = [line.split() for line in SEED_MAPS[name].strip().splitlines()]
    return np.array(rows, dtype=int) == 1


def bfs(free: np.ndarray, start: tuple[int, int]) -> set[tuple[int, int]]:
    seen, queue = {start}, collections.deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in MOVES.values():
            n = (r + dr, c + dc)
            inside = 0 <= n[0] < free.shape[0] and 0 <= n[1] < free.shape[1]
            if inside and free[n] and n not in seen:
                seen.add(n)
                queue.append(n)
    return seen


def expected_window(env: GridWorldEnv) -> np.ndarray:
    """The observation written out cell by cell, independently of the env's padded slice."""
    walls, floor = env.wall_mask(), env.floor
    window = np.zeros((5, 5, 3 + env.floor_colours), dtype=np.uint8)
    for i in range(5):
        for j in range(5):
            r, c = env.agent[0] + i - 2, env.agent[1] + j - 2
            if not (0 <= r < env.height and 0 <= c < env.width):
                window[i, j, WALL] = window[i, j, OUT_OF_BOUNDS] = 1
            elif walls[r, c]:
                window[i, j, WALL] = 1
            else:
                window[i, j, 3 + floor[r, c]] = 1
            if (r, c) == env.goal:
                window[i, j, GOAL] = 1
    return window


def place(env: GridWorldEnv, agent: tuple[int, int], goal: tuple[int, int]) -> np.ndarray:
    env.agent, env.goal = agent, goal
    return env._observation()


def reach_goal(env: GridWorldEnv) -> tuple[float, bool, bool, dict]:
    """Put the agent next to the goal and step onto it."""
    for action, (dr, dc) in list(MOVES.items())[:4]:
        r, c = env.goal[0] - dr, env.goal[1] - dc
        if 0 <= r < env.height and 0 <= c < env.width and not env.map.walls[r, c]:
            env.agent = (r, c)
            _, reward, terminated, truncated, info = env.step(action)
            return reward, terminated, truncated, info
    raise AssertionError("the goal has no free neighbour")


# ------------------------------------------------------------------------------------ maps


@pytest.mark.parametrize("name", gridworld.MAPS)
def test_layouts_are_the_seeds_maps(name):
    grid = grid_map(name)
    assert (grid.height, grid.width) == SIZES[name]
    np.testing.assert_array_equal(grid.walls, seed_walls(name))
    assert grid.num_rooms == ROOMS[name]


@pytest.mark.parametrize("name", gridworld.MAPS)
def test_every_floor_cell_is_reachable_and_rooms_are_connected_without_doors(name):
    grid = grid_map(name)
    free = ~grid.walls
    cells = {tuple(cell) for cell in np.argwhere(free).tolist()}
    assert bfs(free, next(iter(sorted(cells)))) == cells
    for index, room in enumerate(grid.room_cells):
        own = np.zeros_like(free)
        for cell in room:
            own[cell] = True
        assert bfs(own, room[0]) == set(room), f"room {index}"
        assert all(grid.room_of[cell] == index for cell in room)
    assert (grid.room_of >= 0).sum() == free.sum() and (grid.room_of[grid.walls] == -1).all()


def test_four_rooms_numbering_doors_and_starts_follow_the_seed():
    grid = grid_map("four_rooms_9x9")
    # rooms |0|1| over |2|3|, as the seed's 1..4
    assert [grid.room_of[cell] for cell in [(0, 0), (0, 8), (8, 0), (8, 8)]] == [0, 1, 2, 3]
    assert grid.starts == ((1, 2), (1, 6), (7, 2), (7, 6))
    assert set(grid.doors) == {(4, 2), (1, 4), (4, 6), (7, 4)}
    assert grid.adjacent_rooms(0) == (1, 2) and grid.adjacent_rooms(3) == (1, 2)
    assert grid.adjacent_rooms(1) == (0, 3) and grid.adjacent_rooms(2) == (0, 3)
    assert grid.room_of[1, 4] == 0 and grid.room_of[4, 6] == 1 and grid.room_of[7, 4] == 2
    big = grid_map("four_rooms_18x18")
    assert big.starts == ((2, 4), (2, 12), (14, 4), (14, 12))
    assert set(big.doors) == {(8, 4), (2, 8), (8, 12), (14, 8)}
    assert all(len(rooms) == 2 for rooms in big.door_rooms)
    assert (big.room_of[8:10, 4:6] == 0).all() and (big.room_of[14:16, 8:10] == 2).all()
    two = grid_map("two_doors_11x11")
    assert two.doors == ((3, 3), (3, 7)) and two.adjacent_rooms(0) == (1,)


def test_unknown_map_and_bad_options_are_rejected():
    with pytest.raises(ValueError, match="unknown map"):
        GridWorldEnv("five_rooms")
    with pytest.raises(ValueError, match="two or more rooms"):
        GridWorldEnv("empty", scenario=True)
    with pytest.raises(ValueError, match="max_steps"):
        GridWorldEnv(max_steps=0)
    with pytest.raises(ValueError, match="move_cost"):
        GridWorldEnv(move_cost=-1.0)
    with pytest.raises(ValueError, match="unknown option"):
        gridworld.resolve_options({"view_size": 7})


# --------------------------------------------------------------------------- observation


def test_window_is_egocentric_and_shows_walls_edge_goal_and_floor_only():
    env = GridWorldEnv("four_rooms_9x9")
    env.reset(seed=0)
    assert env.observation_space.shape == (5, 5, 8) and env.observation_space.dtype == np.uint8
    # in the top-left corner: two rows and two columns beyond the edge
    obs = place(env, (0, 0), (8, 8))
    np.testing.assert_array_equal(obs, expected_window(env))
    assert obs[:2, :, OUT_OF_BOUNDS].all() and obs[:, :2, OUT_OF_BOUNDS].all()
    assert not obs[2:, 2:, OUT_OF_BOUNDS].any()
    assert obs[..., WALL][obs[..., OUT_OF_BOUNDS] == 1].all()  # the edge is a wall, as in the seed
    assert not obs[..., GOAL].any() and not obs[2:, 2:, WALL].any()
    # in the middle of the top-left room: the walls of column 4 and row 4 with their doorways
    obs = place(env, (2, 2), (8, 8))
    np.testing.assert_array_equal(obs, expected_window(env))
    assert obs[:, 4, WALL].tolist() == [1, 0, 1, 1, 1]  # column 4, the doorway at (1, 4)
    assert obs[4, :, WALL].tolist() == [1, 1, 0, 1, 1]  # row 4, the doorway at (4, 2)
    assert not obs[..., OUT_OF_BOUNDS].any()
    # every cell is exactly one of wall / floor colour (floor colours are one-hot on floor only)
    floor = obs[..., 3:].sum(axis=-1)
    assert ((obs[..., WALL] + floor) == 1).all()
    # goal within range is seen where it is
    obs = place(env, (1, 2), (3, 3))
    assert obs[..., GOAL].sum() == 1 and obs[4, 3, GOAL] == 1
    np.testing.assert_array_equal(obs, expected_window(env))
    # out of range (three rows or columns away): not seen
    assert not place(env, (1, 2), (4, 2))[..., GOAL].any()
    assert not place(env, (0, 0), (3, 3))[..., GOAL].any()
    assert place(env, (0, 0), (2, 2))[4, 4, GOAL] == 1


@pytest.mark.parametrize("name", gridworld.MAPS)
def test_window_matches_a_cell_by_cell_reference_everywhere(name):
    env = GridWorldEnv(name)
    env.reset(seed=1)
    grid = grid_map(name)
    goal = grid.room_cells[-1][len(grid.room_cells[-1]) // 2]
    for cell in np.argwhere(~grid.walls).tolist():
        obs = place(env, tuple(cell), goal)
        np.testing.assert_array_equal(obs, expected_window(env), err_msg=str(cell))
        assert env.observation_space.contains(obs)


def test_floor_pattern_is_fixed_by_floor_seed_and_uses_every_colour_option():
    a = floor_pattern((9, 9), 5, 0)
    np.testing.assert_array_equal(a, floor_pattern((9, 9), 5, 0))
    assert not np.array_equal(a, floor_pattern((9, 9), 5, 1))
    assert a.min() >= 0 and a.max() <= 4 and len(np.unique(a)) > 1
    plain = GridWorldEnv("four_rooms_9x9", floor_colours=1)
    obs, _ = plain.reset(seed=0)
    assert obs.shape == (5, 5, 4)
    assert GridWorldEnv("four_rooms_9x9", floor_seed=3).floor.tolist() != plain.floor.tolist()


# -------------------------------------------------------------------------------- dynamics


def test_actions_move_one_cell_and_walls_and_the_edge_block():
    env = GridWorldEnv("four_rooms_9x9")
    env.reset(seed=0)
    for action, (dr, dc) in MOVES.items():
        place(env, (2, 2), (8, 8))
        env.step(action)
        assert env.agent == (2 + dr, 2 + dc)
    place(env, (2, 3), (8, 8))
    env.step(0)  # right into the wall at (2, 4)
    assert env.agent == (2, 3)
    place(env, (3, 3), (8, 8))
    env.step(1)  # down into the wall at (4, 3)
    assert env.agent == (3, 3)
    place(env, (0, 0), (8, 8))
    env.step(3)  # up off the map
    env.step(2)  # left off the map
    assert env.agent == (0, 0)
    place(env, (1, 3), (8, 8))
    env.step(0)  # through the doorway
    assert env.agent == (1, 4) and env.agent_pos == (4, 1)


def test_rewards_are_the_seeds_costs_and_goal():
    env = GridWorldEnv("four_rooms_9x9")
    env.reset(seed=0)
    place(env, (2, 2), (8, 8))
    assert env.step(0)[1] == pytest.approx(-0.005)
    place(env, (2, 3), (8, 8))
    assert env.step(0)[1] == pytest.approx(-0.005)  # a blocked move costs a move
    assert env.step(4)[1] == pytest.approx(-0.01)  # staying costs double
    place(env, (2, 2), (2, 3))
    _, reward, terminated, truncated, _ = env.step(0)
    assert reward == pytest.approx(0.995) and terminated and not truncated
    with pytest.raises(RuntimeError):
        env.step(0)
    cheap = GridWorldEnv("four_rooms_9x9", move_cost=0.002, stay_cost=0.0)
    cheap.reset(seed=0)
    place(cheap, (2, 2), (8, 8))
    assert cheap.step(0)[1] == pytest.approx(-0.002) and cheap.step(4)[1] == 0.0
    with pytest.raises(ValueError):
        cheap.step(5)


@pytest.mark.parametrize(("name", "limit"), [("four_rooms_9x9", 200), ("four_rooms_18x18", 400)])
def test_time_limit_truncates_after_exactly_max_steps(name, limit):
    env = GridWorldEnv(name)
    env.reset(seed=0)
    for step in range(1, limit + 1):
        _, _, terminated, truncated, _ = env.step(4)
        assert not terminated and truncated == (step == limit)
    short = GridWorldEnv(name, max_steps=3)
    short.reset(seed=0)
    assert [short.step(4)[3] for _ in range(3)] == [False, False, True]


def test_a_goal_on_the_last_step_terminates_rather_than_truncates():
    env = GridWorldEnv("four_rooms_9x9", max_steps=2)
    env.reset(seed=0)
    place(env, (2, 2), (2, 4 - 1))
    env.step(4)
    _, reward, terminated, truncated, _ = env.step(0)
    assert terminated and not truncated and reward == pytest.approx(0.995)


@pytest.mark.parametrize("name", gridworld.MAPS)
def test_plain_episodes_put_the_goal_in_another_room(name):
    env = GridWorldEnv(name)
    grid = grid_map(name)
    starts = set()
    for seed in range(30):
        _, info = env.reset(seed=seed)
        assert not grid.walls[env.agent] and not grid.walls[env.goal] and env.agent != env.goal
        assert info == {"room": grid.room_of[env.agent]}
        if grid.num_rooms > 1:
            assert grid.room_of[env.goal] != grid.room_of[env.agent]
        starts.add(env.agent)
    assert len(starts) > 10


def test_info_room_is_the_agents_room_along_a_walk():
    env = GridWorldEnv("four_rooms_9x9")
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(2000):
        _, _, terminated, truncated, info = env.step(int(rng.integers(4)))
        assert info["room"] == grid_map("four_rooms_9x9").room_of[env.agent]
        seen.add(info["room"])
        if terminated or truncated:
            env.reset()
    assert seen == {0, 1, 2, 3}


def test_seeded_episodes_are_deterministic():
    def run(seed):
        env = GridWorldEnv("four_rooms_18x18")
        obs, _ = env.reset(seed=seed)
        trace = [obs, env.agent, env.goal]
        rng = np.random.default_rng(1)
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(5)))
            trace += [obs, reward, terminated, truncated, info["room"]]
            if terminated or truncated:
                trace += [env.reset()[0], env.goal]
        return trace

    first, again, other = run(2), run(2), run(3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


# ---------------------------------------------------------------------------------- scenario


def check_task(env: GridWorldEnv, stage: int) -> None:
    grid = env.map
    agent_room, goal_room = env.task_rooms
    assert env.agent == grid.starts[agent_room] or grid.starts[agent_room] is None
    assert grid.room_of[env.agent] == agent_room
    if stage == 0:
        assert env.goal in [grid.doors[i] for i in grid.doors_of(agent_room)]
    elif stage == 1:
        assert goal_room in grid.adjacent_rooms(agent_room)
        assert env.goal in grid.room_cells[goal_room]
    else:
        assert goal_room != agent_room and env.goal in grid.room_cells[goal_room]


@pytest.mark.parametrize("name", ["four_rooms_9x9", "four_rooms_18x18", "two_doors_11x11"])
def test_scenario_moves_rooms_every_100_goals_through_three_stages_and_ends_at_3000(name):
    env = GridWorldEnv(name, scenario=True)
    _, info = env.reset(seed=7)
    assert info["goals_reached"] == 0 and info["phase"] == 0 and info["stage"] == 0
    tasks = []
    for goal in range(1, 3001):
        task = (env.task_start, env.task_goal)
        assert (env.agent, env.goal) == task
        check_task(env, (goal - 1) // 1000)
        if (goal - 1) % 100 == 0:
            tasks.append(task)
        reward, terminated, truncated, info = reach_goal(env)
        assert terminated and not truncated and reward == pytest.approx(0.995)
        assert info["goals_reached"] == goal and info["room"] == env.room
        assert info["scenario_done"] == (goal == 3000)
        if goal < 3000:
            assert info["phase"] == goal // 100 and info["stage"] == goal // 1000
            env.reset()
            if goal % 100:  # within a phase the task stays
                assert (env.task_start, env.task_goal) == task
    assert len(tasks) == 30 and len(set(tasks)) > 5
    assert info["scenario_steps"] == 3000
    # the next reset starts a new scenario
    _, info = env.reset()
    assert info["goals_reached"] == 0 and info["stage"] == 0 and not info["scenario_done"]


def test_scenario_timeouts_count_no_goal_and_keep_the_task():
    env = GridWorldEnv("four_rooms_9x9", scenario=True, max_steps=5)
    env.reset(seed=0)
    task = (env.task_start, env.task_goal)
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(4)
    assert truncated and not terminated and info["goals_reached"] == 0
    _, info = env.reset()
    assert (env.agent, env.goal) == task and info["scenario_steps"] == 5
    reach_goal(env)
    _, info = env.reset()
    assert info["goals_reached"] == 1 and info["scenario_steps"] == 6


def test_scenario_is_deterministic_under_a_seed_and_a_seeded_reset_restarts_it():
    def tasks(seed):
        env = GridWorldEnv("four_rooms_9x9", scenario=True, goals_per_phase=2, phases_per_stage=3)
        env.reset(seed=seed)
        drawn = []
        for _ in range(18):
            drawn.append((env.task_start, env.task_goal))
            reach_goal(env)
            env.reset()
        return drawn, env

    first, env = tasks(4)
    assert first == tasks(4)[0] and first != tasks(5)[0]
    assert env.goals_reached == 0 and env.scenario_goals == 18  # done after 18, restarted
    _, info = env.reset(seed=4)
    assert info["goals_reached"] == 0 and (env.task_start, env.task_goal) == first[0]


# The seed's cross scenario (cog-isa/htm-rl, hima/experiments/hima): configs/cross_11x11_options.yaml
# puts the food at [6, 6] and the agent at one of [6, 1], [1, 6], [6, 11], [11, 6] (change_position),
# in the coordinates of the map padded by the 3 x 3 view's one wall, i.e. (5, 5) and the four arm
# ends here; scenarios/cross_11x11.yaml moves the food at episode 1000 to one of
# [8, 5], [2, 5], [5, 8], [5, 2] (rand, sample_size 1, unpadded) and stops at episode 2000.
CROSS_CENTRE = (5, 5)
CROSS_STARTS = {(5, 0), (0, 5), (5, 10), (10, 5)}
CROSS_ARM_GOALS = {(8, 5), (2, 5), (5, 8), (5, 2)}


def run_cross(seed: int, reach=lambda episode: episode % 3 == 0):
    """Run the cross scenario to its end; episodes where ``reach(episode)`` step onto the goal, the
    others time out after one step. Returns per-episode (start, goal, info at reset, last info)."""
    env = GridWorldEnv("cross_11x11", scenario=True, max_steps=1)
    _, info = env.reset(seed=seed)
    log = []
    for episode in range(1, 2001):
        start, goal, first = env.agent, env.goal, info
        if reach(episode):
            _, terminated, truncated, info = reach_goal(env)[0:4]
            assert terminated and not truncated
        else:
            _, _, terminated, truncated, info = env.step(4)
            assert truncated and not terminated
        log.append((start, goal, first, info))
        if not info["scenario_done"]:
            _, info = env.reset()
    return env, log


def test_cross_scenario_follows_the_seeds_positions_and_switches_at_episode_1000():
    env, log = run_cross(3)
    assert env.episode_scenario is not None and env.stage_names == ("centre", "arm")
    assert len(log) == 2000
    for episode, (start, goal, first, _) in enumerate(log, 1):
        assert start in CROSS_STARTS
        if episode <= 1000:
            assert goal == CROSS_CENTRE and first["stage"] == 0 and first["phase"] == 0
        else:
            assert goal in CROSS_ARM_GOALS and first["stage"] == 1 and first["phase"] == 1
    # one arm goal, drawn once at the switch, for the whole second stage
    assert len({goal for _, goal, _, _ in log[1000:]}) == 1
    # every start is used (drawn per episode, not per stage)
    assert {start for start, _, _, _ in log[:1000]} == CROSS_STARTS
    assert {start for start, _, _, _ in log[1000:]} == CROSS_STARTS


def test_cross_scenario_ends_with_episode_2000_and_counts_goals_and_steps():
    env, log = run_cross(5)
    done = [episode for episode, (*_, last) in enumerate(log, 1) if last["scenario_done"]]
    assert done == [2000]
    last = log[-1][3]
    assert last["goals_reached"] == 2000 // 3 and last["scenario_steps"] == 2000
    assert [info["goals_reached"] for *_, info in log[:6]] == [0, 0, 1, 1, 1, 2]
    # it also ends on a goal step
    _, log = run_cross(5, reach=lambda episode: episode == 2000)
    assert log[-1][3]["scenario_done"] and log[-1][3]["goals_reached"] == 1
    # the next reset starts a new scenario at the centre
    _, info = env.reset()
    assert info["goals_reached"] == 0 and info["scenario_steps"] == 0 and info["stage"] == 0
    assert env.goal == CROSS_CENTRE and not info["scenario_done"] and env.scenario_episodes == 1


def test_cross_scenario_is_deterministic_under_a_seed():
    def trace(seed):
        return [(start, goal) for start, goal, _, _ in run_cross(seed, reach=lambda e: False)[1]]

    first = trace(11)
    assert first == trace(11) and first != trace(12)
    arm_goals = {trace(seed)[-1][1] for seed in range(8)}
    assert len(arm_goals) > 1  # the arm is drawn, not fixed


def test_cross_scenario_id_is_registered_and_reports_the_metric_columns():
    from wanderlust.envs import episode_columns

    env = gym.make("wanderlust/GridWorld-Cross11x11-Scenario-v0").unwrapped
    assert env.scenario and env.map_name == "cross_11x11" and env.max_steps == 200
    _, info = env.reset(seed=0)
    assert set(gridworld.INFO_KEYS) <= set(info)
    assert episode_columns("wanderlust/GridWorld-Cross11x11-Scenario-v0") == (
        "goals_reached", "scenario_steps")
    check_env(GridWorldEnv("cross_11x11", scenario=True), skip_render_check=True)


# ------------------------------------------------------------------------ drawing, analysis


@pytest.mark.parametrize("name", gridworld.MAPS)
def test_render_map_and_wall_mask_agree_with_the_layout(name):
    env = GridWorldEnv(name, render_mode="rgb_array", tile_size=4)
    env.reset(seed=0)
    walls = env.wall_mask()
    assert walls.dtype == bool and walls.shape == (env.height, env.width)
    np.testing.assert_array_equal(walls, seed_walls(name))
    picture = env.render_map(3)
    assert picture.shape == (env.height * 3, env.width * 3, 3) and picture.dtype == np.uint8
    cells = picture[1::3, 1::3]
    wall_rgb = np.array(gridworld._WALL_RGB)
    np.testing.assert_array_equal((cells == wall_rgb).all(axis=-1), walls)
    frame = env.render()
    assert frame.shape == (env.height * 4, env.width * 4, 3)
    row, column = env.agent
    assert tuple(frame[row * 4 + 2, column * 4 + 2]) == gridworld._AGENT_RGB
    assert tuple(frame[env.goal[0] * 4 + 2, env.goal[1] * 4 + 2]) == gridworld._GOAL_RGB
    x, y = env.agent_pos
    assert (y, x) == env.agent and isinstance(x, int)


# -------------------------------------------------------------------------------- the family


def test_family_registration_options_and_backends():
    ids = registry.list_envs()["gridworld"]
    assert ids == sorted(
        [f"wanderlust/GridWorld-{m}-v0" for m in ("FourRooms9x9", "Cross11x11", "TwoDoors11x11",
                                                   "FourRooms18x18", "Empty8x8")]
        + ["wanderlust/GridWorld-FourRooms9x9-Scenario-v0",
           "wanderlust/GridWorld-Cross11x11-Scenario-v0",
           "wanderlust/GridWorld-FourRooms18x18-Scenario-v0"]
    )
    assert registry.env_spec(ids[0]).backends == ("gymnasium",)
    with pytest.raises(ValueError) as error:
        gridworld.envpool_config(ids[0], gridworld.resolve_options({}), frozenset())
    assert "\n" not in str(error.value)
    env = gym.make("wanderlust/GridWorld-FourRooms18x18-Scenario-v0").unwrapped
    assert env.scenario and env.map_name == "four_rooms_18x18" and env.max_steps == 400


def test_make_counts_rooms_and_passes_options():
    env = make("wanderlust/GridWorld-FourRooms9x9-v0", 2, seed=0, max_steps=50, move_cost=0.01)
    obs, info = env.reset()
    assert obs.shape == (2, 5, 5, 8) and obs.dtype == np.uint8 and "room" in info
    rng = np.random.default_rng(0)
    ended = []
    for _ in range(120):
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, 4, size=2))
        assert ((reward == np.float32(-0.01)) | (reward > 0.5) | (reward == 0)).all()
        ended += list(info["episode_rooms"][info["episode_done"]])
    assert ended and all(1 <= rooms <= 4 for rooms in ended)
    env.close()


def test_single_env_passes_the_env_checker_with_the_scenario():
    env = GridWorldEnv("four_rooms_9x9", scenario=True)
    check_env(env, skip_render_check=True)


def test_scenario_progress_reaches_the_metrics():
    """record_step keeps goals reached at each episode's end and a finished scenario's steps; a
    scenario run's metrics rows carry both columns from the first row."""
    import numpy as np

    from wanderlust.agents.episodes import RoomLog, record_step

    episodes: dict = {"episode_return": [], "episode_length": []}
    info = {
        "episode_done": np.array([True, False]), "episode_return": np.array([1.0, 0.0]),
        "episode_length": np.array([7, 0]), "goals_reached": np.array([12, 30]),
        "scenario_done": np.array([False, True]), "scenario_steps": np.array([400, 5321]),
    }
    record_step(info, episodes, RoomLog(False), np.zeros((2, 5, 5, 8)), 10)
    assert episodes["goals_reached"] == [12] and episodes["scenario_steps"] == [5321]
    from wanderlust.envs import episode_columns

    assert episode_columns("wanderlust/GridWorld-FourRooms9x9-Scenario-v0") == ("goals_reached", "scenario_steps")
    assert episode_columns("MiniGrid-Empty-5x5-v0") == ()


def test_a_scenario_run_logs_goals_reached(tmp_path):
    import csv

    from wanderlust.run.cli import main

    run_dir = tmp_path / "q"
    assert main(["train", "--algo", "qlearning", "--env", "wanderlust/GridWorld-FourRooms9x9-Scenario-v0",
                 "--num-envs", "2", "--frames", "4000", "--run-dir", str(run_dir)]) == 0
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert "scenario_steps" in rows[0] and "goals_reached" in rows[0]
    goals = [float(row["goals_reached"]) for row in rows if row["goals_reached"]]
    assert goals and max(goals) > 0  # some episode reached its goal


SHORT_SCENARIO = ["env.options.goals_per_phase=2", "env.options.phases_per_stage=1"]
"""A scenario of 6 goals (2 a phase, 1 phase a stage) for whole training runs."""


def test_a_run_with_stop_at_scenario_end_stops_after_the_first_finished_scenario(tmp_path):
    """A short scenario with a budget it never needs."""
    import csv

    from wanderlust.run import checkpoint
    from wanderlust.run.train import train

    options = [*SHORT_SCENARIO, "stop_at_scenario_end=true"]
    run = train(
        "wanderlust/GridWorld-FourRooms9x9-Scenario-v0", frames=200_000, num_envs=1, algo="qlearning",
        run_dir=tmp_path / "run", overrides=options,
    )
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    finished = [r for r in rows if r["scenario_steps"]]
    assert finished == rows[-1:]  # the last row, and only it
    frames = int(rows[-1]["frames"])
    assert frames < 200_000 and int(finished[0]["scenario_steps"]) <= frames
    assert checkpoint.load(checkpoint.latest(run / "checkpoints"))["agent"]["frames"] == frames


def test_a_saved_scenario_continues_in_a_new_env():
    rng = np.random.default_rng(0)
    env = GridWorldEnv("four_rooms_9x9", scenario=True, goals_per_phase=3, phases_per_stage=1)
    env.reset(seed=1)
    for _ in range(400):
        if env.step(int(rng.integers(5)))[2:4] != (False, False):
            env.reset()
    state = env.scenario_state
    assert state["goals_reached"] > 0 and state["scenario_steps"] == 400
    other = GridWorldEnv("four_rooms_9x9", scenario=True, goals_per_phase=3, phases_per_stage=1)
    other.scenario_state = state
    _, info = other.reset(seed=7)  # a seeded reset continues a loaded scenario
    assert (info["goals_reached"], info["scenario_steps"]) == (state["goals_reached"], 400)
    assert (other.agent, other.goal) == (env.task_start, env.task_goal)
    assert other.scenario_episodes == state["finished_episodes"] + 1
    assert other.np_random.random() == env.np_random.random()  # the task draws go on alike
    _, info = other.reset(seed=7)  # and only the first: the next seeded reset starts anew
    assert info["goals_reached"] == 0


def test_a_resumed_run_continues_its_scenario(tmp_path):
    import csv

    from wanderlust.run.train import train

    options = [*SHORT_SCENARIO, "stop_at_scenario_end=true"]
    run = train(
        "wanderlust/GridWorld-FourRooms9x9-Scenario-v0", frames=1280, num_envs=1, algo="qlearning",
        run_dir=tmp_path / "run", overrides=options,
    )
    train(resume=run, frames=200_000)
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    goals = [float(r["goals_reached"]) for r in rows if r["goals_reached"]]
    assert goals == sorted(goals)  # never back to 0
    assert int(rows[-1]["scenario_steps"]) > int(rows[-1]["frames"]) - 1280  # counted from the start


def test_stop_at_scenario_end_needs_a_scenario_env():
    from wanderlust.run.config import ConfigError, resolve

    with pytest.raises(ConfigError, match="stop_at_scenario_end needs a grid-world scenario env"):
        resolve(values={"env": {"id": "wanderlust/GridWorld-FourRooms9x9-v0"}}, overrides=["stop_at_scenario_end=true"])
