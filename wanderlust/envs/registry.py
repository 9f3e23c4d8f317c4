"""Which family runs an environment id, and what a family must provide.

An id belongs to exactly one family module (``minigrid.py``, ``atari.py``, ``procgen.py``,
``ballet.py``, ``gridworld.py``, ``pinpad.py``, ``crafter.py``); the module knows how to build one
gymnasium env for the id (or why it cannot), how envpool runs it (if it can), which rooms it
reports and how its training reward is clipped. ``make`` in ``__init__.py`` only composes these.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from . import atari, ballet, gridworld, minigrid, procgen
from . import crafter, pinpad
from .vector import RoomReader, envpool_installed, envpool_task_ids

__all__ = [
    "EnvSpec",
    "Family",
    "UnknownEnvError",
    "env_family",
    "env_spec",
    "episode_columns",
    "family_of",
    "list_envs",
]


class UnknownEnvError(ValueError):
    """An id that no family registers; the message names the closest registered ids."""


class Family(Protocol):
    """What a family module provides (modules satisfy this protocol structurally)."""

    NAME: str
    ENVPOOL_OBSERVATION_KEY: str | None
    # Optional: INFO_KEYS, a tuple of the env's own info keys that `make` passes through (its
    # episode bookkeeping replaces the rest); EPISODE_COLUMNS, the per-episode numbers that
    # `record_step` collects from those keys and every metrics row of the family's runs carries.

    def registered_ids(self) -> tuple[str, ...]: ...

    def resolve_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; ValueError for an unknown option or a bad value."""

    def make_single(
        self, env_id: str, options: dict[str, Any], render_mode: str | None = None
    ) -> gym.Env:
        """One gymnasium env; an envpool-only family raises, saying why and what to use."""

    def envpool_config(
        self, env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
    ) -> tuple[str, dict[str, Any]]:
        """(envpool task id, envpool.make settings); ValueError with a one-line reason if none."""

    def room_reader(self, env_id: str) -> RoomReader | None: ...

    def training_reward(
        self, options: dict[str, Any]
    ) -> Callable[[np.ndarray], np.ndarray] | None: ...


FAMILIES: dict[str, Family] = {
    minigrid.NAME: minigrid,  # type: ignore[dict-item]
    atari.NAME: atari,  # type: ignore[dict-item]
    procgen.NAME: procgen,  # type: ignore[dict-item]
    ballet.NAME: ballet,  # type: ignore[dict-item]
    gridworld.NAME: gridworld,  # type: ignore[dict-item]
    pinpad.NAME: pinpad,  # type: ignore[dict-item]
    crafter.NAME: crafter,  # type: ignore[dict-item]
}

ENVPOOL_ONLY_FAMILIES = frozenset({procgen.NAME})
"""Families without a gymnasium version (see procgen.py for why)."""


@dataclass(frozen=True)
class EnvSpec:
    """What wanderlust knows about an id in this installation."""

    env_id: str
    family: str
    backends: tuple[str, ...]
    """Backends that can run the id with default options: "gymnasium" except for envpool-only
    families, "envpool" if able."""


@functools.cache
def _family_by_id() -> dict[str, str]:
    return {env_id: name for name, family in FAMILIES.items() for env_id in family.registered_ids()}


def list_envs() -> dict[str, list[str]]:
    """Registered ids by family, sorted (Atari is empty without ale-py; Procgen is always listed)."""
    return {name: sorted(family.registered_ids()) for name, family in FAMILIES.items()}


def family_of(env_id: str) -> Family:
    """The family module of a registered id; raises with a one-line, actionable message."""
    name = _family_by_id().get(env_id)
    if name is not None:
        return FAMILIES[name]
    if env_id.startswith("ALE/") and not atari.available():
        raise ModuleNotFoundError(
            f"environment {env_id!r} needs ale-py: {atari.INSTALL_HINT}", name="ale_py"
        )
    close = difflib.get_close_matches(env_id, list(_family_by_id()), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see wanderlust.envs.list_envs()"
    raise UnknownEnvError(f"unknown environment {env_id!r}; {hint}")


def episode_columns(env_id: str) -> tuple[str, ...]:
    """The family's own per-episode columns of metrics.csv (Crafter's achievements, the grid-world
    scenario's progress), present on every row of a run so that the columns are fixed from its
    first row."""
    return tuple(getattr(family_of(env_id), "EPISODE_COLUMNS", ()))


def env_family(env_id: str) -> str:
    """The family name of an id ("minigrid", "atari", "procgen", "ballet", "gridworld", "pinpad" or
    "crafter"), validating it without building the env."""
    return family_of(env_id).NAME


def env_spec(env_id: str) -> EnvSpec:
    family = family_of(env_id)
    backends = [] if family.NAME in ENVPOOL_ONLY_FAMILIES else ["gymnasium"]
    if envpool_installed():
        try:
            family.envpool_config(
                env_id, family.resolve_options({}), envpool_task_ids()
            )
            backends.append("envpool")
        except ValueError:
            pass
    return EnvSpec(env_id=env_id, family=family.NAME, backends=tuple(backends))
