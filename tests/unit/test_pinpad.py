"""Visual PinPad (wanderlust.envs.pinpad): every rule of Director's public version, on the env.

The layouts below are the original's pictures ('#' wall, digits pads, spaces floor), typed in as the
specification; the env builds its grid from rectangles of its own, and the test compares the two.
"""

from __future__ import annotations

import collections
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wanderlust.envs import env_family, env_spec, list_envs, make, pinpad
from wanderlust.envs.pinpad import ACTION_NAMES, PAD_COLOURS, PinPadEnv, layout_grid

pytestmark = pytest.mark.unit

IDS = [f"wanderlust/PinPad-{name}-v0" for name in ("five", "four", "six", "three")]
NOOP, DOWN, UP, RIGHT, LEFT = range(5)
STEP_OF = {DOWN: (1, 0), UP: (-1, 0), RIGHT: (0, 1), LEFT: (0, -1)}
WHITE, GREEN_FLOOR, GREY, BLACK = (255, 255, 255), (223, 255, 223), (192, 192, 192), (0, 0, 0)
PALE = {1: (255, 229, 229), 2: (229, 255, 229), 3: (229, 229, 255), 4: (255, 255, 229),
        5: (255, 229, 255), 6: (229, 255, 255)}  # fmt: skip

PICTURES = {
    "three": [
        "################",
        "#1111      3333#",
        "#1111      3333#",
        "#1111      3333#",
        "#1111      3333#",
        "#              #",
        "#              #",
        "#              #",
        "#              #",
        "#     2222     #",
        "#     2222     #",
        "#     2222     #",
        "#     2222     #",
        "################",
    ],
    "four": [
        "################",
        "#1111      4444#",
        "#1111      4444#",
        "#1111      4444#",
        "#1111      4444#",
        "#              #",
        "#              #",
        "#              #",
        "#              #",
        "#3333      2222#",
        "#3333      2222#",
        "#3333      2222#",
        "#3333      2222#",
        "################",
    ],
    "five": [
        "################",
        "#          4444#",
        "#111       4444#",
        "#111       4444#",
        "#111           #",
        "#111        555#",
        "#           555#",
        "#           555#",
        "#333        555#",
        "#333           #",
        "#333       2222#",
        "#333       2222#",
        "#          2222#",
        "################",
    ],
    "six": [
        "################",
        "#111        555#",
        "#111        555#",
        "#111        555#",
        "#              #",
        "#33          66#",
        "#33          66#",
        "#33          66#",
        "#33          66#",
        "#              #",
        "#444        222#",
        "#444        222#",
        "#444        222#",
        "################",
    ],
}


@pytest.fixture(autouse=True)
def _quiet_gymnasium_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def start(layout="three", at=(6, 7), seed=0, **kwargs) -> tuple[PinPadEnv, np.ndarray, dict]:
    env = PinPadEnv(layout, **kwargs)
    obs, info = env.reset(seed=seed, options={"start": at})
    return env, obs, info


def run(env: PinPadEnv, actions) -> list[tuple]:
    """(obs, reward, terminated, truncated, info) of each action."""
    return [env.step(action) for action in actions]


def route(env: PinPadEnv, pad: int) -> list[int]:
    """Shortest moves from the agent to the nearest cell of ``pad`` that cross no other pad
    (except the one the agent stands on)."""
    grid = layout_grid(env.layout)
    here = env.agent_position
    allowed = {0, pad, int(grid[here])}
    came = {here: None}
    queue = collections.deque([here])
    while queue:
        cell = queue.popleft()
        if grid[cell] == pad:
            actions = []
            while came[cell] is not None:
                cell, action = came[cell]
                actions.append(action)
            return actions[::-1]
        for action, (d_row, d_column) in STEP_OF.items():
            nxt = (cell[0] + d_row, cell[1] + d_column)
            if nxt not in came and grid[nxt] in allowed:
                came[nxt] = (cell, action)
                queue.append(nxt)
    raise AssertionError(f"no route to pad {pad}")


def visit(env: PinPadEnv, pads) -> list[tuple]:
    """Walks onto each pad in turn; returns every step's result."""
    steps = []
    for pad in pads:
        steps += run(env, route(env, pad))
    return steps


def cell(image: np.ndarray, row: int, column: int) -> tuple[int, ...]:
    """The colour of a grid cell (all 4 x 4 pixels of it must agree)."""
    block = image[4 * row : 4 * row + 4, 4 * column : 4 * column + 4].reshape(-1, 3)
    assert (block == block[0]).all(), (row, column)
    return tuple(int(v) for v in block[0])


