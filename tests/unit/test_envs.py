"""wanderlust.envs: the registry, both backends, the episode bookkeeping and RIDE's environments.

Parametrised over the registry, so that a newly registered id is checked automatically.
"""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from wanderlust.envs import (
    UnknownEnvError,
    env_family,
    env_spec,
    list_envs,
    make,
    minigrid as minigrid_family,
    registry,
)
from wanderlust.envs.vector import EpisodeStatistics, envpool_installed, envpool_task_ids

pytestmark = pytest.mark.unit

MINIGRID_IDS = list_envs()["minigrid"]
ATARI_IDS = list_envs()["atari"]
BALLET_IDS = list_envs()["ballet"]
PINPAD_IDS = list_envs()["pinpad"]
GRIDWORLD_IDS = list_envs()["gridworld"]
HAS_ENVPOOL = envpool_installed()
BACKENDS = ["gymnasium", "envpool"] if HAS_ENVPOOL else ["gymnasium"]
needs_envpool = pytest.mark.skipif(not HAS_ENVPOOL, reason="envpool is not installed")
needs_ale = pytest.mark.skipif(not ATARI_IDS, reason="ale-py is not installed")

# Ids with no randomness at all: same layout and start for every seed (found by running them).
FIXED_LAYOUT_IDS = {
    "MiniGrid-DistShift1-v0",
    "MiniGrid-DistShift2-v0",
    "MiniGrid-Empty-5x5-v0",
    "MiniGrid-Empty-6x6-v0",
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-Empty-16x16-v0",
}
# Atari games that get the full env checker and the different-seed check; the rest get a cheap
# reset + step determinism check to keep the file fast.
ATARI_FULL_CHECK_IDS = [
    "ALE/Breakout-v5",
    "ALE/MontezumaRevenge-v5",
    "ALE/Pong-v5",
    "ALE/Venture-v5",
]
MONTEZUMA = "ALE/MontezumaRevenge-v5"
RIDE_MULTIROOM = {
    "MiniGrid-MultiRoom-N7-S4-v0": (7, 4),
    "MiniGrid-MultiRoom-N7-S8-v0": (7, 8),
    "MiniGrid-MultiRoom-N10-S4-v0": (10, 4),
    "MiniGrid-MultiRoom-N10-S10-v0": (10, 10),
    "MiniGrid-MultiRoom-N12-S10-v0": (12, 10),
}
NOISY_TV = "MiniGrid-MultiRoomNoisyTV-N7-S4-v0"
PUBLIC_INFO_KEYS = {"episode_done", "episode_return", "episode_length"}
ROOM_INFO_KEYS = {"room", "episode_rooms"}


@pytest.fixture(autouse=True)
def _quiet_gymnasium_warnings():
    """The env checker and the deprecated minigrid ids warn by design; the checks are asserts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def envpool_task(env_id: str) -> tuple[str, dict[str, Any]]:
    """envpool's task and settings for an id with default options (ValueError if it has none)."""
    family = registry.family_of(env_id)
    return family.envpool_config(env_id, family.resolve_options({}), envpool_task_ids())


def runs_on(env_id: str, backend: str) -> bool:
    if backend == "gymnasium":
        return True
    try:
        envpool_task(env_id)
    except ValueError:
        return False
    return True


def rollout(env: VectorEnv, actions: np.ndarray, seed: int | None = None) -> dict[str, np.ndarray]:
    """Everything the env returns for a fixed action sequence [T, N], stacked over time.

    "obs" has T + 1 entries (the reset's first); the rewards, dones and info keys have T.
    """
    obs, info = env.reset(seed=seed)
    record: dict[str, list[Any]] = {"obs": [obs], "reward": [], "terminated": [], "truncated": []}
    record.update({key: [] for key in info})
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        record["obs"].append(obs)
        record["reward"].append(reward)
        record["terminated"].append(terminated)
        record["truncated"].append(truncated)
        for key, value in info.items():
            record[key].append(value)
    env.close()
    return {key: np.stack(values) for key, values in record.items()}


def random_actions(env_id: str, steps: int, num_envs: int, seed: int = 0) -> np.ndarray:
    family = registry.family_of(env_id)
    single = family.make_single(env_id, family.resolve_options({}))
    num_actions = single.action_space.n
    single.close()
    return np.random.default_rng(seed).integers(0, num_actions, size=(steps, num_envs))


def assert_same_rollout(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], reward_rtol: float = 0.0
) -> None:
    """Equal in every array; rewards and returns to ``reward_rtol`` (envpool sums in float32)."""
    assert a.keys() == b.keys()
    for key in a:
        if reward_rtol and key in ("reward", "episode_return"):
            np.testing.assert_allclose(a[key], b[key], rtol=reward_rtol, err_msg=key)
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# --------------------------------------------------------------------------------------------
# Registry


def test_list_envs_is_sorted_by_family_and_includes_ride_ids():
    envs = list_envs()
    assert set(envs) == set(registry.FAMILIES)
    assert {"minigrid", "atari", "procgen", "ballet", "gridworld"} <= set(envs)
    assert "pinpad" in envs
    for ids in envs.values():
        assert ids == sorted(ids)
    for env_id in [*RIDE_MULTIROOM, NOISY_TV, "MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0"]:
        assert env_id in envs["minigrid"]
    assert not any(env_id.startswith("MiniGrid-WFC-") for env_id in envs["minigrid"])
    assert not any(env_id.startswith("BabyAI-") for env_id in envs["minigrid"])


