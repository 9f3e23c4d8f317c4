"""`wanderlust play`: key maps, the session (moves, rewards, the run's bonus), the window loop driven
headlessly by posted key events, and the one-line refusals (no display, Procgen, a mismatched run).
"""

import importlib.util
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.actions import Actions

from wanderlust.run import play as play_module
from wanderlust.run.cli import main
from wanderlust.run.play import (
    AtariKeys,
    DisplayError,
    minigrid_keys,
    PlaySession,
    check_display,
    key_map_for,
    resolve_env_id,
    run_window,
)
from wanderlust.run.replay import StepScorer, load_run
from wanderlust.run.train import train

pytestmark = pytest.mark.unit

ENV = "MiniGrid-Empty-5x5-v0"
# Empty-5x5: the agent starts at (1, 1) facing right (dir 0); the goal is at (3, 3).
TO_THE_GOAL = ["up", "up", "right", "up", "up"]
PONG_ACTIONS = ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]
FULL_ACTIONS = [
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny RIDE run on Empty-5x5 (its bonus reads both ends of a step) (a few seconds)."""
    directory = tmp_path_factory.mktemp("play") / "run"
    train(env=ENV, bonus="ride", preset="debug", frames=512, run_dir=directory)
    return directory


@pytest.fixture
def headless(monkeypatch):
    """pygame on SDL's dummy video driver, its event queue ready for posted keys."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    pygame = play_module._import_pygame()
    pygame.display.init()
    pygame.event.clear()
    yield pygame
    pygame.display.quit()


def post_keys(pygame, *names: str) -> None:
    for name in names:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.key.key_code(name)))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# --- key maps -------------------------------------------------------------------------------------


def test_minigrid_keys_send_minigrids_actions():
    keys = minigrid_keys()
    expected = {
        "left": Actions.left, "right": Actions.right, "up": Actions.forward, "space": Actions.toggle,
        "p": Actions.pickup, "d": Actions.drop, "return": Actions.done,
    }
    for key, action in expected.items():
        assert keys.action_for_press(key) == int(action), key
    for unmapped in ("down", "x", "escape", "r"):
        assert keys.action_for_press(unmapped) is None


def test_atari_keys_compose_the_games_own_actions():
    full = AtariKeys(FULL_ACTIONS)
    name = lambda held: FULL_ACTIONS[full.action_for_held(held)]  # noqa: E731
    assert name([]) == "NOOP"
    assert name(["space"]) == "FIRE"
    assert name(["up", "space"]) == "UPFIRE"
    assert name(["left", "down"]) == "DOWNLEFT"
    assert name(["space", "right", "up"]) == "UPRIGHTFIRE"
    assert name(["left", "right"]) == "RIGHT"  # opposite directions: the later pressed wins
    assert name(["x", "up"]) == "UP"  # keys that map to nothing are ignored


