"""wanderlust.envs.procgen: the Procgen ids, their envpool settings, episode bookkeeping and errors.

Tests that run Procgen skip, with the reason, where envpool's Procgen cannot load (envpool missing,
or the Qt 5 runtime it links against missing). envpool builds a Procgen pool in milliseconds once
its first pool in the process has loaded the game assets (about 2 s), so tests build their own.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium.spaces import Box, Discrete

from wanderlust import envs
from wanderlust.envs import env_family, env_spec, list_envs, make, procgen
from wanderlust.envs.vector import envpool_task_ids
from wanderlust.nets.atari import model_a

pytestmark = pytest.mark.unit

PROBLEM = procgen.envpool_problem()
needs_procgen = pytest.mark.skipif(PROBLEM is not None, reason=f"Procgen cannot run: {PROBLEM}")

PROCGEN_IDS = list_envs()["procgen"]
ENVPOOL_MODE_CODES = {"easy": 0, "hard": 1, "extreme": 2, "memory": 10, "exploration": 20}
"""Procgen's integer codes for its distribution modes, which envpool's configs carry."""
SND_IDS = [f"procgen/{game}-exploration-v0" for game in procgen.SND_GAMES]


def raw_pool(env_id: str, num_envs: int, seed: int, **settings: Any) -> Any:
    """envpool's own pool for an id, without anything of wanderlust's above it."""
    import envpool

    return envpool.make(
        procgen.envpool_task_id(env_id),
        env_type="gymnasium",
        num_envs=num_envs,
        seed=[seed + i for i in range(num_envs)],
        **settings,
    )


def first_frames(env_id: str, num_envs: int = 2, seed: int = 0, **options: Any) -> np.ndarray:
    env = make(env_id, num_envs=num_envs, seed=seed, **options)
    obs, _ = env.reset()
    env.close()
    return obs


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------
# Registry (no envpool needed)


def test_every_game_is_registered_under_an_id_that_names_its_mode():
    assert len(procgen.GAMES) == 16
    expected = sorted(
        f"procgen/{game}-{mode}-v0" for game, (modes, _) in procgen.GAMES.items() for mode in modes
    )
    assert PROCGEN_IDS == expected
    assert procgen.game_and_mode("procgen/coinrun-hard-v0") == ("coinrun", "hard")
    assert procgen.envpool_task_id("procgen/climber-exploration-v0") == "ClimberExploration-v0"
    for env_id in PROCGEN_IDS:
        assert env_family(env_id) == "procgen"


def test_snd_hard_exploration_games_are_reachable():
    assert set(procgen.SND_GAMES) == {"caveflyer", "climber", "coinrun", "jumper"}
    assert set(SND_IDS) <= set(PROCGEN_IDS)


def test_a_misspelt_id_suggests_the_procgen_one():
    with pytest.raises(envs.UnknownEnvError) as error:
        env_family("procgen/coinrun-hrad-v0")
    assert "procgen/coinrun-hard-v0" in one_line(error)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"num_levels": -1}, "num_levels must be an int >= 0"),
        ({"num_levels": True}, "num_levels must be an int >= 0"),
        ({"start_level": 1.5, "num_levels": 1}, "start_level must be an int >= 0"),
        ({"start_level": 7}, "needs num_levels > 0"),
        ({"start_level": 2**31 - 10, "num_levels": 20}, "at most 2\\*\\*31 - 1"),
        ({"screen_size": 84}, "unknown option"),
    ],
)
def test_bad_options_are_rejected_in_one_line(options, match):
    with pytest.raises(ValueError, match=match) as error:
        make("procgen/coinrun-hard-v0", **options)
    one_line(error)


@pytest.mark.parametrize("backend", ["auto", "envpool", "gymnasium"])
@pytest.mark.parametrize("options", [{"num_levels": 5}, {"num_levels": 5, "start_level": 3}])
def test_exploration_mode_refuses_level_options_before_envpool_sees_them(backend, options):
    # envpool kills the whole process (a failed C++ CHECK) on these, so they must not reach it.
    with pytest.raises(ValueError, match="one fixed level") as error:
        make("procgen/coinrun-exploration-v0", backend=backend, **options)
    one_line(error)


# --------------------------------------------------------------------------------------------
# Errors when Procgen cannot run


def test_gymnasium_backend_says_procgen_is_envpool_only():
    with pytest.raises(ValueError, match="runs only on envpool") as error:
        make("procgen/coinrun-hard-v0", backend="gymnasium")
    assert "backend='envpool'" in one_line(error)
    with pytest.raises(ValueError, match="cannot render"):
        make("procgen/coinrun-hard-v0", render=True)


def test_missing_envpool_says_how_to_install(monkeypatch):
    monkeypatch.setattr(envs, "envpool_installed", lambda: False)
    monkeypatch.setattr(procgen, "envpool_installed", lambda: False)
    monkeypatch.setattr(procgen, "envpool_problem", procgen.envpool_problem.__wrapped__)
    with pytest.raises(ModuleNotFoundError) as error:
        make("procgen/coinrun-hard-v0")
    assert procgen.INSTALL_HINT in one_line(error)
    with pytest.raises(ModuleNotFoundError, match="pip install"):
        make("procgen/coinrun-hard-v0", backend="envpool")


@pytest.mark.skipif(not envs.envpool_installed(), reason="envpool is not installed")
def test_missing_qt_says_which_package_to_install(monkeypatch):
    def no_qt(name: str) -> Any:
        raise ImportError("libQt5Gui.so.5: cannot open shared object file: No such file or directory")

    unloadable = types.ModuleType("envpool.procgen")
    unloadable.__getattr__ = no_qt  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "envpool.procgen", unloadable)
    problem = procgen.envpool_problem.__wrapped__()
    assert problem is not None and procgen.QT_HINT in problem and "\n" not in problem

    monkeypatch.setattr(procgen, "envpool_problem", lambda: problem)
    with pytest.raises(ImportError) as error:  # auto: no backend can run it, so say why
        make("procgen/coinrun-hard-v0")
    assert procgen.QT_HINT in one_line(error)
    with pytest.raises(ValueError) as forced:
        make("procgen/coinrun-hard-v0", backend="envpool")
    assert procgen.QT_HINT in one_line(forced)
    assert env_spec("procgen/coinrun-hard-v0").backends == ()


# --------------------------------------------------------------------------------------------
# What envpool runs


@needs_procgen
def test_every_envpool_procgen_task_is_registered_with_its_mode_and_step_limit():
    import envpool
    from envpool.registration import registry

    procgen_tasks = {
        task for task, spec in registry.specs.items() if spec[0] == "envpool.procgen"
    }
    assert {procgen.envpool_task_id(env_id) for env_id in PROCGEN_IDS} == procgen_tasks
    for env_id in PROCGEN_IDS:
        game, mode = procgen.game_and_mode(env_id)
        task_id, settings = procgen.envpool_config(
            env_id, procgen.resolve_options({}), envpool_task_ids()
        )
        config = envpool.make_spec(task_id, **settings).config
        assert config.env_name == game
        assert config.distribution_mode == ENVPOOL_MODE_CODES[mode]
        assert config.max_episode_steps == procgen.GAMES[game][1]
        assert config.channel_first
    assert env_spec("procgen/coinrun-hard-v0").backends == ("envpool",)


@needs_procgen
@pytest.mark.parametrize("env_id", PROCGEN_IDS)
def test_every_id_builds_steps_and_is_deterministic_under_a_seed(env_id):
    def run(seed: int) -> tuple[np.ndarray, np.ndarray]:
        env = make(env_id, num_envs=2, seed=seed)
        assert (env.family, env.backend) == ("procgen", "envpool")
        assert env.single_observation_space == Box(0, 255, (3, 64, 64), np.uint8)
        assert env.single_action_space == Discrete(15)
        obs, _ = env.reset()
        frames, rewards = [obs], []
        actions = np.random.default_rng(0).integers(0, 15, (20, 2))
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            assert terminated.dtype == truncated.dtype == np.bool_
            assert reward.dtype == np.float32
            assert set(info) == {"episode_done", "episode_return", "episode_length"}
            frames.append(obs)
            rewards.append(reward)
        env.close()
        stacked = np.stack(frames)
        assert stacked.dtype == np.uint8 and stacked.shape == (21, 2, 3, 64, 64)
        assert env.observation_space.contains(stacked[-1])
        return stacked, np.stack(rewards)

    frames, rewards = run(seed=3)
    again_frames, again_rewards = run(seed=3)
    np.testing.assert_array_equal(frames, again_frames)
    np.testing.assert_array_equal(rewards, again_rewards)


@needs_procgen
def test_observations_are_envpool_frames_channels_first():
    ours = first_frames("procgen/coinrun-hard-v0", seed=4)
    pool = raw_pool("procgen/coinrun-hard-v0", 2, seed=4, channel_first=False)
    channels_last, _ = pool.reset()
    np.testing.assert_array_equal(ours, channels_last.transpose(0, 3, 1, 2))


@needs_procgen
def test_seeds_draw_different_levels_except_in_exploration_mode():
    hard = first_frames("procgen/coinrun-hard-v0", num_envs=3, seed=0)
    assert not np.array_equal(hard[0], hard[1]) and not np.array_equal(hard[1], hard[2])
    assert not np.array_equal(hard, first_frames("procgen/coinrun-hard-v0", num_envs=3, seed=10))
    for env_id in SND_IDS:  # one fixed level, whatever the seed
        frames = np.concatenate([first_frames(env_id, seed=0), first_frames(env_id, seed=10)])
        assert all(np.array_equal(frame, frames[0]) for frame in frames)


@needs_procgen
def test_distribution_mode_reaches_envpool():
    # The same level seed generates a different level in each mode.
    one_level = {"num_levels": 1, "start_level": 12345}
    easy = first_frames("procgen/coinrun-easy-v0", **one_level)
    hard = first_frames("procgen/coinrun-hard-v0", **one_level)
    assert not np.array_equal(easy, hard)
    # Procgen's exploration mode is the hard mode restricted to one fixed level.
    pool = raw_pool("procgen/coinrun-exploration-v0", 1, seed=0)
    _, info = pool.reset()
    fixed_level = {"num_levels": 1, "start_level": int(info["level_seed"][0])}
    np.testing.assert_array_equal(
        first_frames("procgen/coinrun-hard-v0", **fixed_level),
        first_frames("procgen/coinrun-exploration-v0"),
    )


@needs_procgen
def test_level_options_reach_envpool():
    one_level = first_frames("procgen/maze-easy-v0", num_envs=3, num_levels=1, start_level=7)
    assert all(np.array_equal(frame, one_level[0]) for frame in one_level)
    np.testing.assert_array_equal(
        one_level[:1],
        first_frames("procgen/maze-easy-v0", num_envs=1, seed=99, num_levels=1, start_level=7),
    )
    assert not np.array_equal(
        one_level[:1],
        first_frames("procgen/maze-easy-v0", num_envs=1, num_levels=1, start_level=8),
    )


# --------------------------------------------------------------------------------------------
# Episode bookkeeping under envpool's next-step auto-reset (PITFALLS 7)


def hand_stepped_episodes(
    env_id: str, seed: int, actions: np.ndarray, **settings: Any
) -> tuple[list[tuple[float, int]], np.ndarray]:
    """(return, length) of each episode that ends, from envpool's single env stepped by hand.

    The step after a done is the auto-reset: its action is ignored and it starts the next episode,
    so it counts toward neither. Also returns the observations, to check that both runs match.
    """
    pool = raw_pool(env_id, 1, seed)
    obs, _ = pool.reset()
    frames = [obs[0]]
    episodes, episode_return, episode_length, resetting = [], 0.0, 0, False
    for action in actions:
        obs, reward, terminated, truncated, _ = pool.step(np.array([action]))
        frames.append(obs[0])
        if resetting:
            assert reward[0] == 0.0 and not (terminated[0] or truncated[0])
            resetting = False
            continue
        episode_return += float(reward[0])
        episode_length += 1
        if terminated[0] or truncated[0]:
            episodes.append((episode_return, episode_length))
            episode_return, episode_length, resetting = 0.0, 0, True
    pool.close()
    return episodes, np.stack(frames)


@needs_procgen
@pytest.mark.parametrize("env_id", ["procgen/coinrun-easy-v0", "procgen/fruitbot-easy-v0"])
def test_episode_returns_and_lengths_match_a_hand_stepped_env(env_id):
    num_envs, steps, seed = 3, 1000, 11
    actions = np.random.default_rng(1).integers(0, 15, (steps, num_envs))
    env = make(env_id, num_envs=num_envs, seed=seed)
    obs, _ = env.reset()
    frames = [obs]
    reported: list[list[tuple[float, int]]] = [[] for _ in range(num_envs)]
    for action in actions:
        obs, _, terminated, truncated, info = env.step(action)
        frames.append(obs)
        np.testing.assert_array_equal(info["episode_done"], terminated | truncated)
        for i in np.flatnonzero(info["episode_done"]):
            reported[i].append((info["episode_return"][i], int(info["episode_length"][i])))
    env.close()
    ours = np.stack(frames)

    returns_seen = []
    for i in range(num_envs):
        episodes, hand_frames = hand_stepped_episodes(env_id, seed + i, actions[:, i])
        np.testing.assert_array_equal(ours[:, i], hand_frames)
        assert len(reported[i]) == len(episodes) > 0
        for (our_return, our_length), (hand_return, hand_length) in zip(reported[i], episodes):
            assert our_length == hand_length
            assert our_return == pytest.approx(hand_return, abs=1e-6)
        returns_seen += [episode_return for episode_return, _ in episodes]
    assert any(episode_return != 0.0 for episode_return in returns_seen)


@needs_procgen
def test_episodes_are_truncated_at_the_games_step_limit():
    env_id = "procgen/maze-easy-v0"
    limit = procgen.GAMES["maze"][1]
    env = make(env_id, num_envs=1, seed=0)
    env.reset()
    standing_still = np.array([4])  # no-op: the maze's goal is never reached
    for _ in range(limit - 1):
        _, _, terminated, truncated, info = env.step(standing_still)
        assert not (terminated[0] or truncated[0])
    _, _, terminated, truncated, info = env.step(standing_still)
    assert truncated[0] and not terminated[0]
    assert info["episode_length"][0] == limit and info["episode_return"][0] == 0.0
    _, reward, terminated, truncated, info = env.step(standing_still)  # the auto-reset step
    assert reward[0] == 0.0 and not (terminated[0] or truncated[0] or info["episode_done"][0])
    env.close()


# --------------------------------------------------------------------------------------------
# The policy network that PPO picks for Procgen


@needs_procgen
def test_model_a_runs_on_procgen_frames():
    frames = torch.from_numpy(first_frames("procgen/climber-exploration-v0"))
    encoder = model_a(tuple(frames.shape[1:]))
    features = encoder(frames)
    assert features.shape == (2, encoder.output_size) and torch.isfinite(features).all()