# --------------------------------------------------------------------------------- registration
def test_ids_spaces_and_family():
    assert list_envs()["pinpad"] == IDS
    for env_id in IDS:
        assert env_family(env_id) == "pinpad"
        assert env_spec(env_id).backends == ("gymnasium",)
        env = gym.make(env_id)
        assert env.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        assert env.action_space == gym.spaces.Discrete(5)
        assert env.unwrapped.max_steps == 2000
        env.close()
    assert ACTION_NAMES == ("noop", "down", "up", "right", "left")


def test_family_options_and_backends():
    assert pinpad.resolve_options({}) == {"max_steps": 2000}
    assert pinpad.resolve_options({"max_steps": 50}) == {"max_steps": 50}
    with pytest.raises(ValueError, match="unknown option"):
        pinpad.resolve_options({"cell_size": 3})
    with pytest.raises(ValueError, match="max_steps"):
        pinpad.resolve_options({"max_steps": 0})
    with pytest.raises(ValueError) as raised:
        pinpad.envpool_config(IDS[0], {"max_steps": 2000}, frozenset())
    assert "\n" not in str(raised.value) and "gymnasium" in str(raised.value)
    with pytest.raises(ValueError, match="envpool"):
        make(IDS[0], 1, backend="envpool")
    with pytest.raises(ValueError, match="layout"):
        PinPadEnv("seven")
    assert pinpad.room_reader(IDS[0]) is None and pinpad.training_reward({}) is None


def test_make_batches_the_images():
    # make's info is the library's episode bookkeeping (EpisodeStatistics replaces the env's);
    # pad, event and sequence_progress come from the gymnasium env itself.
    env = make("wanderlust/PinPad-three-v0", 2, seed=0, max_steps=30, render=True)
    obs, info = env.reset()
    assert obs.shape == (2, 64, 64, 3) and obs.dtype == np.uint8
    assert env.render()[0].shape == (64, 64, 3)
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(np.array([1, 3]))
    assert truncated.all() and not terminated.any()
    assert info["episode_done"].all() and (info["episode_length"] == 30).all()
    env.close()
    single = gym.make("wanderlust/PinPad-three-v0")
    _, info = single.reset(seed=0)
    assert set(info) == {"pad", "event", "sequence_progress"}


# ------------------------------------------------------------------------------------ the grid
@pytest.mark.parametrize("layout", sorted(PICTURES))
def test_layouts_are_the_originals(layout):
    code = {"#": -2, " ": 0, **{str(k): k for k in range(1, 7)}}
    expected = np.array([[code[char] for char in row] for row in PICTURES[layout]])
    np.testing.assert_array_equal(layout_grid(layout), expected)
    n = {"three": 3, "four": 4, "five": 5, "six": 6}[layout]  # the name is the pad count
    env = PinPadEnv(layout)
    assert env.num_pads == n and env.target == tuple(range(1, n + 1))  # the original's sorted pads


def test_actions_move_one_cell_as_in_the_original():
    env, _, _ = start(at=(6, 7))
    expected = {NOOP: (6, 7), DOWN: (7, 7), UP: (5, 7), RIGHT: (6, 8), LEFT: (6, 6)}
    for action, position in expected.items():
        env.reset(options={"start": (6, 7)})
        env.step(action)
        assert env.agent_position == position, ACTION_NAMES[action]


@pytest.mark.parametrize(
    "at, action", [((5, 1), LEFT), ((1, 7), UP), ((12, 1), DOWN), ((5, 14), RIGHT)]
)
def test_walls_block(at, action):
    env, before, _ = start(at=at)
    for _ in range(3):
        obs, *_ = env.step(action)
        assert env.agent_position == at
    np.testing.assert_array_equal(obs, before)


def test_walking_into_a_wall_on_a_pad_registers_nothing():
    # The original looks at the cell the move aims for: a wall there is no pad.
    env, _, info = start(at=(1, 1))  # a corner of pad 1 in "three"
    assert info == {"pad": 1, "event": False, "sequence_progress": 0}
    *_, info = env.step(UP)
    assert env.history == [] and info["sequence_progress"] == 0 and not info["event"]
    *_, info = env.step(NOOP)  # standing on it counts
    assert env.history == [1] and info["sequence_progress"] == 1 and not info["event"]


def test_start_must_be_a_free_cell():
    env = PinPadEnv("three")
    with pytest.raises(ValueError, match="free cell"):
        env.reset(options={"start": (0, 3)})


