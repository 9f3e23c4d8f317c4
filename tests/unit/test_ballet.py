"""Ballet (wanderlust.envs.ballet): every rule of DeepMind's pycolab original, checked on the env.

The timeline the tests expect is the original's (pycolab's frame counter counts the reset as
frame 1): dancer k moves on frames 1 + k * (delay + 15) ... 16 + k * (delay + 15); the instruction
changes ``delay`` frames after the last dance's last move; the agent moves from the frame after.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wanderlust.envs import ballet, env_spec, list_envs, make, registry
from wanderlust.envs.ballet import (
    ACTION_NAMES,
    COLOURS,
    DANCE_NAMES,
    DANCES,
    INSTRUCTIONS,
    SHAPES,
    SLOTS,
    BalletEnv,
    choice_frame,
    dance_offsets,
    instruction_token,
    shape_mask,
)

pytestmark = pytest.mark.unit

IDS = [f"wanderlust/Ballet-{n}_delay{d}-v0" for n in (2, 4, 8) for d in (16, 48)]
MOVES = {
    "N": (-1, 0), "NE": (-1, 1), "E": (0, 1), "SE": (1, 1),
    "S": (1, 0), "SW": (1, -1), "W": (0, -1), "NW": (-1, -1),
}  # fmt: skip
PAPER_DANCES = (
    "circle_cw circle_ccw up_and_down left_and_right diagonal_uldr diagonal_urdl plus_cw plus_ccw "
    "times_cw times_ccw zee chevron_down chevron_up"
).split()


@pytest.fixture(autouse=True)
def _quiet_gymnasium_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def start(num_dancers=4, delay=16, seed=0, **kwargs) -> tuple[BalletEnv, dict]:
    env = BalletEnv(num_dancers=num_dancers, delay=delay, **kwargs)
    obs, _ = env.reset(seed=seed)
    return env, obs


def watch(env: BalletEnv, actions=None) -> list[dict]:
    """Steps through the watch phase (to the frame on which the instruction changes), sending
    ``actions`` (cycled) or random moves; returns the observations."""
    rng = np.random.default_rng(1)
    observations = []
    while env.frame < env.choice_frame:
        action = int(rng.integers(8)) if actions is None else actions[env.frame % len(actions)]
        obs, reward, terminated, truncated, _ = env.step(action)
        assert reward == 0 and not terminated and not truncated
        observations.append(obs)
    return observations


def walk_to(env: BalletEnv, cell: tuple[int, int]) -> tuple[float, bool, bool, int]:
    """Moves straight (diagonals first) to ``cell`` in the choice phase; (reward, terminated,
    truncated, steps) of the last step."""
    steps = 0
    while True:
        row, column = env.agent_position
        d_row, d_column = np.sign(cell[0] - row), np.sign(cell[1] - column)
        action = ACTION_NAMES.index(
            {(-1, 0): "N", (-1, 1): "NE", (0, 1): "E", (1, 1): "SE", (1, 0): "S",
             (1, -1): "SW", (0, -1): "W", (-1, -1): "NW"}[(int(d_row), int(d_column))]
        )  # fmt: skip
        _, reward, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated or env.agent_position == cell:
            return reward, terminated, truncated, steps


def reference_view(env: BalletEnv) -> np.ndarray:
    """The agent's window drawn cell by cell from the state, independently of the env's canvas:
    walls dark grey, agent white, dancers (over the agent) their shape in their colour on black,
    black floor and black beyond the walls."""
    size = env.cell_size
    cells = 11 + 10
    image = np.zeros((cells * size, cells * size, 3), dtype=np.uint8)

    def paint(row, column, tile):
        top, left = (row + 5) * size, (column + 5) * size
        image[top : top + size, left : left + size] = tile

    for row in range(11):
        for column in range(11):
            if row in (0, 10) or column in (0, 10):
                paint(row, column, (40, 40, 40))
    paint(*env.agent_position, (255, 255, 255))
    for index, position in enumerate(env.dancer_positions):
        mask = shape_mask(env.dancer_shapes[index], size)
        paint(*position, mask[:, :, None] * np.array(COLOURS[env.dancer_colours[index]]))
    row, column = env.agent_position
    return image[row * size : (row + 11) * size, column * size : (column + 11) * size]


# ------------------------------------------------------------------------------ the dances


def test_the_13_dances_are_the_papers_and_each_returns_home_in_16_compass_moves():
    assert list(DANCE_NAMES) == PAPER_DANCES
    for name in DANCE_NAMES:
        moves = DANCES[name]
        assert len(moves) == 16 and set(moves) <= set(MOVES)
        offsets = dance_offsets(name)
        assert offsets.shape == (16, 2)
        assert (np.abs(offsets).max(axis=1) == 1).all()  # one cell, in one of 8 directions
        np.testing.assert_array_equal(offsets, [MOVES[move] for move in moves])
        path = np.cumsum(offsets, axis=0)
        assert (path[-1] == 0).all(), name  # back where it started
        assert np.abs(path).max() == 1, name  # never leaves its 3 x 3 block
    assert len({DANCES[name] for name in DANCE_NAMES}) == 13


def test_dances_match_the_original_spot_checks():
    # A few paths written out by hand from the original's table.
    assert DANCES["circle_cw"][:4] == ("N", "E", "S", "S")
    assert DANCES["up_and_down"] == ("N", "S", "S", "N") * 4
    assert DANCES["diagonal_urdl"] == ("NE", "SW", "SW", "NE") * 4
    assert DANCES["zee"][:3] == ("NE", "W", "W")
    assert DANCES["chevron_up"][-3:] == ("NW", "SE", "NW")


def test_instruction_vocabulary():
    assert INSTRUCTIONS[0] == "watch" and len(INSTRUCTIONS) == 14
    assert [instruction_token(name) for name in DANCE_NAMES] == list(range(1, 14))
    assert BalletEnv().observation_space["instruction"] == gym.spaces.Discrete(14)


# -------------------------------------------------------------------------- looks


@pytest.mark.parametrize("size", range(3, 33))
def test_15_shapes_are_distinct_and_visible_at_every_cell_size(size):
    masks = [shape_mask(shape, size) for shape in SHAPES]
    assert len(SHAPES) == 15
    assert all(mask.shape == (size, size) and mask.any() for mask in masks)
    assert len({mask.tobytes() for mask in masks}) == 15


def test_19_distinct_colours_unlike_agent_wall_and_floor():
    colours = set(COLOURS.values())
    assert len(COLOURS) == 19 and len(colours) == 19
    assert not colours & {(255, 255, 255), (40, 40, 40), (0, 0, 0)}


def test_cell_size_below_3_is_refused():
    with pytest.raises(ValueError, match="cell_size"):
        BalletEnv(cell_size=2)


# ------------------------------------------------------------------------------- levels


@pytest.mark.parametrize("num_dancers", range(1, 9))
def test_dancers_have_distinct_slots_shapes_colours_and_dances(num_dancers):
    env = BalletEnv(num_dancers=num_dancers)
    for seed in range(10):
        env.reset(seed=seed)
        for values in (env.dancer_slots, env.dancer_shapes, env.dancer_colours, env.dancer_dances):
            assert len(values) == num_dancers and len(set(values)) == num_dancers
        assert set(env.dancer_slots) <= set(SLOTS)
        assert set(env.dancer_shapes) <= set(SHAPES) and set(env.dancer_colours) <= set(COLOURS)
        assert set(env.dancer_dances) <= set(DANCE_NAMES)
        assert 0 <= env.target < num_dancers
        assert env.agent_position == (5, 5)


def test_target_is_drawn_over_all_dancers():
    env = BalletEnv(num_dancers=4)
    env.reset(seed=0)
    targets = []
    for _ in range(200):
        env.reset()
        targets.append(env.target)
    counts = np.bincount(targets, minlength=4)
    assert (counts > 0).all(), counts
    assert counts.max() < 100  # roughly uniform (expected 50 each)


def test_slots_are_shuffled_across_resets():
    env = BalletEnv(num_dancers=2)
    env.reset(seed=0)
    first_slots = set()
    for _ in range(100):
        env.reset()
        first_slots.add(env.dancer_slots[0])
    assert first_slots == set(SLOTS)


# ----------------------------------------------------------------------------- timeline


@pytest.mark.parametrize(("num_dancers", "delay"), [(1, 16), (2, 16), (4, 3), (8, 48)])
def test_dances_follow_the_originals_timeline(num_dancers, delay):
    env, obs = start(num_dancers, delay)
    period = 16 + delay - 1
    assert env.choice_frame == choice_frame(num_dancers, delay) == 1 + num_dancers * period
    assert env.frame == 1
    positions = {1: list(env.dancer_positions)}
    instructions = {1: int(obs["instruction"])}
    for obs in watch(env):
        positions[env.frame] = list(env.dancer_positions)
        instructions[env.frame] = int(obs["instruction"])
    for dancer in range(num_dancers):
        slot = env.dancer_slots[dancer]
        home = np.array(slot) + np.cumsum(dance_offsets(env.dancer_dances[dancer]), axis=0)
        first = 1 + dancer * period
        for frame, where in positions.items():
            if first <= frame < first + 16:  # its k-th move is shown on frame first + k - 1
                assert where[dancer] == tuple(home[frame - first]), (dancer, frame)
            else:
                assert where[dancer] == slot, (dancer, frame)
    last_move = 16 + (num_dancers - 1) * period
    assert env.choice_frame == last_move + delay
    assert all(token == 0 for frame, token in instructions.items() if frame < env.choice_frame)
    target_dance = env.dancer_dances[env.target]
    assert instructions[env.choice_frame] == instruction_token(target_dance)


def test_the_originals_own_example_one_dancer_delay_16():
    """The original's test: 30 steps of "watch", the 31st step shows the dance name and its move is
    eaten; then the agent moves."""
    env, _ = start(1, 16)
    for _ in range(30):
        obs, *_ = env.step(1)
        assert INSTRUCTIONS[obs["instruction"]] == "watch"
    obs, *_ = env.step(1)
    assert INSTRUCTIONS[obs["instruction"]] == env.dancer_dances[0]
    assert env.agent_position == (5, 5)
    env.step(1)
    assert env.agent_position == (4, 6)


def test_agent_is_frozen_during_the_whole_watch_phase_and_on_the_instruction_frame():
    for actions in ([0], [2], [4], [7, 3, 5, 1], None):
        env, _ = start(8, 16)
        observations = watch(env, actions)
        assert env.agent_position == (5, 5)
        white = np.full((9, 9, 3), 255)
        assert all(np.array_equal(obs["image"][45:54, 45:54], white) for obs in observations)
    env.step(ACTION_NAMES.index("N"))
    assert env.agent_position == (4, 5)


def test_bad_actions_are_refused():
    env, _ = start()
    for action in (-1, 8, 2.5):
        with pytest.raises(ValueError, match="action"):
            env.step(action)
    env.step(np.int64(3))


# -------------------------------------------------------------------------- the choice


@pytest.mark.parametrize("seed", range(6))
def test_walking_onto_the_target_gives_1_and_terminates(seed):
    env, _ = start(4, 16, seed=seed)
    watch(env)
    reward, terminated, truncated, _ = walk_to(env, env.dancer_slots[env.target])
    assert (reward, terminated, truncated) == (1.0, True, False)
    with pytest.raises(RuntimeError):
        env.step(0)


@pytest.mark.parametrize("seed", range(6))
def test_walking_onto_another_dancer_gives_0_and_terminates(seed):
    env, _ = start(4, 16, seed=seed)
    watch(env)
    other = (env.target + 1) % 4
    reward, terminated, truncated, _ = walk_to(env, env.dancer_slots[other])
    assert (reward, terminated, truncated) == (0.0, True, False)


def test_the_final_frame_shows_the_dancer_over_the_agent():
    env, _ = start(2, 16, seed=3)
    watch(env)
    walk_to(env, env.dancer_slots[env.target])
    obs = env._observation()
    np.testing.assert_array_equal(obs["image"], reference_view(env))
    centre = obs["image"][45:54, 45:54]
    mask = shape_mask(env.dancer_shapes[env.target], 9)
    colour = np.array(COLOURS[env.dancer_colours[env.target]])
    np.testing.assert_array_equal(centre, mask[:, :, None] * colour)


@pytest.mark.parametrize(("delay", "limit"), [(16, 320), (48, 1024)])
def test_time_out_truncates_with_reward_0_after_max_steps_minus_1_steps(delay, limit):
    env, _ = start(2, delay)
    assert env.max_steps == limit
    steps = 0
    while True:  # pace between (5, 5) and (4, 5): never onto a dancer
        _, reward, terminated, truncated, _ = env.step(0 if env.agent_position == (5, 5) else 4)
        steps += 1
        assert reward == 0 and not terminated
        if truncated:
            break
    assert steps == limit - 1 and env.frame == limit


def test_max_steps_option_and_its_lower_bound():
    env, _ = start(2, 16, max_steps=70)
    assert env.choice_frame == 63
    watch(env)
    truncations = []
    for _ in range(70 - 63):  # frames 64 to 70
        _, _, terminated, truncated, _ = env.step(4 if env.agent_position == (4, 5) else 0)
        truncations.append(truncated)
        assert not terminated
    assert truncations == [False] * 6 + [True] and env.frame == 70
    with pytest.raises(ValueError, match="max_steps"):
        BalletEnv(num_dancers=2, delay=16, max_steps=63)


def test_walls_block_every_move_into_them():
    env = BalletEnv(num_dancers=1)
    seed = next(s for s in range(100) if env.reset(seed=s) and env.dancer_slots[0] != (2, 5))
    env.reset(seed=seed)
    watch(env)
    for _ in range(6):  # up the middle column to the wall (row 1), with no dancer on the way
        env.step(ACTION_NAMES.index("N"))
    assert env.agent_position == (1, 5)
    for name in ("N", "NE", "NW"):
        _, _, terminated, _, _ = env.step(ACTION_NAMES.index(name))
        assert env.agent_position == (1, 5) and not terminated
    env.step(ACTION_NAMES.index("S"))
    assert env.agent_position == (2, 5)


# ---------------------------------------------------------------------------- observation


@pytest.mark.parametrize(("cell_size", "seed"), [(9, 0), (3, 1), (5, 2)])
def test_observation_is_the_egocentric_window_padded_black_at_the_walls(cell_size, seed):
    env, obs = start(2, 16, seed=seed, cell_size=cell_size)
    assert obs["image"].shape == (11 * cell_size, 11 * cell_size, 3)
    assert obs["image"].dtype == np.uint8
    np.testing.assert_array_equal(obs["image"], reference_view(env))
    rng = np.random.default_rng(seed)
    off_room_views = 0
    for _ in range(env.max_steps - 1):
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(8)))
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs["image"], reference_view(env))
        centre = obs["image"][5 * cell_size : 6 * cell_size, 5 * cell_size : 6 * cell_size]
        if not terminated:
            assert (centre == 255).all()  # the agent is always the centre cell
        if terminated or truncated:
            break
        row, column = env.agent_position
        if row < 5 or column < 5:  # part of the window lies outside the room: black
            if row < 5:
                assert (obs["image"][: (5 - row) * cell_size] == 0).all()
            else:
                assert (obs["image"][:, : (5 - column) * cell_size] == 0).all()
            off_room_views += 1
    assert off_room_views > 0
    # the agent's window as the original's scrolling cropper shows it at the north wall
    seed = next(s for s in range(50) if start(1, 16, seed=s)[0].dancer_slots[0][1] != 5)
    env, _ = start(1, 16, seed=seed, cell_size=cell_size)
    watch(env)
    for _ in range(5):
        obs, *_ = env.step(0)
    size = cell_size
    image = obs["image"]
    assert env.agent_position == (1, 5)
    assert (image[: 4 * size] == 0).all()  # four rows of cells beyond the wall: black padding
    assert (image[4 * size : 5 * size] == 40).all()  # the wall row
    assert (image[5 * size : 6 * size, 5 * size : 6 * size] == 255).all()


def test_render_draws_the_whole_room_at_least_9_pixels_a_cell():
    for cell_size, side in ((9, 99), (3, 99), (5, 110), (12, 132)):
        env, _ = start(2, 16, cell_size=cell_size, render_mode="rgb_array")
        frame = env.render()
        assert frame.shape == (side, side, 3) and frame.dtype == np.uint8
        assert (frame[: side // 11] == 40).all()  # the north wall
    env, obs = start(2, 16)
    assert env.render() is None


# ------------------------------------------------------------------------ gymnasium API


def test_deterministic_under_a_seed_and_different_across_seeds():
    def run(seed):
        env, obs = start(4, 16, seed=seed, cell_size=3)
        trace = [obs["image"], obs["instruction"]]
        rng = np.random.default_rng(0)
        for _ in range(400):
            obs, reward, terminated, truncated, _ = env.step(int(rng.integers(8)))
            trace += [obs["image"], obs["instruction"], reward, terminated, truncated]
            if terminated or truncated:
                obs, _ = env.reset()
                trace.append(obs["image"])
        return trace

    first, again, other = run(5), run(5), run(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_gymnasium_env_checker_passes(render_mode):
    env = BalletEnv(num_dancers=8, cell_size=3, render_mode=render_mode)
    check_env(env, skip_render_check=render_mode is None)


@pytest.mark.parametrize("env_id", IDS)
def test_registered_ids_build_the_paper_levels(env_id):
    env = gym.make(env_id, cell_size=3)
    base = env.unwrapped
    level = env_id.split("-")[1]  # e.g. "2_delay16"
    num_dancers, delay = (int(part) for part in level.replace("delay", "").split("_"))
    assert isinstance(base, BalletEnv)
    assert (base.num_dancers, base.delay, base.cell_size) == (num_dancers, delay, 3)
    assert base.max_steps == (320 if delay == 16 else 1024)
    assert gym.make(env_id).unwrapped.cell_size == 9
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (33, 33, 3)


def test_family_lists_ids_and_refuses_envpool_and_bad_options():
    assert list_envs()["ballet"] == sorted(IDS)
    assert registry.family_of(IDS[0]) is ballet
    assert env_spec(IDS[0]).backends == ("gymnasium",)
    with pytest.raises(ValueError) as error:
        ballet.envpool_config(IDS[0], ballet.resolve_options({}), frozenset())
    assert "\n" not in str(error.value) and "envpool" in str(error.value)
    with pytest.raises(ValueError, match="unknown option"):
        ballet.resolve_options({"screen_size": 84})
    with pytest.raises(ValueError, match="cell_size"):
        ballet.resolve_options({"cell_size": 1})
    assert ballet.resolve_options({}) == {"cell_size": 9, "max_steps": None}


def test_make_gives_a_vector_env_with_packed_observations():
    env = make(IDS[0], 4, seed=0, cell_size=3)
    assert env.family == "ballet" and env.backend == "gymnasium"
    assert env.single_observation_space == gym.spaces.Box(0, 255, (33, 33, 4), np.uint8)
    obs, info = env.reset()
    images, instructions = ballet.unpack(obs)
    assert images.shape == (4, 33, 33, 3) and obs.dtype == np.uint8
    assert instructions.shape == (4,) and (instructions == 0).all()
    assert (obs[..., 3] == 0).all()  # the token fills the whole plane
    assert set(info) == {"episode_done", "episode_return", "episode_length"}
    rng = np.random.default_rng(0)
    done_steps, returns = [], []
    for _ in range(700):
        obs, reward, terminated, truncated, info = env.step(rng.integers(0, 8, 4))
        assert env.observation_space.contains(obs)
        done_steps += info["episode_length"][info["episode_done"]].tolist()
        returns += info["episode_return"][info["episode_done"]].tolist()
    assert len(done_steps) >= 4  # every env has finished at least one episode
    assert all(63 <= length <= 319 for length in done_steps)
    assert set(returns) <= {0.0, 1.0}
    env.close()
    rendered = make(IDS[0], 2, seed=0, render=True)
    rendered.reset()
    assert rendered.render().shape == (2, 99, 99, 3)


def test_packed_observation_holds_the_image_and_the_current_instruction():
    packed_env = ballet.make_single(IDS[0], ballet.resolve_options({"cell_size": 3}))
    dict_env = gym.make(IDS[0], cell_size=3)
    packed, _ = packed_env.reset(seed=7)
    observation, _ = dict_env.reset(seed=7)
    tokens = set()
    for step in range(120):
        image, token = ballet.unpack(packed)
        assert np.array_equal(image, observation["image"]) and token == observation["instruction"]
        tokens.add(int(token))
        packed, *_ = packed_env.step(step % 8)
        observation, *_ = dict_env.step(step % 8)
    assert tokens == {0, instruction_token(dict_env.unwrapped.dancer_dances[dict_env.unwrapped.target])}
