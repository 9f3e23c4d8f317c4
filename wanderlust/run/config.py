"""The run configuration: nested dataclasses, YAML presets that stack, and KEY=VALUE overrides.

Resolution order (later wins): defaults → presets in the order given → command-line flags →
`--set section.field=value` overrides. The resolved config is written to the run's config.yaml and
is all that `--resume` and `eval` need.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from wanderlust.agents.dreamer.agent import WORLD_MODELS, DreamerConfig
from wanderlust.agents.dreamer.nets import SIZES
from wanderlust.agents.hima import HIMAConfig
from wanderlust.agents.ppo import PPOConfig
from wanderlust.agents.qlearning import QLearningConfig
from wanderlust.envs.gridworld import is_scenario
from wanderlust.intrinsic import BONUSES, bonus_config_class


class ConfigError(ValueError):
    """A bad configuration value or key; its message is one line meant for the user."""


@dataclass
class EnvConfig:
    id: str = "MiniGrid-DoorKey-8x8-v0"
    num_envs: int = 16
    backend: str = "auto"
    """"auto" (envpool when it has the environment), "envpool" or "gymnasium"."""
    options: dict = field(default_factory=dict)
    """Passed to wanderlust.envs.make: e.g. full_obs (MiniGrid), screen_size, reward_clip (Atari)."""


@dataclass
class LogConfig:
    interval: int = 1
    """Iterations between rows of metrics.csv (and TensorBoard points)."""
    checkpoint_interval: int = 10
    """Iterations between checkpoints; rounded up to a multiple of `interval`."""
    keep_checkpoints: int = 3


@dataclass
class Config:
    env: EnvConfig = field(default_factory=EnvConfig)
    algo: str = "ppo"
    bonus: str = "rnd"
    frames: int = 1_000_000
    """Frame budget: agent steps summed over environments, warm-up steps included."""
    stop_at_scenario_end: bool = False
    """On a grid-world scenario env: stop after the iteration in which any env finished its scenario,
    even before `frames` (the steps of the first finished scenario are the HIMA benchmark's metric)."""
    seed: int = 0
    device: str = "auto"
    """"auto" (cuda when available), "cpu" or "cuda"."""
    torch_threads: int = 0
    """Threads for torch on CPU; 0 leaves torch's default."""
    track: str = ""
    """"wandb" to also log to Weights & Biases."""
    presets: list = field(default_factory=list)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    qlearning: QLearningConfig = field(default_factory=QLearningConfig)
    """Settings of `algo: qlearning` (tabular Q(λ), HIMA's baseline)."""
    dreamer: DreamerConfig = field(default_factory=DreamerConfig)
    """Settings of `algo: dreamer` (DreamerV3, and THICK with `world_model: thick`)."""
    hima: HIMAConfig = field(default_factory=HIMAConfig)
    """Settings of `algo: hima` (the HIMA agent, docs/hima.md)."""
    intrinsic: typing.Any = None
    """The chosen bonus's own config dataclass (e.g. RNDConfig); None for bonus "none"."""
    log: LogConfig = field(default_factory=LogConfig)


ALGOS = ("ppo", "qlearning", "dreamer", "hima")
OWN_REWARD_ALGOS = ("qlearning", "dreamer", "hima")
"""Learners that take no intrinsic bonus: their bonus defaults to "none" and must stay so."""


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("wanderlust.presets").iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict:
    """A preset by name (from wanderlust/presets) or by path to a YAML file."""
    path = Path(name)
    if not (name.endswith((".yaml", ".yml")) and path.exists()):
        if name not in preset_names():
            close = difflib.get_close_matches(name, preset_names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; presets: {', '.join(preset_names())}"
            raise ConfigError(f"unknown preset {name!r}{hint}")
        path = Path(str(resources.files("wanderlust.presets") / f"{name}.yaml"))
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {name!r} is not a mapping of config keys")
    # `include: [other, ...]` stacks other presets underneath this one (this one wins).
    included = data.pop("include", [])
    if isinstance(included, str):
        included = [included]
    if name in _including:
        raise ConfigError(f"preset {name!r} includes itself")
    _including.add(name)
    try:
        base: dict = {}
        for other in included:
            base = merge(base, load_preset(other))
    finally:
        _including.discard(name)
    return merge(base, data)


_including: set[str] = set()  # presets being loaded, to refuse include cycles


def merge(base: dict, update: dict, replaced: tuple[str, ...] = ("options",)) -> dict:
    """Recursive dict merge; `update` wins. A mapping under a key in `replaced` replaces the base's
    whole (a preset's env options are those of its env: `options: {}` clears an included preset's)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in replaced:
            out[key] = merge(out[key], value, replaced)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """"ppo.learning_rate=1e-4" → {"ppo": {"learning_rate": 1e-4}} (the value read as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not KEY=VALUE (e.g. ppo.learning_rate=1e-4)")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str) and _looks_like_float(value):
        value = float(value)  # YAML 1.1 reads "1e-4" as a string
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _coerce(value, annotation, where: str):
    origin = typing.get_origin(annotation) or annotation
    if annotation is typing.Any:
        return value
    if origin is bool:
        if isinstance(value, bool):
            return value
    elif origin is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif origin is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif origin is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin in (dict, list):
        if isinstance(value, origin):
            return value
    else:
        return value
    raise ConfigError(f"{where} must be {getattr(origin, '__name__', origin)}, got {value!r}")


def build(cls, data: dict | None, where: str = "", base=None):
    """Builds dataclass `cls` from a dict, refusing unknown keys with a suggestion. Fields the dict
    leaves out keep their values in `base`, or else their defaults; a nested dataclass starts from
    its parent's default for it (a `default_factory` may set other values than the class's own)."""
    data = data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {where + '.' if where else ''}{close[0]}?" if close else ""
            raise ConfigError(f"unknown config key {path!r}{hint}")
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = build(annotation, value, path, _default(cls, key, base))
        else:
            kwargs[key] = _coerce(value, annotation, path)
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def _default(cls, name: str, base):
    """What field `name` of dataclass `cls` holds when nothing sets it: `base`'s value, else the
    field's default (a fresh one from its factory), else None."""
    if base is not None:
        return getattr(base, name)
    field_ = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field_.default_factory is not dataclasses.MISSING:
        return field_.default_factory()
    return None if field_.default is dataclasses.MISSING else field_.default


def resolve(presets: list[str] | None = None, values: dict | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults → presets → `values` (nested dict, e.g. from CLI flags) → KEY=VALUE overrides, each
    of which sets one value and keeps its siblings (env options included).

    A preset's `intrinsic` section is generic across bonuses: keys the chosen bonus lacks are
    dropped (the debug preset shrinks RND's warm-up, which a count bonus does not have). Keys
    given by the user are strict.
    """
    preset_data: dict = {}
    for name in presets or []:
        preset_data = merge(preset_data, load_preset(name))
    user_data = dict(values or {})
    parsed = [parse_override(text) for text in overrides or []]
    given = user_data
    for override in parsed:
        given = merge(given, override)
    # What an algo implies where neither a preset nor the user says otherwise.
    implied: dict = {}
    algo = given.get("algo", preset_data.get("algo", Config.algo))
    if algo in OWN_REWARD_ALGOS and "bonus" not in given and "bonus" not in preset_data:
        implied["bonus"] = "none"
    if algo == "hima" and "num_envs" not in {**preset_data.get("env", {}), **given.get("env", {})}:
        implied["env"] = {"num_envs": 1}  # HIMA learns from one stream
    bonus = given.get("bonus", preset_data.get("bonus", implied.get("bonus", Config.bonus)))
    config_class = bonus_config_class(bonus) if bonus in BONUSES else None
    known = {f.name for f in dataclasses.fields(config_class)} if config_class else set()
    preset_data["intrinsic"] = {k: v for k, v in (preset_data.get("intrinsic") or {}).items() if k in known}
    data = merge(merge(implied, preset_data), user_data)
    for override in parsed:  # KEY=VALUE sets one value: env.options.noop_max=0 keeps the other options
        data = merge(data, override, replaced=())
    data["presets"] = list(presets or [])
    return from_dict(data)


def from_dict(data: dict) -> Config:
    data = dict(data)
    intrinsic = data.pop("intrinsic", None)
    config = build(Config, data)
    if config.algo not in ALGOS:
        raise ConfigError(f"unknown algo {config.algo!r}; choose one of: {', '.join(ALGOS)}")
    if config.algo in OWN_REWARD_ALGOS and config.bonus != "none":
        raise ConfigError(f"algo {config.algo} learns from the env's reward alone: use --bonus none")
    if config.bonus not in BONUSES:
        close = difflib.get_close_matches(config.bonus, list(BONUSES), n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown bonus {config.bonus!r}{hint} (choose from: {', '.join(BONUSES)})")
    bonus_class = bonus_config_class(config.bonus)
    if bonus_class is None:
        if intrinsic:
            raise ConfigError(f"bonus {config.bonus!r} takes no intrinsic settings, got {sorted(intrinsic)}")
        config.intrinsic = None
    else:
        config.intrinsic = build(bonus_class, intrinsic, "intrinsic")
    validate(config)
    return config


def validate(config: Config) -> None:
    checks = [
        (config.frames > 0, f"frames must be a positive number, got {config.frames}"),
        (config.env.num_envs > 0, f"env.num_envs must be positive, got {config.env.num_envs}"),
        (config.ppo.num_steps > 0, "ppo.num_steps must be positive"),
        (config.ppo.minibatches > 0 and config.ppo.epochs > 0, "ppo.minibatches and ppo.epochs must be positive"),
        (config.ppo.lr_schedule in ("constant", "linear"), "ppo.lr_schedule must be constant or linear"),
        (config.ppo.lr_decay_frames >= 0, "ppo.lr_decay_frames must not be negative (0: the frame budget)"),
        (config.ppo.reconstruction_coef >= 0, "ppo.reconstruction_coef must not be negative"),
        (config.device in ("auto", "cpu", "cuda") or config.device.startswith("cuda:"), "device must be auto, cpu or cuda"),
        (config.env.backend in ("auto", "envpool", "gymnasium"), "env.backend must be auto, envpool or gymnasium"),
        (config.track in ("", "wandb"), "track must be empty or wandb"),
        (config.log.interval > 0 and config.log.checkpoint_interval > 0, "log intervals must be positive"),
        (config.dreamer.world_model in WORLD_MODELS, f"dreamer.world_model must be one of {', '.join(WORLD_MODELS)}"),
        (config.dreamer.size in SIZES, f"dreamer.size must be one of {', '.join(SIZES)}"),
        (config.dreamer.batch_size > 0 and config.dreamer.batch_length > 1,
         "dreamer.batch_size must be positive and dreamer.batch_length above 1"),
        (config.dreamer.train_ratio > 0 and config.dreamer.steps_per_iteration > 0,
         "dreamer.train_ratio and dreamer.steps_per_iteration must be positive"),
        (config.dreamer.replay_capacity >= config.dreamer.batch_length * config.env.num_envs,
         "dreamer.replay_capacity must hold batch_length steps of every environment"),
        (not config.stop_at_scenario_end or is_scenario(config.env.id),
         f"stop_at_scenario_end needs a grid-world scenario env (…-Scenario-v0), got {config.env.id}"),
        (config.algo != "hima" or config.env.num_envs == 1,
         "algo hima learns online from one stream of experience: use --num-envs 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if config.track == "wandb" and importlib.util.find_spec("wandb") is None:
        raise ConfigError("--track wandb needs the wandb package: pip install 'wanderlust[wandb]'")


def to_dict(config: Config) -> dict:
    return dataclasses.asdict(config)


def save(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def load(path: Path) -> Config:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a wanderlust config")
    return from_dict(data)
