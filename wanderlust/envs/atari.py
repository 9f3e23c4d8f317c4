"""Atari 2600 games through ale-py, preprocessed as the RND/SND seed does by default.

Every ``ALE/<Game>-v5`` id that ale-py registers, with the same preprocessing on both backends
(the options that change a default are in brackets):

- up to 30 random no-ops at reset (``noop_max``); sticky actions with p = 0.25 (``sticky_actions``,
  ALE's repeat_action_probability);
- action repeat 4, the observation being the max over the last two frames (removes flicker);
- grayscale (``grayscale``), resized to 96x96 (``screen_size``; 84 is the other common size);
- a stack of the last 4 frames (``frame_stack``), channels first: uint8 [4, H, W]; with
  ``frame_stack=1`` one frame, channels last: [H, W, 1] gray or [H, W, 3] colour (DreamerV3's
  layout); a colour stack is [k, H, W, 3];
- episodes truncated after 4500 agent steps (option ``max_episode_steps``);
- no end-of-life episodes and no FIRE at reset; the minimal action set of each game
  (``full_action_space``: all 18).

DreamerV3's Atari100k settings are ``grayscale=False, frame_stack=1, sticky_actions=0,
screen_size=64, reward_clip="none", max_episode_steps=27000`` (wanderlust/presets/atari100k.yaml).

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
    "grayscale": True,
    "frame_stack": 4,
    "sticky_actions": 0.25,
    "full_action_space": False,
    "noop_max": 30,
}

FRAME_SKIP = 4

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
    for key in ("screen_size", "max_episode_steps", "frame_stack", "noop_max"):
        value = resolved[key]
        least = 0 if key == "noop_max" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            kind = "a non-negative" if least == 0 else "a positive"
            raise ValueError(f"{key} must be {kind} int, got {value!r}")
    for key in ("grayscale", "full_action_space"):
        if not isinstance(resolved[key], bool):
            raise ValueError(f"{key} must be true or false, got {resolved[key]!r}")
    sticky = resolved["sticky_actions"]
    if isinstance(sticky, bool) or not isinstance(sticky, int | float) or not 0 <= sticky <= 1:
        raise ValueError(f"sticky_actions must be a probability in [0, 1], got {sticky!r}")
    resolved["sticky_actions"] = float(sticky)
    if resolved["reward_clip"] not in _REWARD_CLIPS:
        raise ValueError(
            f"reward_clip must be one of {sorted(_REWARD_CLIPS)}, got {resolved['reward_clip']!r}"
        )
    return resolved


def observation_shape(options: dict[str, Any]) -> tuple[int, ...]:
    """The shape of one env's observation under resolved ``options`` (see the module docstring)."""
    size = options["screen_size"]
    frame = (size, size) if options["grayscale"] else (size, size, 3)
    if options["frame_stack"] == 1:
        return (size, size, 1) if options["grayscale"] else frame
    return (options["frame_stack"], *frame)


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
        repeat_action_probability=options["sticky_actions"],
        full_action_space=options["full_action_space"],
        render_mode=render_mode,
    )
    single_frame = options["frame_stack"] == 1
    env = AtariPreprocessing(
        env,
        noop_max=options["noop_max"],
        frame_skip=FRAME_SKIP,
        screen_size=options["screen_size"],
        grayscale_obs=options["grayscale"],
        grayscale_newaxis=single_frame,  # one frame is an image, channels last: [H, W, 1]
        terminal_on_life_loss=False,
    )
    if not single_frame:
        env = FrameStackObservation(env, options["frame_stack"])
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
    if not options["grayscale"] or options["frame_stack"] == 1:
        # envpool stacks channels first ([3k, H, W] in colour, [1, H, W] for one gray frame).
        raise ValueError(
            "envpool's Atari gives only gray stacks of frame_stack >= 2 in our layout; "
            "use backend='gymnasium' or 'auto'"
        )
    if options["noop_max"] == 0:
        raise ValueError("envpool's Atari crashes with noop_max=0; use backend='gymnasium' or 'auto'")
    size = options["screen_size"]
    return task_id, {
        "img_height": size,
        "img_width": size,
        "stack_num": options["frame_stack"],
        "frame_skip": FRAME_SKIP,
        "noop_max": options["noop_max"],
        "repeat_action_probability": options["sticky_actions"],
        "full_action_space": options["full_action_space"],
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
