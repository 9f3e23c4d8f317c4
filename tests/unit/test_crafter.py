"""Crafter (wanderlust.envs.crafter): the env against the crafter package's own game, and the
benchmark's score.

The env tests build small worlds (``area=16``): Crafter generates a 64 x 64 world in about a second
on a busy CI core, a 16 x 16 one in a tenth of that, and the rules do not depend on the size. They
skip without the crafter package; the score tests do not need it.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wanderlust.agents.episodes import record_step
from wanderlust.envs import crafter as crafter_family
from wanderlust.envs import env_family, env_spec, list_envs, make
from wanderlust.envs.crafter import (
    ACHIEVEMENT_KEYS,
    ACHIEVEMENTS,
    ACTION_NAMES,
    CRAFTER_ID,
    CrafterEnv,
    crafter_score,
    score_from_metrics,
    success_rates_from_metrics,
)

pytestmark = pytest.mark.unit

SMALL = {"area": 16}


@pytest.fixture
def crafter():
    return pytest.importorskip("crafter")


def random_actions(steps: int, seed: int = 0) -> list[int]:
    return np.random.default_rng(seed).integers(len(ACTION_NAMES), size=steps).tolist()


# ----------------------------------------------------------------------------- registration
def test_crafter_is_listed_in_its_own_family_on_gymnasium_only():
    assert list_envs()["crafter"] == [CRAFTER_ID]
    assert env_family(CRAFTER_ID) == "crafter"
    assert env_spec(CRAFTER_ID).backends == ("gymnasium",)
    with pytest.raises(ValueError, match="envpool has no version"):
        crafter_family.envpool_config(CRAFTER_ID, crafter_family.resolve_options({}), frozenset())


def test_bad_options_are_one_line_value_errors():
    for options in ({"area": 4}, {"length": 0}, {"size": 64.0}, {"reward": "yes"}, {"view": 9}):
        with pytest.raises(ValueError) as error:
            make(CRAFTER_ID, 1, **options)
        assert "\n" not in str(error.value)


def test_without_crafter_making_the_env_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "crafter", None)  # makes `import crafter` fail
    with pytest.raises(ModuleNotFoundError) as error:
        make(CRAFTER_ID, 1, **SMALL)
    message = str(error.value)
    assert "pip install 'wanderlust[crafter]'" in message and "\n" not in message


def test_names_are_crafters_own(crafter):
    assert ACHIEVEMENTS == tuple(crafter.constants.achievements)
    assert ACTION_NAMES == tuple(crafter.constants.actions)
    assert ACHIEVEMENT_KEYS[ACHIEVEMENTS.index("collect_wood")] == "achievement_collect_wood"


# ---------------------------------------------------------------------------------- the env
def test_env_checker_spaces_and_observation(crafter):
    env = CrafterEnv(**SMALL)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (64, 64, 3) and env.action_space.n == 17
    obs, info = env.reset(seed=1)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.any()
    assert info["episode_achievements"] == dict.fromkeys(ACHIEVEMENTS, False)
    assert CrafterEnv(size=32, **SMALL).reset(seed=1)[0].shape == (32, 32, 3)
    rendering = CrafterEnv(render_mode="rgb_array", **SMALL)
    obs, *_ = rendering.reset(seed=1)
    assert np.array_equal(rendering.render(), obs)
    obs, *_ = rendering.step(5)
    assert np.array_equal(rendering.render(), obs)


def run_trace(env: CrafterEnv, seed: int | None, actions: list[int]) -> list[np.ndarray]:
    """Observations, rewards and flags of `actions` from reset(seed), resetting (unseeded, the
    game's next episode) whenever an episode ends."""
    trace = [env.reset(seed=seed)[0]]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        trace += [obs, np.array([reward, terminated, truncated])]
        if terminated or truncated:
            trace.append(env.reset()[0])
    return trace


def test_same_seed_same_run_and_reset_seed_restarts_it(crafter):
    """Long enough for deaths, new episodes and creatures despawned (which Crafter's own game does
    not repeat under a seed: danijar/crafter#31)."""
    actions = random_actions(250)
    env = CrafterEnv(length=100, **SMALL)
    first = run_trace(env, 7, actions)
    again = run_trace(CrafterEnv(length=100, **SMALL), 7, actions)
    restarted = run_trace(env, 7, actions)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(first, restarted, strict=True))
    assert not np.array_equal(first[0], CrafterEnv(**SMALL).reset(seed=8)[0])
    assert not np.array_equal(first[0], env.reset()[0])  # the next episode is a new world


def same_order_game(crafter, **kwargs):
    """Crafter's own game, with the despawn order fixed as CrafterEnv fixes it (see
    crafter._seeded_game_class): otherwise the game itself need not repeat under a seed."""
    game = crafter.Env(**kwargs)
    unpatched = game._balance_chunk
    game._balance_chunk = lambda chunk, objs: unpatched(
        chunk, sorted(objs, key=lambda obj: tuple(obj.pos.tolist()))
    )
    return game