@needs_ale
def test_atari_ids_cover_every_ale_game():
    assert MONTEZUMA in ATARI_IDS
    assert all(env_id.startswith("ALE/") and env_id.endswith("-v5") for env_id in ATARI_IDS)
    assert len(ATARI_IDS) >= 100


def test_unknown_id_raises_one_line_error_with_close_matches():
    with pytest.raises(UnknownEnvError) as error:
        make("MiniGrid-DorKey-8x8-v0")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("unknown environment 'MiniGrid-DorKey-8x8-v0'; did you mean ")
    assert "MiniGrid-DoorKey-8x8-v0" in message
    assert isinstance(error.value, ValueError)


def test_env_family_validates_without_building():
    assert env_family("MiniGrid-Empty-5x5-v0") == "minigrid"
    assert env_family(NOISY_TV) == "minigrid"
    with pytest.raises(UnknownEnvError):
        env_family("CartPole-v1")
    if ATARI_IDS:
        assert env_family(MONTEZUMA) == "atari"


def test_atari_id_without_ale_py_says_how_to_install(monkeypatch):
    minigrid_only = {env_id: "minigrid" for env_id in MINIGRID_IDS}
    monkeypatch.setattr(registry, "_family_by_id", lambda: minigrid_only)
    monkeypatch.setattr(registry.atari, "available", lambda: False)
    with pytest.raises(ModuleNotFoundError) as error:
        env_family(MONTEZUMA)
    assert "pip install 'wanderlust[atari]'" in str(error.value)
    assert "\n" not in str(error.value)


def test_env_spec_lists_backends():
    assert env_spec(NOISY_TV).backends == ("gymnasium",)
    spec = env_spec("MiniGrid-Empty-5x5-v0")
    assert spec.family == "minigrid"
    assert spec.backends == tuple(BACKENDS)


def test_bad_backend_and_options_are_rejected():
    with pytest.raises(ValueError, match="unknown backend"):
        make("MiniGrid-Empty-5x5-v0", backend="jax")
    with pytest.raises(ValueError, match="unknown option"):
        make("MiniGrid-Empty-5x5-v0", screen_size=84)
    with pytest.raises(ValueError, match="num_envs"):
        make("MiniGrid-Empty-5x5-v0", num_envs=0)


@needs_envpool
def test_envpool_forced_for_an_id_it_lacks_raises_one_line_value_error():
    with pytest.raises(ValueError) as error:
        make(NOISY_TV, backend="envpool")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="full_obs"):
        make("MiniGrid-Empty-5x5-v0", backend="envpool", full_obs=True)
    with pytest.raises(ValueError, match="render"):
        make("MiniGrid-Empty-5x5-v0", backend="envpool", render=True)


@needs_envpool
def test_auto_backend_prefers_envpool_when_it_can():
    assert make("MiniGrid-Empty-5x5-v0").backend == "envpool"
    assert make("MiniGrid-MultiRoom-N7-S4-v0").backend == "envpool"
    assert make(NOISY_TV).backend == "gymnasium"
    assert make("MiniGrid-Empty-5x5-v0", full_obs=True).backend == "gymnasium"
    assert make("MiniGrid-Empty-5x5-v0", render=True).backend == "gymnasium"


# --------------------------------------------------------------------------------------------
# Every registered id: gymnasium's env checker and determinism under a seed


