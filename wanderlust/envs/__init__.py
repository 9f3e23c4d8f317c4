"""Environments: one ``make`` for every family and backend.

``make(env_id, num_envs, seed, backend)`` returns a batched env with gymnasium 1.x's vector API
whose observations, rewards, dones, auto-reset and ``info`` mean the same on both backends
(gymnasium and envpool), so that the training loop never needs to know which one runs. See
docs/environments.md for the ids, the observation and reward of each family, and the options.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from gymnasium.wrappers.vector import TransformReward

from .registry import (
    EnvSpec,
    Family,
    UnknownEnvError,
    env_family,
    env_spec,
    episode_columns,
    family_of,
    list_envs,
)
from .vector import (
    EnvpoolBackend,
    EpisodeStatistics,
    GymnasiumBackend,
    VecEnv,
    envpool_installed,
    envpool_task_ids,
)

__all__ = [
    "BACKENDS",
    "EnvSpec",
    "UnknownEnvError",
    "VecEnv",
    "env_family",
    "episode_columns",
    "env_spec",
    "list_envs",
    "make",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "gymnasium", "envpool")


def make(
    env_id: str,
    num_envs: int = 1,
    seed: int = 0,
    backend: str = "auto",
    *,
    render: bool = False,
    **options: Any,
) -> VecEnv:
    """Build ``num_envs`` copies of ``env_id`` as one vector env.

    Env i is seeded with ``seed + i`` on both backends, so the same arguments and actions give the
    same run. ``backend="auto"`` picks envpool when it is installed and runs this id with these
    options, else gymnasium. ``render=True`` forces the gymnasium backend (envpool does not render
    here) and makes ``render()`` return one RGB frame per env. ``options`` are per family:
    MiniGrid ``full_obs``; Atari ``screen_size``, ``reward_clip``, ``max_episode_steps``,
    ``grayscale``, ``frame_stack``, ``sticky_actions``, ``full_action_space``, ``noop_max``; Procgen
    ``num_levels``, ``start_level``; Ballet ``cell_size``, ``max_steps``; Crafter ``length``,
    ``area``, ``size``, ``reward``; grid worlds and PinPad: see docs/environments.md. Procgen runs
    on envpool only (no gymnasium version); Ballet, the grid worlds, PinPad and Crafter on
    gymnasium only.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
    family = family_of(env_id)
    resolved = family.resolve_options(options)
    chosen, envpool_task = _choose_backend(env_id, family, resolved, backend, render)

    base: Any
    if envpool_task is not None:
        task_id, task_kwargs = envpool_task
        base = EnvpoolBackend(
            task_id, task_kwargs, num_envs, seed, family.ENVPOOL_OBSERVATION_KEY
        )
    else:
        render_mode = "rgb_array" if render else None
        env_fn = functools.partial(family.make_single, env_id, resolved, render_mode)
        base = GymnasiumBackend([env_fn] * num_envs, seed)

    env: Any = EpisodeStatistics(base, family.room_reader(env_id), getattr(family, "INFO_KEYS", ()))
    clip = family.training_reward(resolved)
    if clip is not None:
        env = TransformReward(env, clip)
    logger.debug(
        "made %s x%d on %s (seed %d, options %s)", env_id, num_envs, chosen, seed, resolved
    )
    return VecEnv(env, env_id=env_id, family=family.NAME, backend=chosen)


def _choose_backend(
    env_id: str, family: Family, options: dict[str, Any], backend: str, render: bool
) -> tuple[str, tuple[str, dict[str, Any]] | None]:
    """The backend name, and envpool's (task, settings) when envpool is chosen."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if render:
        if backend == "envpool":
            raise ValueError("render=True needs the gymnasium backend; use backend='auto'")
        return "gymnasium", None
    if backend == "gymnasium":
        return "gymnasium", None
    if not envpool_installed():
        if backend == "envpool":
            raise ModuleNotFoundError(
                "envpool is not installed: pip install 'wanderlust[envpool]'", name="envpool"
            )
        return "gymnasium", None
    try:
        return "envpool", family.envpool_config(env_id, options, envpool_task_ids())
    except ValueError as reason:
        if backend == "envpool":
            raise
        logger.debug("%s runs on gymnasium: %s", env_id, reason)
        return "gymnasium", None
