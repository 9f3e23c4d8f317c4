"""Intrinsic rewards: the interface (base.py) and one file per bonus."""

from __future__ import annotations

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, NoBonus, Rollout, StepRecorder
from wanderlust.intrinsic.counts import CountBonus, CountConfig
from wanderlust.intrinsic.disagreement import Disagreement, DisagreementConfig
from wanderlust.intrinsic.e3b import E3B, E3BConfig
from wanderlust.intrinsic.icm import ICM, ICMConfig
from wanderlust.intrinsic.ngu import NGU, NGUConfig
from wanderlust.intrinsic.noveld import NovelD, NovelDConfig
from wanderlust.intrinsic.re3 import RE3, RE3Config
from wanderlust.intrinsic.ride import RIDE, EpisodicCount, EpisodicCountConfig, RIDEConfig, RIDENoEpisodic
from wanderlust.intrinsic.rnd import RND, RNDConfig
from wanderlust.intrinsic.snd import SNDSTD, SNDV, SNDVIC, SNDConfig

# name → (class, config dataclass or None). A bonus is built as cls(config, spec) with a
# BonusSpec; config is None for bonuses without settings.
BONUSES: dict[str, tuple[type[IntrinsicReward], type | None]] = {
    "none": (NoBonus, None),
    "rnd": (RND, RNDConfig),
    "snd-v": (SNDV, SNDConfig),
    "snd-std": (SNDSTD, SNDConfig),
    "snd-vic": (SNDVIC, SNDConfig),
    "icm": (ICM, ICMConfig),
    "ride": (RIDE, RIDEConfig),
    "ride-no-episodic": (RIDENoEpisodic, RIDEConfig),
    "episodic-count": (EpisodicCount, EpisodicCountConfig),
    "count": (CountBonus, CountConfig),
    "noveld": (NovelD, NovelDConfig),
    "e3b": (E3B, E3BConfig),
    "ngu": (NGU, NGUConfig),
    "disagreement": (Disagreement, DisagreementConfig),
    "re3": (RE3, RE3Config),
}


def bonus_config_class(name: str) -> type | None:
    if name not in BONUSES:
        raise ValueError(f"unknown bonus {name!r}; choose one of: {', '.join(BONUSES)}")
    return BONUSES[name][1]


def check_family(name: str, family: str) -> None:
    """Refuses a bonus on observations it cannot read (one-line ValueError); "none" reads nothing."""
    bonus_config_class(name)  # an unknown name is its own one-line error
    families = BONUSES[name][0].families
    if name != "none" and family not in families:
        raise ValueError(f"the {name} bonus reads {', '.join(families)} observations, not {family}; use --bonus none")


def make_bonus(name: str, config, spec: BonusSpec) -> IntrinsicReward:
    check_family(name, spec.family)
    config_class = bonus_config_class(name)
    if config_class is not None and config is None:
        config = config_class()
    return BONUSES[name][0](config, spec)


__all__ = [
    "BONUSES", "BonusSpec", "IntrinsicReward", "NoBonus", "Rollout", "StepRecorder",
    "bonus_config_class", "check_family", "make_bonus",
    "RND", "RNDConfig", "SNDV", "SNDSTD", "SNDVIC", "SNDConfig", "ICM", "ICMConfig", "RIDE", "RIDENoEpisodic",
    "RIDEConfig", "EpisodicCount", "EpisodicCountConfig", "CountBonus", "CountConfig", "NovelD", "NovelDConfig",
    "E3B", "E3BConfig", "NGU", "NGUConfig", "Disagreement", "DisagreementConfig", "RE3", "RE3Config",
]