@pytest.mark.parametrize("env_id", MINIGRID_IDS)
def test_minigrid_single_env_passes_env_checker(env_id):
    family = registry.family_of(env_id)
    check_env(family.make_single(env_id, family.resolve_options({})), skip_render_check=True)


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-8x8-v0", NOISY_TV])
def test_minigrid_full_obs_passes_env_checker(env_id):
    family = registry.family_of(env_id)
    env = family.make_single(env_id, family.resolve_options({"full_obs": True}))
    check_env(env, skip_render_check=True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", MINIGRID_IDS)
def test_minigrid_is_deterministic_under_a_seed(env_id, backend):
    if not runs_on(env_id, backend):
        pytest.skip(f"{env_id} has no {backend} version")
    actions = random_actions(env_id, steps=50, num_envs=2)
    first = rollout(make(env_id, 2, seed=3, backend=backend), actions)
    again = rollout(make(env_id, 2, seed=3, backend=backend), actions)
    assert_same_rollout(first, again)
    if env_id not in FIXED_LAYOUT_IDS:
        other = rollout(make(env_id, 2, seed=4, backend=backend), actions)
        assert not np.array_equal(first["obs"], other["obs"])


@needs_ale
@pytest.mark.parametrize("env_id", ATARI_FULL_CHECK_IDS)
def test_atari_single_env_passes_env_checker(env_id):
    family = registry.family_of(env_id)
    check_env(family.make_single(env_id, family.resolve_options({})), skip_render_check=True)


@needs_ale
@pytest.mark.parametrize("env_id", ATARI_IDS)
def test_every_atari_game_resets_and_steps_deterministically(env_id):
    """Cheap (building an ALE env costs ~0.25 s): two builds, a reset and 8 sampled steps each.

    The actions come from the env's own action space, which ``make`` seeds too.
    """
    runs = []
    for _ in range(2):
        env = make(env_id, 1, seed=5)
        obs, _ = env.reset()
        trace = [obs]
        for _ in range(8):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            trace += [obs, reward, terminated, truncated]
        env.close()
        runs.append(trace)
    for first, again in zip(*runs):
        np.testing.assert_array_equal(first, again)
    assert runs[0][0].shape == (1, 4, 96, 96) and runs[0][0].dtype == np.uint8


@needs_ale
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", ATARI_FULL_CHECK_IDS)
def test_atari_is_deterministic_under_a_seed(env_id, backend):
    actions = random_actions(env_id, steps=30, num_envs=2)
    first = rollout(make(env_id, 2, seed=3, backend=backend), actions)
    again = rollout(make(env_id, 2, seed=3, backend=backend), actions)
    assert_same_rollout(first, again)
    other = rollout(make(env_id, 2, seed=4, backend=backend), actions)
    assert not np.array_equal(first["obs"], other["obs"])


GYMNASIUM_ONLY_CASES = (
    [(env_id, {"cell_size": 3}) for env_id in BALLET_IDS]
    + [(env_id, {"max_steps": 40}) for env_id in GRIDWORLD_IDS]
    + [(env_id, {"max_steps": 120}) for env_id in PINPAD_IDS]
)
"""Families written here, without an envpool version (Ballet, HIMA's grid worlds, Visual PinPad);
their rules are tested in test_ballet.py, test_gridworld.py and test_pinpad.py."""


@pytest.mark.parametrize(("env_id", "options"), GYMNASIUM_ONLY_CASES)
def test_gymnasium_only_families_pass_env_checker_and_are_deterministic_under_a_seed(env_id, options):
    family = registry.family_of(env_id)
    check_env(family.make_single(env_id, family.resolve_options(options)).unwrapped)
    assert env_spec(env_id).backends == ("gymnasium",)
    actions = random_actions(env_id, steps=300, num_envs=2)

    def run(seed: int) -> list[np.ndarray]:
        env = make(env_id, 2, seed=seed, **options)
        obs, info = env.reset()
        trace = [obs, *(info[key] for key in sorted(info))]
        for action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            trace += [obs, reward, terminated, truncated, *(info[key] for key in sorted(info))]
        env.close()
        return trace

    first, again, other = run(3), run(3), run(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_with_a_seed_equals_making_with_that_seed(backend):
    env_id = "MiniGrid-MultiRoom-N7-S4-v0"
    actions = random_actions(env_id, steps=20, num_envs=2)
    reseeded = rollout(make(env_id, 2, seed=0, backend=backend), actions, seed=9)
    made = rollout(make(env_id, 2, seed=9, backend=backend), actions)
    assert_same_rollout(reseeded, made)


# --------------------------------------------------------------------------------------------
# Output format, dtypes and auto-reset semantics on both backends


@pytest.mark.parametrize("backend", BACKENDS)
def test_minigrid_output_format(backend):
    env = make("MiniGrid-DoorKey-8x8-v0", 3, seed=0, backend=backend)
    assert env.backend == backend and env.family == "minigrid"
    assert env.env_id == "MiniGrid-DoorKey-8x8-v0" and env.num_envs == 3
    assert env.single_observation_space == gym.spaces.Box(0, 255, (7, 7, 3), np.uint8)
    assert env.single_action_space == gym.spaces.Discrete(7)
    assert env.observation_space == batch_space(env.single_observation_space, 3)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = env.reset()
    assert obs.shape == (3, 7, 7, 3) and obs.dtype == np.uint8
    assert set(info) == PUBLIC_INFO_KEYS
    obs, reward, terminated, truncated, info = env.step(np.zeros(3, dtype=np.int64))
    assert env.observation_space.contains(obs)
    assert reward.dtype == np.float32 and reward.shape == (3,)
    assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
    assert info["episode_done"].dtype == np.bool_
    assert info["episode_return"].dtype == np.float64
    assert info["episode_length"].dtype == np.int64
    assert all(value.shape == (3,) for value in info.values())
    env.close()


def test_full_obs_is_the_encoded_map_with_the_agent():
    env = make("MiniGrid-DoorKey-8x8-v0", 2, seed=0, full_obs=True)
    assert env.backend == "gymnasium"
    obs, _ = env.reset()
    assert obs.shape == (2, 8, 8, 3) and obs.dtype == np.uint8
    agent_index = 10  # minigrid's OBJECT_TO_IDX["agent"]
    assert ((obs[..., 0] == agent_index).sum(axis=(1, 2)) == 1).all()
    env.close()


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("MiniGrid-MultiRoomNoisyTV-N7-S4-v0", {}),
        ("MiniGrid-KeyCorridorS3R3-v0", {}),
        ("MiniGrid-ObstructedMaze-2Dlh-v0", {}),
        ("MiniGrid-LavaCrossingS9N1-v0", {}),
        ("MiniGrid-Empty-5x5-v0", {}),  # sees through walls
        ("MiniGrid-DoorKey-8x8-v0", {"agent_view_size": 5}),
        ("MiniGrid-FourRooms-v0", {"agent_view_size": 9}),
    ],
)
def test_fast_egocentric_view_equals_minigrids_own(env_id, kwargs):
    """EgocentricView replaces minigrid's gen_obs for speed; it must give the same array at every
    step: all four directions, views hanging off the map, doors, carried objects, occlusion."""
    from minigrid.core.world_object import Key
    from minigrid.minigrid_env import MiniGridEnv

    env = gym.make(env_id, **kwargs).unwrapped
    view = minigrid_family.EgocentricView(env)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    carried = directions = 0
    for step in range(600):
        if step % 100 in (50, 80):  # carry a key for a while (random play rarely picks one up)
            env.carrying = Key("yellow") if step % 100 == 50 else None
        expected = MiniGridEnv.gen_obs(env)["image"]
        assert np.array_equal(view()["image"], expected), f"step {step}"
        carried += env.carrying is not None
        directions |= 1 << env.agent_dir
        _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            env.reset(seed=step)
    assert directions == 0b1111 and carried > 0