def test_random_starts_cover_pads_and_floor_but_never_walls():
    env = PinPadEnv("four")
    grid = layout_grid("four")
    starts = {env.reset(seed=seed)[1]["pad"] for seed in range(300)}
    for seed in range(50):
        env.reset(seed=seed)
        assert grid[env.agent_position] != -2
    assert starts == {-1, 1, 2, 3, 4}


# ---------------------------------------------------------------------------------- the rules
def test_the_sequence_in_order_gives_ten_once_then_a_countdown_and_a_respawn():
    env, _, _ = start("three", at=(6, 7))
    steps = visit(env, [1, 2])
    assert sum(s[1] for s in steps) == 0 and steps[-1][4]["sequence_progress"] == 2
    steps = visit(env, [3])
    rewards = [s[1] for s in steps]
    assert rewards == [0.0] * (len(steps) - 1) + [10.0]
    assert steps[-1][4]["sequence_progress"] == 3 and env.countdown == 10
    # nine more steps: no reward, even standing on pad 3 or walking the sequence's last pads again
    steps = run(env, [NOOP] * 9)
    assert [s[1] for s in steps] == [0.0] * 9 and env.history == [1, 2, 3]
    assert env.countdown == 1
    # the tenth: the agent is put on a random free cell, the history is wiped, then it moves
    *_, info = env.step(NOOP)
    assert env.countdown == 0 and env.history in ([], [info["pad"]])
    # and the sequence pays again, once
    steps = visit(env, [1, 2, 3])
    assert [s[1] for s in steps] == [0.0] * (len(steps) - 1) + [10.0]


@pytest.mark.parametrize("layout", sorted(PICTURES))
def test_every_layout_pays_for_its_sequence(layout):
    env, _, _ = start(layout, at=(6, 7))
    n = env.num_pads
    steps = visit(env, range(1, n + 1))
    assert [s[1] for s in steps].count(10.0) == 1 and steps[-1][1] == 10.0
    assert [s[4]["sequence_progress"] for s in steps if s[4]["event"]] == list(range(1, n + 1))


def test_a_wrong_pad_breaks_the_run_and_only_pad_one_starts_a_new_one():
    env, _, _ = start("three", at=(6, 7))
    *_, info = visit(env, [1, 3])[-1]
    assert info["sequence_progress"] == 0
    steps = visit(env, [2, 3])  # history 1 3 2 3: the last three are not 1 2 3
    assert sum(s[1] for s in steps) == 0 and steps[-1][4]["sequence_progress"] == 0
    *_, info = visit(env, [1, 2, 1])[-1]
    assert info["sequence_progress"] == 1
    steps = visit(env, [2, 3])
    assert steps[-1][1] == 10.0


def test_only_the_last_n_pads_count():
    # The original keeps the last n registered pads: earlier wrong ones do not matter.
    env, _, _ = start("four", at=(6, 7))
    steps = visit(env, [3, 2, 1, 2, 3, 4])
    assert [s[1] for s in steps].count(10.0) == 1 and steps[-1][1] == 10.0
    assert env.history == [1, 2, 3, 4]


def test_leaving_and_reentering_a_pad_registers_it_once():
    env, _, _ = start("three", at=(6, 7))
    visit(env, [1])
    steps = run(env, [RIGHT] * 4 + [LEFT] * 4)  # off pad 1 and back
    assert env.history == [1] and [s[4]["event"] for s in steps].count(True) == 1
    steps = visit(env, [2, 3])
    assert steps[-1][1] == 10.0


def test_episodes_are_truncated_after_2000_steps_and_never_terminate():
    env = PinPadEnv("three")
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 5, size=2000)
    for t, action in enumerate(actions, start=1):
        _, _, terminated, truncated, _ = env.step(int(action))
        assert not terminated and truncated == (t == 2000)
    with pytest.raises(RuntimeError):
        env.step(NOOP)
    env, _, _ = start(max_steps=3)
    assert [s[3] for s in run(env, [NOOP] * 3)] == [False, False, True]


# ---------------------------------------------------------------------------- the observation
def test_the_image_shows_the_grid_the_agent_and_pale_pads():
    env, obs, _ = start("six", at=(6, 7))
    grid = layout_grid("six")
    for row in range(14):
        for column in range(16):
            code = int(grid[row, column])
            expected = {-2: GREY, 0: WHITE}.get(code) or PALE[code]
            if (row, column) == (6, 7):
                expected = BLACK
            assert cell(obs, row, column) == expected, (row, column)
    assert all(cell(obs, row, column) == GREY for row in (14, 15) for column in range(16))