def test_steps_match_crafters_game_and_death_terminates(crafter):
    """Side by side with Crafter's game on the same seed and actions until the player dies (a
    random player in a small world dies within a few hundred steps)."""
    length = 2000
    env = CrafterEnv(length=length, **SMALL)
    game = same_order_game(crafter, area=(16, 16), seed=5, length=length)
    obs, _ = env.reset(seed=5)
    assert np.array_equal(obs, game.reset())
    for step, action in enumerate(random_actions(length, seed=1), start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        game_obs, game_reward, done, game_info = game.step(action)
        assert np.array_equal(obs, game_obs) and reward == game_reward
        assert (terminated or truncated) == done
        if done:
            break
        assert not any(info["episode_achievements"].values())
    assert terminated and not truncated and game_info["discount"] == 0.0 and step < length
    unlocked = {name: game_info["achievements"][name] > 0 for name in ACHIEVEMENTS}
    assert info["episode_achievements"] == unlocked and any(unlocked.values())
    with pytest.raises(RuntimeError):
        env.step(0)


def test_length_truncates_then_next_step_autoreset_and_record_step_logs_achievements(crafter):
    env = make(CRAFTER_ID, 2, seed=3, backend="gymnasium", length=20, **SMALL)
    assert env.family == "crafter" and env.single_action_space.n == 17
    obs, info = env.reset()
    assert obs.shape == (2, 64, 64, 3) and obs.dtype == np.uint8
    masks = [f"_{name}" for name in ACHIEVEMENTS]  # gymnasium's presence masks
    assert sorted(info["episode_achievements"]) == sorted([*ACHIEVEMENTS, *masks])
    episodes: dict[str, list] = defaultdict(list)
    for step, action in enumerate(random_actions(20, seed=2), start=1):
        obs, reward, terminated, truncated, info = env.step(np.array([action, action]))
        record_step(info, episodes, None, obs, step)
        assert (terminated | truncated).any() == (step == 20)
    assert truncated.all() and not terminated.any()
    assert info["episode_length"].tolist() == [20, 20]
    assert set(episodes) == {"episode_return", "episode_length", *ACHIEVEMENT_KEYS}
    for name, key in zip(ACHIEVEMENTS, ACHIEVEMENT_KEYS, strict=True):
        assert episodes[key] == info["episode_achievements"][name].astype(int).tolist()

    obs, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.int64))
    assert reward.tolist() == [0.0, 0.0] and not (terminated | truncated).any()
    assert not info["episode_done"].any()
    env.close()


# -------------------------------------------------------------------------------- the score
def test_crafter_score_on_hand_computed_rates():
    assert crafter_score([0.0] * 22) == 0.0
    assert crafter_score([100.0] * 22) == pytest.approx(100.0)
    # Half at 0 %, half at 99 %: exp((11 ln 1 + 11 ln 100) / 22) - 1 = sqrt(100) - 1 = 9.
    assert crafter_score([0.0] * 11 + [99.0] * 11) == pytest.approx(9.0)
    # Two at 10 %, the rest 0: exp(2 ln 11 / 22) - 1 = 11 ** (1 / 11) - 1 = 0.24357...
    rates = dict.fromkeys(ACHIEVEMENTS, 0.0) | {"collect_wood": 10.0, "place_table": 10.0}
    assert crafter_score(rates) == pytest.approx(11 ** (1 / 11) - 1)
    assert crafter_score(rates) == pytest.approx(0.243575, abs=1e-6)


def test_crafter_score_rejects_what_is_not_22_percentages():
    for bad in ([0.0] * 21, [50.0] * 21 + [101.0], [50.0] * 21 + [math.nan], [-1.0] * 22):
        with pytest.raises(ValueError):
            crafter_score(bad)
    with pytest.raises(ValueError, match="missing"):
        crafter_score(dict.fromkeys(ACHIEVEMENTS[:-1], 0.0))


def test_run_rates_weight_rows_by_their_episodes(tmp_path):
    """Three rows: none, 2 and 6 finished episodes. collect_wood: all 2, then half of 6, so
    (2 + 3) / 8 = 62.5 % (an unweighted mean of rows would say 75 %); place_table: 1 of 6, so
    12.5 %; the other 20 never."""
    header = ["frames", "episode_return", "episodes", *ACHIEVEMENT_KEYS]
    rows = [["1000", "", "0", *[""] * 22]]
    rows_with_episodes = (("2000", "2", "1", "0"), ("3000", "6", "0.5", "0.166667"))
    for frames, episodes, wood, table in rows_with_episodes:
        cells = dict.fromkeys(ACHIEVEMENT_KEYS, "0") | {
            "achievement_collect_wood": wood,
            "achievement_place_table": table,
        }
        rows.append([frames, "1.5", episodes, *(cells[key] for key in ACHIEVEMENT_KEYS)])
    lines = [",".join(row) for row in [header, *rows]]
    (tmp_path / "metrics.csv").write_text("\n".join(lines) + "\n")

    rates = success_rates_from_metrics(tmp_path)
    assert rates["collect_wood"] == pytest.approx(62.5)
    assert rates["place_table"] == pytest.approx(12.5, abs=1e-4)
    assert sum(rates.values()) == pytest.approx(75.0, abs=1e-4)
    expected = math.exp((math.log(63.5) + math.log(13.5)) / 22) - 1
    assert score_from_metrics(tmp_path / "metrics.csv") == pytest.approx(expected, abs=1e-5)


def test_run_rates_need_achievement_columns_and_episodes(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("frames,episode_return,episodes\n1000,1.0,3\n")
    with pytest.raises(ValueError, match="achievement_collect_coal"):
        success_rates_from_metrics(path)
    header = ",".join(["frames", "episodes", *ACHIEVEMENT_KEYS])
    path.write_text(header + "\n1000,0" + "," * 22 + "\n")
    with pytest.raises(ValueError, match="no finished episodes"):
        success_rates_from_metrics(path)