def test_minigrid_envs_get_the_fast_view_unless_they_define_their_own():
    env = minigrid_family.make_single("MiniGrid-KeyCorridorS3R3-v0", {"full_obs": False})
    assert isinstance(env.unwrapped.gen_obs, minigrid_family.EgocentricView)
    obs, _ = env.reset(seed=3)
    assert obs.flags.writeable and obs.dtype == np.uint8 and env.observation_space.contains(obs)

    class OwnView(gym.make("MiniGrid-Empty-5x5-v0").unwrapped.__class__):
        def gen_obs(self):
            return super().gen_obs()

    assert not minigrid_family.EgocentricView.applies_to(OwnView())


@pytest.mark.parametrize("env_id", ["MiniGrid-MultiRoom-N7-S4-v0", MONTEZUMA])
def test_render_gives_one_rgb_frame_per_env(env_id):
    if env_id.startswith("ALE/") and not ATARI_IDS:
        pytest.skip("ale-py is not installed")
    env = make(env_id, 2, seed=0, render=True)
    env.reset()
    frames = env.render()
    assert frames.dtype == np.uint8 and frames.ndim == 4
    assert frames.shape[0] == 2 and frames.shape[-1] == 3
    env.close()
    with pytest.raises(RuntimeError, match="render=True"):
        make(env_id, 1, backend="gymnasium").render()


@pytest.mark.parametrize("backend", BACKENDS)
def test_next_step_autoreset_on_minigrid(backend):
    """The done step shows the final frame; the next is the new start and ignores its action."""
    env = make("MiniGrid-Empty-5x5-v0", 1, seed=0, backend=backend)
    start, _ = env.reset()
    right, forward = 1, 2
    for action in (forward, forward, right, forward):
        _, reward, terminated, truncated, info = env.step(np.array([action]))
        assert not terminated[0] and not truncated[0] and not info["episode_done"][0]
    final, reward, terminated, truncated, info = env.step(np.array([forward]))
    assert terminated[0] and info["episode_done"][0] and 0 < reward[0] <= 1
    assert not np.array_equal(final, start)
    obs, reward, terminated, truncated, info = env.step(np.array([forward]))
    np.testing.assert_array_equal(obs, start)  # the forward action was ignored
    assert reward[0] == 0 and not terminated[0] and not truncated[0]
    assert not info["episode_done"][0] and info["episode_length"][0] == 0
    env.close()


@needs_envpool
@pytest.mark.parametrize("env_id", sorted(FIXED_LAYOUT_IDS))
def test_fixed_layout_minigrid_is_identical_on_both_backends(env_id):
    actions = random_actions(env_id, steps=300, num_envs=2) % 3  # turns and forward: episodes end
    on_gymnasium = rollout(make(env_id, 2, seed=1, backend="gymnasium"), actions)
    on_envpool = rollout(make(env_id, 2, seed=1, backend="envpool"), actions)
    assert_same_rollout(on_gymnasium, on_envpool, reward_rtol=1e-6)
    if env_id == "MiniGrid-Empty-5x5-v0":
        assert on_gymnasium["episode_done"].sum() >= 4 and on_gymnasium["reward"].max() > 0


@needs_envpool
@pytest.mark.parametrize("env_id", [i for i in MINIGRID_IDS if runs_on(i, "envpool")])
def test_minigrid_envpool_matches_minigrid_spaces_and_step_limit(env_id):
    import envpool

    task_id, task_kwargs = envpool_task(env_id)
    pool_spec = envpool.make_spec(task_id, **task_kwargs)
    reference = gym.make(env_id).unwrapped
    assert pool_spec.config.max_episode_steps == reference.max_steps
    assert pool_spec.action_space.n == reference.action_space.n
    assert pool_spec.observation_space["image"].shape == reference.observation_space["image"].shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", ["MiniGrid-Empty-Random-5x5-v0", "MiniGrid-Empty-Random-6x6-v0"])
