"""Intrinsic rewards: the interface (base.py) and one file per bonus."""

from __future__ import annotations

from wanderlust.intrinsic.base import IntrinsicReward, NoBonus, Rollout
from wanderlust.intrinsic.rnd import RND, RNDConfig

# name → (class, config dataclass or None). A bonus's class is built as cls(config, obs_shape,
# num_envs, gamma_int); bonuses without a config take no arguments.
BONUSES: dict[str, tuple[type[IntrinsicReward], type | None]] = {
    "none": (NoBonus, None),
    "rnd": (RND, RNDConfig),
}


def bonus_config_class(name: str) -> type | None:
    if name not in BONUSES:
        raise ValueError(f"unknown bonus {name!r}; choose one of: {', '.join(BONUSES)}")
    return BONUSES[name][1]


def make_bonus(name: str, config, obs_shape: tuple[int, ...], num_envs: int, gamma_int: float) -> IntrinsicReward:
    config_class = bonus_config_class(name)
    cls = BONUSES[name][0]
    return cls() if config_class is None else cls(config, obs_shape, num_envs, gamma_int)


__all__ = ["BONUSES", "IntrinsicReward", "NoBonus", "RND", "RNDConfig", "Rollout", "bonus_config_class", "make_bonus"]
