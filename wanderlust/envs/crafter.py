"""Crafter (Hafner 2021, "Benchmarking the Spectrum of Agent Capabilities") as a gymnasium env,
and the benchmark's score.

The game is the ``crafter`` package (``pip install 'wanderlust[crafter]'``); this module wraps its
old-gym-style ``crafter.Env`` and imports it only when an env is built, so ``import wanderlust``
works without it. Id: ``wanderlust/Crafter-v0``, registered with gymnasium on import.

Crafter reports its own episode end as one ``done`` flag: the player died (health 0; crafter's
``info["discount"]`` is then 0) or the episode reached its length (10,000 steps). Here death is
``terminated`` and the length is ``truncated``, so that learners that bootstrap (Dreamer's
continue head, PPO's GAE) bootstrap through the time limit but not through death.

The benchmark's measure is not the return but the success rate of each of its 22 achievements
over all the episodes of a run, summarised by the score (the paper's section 3, "Score"):
``exp(mean_i ln(1 + s_i)) - 1`` with ``s_i`` in percent. ``crafter_score`` computes it;
``success_rates_from_metrics`` and ``score_from_metrics`` compute a run's from its metrics.csv.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register

from .vector import with_defaults

__all__ = [
    "ACHIEVEMENTS",
    "ACHIEVEMENT_KEYS",
    "ACTION_NAMES",
    "CRAFTER_ID",
    "CrafterEnv",
    "crafter_score",
    "score_from_metrics",
    "success_rates_from_metrics",
]

NAME = "crafter"
INFO_KEYS = ("episode_achievements",)
"""The env's own info keys that `wanderlust.envs.make` passes through: which achievements the
episode that ended on this step unlocked (the benchmark's measure)."""
ENVPOOL_OBSERVATION_KEY = None
INSTALL_HINT = "pip install 'wanderlust[crafter]'"
CRAFTER_ID = "wanderlust/Crafter-v0"

DEFAULT_LENGTH = 10000
"""Crafter's episode length (``crafter.Env(length=10000)``), the benchmark's."""
DEFAULT_OPTIONS: dict[str, Any] = {"length": DEFAULT_LENGTH, "area": 64, "size": 64, "reward": True}
VIEW = (9, 9)
"""Cells the image shows (9 wide; 7 rows of world above 2 of inventory): Crafter's default."""

ACHIEVEMENTS = (
    "collect_coal",
    "collect_diamond",
    "collect_drink",
    "collect_iron",
    "collect_sapling",
    "collect_stone",
    "collect_wood",
    "defeat_skeleton",
    "defeat_zombie",
    "eat_cow",
    "eat_plant",
    "make_iron_pickaxe",
    "make_iron_sword",
    "make_stone_pickaxe",
    "make_stone_sword",
    "make_wood_pickaxe",
    "make_wood_sword",
    "place_furnace",
    "place_plant",
    "place_stone",
    "place_table",
    "wake_up",
)
"""Crafter's 22 achievements in its own order (``crafter.constants.achievements``), written out so
that the score can be computed without the package."""
ACHIEVEMENT_KEYS = tuple(f"achievement_{name}" for name in ACHIEVEMENTS)
EPISODE_COLUMNS = ACHIEVEMENT_KEYS
"""Per-episode success (0/1) of each achievement; a metrics row's mean is its success rate."""
"""The per-episode lists that learners' ``record_step`` fills (0/1 per finished episode), and the
metrics.csv columns of their per-row means (success rates as fractions)."""

ACTION_NAMES = (
    "noop",
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "do",
    "sleep",
    "place_stone",
    "place_table",
    "place_furnace",
    "place_plant",
    "make_wood_pickaxe",
    "make_stone_pickaxe",
    "make_iron_pickaxe",
    "make_wood_sword",
    "make_stone_sword",
    "make_iron_sword",
)
"""Crafter's 17 actions in its order (``crafter.constants.actions``)."""

_SEED_LIMIT = 2**31 - 1


def _import_crafter() -> Any:
    try:
        import crafter
    except ModuleNotFoundError as error:
        if error.name != "crafter":
            raise
        raise ModuleNotFoundError(
            f"environment {CRAFTER_ID} needs the crafter package: {INSTALL_HINT}", name="crafter"
        ) from None
    return crafter


@functools.cache
def _seeded_game_class(game_class: type) -> type:
    """``crafter.Env`` with one change that makes a seed fix the whole run (danijar/crafter#31):
    every 10 steps Crafter may despawn a creature picked at random from a list built from a set of
    objects, whose order follows memory addresses, so the same seed and actions can remove a
    different creature. Here the list is in the order of the creatures' positions (unique: one
    object per cell); the pick stays uniform, only its mapping to creatures is fixed."""

    class SeededCrafter(game_class):  # type: ignore[misc, valid-type]
        def _balance_chunk(self, chunk: Any, objs: Any) -> None:
            super()._balance_chunk(chunk, sorted(objs, key=_position))

    return SeededCrafter


def _position(obj: Any) -> tuple[int, int]:
    return int(obj.pos[0]), int(obj.pos[1])


class CrafterEnv(gym.Env):
    """
    ## Description

    Crafter: an open 2D world (64 x 64 cells by default) with forests, lakes, caves, cows, zombies
    and skeletons, day and night, in which the player must keep its health, food, water and energy
    up while collecting materials and crafting tools. Each episode is a new world generated from
    the seed. This class runs the ``crafter`` package's game, with one change that makes runs
    repeat under a seed (see Seeding).

    ## Observation

    uint8 [size, size, 3] (64 x 64 by default): the 9 x 7 cells around the player above a 9 x 2
    inventory bar, as Crafter renders them.

    ## Actions

    ``Discrete(17)``: ``ACTION_NAMES`` (0 noop, 1-4 moves, 5 do, 6 sleep, 7-10 place, 11-16 make).

    ## Reward

    Crafter's: +1 on a step that unlocks an achievement for the first time in the episode (one +1
    even if a step unlocks two), plus 0.1 per health point gained and -0.1 per point lost. 0 on
    every step with ``reward=False`` (Crafter's reward-free setting).

    ## Termination

    ``terminated`` when the player dies (health 0); ``truncated`` when the episode reaches
    ``length`` steps alive (default 10,000).

    ## Info

    ``episode_achievements``: a dict of the 22 ``ACHIEVEMENTS`` to bools, on every step and on
    reset. On the step that ends an episode each is True if the episode unlocked it; on other
    steps all are False (like ``episode_return``, it describes an episode that ended here).

    ## Arguments

    ``length`` (>= 1, default 10,000), ``area`` (world side in cells, >= 9, default 64: smaller
    worlds generate faster, for tests), ``size`` (image side in pixels, >= 9, default 64),
    ``reward`` (default True), ``render_mode`` (None or "rgb_array": ``render()`` returns the
    observation's image).

    ## Seeding

    ``reset(seed=s)`` starts Crafter's game with seed ``s`` (``crafter.Env(seed=s)``), whose k-th
    episode draws its world from ``(s, k)``; later ``reset()`` calls go on to the next episode.
    A first ``reset()`` without a seed draws the game's seed from gymnasium's ``np_random``. The
    game is Crafter's with its creature despawns in a fixed order (``_seeded_game_class``), so the
    seed and the actions fix the run. ``render()`` returns the last observation instead of calling
    Crafter's ``render``, which at night draws from the game's random stream.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        length: int = DEFAULT_LENGTH,
        area: int = 64,
        size: int = 64,
        reward: bool = True,
        render_mode: str | None = None,
    ) -> None:
        self._game_class = _seeded_game_class(_import_crafter().Env)
        _check_options(length=length, area=area, size=size, reward=reward)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.length = int(length)
        self.area = int(area)
        self.size = int(size)
        self.reward = bool(reward)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (self.size, self.size, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(len(ACTION_NAMES))
        self._game: Any = None
        self._image = np.zeros(self.observation_space.shape, dtype=np.uint8)
        self._ended = True

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or self._game is None:
            game_seed = int(seed) if seed is not None else int(self.np_random.integers(_SEED_LIMIT))
            self._game = self._game_class(
                area=(self.area, self.area),
                view=VIEW,
                size=(self.size, self.size),
                reward=self.reward,
                length=self.length,
                seed=game_seed,
            )
        self._image = self._game.reset()
        self._ended = False
        return self._image.copy(), {"episode_achievements": dict.fromkeys(ACHIEVEMENTS, False)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._ended:
            raise RuntimeError("step() called before reset() or after the episode ended")
        index = int(action)
        if index != action or not 0 <= index < len(ACTION_NAMES):
            raise ValueError(f"action must be an int in 0..{len(ACTION_NAMES) - 1}, got {action!r}")
        self._image, reward, done, game_info = self._game.step(index)
        dead = game_info["discount"] == 0.0  # Crafter sets discount = 1 - dead
        terminated = bool(done and dead)
        truncated = bool(done and not dead)
        self._ended = terminated or truncated
        unlocked = game_info["achievements"]
        achievements = {name: self._ended and unlocked[name] > 0 for name in ACHIEVEMENTS}
        info = {"episode_achievements": achievements}
        return self._image.copy(), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The observation's image."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array'; this env was made without")
            return None
        return self._image.copy()


def _check_options(**options: Any) -> None:
    for name, low in (("length", 1), ("area", 9), ("size", 9)):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"Crafter option {name} must be an int, got {value!r}")
        if value < low:
            raise ValueError(f"Crafter option {name} must be >= {low}, got {value}")
    if not isinstance(options["reward"], (bool, np.bool_)):
        raise ValueError(f"Crafter option reward must be a bool, got {options['reward']!r}")


# --------------------------------------------------------------------------------- the score
def crafter_score(success_rates_percent: Mapping[str, float] | Any) -> float:
    """Crafter's score: exp(mean_i ln(1 + s_i)) - 1 over the 22 achievements' success rates s_i in
    percent (0..100), a geometric mean that rewards unlocking rare achievements at all.

    ``success_rates_percent`` is a mapping with exactly the names in ``ACHIEVEMENTS``, or a
    sequence of 22 rates in that order. Gives 0 when nothing is ever unlocked, 100 when every
    episode unlocks everything.
    """
    if isinstance(success_rates_percent, Mapping):
        names = set(success_rates_percent)
        if names != set(ACHIEVEMENTS):
            missing = sorted(set(ACHIEVEMENTS) - names)
            unknown = sorted(names - set(ACHIEVEMENTS))
            raise ValueError(
                f"crafter_score needs the 22 achievements; missing {missing}, unknown {unknown}"
            )
        rates = np.array([success_rates_percent[name] for name in ACHIEVEMENTS], dtype=np.float64)
    else:
        rates = np.asarray(success_rates_percent, dtype=np.float64)
        if rates.shape != (len(ACHIEVEMENTS),):
            raise ValueError(f"crafter_score needs 22 success rates, got shape {rates.shape}")
    if not np.all((rates >= 0.0) & (rates <= 100.0)):
        raise ValueError("success rates must be percentages in [0, 100] (not NaN)")
    return float(np.expm1(np.mean(np.log1p(rates))))


def success_rates_from_metrics(path: str | Path) -> dict[str, float]:
    """Each achievement's success rate in percent over all the episodes a run logged.

    ``path`` is a run directory or its metrics.csv. Each row holds the episodes that finished in
    its interval (``episodes``) and, per achievement, the fraction of them that unlocked it
    (``achievement_<name>``); the run's rate is the mean of the rows weighted by their episode
    counts, i.e. the rate over all episodes, as the paper computes it. Rows without finished
    episodes (empty cells) count for nothing. ValueError when a column is missing or no row has a
    finished episode.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or ())
        missing = [key for key in ("episodes", *ACHIEVEMENT_KEYS) if key not in columns]
        if missing:
            raise ValueError(f"{path} has no column(s) {', '.join(missing)}: not a Crafter run?")
        unlocked = np.zeros(len(ACHIEVEMENTS))
        counted = np.zeros(len(ACHIEVEMENTS))
        for row in reader:
            episodes = float(row["episodes"] or 0)
            if not episodes > 0:
                continue
            for index, key in enumerate(ACHIEVEMENT_KEYS):
                if row[key]:
                    unlocked[index] += float(row[key]) * episodes
                    counted[index] += episodes
    if not np.all(counted > 0):
        raise ValueError(f"{path} has no finished episodes with achievements to score")
    rates = 100.0 * unlocked / counted
    return {name: float(rate) for name, rate in zip(ACHIEVEMENTS, rates, strict=True)}