def test_random_layout_success_reward_follows_minigrid_formula(env_id, backend):
    actions = random_actions(env_id, steps=1500, num_envs=4) % 3
    record = rollout(make(env_id, 4, seed=0, backend=backend), actions)
    max_steps = gym.make(env_id).unwrapped.max_steps
    done = record["episode_done"]
    successes = done & (record["episode_return"] > 0)
    assert successes.sum() >= 5
    returns = record["episode_return"][successes]
    lengths = record["episode_length"][successes]
    assert ((returns > 0) & (returns <= 1)).all()
    np.testing.assert_allclose(returns, 1 - 0.9 * lengths / max_steps, rtol=1e-6)
    assert (record["episode_length"][record["truncated"]] == max_steps).all()


@needs_ale
@pytest.mark.parametrize("backend", BACKENDS)
def test_atari_output_format_and_autoreset(backend):
    env = make(MONTEZUMA, 2, seed=0, backend=backend, max_episode_steps=20)
    assert env.backend == backend and env.family == "atari"
    assert env.single_observation_space == gym.spaces.Box(0, 255, (4, 96, 96), np.uint8)
    assert env.single_action_space == gym.spaces.Discrete(18)
    obs, info = env.reset()
    assert obs.shape == (2, 4, 96, 96) and obs.dtype == np.uint8
    assert set(info) == PUBLIC_INFO_KEYS | ROOM_INFO_KEYS
    assert (info["room"] == 1).all()  # Montezuma starts in room 1
    actions = random_actions(MONTEZUMA, steps=22, num_envs=2)
    for step, action in enumerate(actions, start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        assert set(info) == PUBLIC_INFO_KEYS | ROOM_INFO_KEYS
        assert terminated.dtype == truncated.dtype == info["episode_done"].dtype == np.bool_
        assert info["room"].dtype == info["episode_rooms"].dtype == np.int64
        if step == 20:
            assert truncated.all() and info["episode_done"].all()
            assert (info["episode_length"] == 20).all()
            assert (info["episode_rooms"] >= 1).all()
        if step == 21:  # the auto-reset step: first frame of the new episode, all four frames alike
            assert (reward == 0).all() and not (terminated | truncated).any()
            assert not info["episode_done"].any() and (info["episode_rooms"] == 0).all()
            assert (obs == obs[:, -1:]).all()
    env.close()


@needs_ale
@pytest.mark.parametrize("backend", BACKENDS)
def test_atari_screen_size_option(backend):
    env = make("ALE/Breakout-v5", 2, seed=0, backend=backend, screen_size=84)
    obs, _ = env.reset()
    assert obs.shape == (2, 4, 84, 84)
    env.close()


@needs_ale
@pytest.mark.parametrize("backend", BACKENDS)
def test_atari_training_reward_is_clipped_and_raw_score_reported(backend):
    env_id = "ALE/SpaceInvaders-v5"  # random play scores 5-30 point hits within a few dozen steps
    actions = random_actions(env_id, steps=250, num_envs=2)
    runs = {
        clip: rollout(
            make(env_id, 2, seed=0, backend=backend, max_episode_steps=60, reward_clip=clip),
            actions,
        )
        for clip in ("sign", "positive", "none")
    }
    clipped, positive, raw = runs["sign"], runs["positive"], runs["none"]
    assert raw["reward"].max() > 1
    np.testing.assert_array_equal(clipped["reward"], np.sign(raw["reward"]))
    np.testing.assert_array_equal(positive["reward"], np.maximum(np.sign(raw["reward"]), 0))
    np.testing.assert_array_equal(clipped["episode_return"], raw["episode_return"])
    assert clipped["episode_return"].max() > 1


# --------------------------------------------------------------------------------------------
# Episode bookkeeping against hand-stepped single envs (PITFALLS 7)


def hand_count_episodes(env_id: str, options: dict[str, Any], seed: int, actions: np.ndarray):
    """(return, length) of each finished episode of one plain gymnasium env, counted by hand.

    Mirrors next-step auto-reset: after a done the env is reset (unseeded, continuing its random
    stream) and the next action is skipped, as the vector env ignores it.
    """
    family = registry.family_of(env_id)
    env = family.make_single(env_id, family.resolve_options(options))
    env.reset(seed=seed)
    episodes, episode_return, episode_length, resetting = [], 0.0, 0, False
    for action in actions:
        if resetting:
            env.reset()
            resetting = False
            continue
        _, reward, terminated, truncated, _ = env.step(int(action))
        episode_return += float(reward)
        episode_length += 1
        if terminated or truncated:
            episodes.append((episode_return, episode_length))
            episode_return, episode_length, resetting = 0.0, 0, True
    env.close()
    return episodes


def reported_episodes(record: dict[str, np.ndarray], env_index: int):
    done = record["episode_done"][:, env_index]
    return list(
        zip(
            record["episode_return"][done, env_index].tolist(),
            record["episode_length"][done, env_index].tolist(),
        )
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_minigrid_episode_returns_and_lengths_match_a_hand_stepped_env(backend):
    env_id = "MiniGrid-Empty-5x5-v0"  # fixed layout, so envpool must match gymnasium's single env
    actions = random_actions(env_id, steps=600, num_envs=3) % 3
    record = rollout(make(env_id, 3, seed=7, backend=backend), actions)
    for i in range(3):
        expected = hand_count_episodes(env_id, {}, 7 + i, actions[:, i])
        assert len(expected) >= 4
        reported = reported_episodes(record, i)
        assert [length for _, length in reported] == [length for _, length in expected]
        np.testing.assert_allclose([r for r, _ in reported], [r for r, _ in expected], rtol=1e-6)
    not_done = ~record["episode_done"]
    assert (record["episode_return"][not_done] == 0).all()
    assert (record["episode_length"][not_done] == 0).all()


@needs_ale
def test_atari_raw_episode_returns_match_a_hand_stepped_env():
    env_id = "ALE/SpaceInvaders-v5"
    options = {"max_episode_steps": 60}
    actions = random_actions(env_id, steps=400, num_envs=2)
    record = rollout(make(env_id, 2, seed=11, backend="gymnasium", **options), actions)
    best_return = 0.0
    for i in range(2):
        expected = hand_count_episodes(env_id, options, 11 + i, actions[:, i])
        assert len(expected) >= 5
        assert reported_episodes(record, i) == expected
        best_return = max(best_return, *(r for r, _ in expected))
    assert best_return > 1  # the raw score, not the clipped training reward


@needs_ale
@needs_envpool
def test_atari_envpool_episode_returns_match_a_hand_count():
    """envpool's Atari has no gymnasium twin to step beside it: count its raw rewards by hand."""
    env_id = "ALE/SpaceInvaders-v5"
    actions = random_actions(env_id, steps=400, num_envs=2)
    env = make(env_id, 2, seed=11, backend="envpool", max_episode_steps=60, reward_clip="none")
    record = rollout(env, actions)
    backend_done = record["terminated"] | record["truncated"]
    for i in range(2):
        expected, episode_return, episode_length, resetting = [], 0.0, 0, False
        for reward, done in zip(record["reward"][:, i], backend_done[:, i]):
            if resetting:
                assert reward == 0
                resetting = False
                continue
            episode_return += float(reward)
            episode_length += 1
            if done:
                expected.append((episode_return, episode_length))
                episode_return, episode_length, resetting = 0.0, 0, True
        assert len(expected) >= 5
        assert reported_episodes(record, i) == expected


# --------------------------------------------------------------------------------------------
# Atari options beyond the SND seed's preprocessing (DreamerV3's Atari100k settings)

ATARI100K_OPTIONS = {
    "screen_size": 64,
    "grayscale": False,
    "frame_stack": 1,
    "sticky_actions": 0.0,
    "noop_max": 30,
    "reward_clip": "none",
}


@needs_ale
@pytest.mark.parametrize(
    "options,shape",
    [
        (ATARI100K_OPTIONS, (64, 64, 3)),
        ({"frame_stack": 1}, (96, 96, 1)),
        ({"grayscale": False, "frame_stack": 2, "screen_size": 32}, (2, 32, 32, 3)),
        ({"frame_stack": 2}, (2, 96, 96)),
    ],
)
def test_atari_frame_options_give_their_shapes(options, shape):
    env = make("ALE/Breakout-v5", 2, seed=0, **options)  # auto: envpool where it lays frames out so
    assert env.single_observation_space == gym.spaces.Box(0, 255, shape, np.uint8)
    assert registry.atari.observation_shape(registry.atari.resolve_options(options)) == shape
    obs, _ = env.reset()
    assert obs.shape == (2, *shape) and obs.dtype == np.uint8
    env.close()


@needs_ale
def test_atari100k_options_pass_the_env_checker_and_show_colour():
    family = registry.atari
    single = family.make_single("ALE/Breakout-v5", family.resolve_options(ATARI100K_OPTIONS))
    check_env(single, skip_render_check=True)
    obs, _ = single.reset(seed=0)
    assert obs.shape == (64, 64, 3)
    assert (obs[..., 0] != obs[..., 1]).any()  # Breakout's coloured bricks: not three equal channels
    single.close()


@needs_ale
def test_atari_single_frame_is_the_newest_frame_of_the_stack():
    actions = random_actions("ALE/Breakout-v5", steps=20, num_envs=2)
    stacked = rollout(make("ALE/Breakout-v5", 2, seed=3, backend="gymnasium"), actions)
    single = rollout(make("ALE/Breakout-v5", 2, seed=3, backend="gymnasium", frame_stack=1), actions)
    np.testing.assert_array_equal(single["obs"][..., 0], stacked["obs"][:, :, -1])
    np.testing.assert_array_equal(single["reward"], stacked["reward"])


@needs_ale
def test_atari_without_sticky_actions_or_noops_ignores_the_seed():
    """ALE is deterministic apart from sticky actions and the random no-ops: with both off, every
    seed gives the same game; with sticky actions on, seeds differ."""
    actions = random_actions("ALE/Breakout-v5", steps=60, num_envs=2)
    plain = {"sticky_actions": 0.0, "noop_max": 0, "frame_stack": 1}
    first = rollout(make("ALE/Breakout-v5", 2, seed=3, **plain), actions)
    assert_same_rollout(first, rollout(make("ALE/Breakout-v5", 2, seed=4, **plain), actions))
    sticky = {**plain, "sticky_actions": 0.25}
    a = rollout(make("ALE/Breakout-v5", 2, seed=3, **sticky), actions)
    b = rollout(make("ALE/Breakout-v5", 2, seed=4, **sticky), actions)
    assert not np.array_equal(a["obs"], b["obs"])


@needs_ale
@pytest.mark.parametrize("backend", BACKENDS)
def test_atari_full_action_space_option(backend):
    env = make("ALE/Pong-v5", 1, seed=0, backend=backend, full_action_space=True)
    assert env.single_action_space == gym.spaces.Discrete(18)
    env.close()


@needs_ale
@pytest.mark.parametrize(
    "options",
    [{"frame_stack": 0}, {"noop_max": -1}, {"sticky_actions": 1.5}, {"sticky_actions": True},
     {"grayscale": "no"}, {"full_action_space": 1}],
)
def test_atari_bad_option_values_are_refused(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        make("ALE/Pong-v5", 1, backend="gymnasium", **options)


@needs_ale
@needs_envpool
@pytest.mark.parametrize("options", [{"grayscale": False}, {"frame_stack": 1}, {"noop_max": 0}])
def test_atari_envpool_refuses_what_it_cannot_lay_out_and_auto_uses_gymnasium(options):
    with pytest.raises(ValueError, match="use backend='gymnasium' or 'auto'"):
        make("ALE/Pong-v5", 1, backend="envpool", **options)
    env = make("ALE/Pong-v5", 1, backend="auto", **options)
    assert env.backend == "gymnasium"
    env.close()


@needs_ale
def test_atari100k_options_keep_rooms_and_episode_bookkeeping():
    options = {**ATARI100K_OPTIONS, "max_episode_steps": 20}
    actions = random_actions(MONTEZUMA, steps=45, num_envs=2)
    record = rollout(make(MONTEZUMA, 2, seed=0, **options), actions)
    assert (record["room"][0] >= 1).all() and (record["episode_rooms"][19] >= 1).all()
    assert record["truncated"][19].all() and (record["episode_length"][19] == 20).all()
    env_id = "ALE/SpaceInvaders-v5"
    options = {**ATARI100K_OPTIONS, "max_episode_steps": 60}
    actions = random_actions(env_id, steps=250, num_envs=1)
    record = rollout(make(env_id, 1, seed=11, **options), actions)
    expected = hand_count_episodes(env_id, options, 11, actions[:, 0])
    assert len(expected) >= 3 and reported_episodes(record, 0) == expected
    assert record["reward"].max() > 1  # reward_clip "none": the training reward is the raw score


class ScriptedVectorEnv(VectorEnv):
    """Replays scripted rewards, dones and RAM room bytes, with next-step auto-reset."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, rewards, dones, rooms, reset_rooms):
        self.num_envs = len(reset_rooms)
        self.single_observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self._script = list(zip(rewards, dones, rooms))
        self._reset_rooms = reset_rooms

    def _info(self, rooms):
        ram = np.zeros((self.num_envs, 128), dtype=np.uint8)
        ram[:, 3] = rooms
        return {"ram": ram}

    def reset(self, *, seed=None, options=None):
        return np.zeros((self.num_envs, 1), np.float32), self._info(self._reset_rooms)

    def step(self, actions):
        reward, done, rooms = self._script.pop(0)
        obs = np.zeros((self.num_envs, 1), np.float32)
        no = np.zeros(self.num_envs, dtype=bool)
        return obs, np.asarray(reward, np.float32), np.asarray(done), no, self._info(rooms)


def test_episode_statistics_counts_rooms_and_skips_the_reset_step():
    # One env: episode A = steps 1-3 (rooms 1, 2, 1, 5 incl. the start), step 4 resets into room 7,
    # episode B = steps 5-6 (rooms 7, 7, 8).
    rewards = [[1.0], [2.0], [3.0], [0.0], [4.0], [5.0]]
    dones = [[False], [False], [True], [False], [False], [True]]
    rooms = [[2], [1], [5], [7], [7], [8]]
    env = EpisodeStatistics(
        ScriptedVectorEnv(rewards, dones, rooms, reset_rooms=[1]),
        room_reader=lambda info: info["ram"][:, 3],
    )
    _, info = env.reset()
    assert info["room"].tolist() == [1] and info["episode_rooms"].tolist() == [0]
    infos = [env.step(np.zeros(1, dtype=np.int64))[4] for _ in range(6)]
    assert [i["episode_done"][0] for i in infos] == [False, False, True, False, False, True]
    assert infos[2]["episode_return"][0] == 6.0 and infos[2]["episode_length"][0] == 3
    assert infos[2]["episode_rooms"][0] == 3  # rooms 1, 2 and 5
    assert infos[3]["episode_length"][0] == 0 and infos[3]["room"][0] == 7
    assert infos[5]["episode_return"][0] == 9.0 and infos[5]["episode_length"][0] == 2
    assert infos[5]["episode_rooms"][0] == 2  # rooms 7 and 8: the old episode's rooms are gone
    assert [i["room"][0] for i in infos] == [2, 1, 5, 7, 7, 8]


@needs_ale
@needs_envpool
def test_montezuma_rooms_agree_across_backends():
    actions = random_actions(MONTEZUMA, steps=40, num_envs=2)
    for backend in BACKENDS:
        record = rollout(make(MONTEZUMA, 2, seed=0, backend=backend, max_episode_steps=30), actions)
        assert (record["room"] == 1).all()  # random play does not leave the first room this soon
        done = record["episode_done"]
        assert done.sum() == 2 and (record["episode_rooms"][done] == 1).all()
        assert (record["episode_rooms"][~done] == 0).all()


# --------------------------------------------------------------------------------------------
# RIDE's environments


@pytest.mark.parametrize("env_id", list(RIDE_MULTIROOM) + [NOISY_TV])
def test_ride_multiroom_layout_and_step_limit(env_id):
    num_rooms, max_room_size = RIDE_MULTIROOM.get(env_id, (7, 4))
    env = gym.make(env_id).unwrapped
    assert env.max_steps == 20 * num_rooms
    for seed in range(3):
        env.reset(seed=seed)
        assert (env.width, env.height) == (25, 25)
        assert len(env.rooms) == num_rooms
        assert all(max(room.size) <= max_room_size for room in env.rooms)


@needs_envpool
@pytest.mark.parametrize("env_id", list(RIDE_MULTIROOM))
def test_ride_multiroom_envpool_version_has_the_same_configuration(env_id):
    import envpool

    num_rooms, _ = RIDE_MULTIROOM[env_id]
    task_id, task_kwargs = envpool_task(env_id)
    pool = envpool.make(task_id, env_type="gymnasium", num_envs=2, seed=[0, 1], **task_kwargs)
    pool.reset()
    for state in pool.debug_states():
        assert (state.width, state.height) == (25, 25)
        assert state.max_steps == 20 * num_rooms
        door_index = 4  # minigrid's OBJECT_TO_IDX["door"]
        assert (np.asarray(state.grid).reshape(-1, 3)[:, 0] == door_index).sum() == num_rooms - 1
    pool.close()


def test_noisy_tv_ball_is_in_the_first_room_off_the_path():
    env = gym.make(NOISY_TV).unwrapped
    for seed in range(20):
        env.reset(seed=seed)
        room = env.rooms[0]
        x, y = env.noisy_ball.cur_pos
        assert room.top[0] < x < room.top[0] + room.size[0] - 1
        assert room.top[1] < y < room.top[1] + room.size[1] - 1
        door_x, door_y = room.exitDoorPos
        assert abs(x - door_x) + abs(y - door_y) > 1


def test_noisy_tv_colour_changes_on_drop_only():
    env = gym.make(NOISY_TV).unwrapped
    env.reset(seed=0)
    drop = env.actions.drop
    colours = set()
    for _ in range(20):
        env.step(drop)
        colours.add(env.noisy_ball.color)
    assert len(colours) >= 3
    for action in (env.actions.left, env.actions.right, env.actions.toggle, env.actions.done):
        before = env.noisy_ball.color
        env.step(action)
        assert env.noisy_ball.color == before


def test_noisy_tv_registration_is_importable_by_gymnasium():
    assert gym.spec(NOISY_TV).entry_point == "wanderlust.envs.minigrid:RideMultiRoomNoisyTVEnv"
    assert minigrid_family.NOISY_TV_ID == NOISY_TV


def test_multiroom_reports_the_agents_room_on_gymnasium_and_nothing_on_envpool():
    """Room 0 is the start room; a walk through the first door enters room 1 (the rooms are the
    ones minigrid generated, so the check reads the agent's cell against room 1's bounds)."""
    env = make("MiniGrid-MultiRoom-N7-S4-v0", 2, seed=3, backend="gymnasium")
    _, info = env.reset()
    assert info["room"].tolist() == [0, 0] and info["episode_rooms"].tolist() == [0, 0]
    single = minigrid_family.make_single("MiniGrid-MultiRoom-N7-S4-v0", minigrid_family.resolve_options({}))
    _, step_info = single.reset(seed=3)
    assert step_info["room"] == 0
    base = single.unwrapped
    second = base.rooms[1]
    base.agent_pos = np.array(second.top) + 1  # inside room 1's walls
    _, _, _, _, step_info = single.step(base.actions.left)
    assert step_info["room"] == 1
    if "MiniGrid-MultiRoom-N6-v0" in envpool_task_ids():
        _, info = make("MiniGrid-MultiRoom-N7-S4-v0", 2, seed=3, backend="envpool").reset()
        assert "room" not in info


def test_make_passes_through_the_info_keys_a_family_names():
    env = make("wanderlust/PinPad-three-v0", 2, seed=0)
    _, info = env.reset()
    assert {"pad", "event", "sequence_progress"} <= set(info)
    rng = np.random.default_rng(0)
    events = 0
    for _ in range(300):
        info = env.step(rng.integers(0, 5, 2))[4]
        assert info["event"].shape == (2,) and info["pad"].shape == (2,)
        events += int(info["event"].sum())
    assert events > 0
    env.close()
    minigrid = make("MiniGrid-Empty-5x5-v0", 1, seed=0)
    minigrid.reset()
    info = minigrid.step(np.zeros(1, dtype=np.int64))[4]
    assert set(info) == {"episode_done", "episode_return", "episode_length"}  # nothing else leaks