def test_a_pad_lights_up_while_the_agent_stands_on_it():
    env, _, _ = start("three", at=(6, 7))
    steps = visit(env, [2])
    obs = steps[-1][0]
    grid = layout_grid("three")
    for row, column in zip(*np.nonzero(grid == 2)):
        if (row, column) != env.agent_position:
            assert cell(obs, row, column) == PAD_COLOURS[2]
    assert cell(obs, *env.agent_position) == BLACK
    assert cell(obs, 1, 1) == PALE[1] and cell(obs, 1, 14) == PALE[3]
    assert steps[-2][0][4 * 9 + 1, 4 * 6 + 1].tolist() == list(PALE[2])  # the step before: pale
    obs, *_ = env.step(UP)  # off the pad: pale again
    assert cell(obs, 9, 6) == PALE[2]


def test_the_bar_shows_the_registered_pads_and_the_floor_turns_green_after_a_reward():
    env, _, _ = start("three", at=(6, 7))
    obs = visit(env, [1, 2])[-1][0]
    assert [cell(obs, 14, column) for column in range(6)] == [
        GREY, PAD_COLOURS[1], GREY, PAD_COLOURS[2], GREY, GREY
    ]  # fmt: skip
    assert cell(obs, 6, 12) == WHITE
    obs = visit(env, [3])[-1][0]
    assert cell(obs, 14, 5) == PAD_COLOURS[3] and cell(obs, 6, 12) == GREEN_FLOOR
    assert cell(obs, 0, 0) == GREY and cell(obs, 1, 1) == PALE[1]  # only the floor changes
    obs = run(env, [NOOP] * 9)[-1][0]
    assert cell(obs, 6, 12) == GREEN_FLOOR
    obs, *_ = env.step(NOOP)  # the countdown ends: white floor, empty bar (unless on a pad now)
    assert cell(obs, 14, 3) == GREY and cell(obs, 14, 5) == GREY
    assert GREEN_FLOOR not in {cell(obs, r, c) for r in range(14) for c in range(16)}


def test_render_returns_the_observation():
    env = PinPadEnv("five", render_mode="rgb_array")
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(env.render(), obs)
    obs, *_ = env.step(DOWN)
    np.testing.assert_array_equal(env.render(), obs)
    quiet = PinPadEnv("five")
    quiet.reset(seed=0)
    assert quiet.render() is None


# ---------------------------------------------------------------------------------- events
def test_event_exactly_when_the_agent_steps_onto_a_pad():
    grid = layout_grid("five")
    env = PinPadEnv("five", max_steps=600)
    _, info = env.reset(seed=5)
    assert info["event"] is False
    previous = int(grid[env.agent_position])
    entries = 0
    for action in np.random.default_rng(5).integers(0, 5, size=600):
        *_, info = env.step(int(action))
        here = int(grid[env.agent_position])
        assert info["pad"] == (here if here > 0 else -1)
        assert info["event"] == (here > 0 and here != previous)
        entries += info["event"]
        previous = here
    assert entries > 5


def test_no_event_while_walking_on_a_pad_and_one_when_put_on_a_pad():
    env, _, _ = start("three", at=(6, 7))
    steps = visit(env, [1])
    assert [s[4]["event"] for s in steps] == [False] * (len(steps) - 1) + [True]
    steps = run(env, [UP, LEFT, NOOP, RIGHT])
    assert not any(s[4]["event"] for s in steps) and all(s[4]["pad"] == 1 for s in steps)
    # the respawn at the end of a countdown lands on pad 2 here: that is an entry too
    visit(env, [2, 3])
    env._random_free_cell = lambda: (10, 7)
    steps = run(env, [NOOP] * 10)
    assert [s[4]["event"] for s in steps] == [False] * 9 + [True]
    assert steps[-1][4]["pad"] == 2 and env.history == [2]


# ------------------------------------------------------------------------ seeds and checker
@pytest.mark.parametrize("env_id", IDS)
def test_env_checker(env_id):
    check_env(gym.make(env_id, render_mode="rgb_array").unwrapped)


def test_deterministic_under_a_seed():
    actions = np.random.default_rng(0).integers(0, 5, size=300)

    def trace(seed):
        env = PinPadEnv("four")
        obs, info = env.reset(seed=seed)
        out = [obs, info["pad"]]
        for action in actions:
            obs, reward, _, _, info = env.step(int(action))
            out += [obs, reward, info["pad"], info["event"], info["sequence_progress"]]
        return out

    first, again, other = trace(3), trace(3), trace(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