def score_from_metrics(path: str | Path) -> float:
    """The run's Crafter score from its metrics.csv (``crafter_score`` of
    ``success_rates_from_metrics``)."""
    return crafter_score(success_rates_from_metrics(path))


# --------------------------------------------------------------------------- registration
def _register() -> None:
    if CRAFTER_ID not in gym.registry:
        register(id=CRAFTER_ID, entry_point=f"{__name__}:CrafterEnv")


_register()


# ------------------------------------------------------------------------------ the family
def registered_ids() -> tuple[str, ...]:
    """Listed whether or not crafter is installed; building the env says how to install it."""
    return (CRAFTER_ID,)


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "Crafter")
    _check_options(**resolved)
    return resolved


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """One gymnasium env (a ``CrafterEnv``; its length limit is Crafter's own: no ``TimeLimit``)."""
    if env_id != CRAFTER_ID:
        raise ValueError(f"{env_id!r} is not a Crafter id; known: {CRAFTER_ID}")
    return gym.make(env_id, render_mode=render_mode, **options)


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    raise ValueError(
        f"envpool has no version of {env_id}; use backend='gymnasium' or 'auto'"
    )


def room_reader(env_id: str) -> None:
    """Crafter has no rooms: no room statistics."""
    return None


def training_reward(options: dict[str, Any]) -> None:
    """Crafter's own reward is the training reward."""
    return None
