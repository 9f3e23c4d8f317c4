"""Procgen: the 16 procedurally generated games of Cobbe et al. (2020), run by envpool.

Ids are ``procgen/<game>-<mode>-v0``, one per game and distribution mode that Procgen defines for
the game (e.g. ``procgen/coinrun-hard-v0``, ``procgen/climber-exploration-v0``); the mode is part
of the id because it changes what the game is (level sizes, enemies, the exploration mode's single
large level), while which levels are drawn is an option (``num_levels``, ``start_level``).

Observations are the 64x64 RGB frame, channels first: uint8 [3, 64, 64]. The training reward is
the game's own (unclipped, as the SND seed trains on it). Episodes end when the game ends and are
truncated at the game's step limit.

The family is envpool-only: Procgen's own package (``procgen``) has wheels for CPython 3.10 and
older only, and its gymnasium port for 3.13 and newer, so there is no gymnasium backend here.
envpool's Procgen links against the system Qt 5 runtime (Debian/Ubuntu: ``libqt5gui5``).
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym

from .vector import envpool_installed, with_defaults

NAME = "procgen"
ENVPOOL_OBSERVATION_KEY = None
INSTALL_HINT = "pip install 'wanderlust[procgen]'"
QT_HINT = "apt-get install libqt5gui5 (Debian/Ubuntu)"
DEFAULT_OPTIONS: dict[str, Any] = {"num_levels": 0, "start_level": 0}

EXPLORATION_MODE = "exploration"
GAMES: dict[str, tuple[tuple[str, ...], int]] = {
    # game: (distribution modes Procgen defines for it, step limit of an episode)
    "bigfish": (("easy", "hard"), 6000),
    "bossfight": (("easy", "hard"), 4000),
    "caveflyer": (("easy", "hard", "memory", "exploration"), 1000),
    "chaser": (("easy", "hard", "extreme"), 1000),
    "climber": (("easy", "hard", "exploration"), 1000),
    "coinrun": (("easy", "hard", "exploration"), 1000),
    "dodgeball": (("easy", "hard", "extreme", "memory"), 1000),
    "fruitbot": (("easy", "hard"), 1000),
    "heist": (("easy", "hard", "memory", "exploration"), 1000),
    "jumper": (("easy", "hard", "memory", "exploration"), 1000),
    "leaper": (("easy", "hard", "extreme", "exploration"), 500),
    "maze": (("easy", "hard", "memory", "exploration"), 500),
    "miner": (("easy", "hard", "memory"), 1000),
    "ninja": (("easy", "hard", "exploration"), 1000),
    "plunder": (("easy", "hard"), 4000),
    "starpilot": (("easy", "hard", "extreme"), 1000),
}
"""Procgen's games, each with its distribution modes and step limit (procgen 0.10.7, as envpool)."""

SND_GAMES = ("caveflyer", "climber", "coinrun", "jumper")
"""The hard-exploration games of the SND paper, which it runs in the exploration mode."""

# Procgen keeps level seeds in a C int, so even the end of the level range must fit one.
_LEVEL_SEED_LIMIT = 2**31 - 1

_GAME_AND_MODE: dict[str, tuple[str, str]] = {
    f"procgen/{game}-{mode}-v0": (game, mode)
    for game, (modes, _) in GAMES.items()
    for mode in modes
}


def registered_ids() -> tuple[str, ...]:
    """Every (game, distribution mode) id, sorted; listed whether or not envpool is installed."""
    return tuple(sorted(_GAME_AND_MODE))


def game_and_mode(env_id: str) -> tuple[str, str]:
    """``procgen/coinrun-hard-v0`` -> ("coinrun", "hard")."""
    return _GAME_AND_MODE[env_id]


def envpool_task_id(env_id: str) -> str:
    """envpool's name for an id: ``procgen/coinrun-hard-v0`` -> ``CoinrunHard-v0``."""
    game, mode = game_and_mode(env_id)
    return f"{game.capitalize()}{mode.capitalize()}-v0"


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "Procgen")
    for key in ("num_levels", "start_level"):
        value = resolved[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} must be an int >= 0, got {value!r}")
    num_levels, start_level = resolved["num_levels"], resolved["start_level"]
    if num_levels == 0 and start_level != 0:
        # Procgen would ignore start_level here (unlimited levels are drawn from all seeds).
        raise ValueError(
            f"start_level={start_level} needs num_levels > 0 (num_levels=0 draws from all levels)"
        )
    if start_level + num_levels > _LEVEL_SEED_LIMIT:
        raise ValueError(
            f"start_level + num_levels must be at most 2**31 - 1, got {start_level + num_levels}"
        )
    return resolved


def _level_settings(env_id: str, options: dict[str, Any]) -> dict[str, int]:
    """envpool's level settings; ValueError where the mode fixes the level itself."""
    _, mode = game_and_mode(env_id)
    if mode != EXPLORATION_MODE:
        return {"num_levels": options["num_levels"], "start_level": options["start_level"]}
    if options["num_levels"] != 0 or options["start_level"] != 0:
        # envpool aborts the process (a failed C++ CHECK) on these, so they never reach it.
        raise ValueError(
            f"{env_id} always plays its one fixed level: num_levels and start_level must stay 0"
        )
    return {}


@functools.cache
def envpool_problem() -> str | None:
    """Why envpool's Procgen cannot run here (one line), or None when it can."""
    if not envpool_installed():
        return f"envpool is not installed: {INSTALL_HINT}"
    try:
        # envpool defers a failure to load Qt 5 until Procgen is used; this name triggers it.
        from envpool.procgen import ProcgenEnvSpec  # noqa: F401
    except ImportError:
        return f"envpool's Procgen cannot load the Qt 5 runtime it links against: {QT_HINT}"
    return None


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """Procgen has no gymnasium version: this always raises, saying what to do instead."""
    _level_settings(env_id, options)
    problem = envpool_problem()
    if not envpool_installed():
        raise ModuleNotFoundError(f"{env_id} runs only on envpool; {problem}", name="envpool")
    if problem is not None:
        raise ImportError(f"{env_id} runs only on envpool; {problem}")
    if render_mode is not None:
        raise ValueError(
            f"{env_id} cannot render: render=True needs the gymnasium backend, and Procgen runs "
            "only on envpool"
        )
    raise ValueError(
        f"{env_id} runs only on envpool (procgen has no wheel for this Python); "
        "use backend='envpool' or 'auto'"
    )


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    """The envpool task and settings that run ``env_id``; ValueError (one line) when none can."""
    settings = _level_settings(env_id, options)
    problem = envpool_problem()
    if problem is not None:
        raise ValueError(problem)
    task_id = envpool_task_id(env_id)
    if task_id not in envpool_ids:
        raise ValueError(f"this envpool has no task {task_id} for {env_id}")
    return task_id, {**settings, "channel_first": True}


def room_reader(env_id: str) -> None:
    """Procgen reports no rooms."""
    return None


def training_reward(options: dict[str, Any]) -> None:
    """The game's own reward is the training reward."""
    return None
