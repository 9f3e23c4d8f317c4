"""Batched environments on two backends, and the wrappers that make both report the same things.

Two backends run a batch of environments behind gymnasium 1.x's vector API:

- ``GymnasiumBackend``: gymnasium's ``SyncVectorEnv`` over single gymnasium environments. Runs
  every registered id, renders, and is the reference the tests compare against.
- ``EnvpoolBackend``: envpool's C++ pool, several times faster, for the ids envpool ships.

Both auto-reset with next-step semantics (``AutoresetMode.NEXT_STEP``): the step that reports
``terminated | truncated`` returns the episode's final observation, and the following step returns
the first observation of the new episode with reward 0, no done flag, and ignores its action.

Everything the training loop reads besides observations and rewards is computed once, above the
backend, by ``EpisodeStatistics``; this is what keeps the two backends from disagreeing about
episode returns, lengths and rooms (PITFALLS 7).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space

__all__ = [
    "EnvpoolBackend",
    "EpisodeStatistics",
    "GymnasiumBackend",
    "RoomReader",
    "VecEnv",
    "envpool_installed",
    "envpool_task_ids",
]

RoomReader = Callable[[dict[str, Any]], np.ndarray | None]
"""Maps a backend's raw step info to the current room number of every env, shape [N]; None when
this backend does not report rooms for the env (then the run has no room statistics)."""

_ROOM_VALUES = 256  # rooms are read from one byte of RAM


def with_defaults(options: dict[str, Any], defaults: dict[str, Any], family: str) -> dict[str, Any]:
    """`options` over a family's defaults; an unknown key is a ValueError naming the known ones."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)} for {family}; known: {sorted(defaults)}")
    return {**defaults, **options}


def envpool_installed() -> bool:
    """Cheap check that does not import envpool (its import registers every task and takes ~1 s)."""
    return importlib.util.find_spec("envpool") is not None


@functools.cache
def envpool_task_ids() -> frozenset[str]:
    """The task ids this envpool build ships, or none when envpool is not installed."""
    if not envpool_installed():
        return frozenset()
    import envpool

    return frozenset(envpool.list_all_envs())


class GymnasiumBackend(VectorWrapper):
    """``SyncVectorEnv`` with our seeding rule and dtypes.

    Env i is seeded with ``seed + i`` on the first ``reset()`` (gymnasium's rule for an int seed),
    so that ``make(..., seed=s)`` alone fixes the whole run; later ``reset()`` calls without a seed
    continue each env's random stream, as do the auto-resets.
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], seed: int) -> None:
        super().__init__(SyncVectorEnv(env_fns, autoreset_mode=AutoresetMode.NEXT_STEP))
        self._pending_seed: int | None = seed
        self.action_space.seed(seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seed = self._pending_seed
        self._pending_seed = None
        return self.env.reset(seed=seed, options=options)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return (
            obs,
            np.asarray(reward, dtype=np.float32),
            np.asarray(terminated, dtype=bool),
            np.asarray(truncated, dtype=bool),
            info,
        )


class EnvpoolBackend(VectorEnv):
    """An envpool pool (synchronous: every step advances all envs) behind gymnasium's vector API.

    Env i is seeded with ``seed + i`` (passed to envpool as an explicit per-env seed list), the same
    rule as the gymnasium backend; the two backends still generate different random layouts, as
    they use different random number generators. envpool fixes seeds at construction, so
    ``reset(seed=s)`` with a new seed rebuilds the pool.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        task_id: str,
        task_kwargs: dict[str, Any],
        num_envs: int,
        seed: int,
        observation_key: str | None,
    ) -> None:
        self._task_id = task_id
        self._task_kwargs = task_kwargs
        self._observation_key = observation_key
        self.num_envs = num_envs
        self._seed = seed
        self._pool = self._build(seed)
        self._reset_since_build = False

        pool_space = self._pool.observation_space
        self.single_observation_space = (
            pool_space[observation_key] if observation_key is not None else pool_space
        )
        self.single_action_space = self._pool.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.action_space.seed(seed)

    def _build(self, seed: int) -> Any:
        import envpool

        return envpool.make(
            self._task_id,
            env_type="gymnasium",
            num_envs=self.num_envs,
            seed=[seed + i for i in range(self.num_envs)],
            **self._task_kwargs,
        )

    def _observation(self, obs: Any) -> np.ndarray:
        return obs[self._observation_key] if self._observation_key is not None else obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            raise ValueError("the envpool backend takes no reset options")
        if seed is not None and (self._reset_since_build or seed != self._seed):
            self._pool.close()
            self._pool = self._build(seed)
            self._seed = seed
        self._reset_since_build = True
        obs, info = self._pool.reset()
        return self._observation(obs), info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self._pool.step(np.asarray(actions))
        return (
            self._observation(obs),
            np.asarray(reward, dtype=np.float32),
            np.asarray(terminated, dtype=bool),
            np.asarray(truncated, dtype=bool),
            info,
        )

    def close_extras(self, **kwargs: Any) -> None:
        self._pool.close()