def test_atari_keys_fall_back_to_what_the_game_has():
    pong = AtariKeys(PONG_ACTIONS)
    name = lambda held: PONG_ACTIONS[pong.action_for_held(held)]  # noqa: E731
    assert name(["up"]) == "NOOP"  # Pong has no UP
    assert name(["up", "space"]) == "FIRE"
    assert name(["right", "space"]) == "RIGHTFIRE"
    four_ways = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN"]  # no diagonals, no combined FIRE
    cross = AtariKeys(four_ways)
    assert four_ways[cross.action_for_held(["up", "right"])] == "RIGHT"  # the key pressed last
    assert four_ways[cross.action_for_held(["right", "space", "up"])] == "UP"
    pacman = ["NOOP", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT"]
    no_fire = AtariKeys(pacman)
    assert pacman[no_fire.action_for_held(["up", "space"])] == "UP"


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py")
def test_atari_key_map_reads_the_games_action_meanings():
    session = PlaySession.for_env("ALE/Pong-v5", seed=0)
    try:
        keys = key_map_for(session)
        assert keys.meanings == session.base_env.get_action_meanings() == PONG_ACTIONS
        assert keys.realtime
    finally:
        session.close()


# --- the session ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3])
def test_session_moves_the_agent_as_minigrid_does(seed):
    env_id = "MiniGrid-DoorKey-6x6-v0"  # random start cell and direction
    session = PlaySession.for_env(env_id, seed=seed)
    reference = gym.make(env_id)
    reference.reset(seed=seed)
    keys = minigrid_keys()
    plan = ["right", "up", "up", "left", "up", "space", "right", "up", "up", "left", "left", "up"]
    positions = {tuple(session.base_env.agent_pos)}
    try:
        def same_state():
            base, ref = session.base_env, reference.unwrapped
            return tuple(base.agent_pos) == tuple(ref.agent_pos) and base.agent_dir == ref.agent_dir

        assert same_state()
        for key in plan:
            action = keys.action_for_press(key)
            report = session.step(action)
            _, reward, terminated, truncated, _ = reference.step(action)
            assert same_state(), key
            assert report.reward == pytest.approx(reward) and report.done == (terminated or truncated)
            assert report.intrinsic is None  # no run, no bonus
            positions.add(tuple(session.base_env.agent_pos))
        assert len(positions) > 1, "the plan never moved the agent"
        assert session.frame().shape == (6 * 32, 6 * 32, 3)
    finally:
        session.close()
        reference.close()


def test_session_sums_the_episode_return():
    session = PlaySession(gym.make_vec("CartPole-v1", num_envs=1, vectorization_mode="sync"))
    session.reset()
    try:
        reports = [session.step(0) for _ in range(3)]  # CartPole: reward 1 per step
        assert [r.episode_return for r in reports] == [1.0, 2.0, 3.0]
    finally:
        session.close()


def test_session_counts_an_episode_and_refuses_steps_after_its_end():
    session = PlaySession.for_env(ENV, seed=0)
    keys = minigrid_keys()
    try:
        reports = [session.step(keys.action_for_press(key)) for key in TO_THE_GOAL]
        assert [r.step for r in reports] == [1, 2, 3, 4, 5]
        assert reports[-1].done and not any(r.done for r in reports[:-1])
        assert reports[-1].reward > 0 and reports[-1].episode_return == pytest.approx(reports[-1].reward)
        with pytest.raises(RuntimeError, match="reset"):
            session.step(int(Actions.forward))
        session.reset()
        assert (session.step_count, session.episode_return, session.done, session.episodes) == (0, 0.0, False, 2)
        assert tuple(session.base_env.agent_pos) == (1, 1)
    finally:
        session.close()


def test_session_bonus_is_what_step_scorer_gives_on_the_same_steps(run_dir):
    keys = minigrid_keys()
    episodes = [TO_THE_GOAL, ["left", "up", "right", "right", "up", "up", "p", "d", "space", "up"]]
    session = PlaySession.for_run(load_run(run_dir, "cpu", seed=7))
    played: list[float] = []
    try:
        for index, episode in enumerate(episodes):
            if index:
                session.reset()
            played += [session.step(keys.action_for_press(key)).intrinsic for key in episode]
    finally:
        session.close()

    fresh = load_run(run_dir, "cpu", seed=7)
    scorer = StepScorer.for_run(fresh)
    expected: list[float] = []
    try:
        for episode in episodes:
            obs, _ = fresh.env.reset()
            scorer.start(obs[0])
            for key in episode:
                action = keys.action_for_press(key)
                next_obs, _, terminated, truncated, _ = fresh.env.step(np.array([action]))
                expected.append(scorer.score(obs[0], action, next_obs[0], bool(terminated[0] or truncated[0])))
                obs = next_obs
    finally:
        fresh.close()
    assert played == expected
    assert all(isinstance(value, float) for value in played)
    assert len(set(played)) > 1, "the bonus should vary over states"


# --- the window -----------------------------------------------------------------------------------


def test_window_steps_on_posted_keys_and_quits_on_escape(headless):
    session = PlaySession.for_env(ENV, seed=0)
    try:
        # right: face down; up: forward to (1, 2); x: ignored; escape: quit; the last up never runs
        post_keys(headless, "right", "up", "x", "escape", "up")
        ticks = run_window(session, minigrid_keys(), max_ticks=50)
        assert ticks == 1
        assert session.step_count == 2
        assert tuple(session.base_env.agent_pos) == (1, 2) and session.base_env.agent_dir == 1
    finally:
        session.close()


def test_window_resets_on_r_and_after_an_episode_on_any_key(headless, run_dir):
    session = PlaySession.for_run(load_run(run_dir, "cpu", seed=0))
    try:
        post_keys(headless, "up", "r", *TO_THE_GOAL)
        assert run_window(session, minigrid_keys(), max_ticks=3) == 3
        assert session.episodes == 2 and session.done and session.last.intrinsic is not None
        headless.display.init()  # the window closed the display on its way out
        post_keys(headless, "left", "right", "q")  # left starts episode 3 without stepping
        run_window(session, minigrid_keys(), scale=2, max_ticks=5)
        assert session.episodes == 3 and session.step_count == 1
        assert session.base_env.agent_dir == 1
    finally:
        session.close()


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py")
def test_atari_window_runs_in_real_time_with_the_held_keys(headless):
    session = PlaySession.for_env("ALE/Pong-v5", seed=0)
    try:
        keys = key_map_for(session)
        headless.event.post(headless.event.Event(headless.KEYDOWN, key=headless.K_SPACE))
        headless.event.post(headless.event.Event(headless.KEYDOWN, key=headless.K_RIGHT))
        assert run_window(session, keys, max_ticks=3) == 3
        assert session.step_count == 3  # one step a tick, with or without keys
        assert PONG_ACTIONS[session.last.action] == "RIGHTFIRE"
    finally:
        session.close()


def test_a_failing_window_is_one_line(monkeypatch, headless):
    def refuse(*args, **kwargs):
        raise headless.error("no video device")

    monkeypatch.setattr(headless.display, "set_mode", refuse)
    session = PlaySession.for_env(ENV, seed=0)
    try:
        with pytest.raises(DisplayError, match="could not open a window: no video device"):
            run_window(session, minigrid_keys(), max_ticks=1)
    finally:
        session.close()


# --- the command and its refusals -------------------------------------------------------------------


def test_no_display_is_one_line(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DisplayError, match="needs a display"):
        check_display(platform="linux")
    check_display({"DISPLAY": ":0"}, "linux")
    check_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    check_display({"SDL_VIDEODRIVER": "dummy"}, "linux")
    check_display({}, "darwin")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is Linux's")
def test_cli_without_a_display_exits_2_with_one_line(monkeypatch, capsys):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"):
        monkeypatch.delenv(name, raising=False)
    assert main(["play", ENV]) == 2
    assert "display" in one_error_line(capsys)


def test_cli_refuses_procgen_in_one_line(capsys):
    assert main(["play", "procgen/coinrun-hard-v0"]) == 2
    assert "Procgen" in one_error_line(capsys)
    with pytest.raises(ValueError, match="Procgen"):
        PlaySession.for_env("procgen/coinrun-hard-v0")


def test_cli_refuses_a_run_of_another_env_in_one_line(run_dir, capsys):
    assert main(["play", "MiniGrid-DoorKey-5x5-v0", "--run", str(run_dir)]) == 2
    err = one_error_line(capsys)
    assert "MiniGrid-DoorKey-5x5-v0" in err and ENV in err


def test_cli_needs_an_env_or_a_run(tmp_path, capsys):
    assert main(["play"]) == 2
    assert "ENV_ID" in one_error_line(capsys)
    assert main(["play", "--run", str(tmp_path)]) == 2
    assert "not a wanderlust run directory" in one_error_line(capsys)
    assert main(["play", "MiniGrid-NoSuchEnv-v0"]) == 2
    assert "unknown environment" in one_error_line(capsys)


def test_cli_plays_the_runs_env_when_env_id_is_omitted(run_dir, headless, capsys):
    assert resolve_env_id(None, run_dir) == ENV
    assert resolve_env_id(ENV, run_dir) == ENV
    post_keys(headless, "up", "escape")  # queued before the window opens, read by its first tick
    assert main(["play", "--run", str(run_dir), "--scale", "2"]) == 0
    assert capsys.readouterr().err == ""


def test_turn_based_families_map_their_keys_to_their_own_actions():
    from wanderlust.envs import ballet, gridworld, pinpad
    from wanderlust.run.play import ballet_keys, gridworld_keys, pinpad_keys

    def moves(keys, names):
        return {key: names[keys.action_for_press(key)] for key in keys.actions}

    assert moves(ballet_keys(), ballet.ACTION_NAMES) == {
        "up": "N", "right": "E", "down": "S", "left": "W", "y": "NW", "u": "NE", "b": "SW", "n": "SE",
    }
    assert moves(gridworld_keys(), gridworld.ACTION_NAMES) == {
        "right": "right", "down": "down", "left": "left", "up": "up", "space": "stay",
    }
    assert moves(pinpad_keys(), pinpad.ACTION_NAMES) == {
        "right": "right", "down": "down", "left": "left", "up": "up", "space": "noop",
    }
    for keys in (ballet_keys(), gridworld_keys(), pinpad_keys()):
        assert keys.action_for_press("q") is None and not keys.realtime and "q quit" in keys.help
