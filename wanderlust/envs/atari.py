"""Atari 2600 games through ale-py, preprocessed as the RND/SND seed does.

Every ``ALE/<Game>-v5`` id that ale-py registers, with the same preprocessing on both backends:

- up to 30 random no-ops at reset; sticky actions with p = 0.25 (ALE's repeat_action_probability);
- action repeat 4, the observation being the max over the last two frames (removes flicker);
- grayscale, resized to 96x96 (option ``screen_size``; 84 is the other common size);
- a stack of the last 4 frames, channels first: uint8 [4, H, W];
- episodes truncated after 4500 agent steps (option ``max_episode_steps``);
- no end-of-life episodes and no FIRE at reset; the minimal action set of each game.

The training reward is clipped (option ``reward_clip``: ``"sign"``, ``"positive"`` for the SND
seed's max(0, sign(r)), or ``"none"``); the raw game score is what ``info["episode_return"]``
reports. On Montezuma's Revenge the room number is RAM byte 3, reported per step as
``info["room"]`` and per episode as ``info["episode_rooms"]``.

ale-py is an optional extra (``pip install 'wanderlust[atari]'``): nothing here imports it until
an Atari env is asked for.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation, TimeLimit

from .vector import with_defaults

NAME = "atari"
ENVPOOL_OBSERVATION_KEY = None
INSTALL_HINT = "pip install 'wanderlust[atari]'"
DEFAULT_OPTIONS: dict[str, Any] = {
    "screen_size": 96,
    "reward_clip": "sign",
    "max_episode_steps": 4500,
}

NOOP_MAX = 30
STICKY_ACTION_PROBABILITY = 0.25
FRAME_SKIP = 4
FRAME_STACK = 4

EXCLUDED_IDS = {
    env_id: "its minimal action set has no NOOP, which the random no-ops at reset need"
    for env_id in ("ALE/Backgammon-v5", "ALE/VideoCheckers-v5")
}
"""ale-py ids we leave out, with the reason (also in the docs)."""

MONTEZUMA_GAME = "montezuma_revenge"
MONTEZUMA_ROOM_BYTE = 3

_REWARD_CLIPS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "sign": lambda reward: np.sign(reward).astype(np.float32),
    "positive": lambda reward: np.maximum(np.sign(reward), 0.0).astype(np.float32),
    "none": None,
}


def available() -> bool:
    """Whether ale-py is installed (checked without importing it)."""
    return importlib.util.find_spec("ale_py") is not None


@functools.cache
def registered_ids() -> tuple[str, ...]:
    """``ALE/<Game>-v5`` for every game ale-py ships but ``EXCLUDED_IDS``; empty without ale-py."""
    if not available():
        return ()
    import ale_py

    gym.register_envs(ale_py)
    return tuple(
        sorted(
            env_id
            for env_id, spec in gym.registry.items()
            if env_id.startswith("ALE/")
            and spec.version == 5
            and spec.kwargs.get("obs_type", "rgb") == "rgb"
            and env_id not in EXCLUDED_IDS
        )
    )


def game(env_id: str) -> str:
    """ale-py's ROM name for an id, e.g. ``montezuma_revenge``."""
    return gym.spec(env_id).kwargs["game"]


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "Atari")
    for key in ("screen_size", "max_episode_steps"):
        value = resolved[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
    if resolved["reward_clip"] not in _REWARD_CLIPS:
        raise ValueError(
            f"reward_clip must be one of {sorted(_REWARD_CLIPS)}, got {resolved['reward_clip']!r}"
        )
    return resolved


class RamInfo(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Puts the console RAM into ``info["ram"]`` on reset and step, as envpool does.

    The vector-level bookkeeping then reads rooms the same way on both backends.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "ram": self.unwrapped.ale.getRAM()}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "ram": self.unwrapped.ale.getRAM()}


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """One preprocessed gymnasium env (what the gymnasium backend batches)."""
    env = gym.make(
        env_id,
        frameskip=1,  # AtariPreprocessing repeats actions itself, so that it can max-pool
        repeat_action_probability=STICKY_ACTION_PROBABILITY,
        full_action_space=False,
        render_mode=render_mode,
    )
    env = AtariPreprocessing(
        env,
        noop_max=NOOP_MAX,
        frame_skip=FRAME_SKIP,
        screen_size=options["screen_size"],
        grayscale_obs=True,
        terminal_on_life_loss=False,
    )
    env = FrameStackObservation(env, FRAME_STACK)
    env = TimeLimit(env, options["max_episode_steps"])
    if game(env_id) == MONTEZUMA_GAME:
        env = RamInfo(env)
    return env


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    """The envpool task and settings that run ``env_id``; ValueError (one line) when none can."""
    # envpool names a game by its ROM name in CamelCase: montezuma_revenge -> MontezumaRevenge-v5.
    task_id = "".join(part.capitalize() for part in game(env_id).split("_")) + "-v5"
    if task_id not in envpool_ids:
        raise ValueError(f"envpool has no version of {env_id}; use backend='gymnasium' or 'auto'")
    size = options["screen_size"]
    return task_id, {
        "img_height": size,
        "img_width": size,
        "stack_num": FRAME_STACK,
        "frame_skip": FRAME_SKIP,
        "noop_max": NOOP_MAX,
        "repeat_action_probability": STICKY_ACTION_PROBABILITY,
        "max_episode_steps": options["max_episode_steps"],
        "reward_clip": False,  # clipped above the episode bookkeeping, which needs the raw score
        "episodic_life": False,
        "use_fire_reset": False,
        "gray_scale": True,
    }


def _montezuma_room(info: dict[str, Any]) -> np.ndarray:
    return info["ram"][:, MONTEZUMA_ROOM_BYTE]


def room_reader(env_id: str) -> Callable[[dict[str, Any]], np.ndarray] | None:
    """Rooms are known on Montezuma's Revenge only (a RAM byte)."""
    return _montezuma_room if game(env_id) == MONTEZUMA_GAME else None


def training_reward(options: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray] | None:
    return _REWARD_CLIPS[options["reward_clip"]]
