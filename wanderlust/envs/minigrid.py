"""MiniGrid: minigrid's own ``MiniGrid-*`` ids plus the MultiRoom sizes and NoisyTV that RIDE used.

RIDE's environments (Raileanu & Rocktäschel 2020) lived only in its fork of gym-minigrid; they are
re-specified here on top of minigrid's ``MultiRoomEnv`` and registered with gymnasium under the
ids the paper used, so that ``gymnasium.make`` builds them too.

Observations are minigrid's encoded grid (object index, colour index, state per cell): the agent's
7x7 egocentric view by default, or the whole map with the option ``full_obs=True``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register
from minigrid.core.constants import COLOR_NAMES, COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.world_object import Ball, Wall, WorldObj
from minigrid.envs import MultiRoomEnv
from minigrid.minigrid_env import MiniGridEnv

from .vector import with_defaults

NAME = "minigrid"
ENVPOOL_OBSERVATION_KEY = "image"
DEFAULT_OPTIONS: dict[str, Any] = {"full_obs": False}

EXCLUDED_PREFIXES = {
    "MiniGrid-WFC-": (
        "minigrid 3.2.0's wheel omits the pattern images these envs read at construction "
        "(FileNotFoundError), and they need networkx"
    ),
}
"""Registered minigrid ids we leave out, by id prefix, with the reason (also in the docs)."""

_RIDE_MULTIROOM_SIZES = {  # env id -> (number of rooms, largest room side)
    "MiniGrid-MultiRoom-N7-S4-v0": (7, 4),
    "MiniGrid-MultiRoom-N7-S8-v0": (7, 8),
    "MiniGrid-MultiRoom-N10-S4-v0": (10, 4),
    "MiniGrid-MultiRoom-N10-S10-v0": (10, 10),
    "MiniGrid-MultiRoom-N12-S10-v0": (12, 10),
}
NOISY_TV_ID = "MiniGrid-MultiRoomNoisyTV-N7-S4-v0"
RIDE_IDS = (*_RIDE_MULTIROOM_SIZES, NOISY_TV_ID)

# envpool has no task per MultiRoom size, but its MultiRoom task takes the room counts, room size
# and step limit as settings; its map is always 25x25, like minigrid's default.
_ENVPOOL_MULTIROOM_TASK = "MiniGrid-MultiRoom-N6-v0"
_MULTIROOM_GRID_SIDE = 25


class RideMultiRoomEnv(MultiRoomEnv):
    """
    ## Description

    A chain of ``num_rooms`` rooms on a 25x25 map, each room at most ``max_room_size`` cells on a
    side (walls included), joined by closed, unlocked doors of changing colours. The agent starts
    in the first room; the green goal square is in the last. These are the MultiRoom sizes of the
    RIDE paper (N7-S4, N7-S8, N10-S4, N10-S10, N12-S10), which minigrid does not register.

    ## Observation

    minigrid's dict observation (``image``: 7x7x3 encoded egocentric view, ``direction``,
    ``mission``); wanderlust keeps only ``image``.

    ## Actions

    | Num | Name    | Action                    |
    |-----|---------|---------------------------|
    | 0   | left    | Turn left                 |
    | 1   | right   | Turn right                |
    | 2   | forward | Move forward              |
    | 3   | pickup  | Unused                    |
    | 4   | drop    | Unused                    |
    | 5   | toggle  | Toggle/activate an object |
    | 6   | done    | Unused                    |

    ## Reward

    ``1 - 0.9 * (step_count / max_steps)`` on reaching the goal, 0 otherwise.

    ## Termination

    The episode terminates when the agent reaches the goal and is truncated after ``max_steps``
    steps, which is ``20 * num_rooms`` as in RIDE (140, 200 or 240).
    """

    def __init__(
        self, num_rooms: int, max_room_size: int, max_steps: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            minNumRooms=num_rooms,
            maxNumRooms=num_rooms,
            maxRoomSize=max_room_size,
            width=_MULTIROOM_GRID_SIDE,
            height=_MULTIROOM_GRID_SIDE,
            max_steps=20 * num_rooms if max_steps is None else max_steps,
            **kwargs,
        )


class RideMultiRoomNoisyTVEnv(RideMultiRoomEnv):
    """
    ## Description

    MultiRoom-N7-S4 with a "noisy TV": a ball in the first room whose colour is re-drawn
    uniformly over minigrid's six colours every time the agent takes the ``drop`` action. The
    agent can make endless unpredictable change at no cost, which traps curiosity bonuses built
    on prediction error (ICM) but not RIDE's. The ball sits on a free cell of the first room other
    than the one inside its exit door, so it never blocks the way (the interior of a room is at
    least 2x2, so removing one other cell leaves it connected).

    ## Observation

    As MultiRoom: the 7x7x3 encoded egocentric view (wanderlust drops ``direction``/``mission``).

    ## Actions

    | Num | Name    | Action                                        |
    |-----|---------|-----------------------------------------------|
    | 0   | left    | Turn left                                     |
    | 1   | right   | Turn right                                    |
    | 2   | forward | Move forward                                  |
    | 3   | pickup  | Pick up an object (the ball can be picked up) |
    | 4   | drop    | Re-draw the ball's colour (and drop it if carried) |
    | 5   | toggle  | Toggle/activate an object                     |
    | 6   | done    | Unused                                        |

    ## Reward

    ``1 - 0.9 * (step_count / max_steps)`` on reaching the goal, 0 otherwise.

    ## Termination

    The episode terminates when the agent reaches the goal and is truncated after 140 steps.
    """

    noisy_ball: Ball

    def _gen_grid(self, width: int, height: int) -> None:
        super()._gen_grid(width, height)
        first_room = self.rooms[0]
        inside_exit = _cell_inside_door(first_room.top, first_room.size, first_room.exitDoorPos)
        self.noisy_ball = Ball(self._rand_elem(COLOR_NAMES))
        self.place_obj(
            self.noisy_ball,
            first_room.top,
            first_room.size,
            reject_fn=lambda _env, pos: tuple(pos) == inside_exit,
        )

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if action == self.actions.drop:
            self.noisy_ball.color = self._rand_elem(COLOR_NAMES)
        return super().step(action)


def _cell_inside_door(
    top: tuple[int, int], size: tuple[int, int], door: tuple[int, int]
) -> tuple[int, int]:
    """The room's interior cell next to a door in its wall: the one the agent must cross."""
    (left, upper), (width, height) = top, size
    door_x, door_y = door
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        x, y = door_x + dx, door_y + dy
        if left < x < left + width - 1 and upper < y < upper + height - 1:
            return (x, y)
    raise ValueError(f"door {door} is not in the wall of the room at {top} of size {size}")