class EpisodeStatistics(VectorWrapper):
    """Replaces the backend's info with our per-step episode bookkeeping.

    Keys (numpy arrays of length N, on every step and on reset):

    - ``episode_done`` bool: the episode ended on this step (terminated or truncated).
    - ``episode_return`` float64: its undiscounted return in the reward this wrapper receives
      (apply reward clipping above this wrapper so that this stays the raw score); 0 elsewhere.
    - ``episode_length`` int64: its length in agent steps; 0 elsewhere.
    - with a ``room_reader``: ``room`` int64 (the room after this step) and ``episode_rooms``
      int64 (distinct rooms visited in the episode that ended; 0 elsewhere).
    - each of ``passthrough`` (keys of the env's own info that its family names, such as PinPad's
      pad events) that the backend reports on this step, as the backend batched it.

    The step after a done is the backend's auto-reset: it belongs to neither episode, so it adds
    nothing to either's return or length; the room it shows is the new episode's first room.
    """

    def __init__(
        self, env: VectorEnv, room_reader: RoomReader | None = None, passthrough: tuple[str, ...] = ()
    ) -> None:
        super().__init__(env)
        n = env.num_envs
        self._room_reader = room_reader
        self._passthrough = passthrough
        self._return = np.zeros(n, dtype=np.float64)
        self._length = np.zeros(n, dtype=np.int64)
        self._autoresetting = np.zeros(n, dtype=bool)
        self._visited = np.zeros((n, _ROOM_VALUES), dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, backend_info = self.env.reset(seed=seed, options=options)
        self._return[:] = 0.0
        self._length[:] = 0
        self._autoresetting[:] = False
        self._visited[:] = False
        n = self.num_envs
        info: dict[str, Any] = {
            "episode_done": np.zeros(n, dtype=bool),
            "episode_return": np.zeros(n, dtype=np.float64),
            "episode_length": np.zeros(n, dtype=np.int64),
        }
        room = self._read_room(backend_info)
        if room is None:  # this backend does not report rooms for this env
            self._room_reader = None
        if self._room_reader is not None:
            self._visited[np.arange(n), room] = True
            info["room"] = room
            info["episode_rooms"] = np.zeros(n, dtype=np.int64)
        info.update({key: backend_info[key] for key in self._passthrough if key in backend_info})
        return obs, info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, backend_info = self.env.step(actions)
        in_episode = ~self._autoresetting
        self._return += np.where(in_episode, reward, 0.0)
        self._length += in_episode
        done = terminated | truncated
        info: dict[str, Any] = {
            "episode_done": done,
            "episode_return": np.where(done, self._return, 0.0),
            "episode_length": np.where(done, self._length, 0),
        }
        if self._room_reader is not None:
            room = self._read_room(backend_info)
            self._visited[self._autoresetting] = False
            self._visited[np.arange(self.num_envs), room] = True
            info["room"] = room
            info["episode_rooms"] = np.where(done, self._visited.sum(axis=1), 0)
        info.update({key: backend_info[key] for key in self._passthrough if key in backend_info})
        self._return[done] = 0.0
        self._length[done] = 0
        self._autoresetting = done
        return obs, reward, terminated, truncated, info

    def _read_room(self, backend_info: dict[str, Any]) -> np.ndarray | None:
        room = self._room_reader(backend_info) if self._room_reader is not None else None
        return None if room is None else np.asarray(room, dtype=np.int64)


class VecEnv(VectorWrapper):
    """What ``wanderlust.envs.make`` returns: a gymnasium vector env that says what it runs.

    Attributes ``env_id``, ``family`` ("minigrid", "atari", "procgen", "ballet", "gridworld",
    "pinpad" or "crafter") and ``backend`` ("gymnasium" or "envpool", the one actually chosen) let
    logs and checkpoints record the exact environment.
    """

    def __init__(self, env: VectorEnv, *, env_id: str, family: str, backend: str) -> None:
        super().__init__(env)
        self.env_id = env_id
        self.family = family
        self.backend = backend

    def state_dict(self) -> dict:
        """What a checkpoint keeps of the envs themselves: each grid-world env's scenario progress
        (GridWorldEnv.scenario_state). Empty for every other env, whose episodes restart on resume."""
        if self.family != "gridworld":
            return {}
        states = list(self.unwrapped.get_attr("scenario_state"))
        return {"scenario": states} if any(state is not None for state in states) else {}

    def load_state_dict(self, state: dict) -> None:
        """Before the first reset: the envs continue the saved scenarios."""
        if "scenario" not in state:
            return
        if len(state["scenario"]) != self.num_envs:
            raise ValueError(f"the checkpoint holds {len(state['scenario'])} scenarios for {self.num_envs} envs")
        self.unwrapped.set_attr("scenario_state", state["scenario"])

    def render(self) -> np.ndarray:  # type: ignore[override]
        """One RGB frame per env, uint8 [N, H, W, 3], for videos."""
        if self.render_mode != "rgb_array":
            raise RuntimeError("this env does not render; create it with make(..., render=True)")
        return np.stack(self.env.render())

    def __repr__(self) -> str:
        return (
            f"<VecEnv {self.env_id} family={self.family} backend={self.backend} "
            f"num_envs={self.num_envs}>"
        )