class MiniGridImage(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Keeps only the encoded grid, as the networks take a plain uint8 array.

    The default is the 7x7 egocentric view (minigrid's ``ImgObsWrapper``). ``full_obs=True`` gives
    the whole W x H map in the same encoding with the agent drawn into its cell (object "agent",
    colour "red", state = direction), minigrid's fully observable convention.
    """

    def __init__(self, env: gym.Env, full_obs: bool = False) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, full_obs=full_obs)
        gym.ObservationWrapper.__init__(self, env)
        self._full_obs = full_obs
        if full_obs:
            base = env.unwrapped
            self.observation_space = gym.spaces.Box(
                0, 255, (base.width, base.height, 3), dtype=np.uint8
            )
        else:
            self.observation_space = env.observation_space["image"]

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        if not self._full_obs:
            return observation["image"]
        base = self.unwrapped
        grid = base.grid.encode()
        grid[base.agent_pos[0], base.agent_pos[1]] = (
            OBJECT_TO_IDX["agent"],
            COLOR_TO_IDX["red"],
            base.agent_dir,
        )
        return grid


class EgocentricView:
    """minigrid's ``gen_obs`` without its ``Grid`` copies: the same observation, about 5x faster.

    minigrid builds the agent's view by slicing a new ``Grid`` out of the map, rotating it
    ``agent_dir + 1`` times (a new ``Grid`` each time) and then running its occlusion pass; that is
    most of a MiniGrid step. Here the rotation is a precomputed index map from view cells to map
    cells, and the occlusion pass (minigrid's ``Grid.process_vis``, the same sweep) runs on a flat
    list. The result is equal to minigrid's, array for array (tests/unit/test_minigrid.py compares
    them over random rollouts of many tasks). Installed by ``make_single`` on envs that use
    minigrid's own view code.
    """

    _EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
    _UNSEEN = (0, 0, 0)

    def __init__(self, env: MiniGridEnv) -> None:
        self.env = env
        self._wall = Wall()  # stateless: one instance stands for every cell off the map
        self._maps: dict[int, list[list[tuple[int, int]]]] = {}

    @staticmethod
    def applies_to(env: gym.Env) -> bool:
        cls = type(env)
        return isinstance(env, MiniGridEnv) and all(
            getattr(cls, name) is getattr(MiniGridEnv, name)
            for name in ("gen_obs", "gen_obs_grid", "get_view_exts")
        )

    def _view_map(self, size: int) -> list[list[tuple[int, int]]]:
        """For each direction, the slice cell (x, y) behind each view cell, flat as i * size + j."""
        if size not in self._maps:
            maps = []
            for direction in range(4):
                cells = [[(i, j) for j in range(size)] for i in range(size)]
                for _ in range(direction + 1):  # Grid.rotate_left: new[j][size-1-i] = old[i][j]
                    rotated = [[(0, 0)] * size for _ in range(size)]
                    for i in range(size):
                        for j in range(size):
                            rotated[j][size - 1 - i] = cells[i][j]
                    cells = rotated
                maps.append([cells[i][j] for i in range(size) for j in range(size)])
            self._maps[size] = maps
        return self._maps[size]

    @staticmethod
    def _visible(view: list[WorldObj | None], size: int) -> list[bool]:
        """minigrid's Grid.process_vis on the flat view: which cells the agent can see."""
        mask = [False] * (size * size)
        mask[(size // 2) * size + size - 1] = True
        for j in reversed(range(size)):
            for i in range(size - 1):
                k = i * size + j
                if not mask[k] or (view[k] is not None and not view[k].see_behind()):
                    continue
                mask[k + size] = True
                if j > 0:
                    mask[k + size - 1] = True
                    mask[k - 1] = True
            for i in reversed(range(1, size)):
                k = i * size + j
                if not mask[k] or (view[k] is not None and not view[k].see_behind()):
                    continue
                mask[k - size] = True
                if j > 0:
                    mask[k - size - 1] = True
                    mask[k - 1] = True
        return mask

    def __call__(self) -> dict[str, Any]:
        env = self.env
        size = env.agent_view_size
        top_x, top_y, _, _ = env.get_view_exts()
        width, height, cells = env.grid.width, env.grid.height, env.grid.grid
        view_map = self._view_map(size)[env.agent_dir]
        if 0 <= top_x and top_x + size <= width and 0 <= top_y and top_y + size <= height:
            base = top_y * width + top_x  # the whole view lies on the map (the usual case)
            view = [cells[base + dy * width + dx] for dx, dy in view_map]
        else:
            view = []
            for dx, dy in view_map:
                x, y = top_x + dx, top_y + dy
                inside = 0 <= x < width and 0 <= y < height
                view.append(cells[y * width + x] if inside else self._wall)
        visible = [True] * (size * size) if env.see_through_walls else self._visible(view, size)
        view[(size // 2) * size + size - 1] = env.carrying if env.carrying else None
        codes = [
            (self._EMPTY if cell is None else cell.encode()) if seen else self._UNSEEN
            for cell, seen in zip(view, visible)
        ]
        # a bytearray keeps the array writable, as minigrid's is, and builds 2x faster than np.array
        image = np.frombuffer(bytearray(itertools.chain.from_iterable(codes)), np.uint8)
        image = image.reshape(size, size, 3)
        return {"image": image, "direction": env.agent_dir, "mission": env.mission}


class MultiRoomInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Puts the index of the room the agent stands in into ``info["room"]`` on reset and step.

    Rooms are numbered in minigrid's generation order: room 0 is the one the agent starts in (on
    NoisyTV, the room with the noisy ball). A door cell lies in the walls of two rooms and counts
    as the earlier one.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def _room(self) -> int:
        base = self.unwrapped
        x, y = base.agent_pos
        for index, room in enumerate(base.rooms):
            (left, top), (width, height) = room.top, room.size
            if left <= x < left + width and top <= y < top + height:
                return index
        raise RuntimeError(f"agent at {(x, y)} is in no room")

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "room": self._room()}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "room": self._room()}


def _register_ride_envs() -> None:
    for env_id, (num_rooms, max_room_size) in _RIDE_MULTIROOM_SIZES.items():
        if env_id not in gym.registry:
            register(
                id=env_id,
                entry_point=f"{__name__}:RideMultiRoomEnv",
                kwargs={"num_rooms": num_rooms, "max_room_size": max_room_size},
            )
    if NOISY_TV_ID not in gym.registry:
        register(
            id=NOISY_TV_ID,
            entry_point=f"{__name__}:RideMultiRoomNoisyTVEnv",
            kwargs={"num_rooms": 7, "max_room_size": 4},
        )


_register_ride_envs()


@functools.cache
def registered_ids() -> tuple[str, ...]:
    return tuple(
        sorted(
            env_id
            for env_id in gym.registry
            if env_id.startswith("MiniGrid-")
            and not any(env_id.startswith(prefix) for prefix in EXCLUDED_PREFIXES)
        )
    )


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "MiniGrid")
    if not isinstance(resolved["full_obs"], bool):
        raise ValueError(f"full_obs must be a bool, got {resolved['full_obs']!r}")
    return resolved


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """One gymnasium env with our observation wrapper (what the gymnasium backend batches)."""
    env = gym.make(env_id, render_mode=render_mode)
    if EgocentricView.applies_to(env.unwrapped):
        env.unwrapped.gen_obs = EgocentricView(env.unwrapped)
    if isinstance(env.unwrapped, MultiRoomEnv):
        env = MultiRoomInfo(env)
    return MiniGridImage(env, full_obs=options["full_obs"])


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    """The envpool task and settings that run ``env_id``; ValueError (one line) when none can."""
    if options["full_obs"]:
        raise ValueError(
            "full_obs=True needs the gymnasium backend: envpool returns only the partial view"
        )
    if env_id in envpool_ids:
        return env_id, {}
    base = gym.make(env_id).unwrapped
    if (
        type(base) in (MultiRoomEnv, RideMultiRoomEnv)
        and base.width == base.height == _MULTIROOM_GRID_SIDE
        and _ENVPOOL_MULTIROOM_TASK in envpool_ids
    ):
        return _ENVPOOL_MULTIROOM_TASK, {
            "min_num_rooms": base.minNumRooms,
            "max_num_rooms": base.maxNumRooms,
            "max_room_size": base.maxRoomSize,
            "max_episode_steps": base.max_steps,
        }
    raise ValueError(f"envpool has no version of {env_id}; use backend='gymnasium' or 'auto'")


def _agent_room(info: dict[str, Any]) -> np.ndarray | None:
    return info.get("room")


def room_reader(env_id: str) -> Callable[[dict[str, Any]], np.ndarray | None] | None:
    """MultiRoom envs report the agent's room on the gymnasium backend (MultiRoomInfo); envpool's
    MultiRoom does not, and the reader then returns None."""
    return _agent_room if "MultiRoom" in env_id else None


def training_reward(options: dict[str, Any]) -> None:
    """The env's own reward is the training reward."""
    return None
