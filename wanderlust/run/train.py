"""`wanderlust train`: builds a run directory and drives an agent until the frame budget is spent."""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from wanderlust import envs
from wanderlust.envs import crafter
from wanderlust.agents.dreamer import agent as dreamer
from wanderlust.agents.dreamer.agent import Dreamer
from wanderlust.agents.episodes import Learner
from wanderlust.agents.hima import HIMA
from wanderlust.agents.ppo import PPO, resolve_network
from wanderlust.agents.qlearning import QLearning
from wanderlust.intrinsic import BonusSpec, check_family, make_bonus
from wanderlust.nets.policy import check_decoder
from wanderlust.run import checkpoint, config as config_module
from wanderlust.run.config import Config, ConfigError
from wanderlust.run.logger import MetricsLogger, Progress, truncate_metrics

log = logging.getLogger("wanderlust")


class RunDirError(ValueError):
    """A run directory that cannot be used as asked; the message is one line."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but torch sees no CUDA device")
    return torch.device(name)


def default_run_dir(config: Config) -> Path:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", config.env.id).strip("-")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    learner = config.bonus if config.algo == "ppo" else config.algo
    return Path("runs") / f"{slug}__{learner}__s{config.seed}__{stamp}"


def build_agent(config: Config, device: torch.device, num_envs: int | None = None, render: bool = False, seed: int | None = None):
    """The environment and the learner that a config describes (also used by eval).

    A learner provides what the training loop reads: `frames`, `iteration`, `warmup()`,
    `iterate() -> {"metrics", "episodes"}`, `state_dict()`/`load_state_dict()`, `rooms` (a
    RoomLog) and `reports_rooms` (whether the env reports rooms)."""
    seed = config.seed if seed is None else seed
    env = envs.make(config.env.id, num_envs or config.env.num_envs, seed, config.env.backend, render=render,
                    **config.env.options)
    if config.algo == "qlearning":
        return env, QLearning(config.qlearning, env, config.frames, seed)
    if config.algo == "hima":
        return env, HIMA(config.hima, env, config.frames, seed)
    if config.algo == "dreamer":
        return env, Dreamer(config.dreamer, env, config.frames, device, seed)
    spec = BonusSpec(
        obs_shape=tuple(env.single_observation_space.shape),
        num_actions=int(env.single_action_space.n),
        num_envs=env.num_envs,
        family=env.family,
        gamma_int=config.ppo.gamma_int,
    )
    bonus = make_bonus(config.bonus, config.intrinsic, spec)
    agent = PPO(config.ppo, env, bonus, config.frames, device, seed)
    return env, agent


def _prepare_run_dir(config: Config, run_dir: Path | None) -> Path:
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(f"run directory {run_dir} already exists; pass --resume {run_dir} to continue it, or choose another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / ".config.yaml.tmp"
    config_module.save(config, tmp)
    os.replace(tmp, run_dir / "config.yaml")
    return run_dir


def _open_resumed(run_dir: Path, frames: int | None) -> tuple[Config, dict | None]:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a wanderlust run directory (no config.yaml)")
    config = config_module.load(run_dir / "config.yaml")
    if frames is not None and frames != config.frames:
        config.frames = frames
        config_module.validate(config)
        config_module.save(config, run_dir / ".config.yaml.tmp")
        os.replace(run_dir / ".config.yaml.tmp", run_dir / "config.yaml")
    path = checkpoint.latest(run_dir / "checkpoints")
    return config, (checkpoint.load(path) if path is not None else None)


def train(
    env: str | None = None,
    bonus: str | None = None,
    frames: int | None = None,
    *,
    num_envs: int | None = None,
    seed: int | None = None,
    preset: str | list[str] | None = None,
    run_dir: str | Path | None = None,
    backend: str | None = None,
    device: str | None = None,
    track: str | None = None,
    overrides: list[str] | dict | None = None,
    resume: str | Path | None = None,
    algo: str | None = None,
    memory: str | None = None,
    world_model: str | None = None,
    dreaming: bool | None = None,
    empowerment: bool | None = None,
    hierarchy: bool | None = None,
) -> Path:
    """Trains an agent and returns its run directory.

    Example: ``wanderlust.train(env="MiniGrid-DoorKey-8x8-v0", bonus="rnd", frames=500_000)``.
    `overrides` takes ``["ppo.learning_rate=1e-4"]`` or ``{"ppo.learning_rate": 1e-4}``.
    With `resume`, the run directory's own config is used (only `frames` may raise the budget).
    """
    if resume is not None:
        config, state = _open_resumed(Path(resume), frames)
        run_dir = Path(resume)
    else:
        values: dict = {}
        for key, value in (("algo", algo), ("bonus", bonus), ("frames", frames), ("seed", seed), ("device", device), ("track", track)):
            if value is not None:
                values[key] = value
        env_values = {k: v for k, v in (("id", env), ("num_envs", num_envs), ("backend", backend)) if v is not None}
        if env_values:
            values["env"] = env_values
        if memory is not None:
            values["ppo"] = {"memory": {"kind": memory}}
        if world_model is not None:
            values["dreamer"] = {"world_model": world_model}
        switches = (("dreaming", dreaming), ("empowerment", empowerment), ("hierarchy", hierarchy))
        hima = {k: v for k, v in switches if v is not None}
        if hima:
            values["hima"] = hima
        presets = [preset] if isinstance(preset, str) else list(preset or [])
        presets = [p for name in presets for p in name.split(",") if p]
        if isinstance(overrides, dict):
            overrides = [f"{key}={value}" for key, value in overrides.items()]
        config = config_module.resolve(presets, values, overrides)
        # Fail on an unknown id, a misfit network or bonus before creating anything.
        try:
            family = envs.env_family(config.env.id)
            if config.algo == "ppo":
                network = resolve_network(config.ppo.network, family)
                if config.ppo.reconstruction_coef > 0:
                    check_decoder(network)
                check_family(config.bonus, family)
            if config.algo == "hima" and family != "gridworld":
                raise ValueError(f"--algo hima reads the grid worlds' 5×5 window (wanderlust/GridWorld-*), not {family}")
            if config.algo == "dreamer":
                dreamer.check_env(family, config.env.options)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        run_dir = _prepare_run_dir(config, Path(run_dir) if run_dir is not None else None)
        state = None
    _run(config, Path(run_dir), state)
    return Path(run_dir)


def _run(config: Config, run_dir: Path, state: dict | None) -> None:
    if config.torch_threads > 0:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    device = resolve_device(config.device)
    env, agent = build_agent(config, device)
    try:
        if state is not None:
            # The envs' own state first: the learner's load starts fresh episodes, which continue it.
            env.load_state_dict(state.get("env", {}))
            agent.load_state_dict(state["agent"])
            torch.set_rng_state(state["rng"]["torch"])
            truncate_metrics(run_dir / "metrics.csv", agent.frames)
            log.info("resuming %s at %d frames", run_dir, agent.frames)
        else:
            truncate_metrics(run_dir / "metrics.csv", -1)
            warmup_frames = agent.warmup()
            if warmup_frames:
                log.info("observation warm-up: %d random-action frames (counted in the budget)", warmup_frames)
        logger = MetricsLogger(run_dir, config_module.to_dict(config), agent.frames if state else None, config.track)
        progress = Progress(config.frames, agent.frames, f"{config.env.id} {config.bonus}")
        try:
            _loop(config, run_dir, env, agent, logger, progress)
        finally:
            progress.close()
            logger.close()
    finally:
        env.close()
    from wanderlust.run.plot import plot_rooms, plot_run

    plot_run(run_dir, run_dir / "curves.png")
    if envs.env_family(config.env.id) == "crafter":
        try:
            log.info("Crafter score over the run's episodes: %.2f %%", crafter.score_from_metrics(run_dir))
        except ValueError as error:  # no episode has finished yet
            log.info("no Crafter score yet: %s", error)
    if agent.rooms.thumbnails:
        path = plot_rooms(run_dir, agent.rooms.thumbnails, agent.rooms.found_at, run_dir / "rooms.png")
        log.info("rooms discovered: %d, drawn in %s", len(agent.rooms.thumbnails), path)


def _loop(config: Config, run_dir: Path, env: envs.VecEnv, agent: Learner, logger: MetricsLogger, progress: Progress) -> None:
    interval = config.log.interval
    checkpoint_every = interval * math.ceil(config.log.checkpoint_interval / interval)
    sums: dict[str, float] = defaultdict(float)
    levels: dict[str, float] = {}  # the learner's gauges, at the latest iteration
    episodes: dict[str, list] = defaultdict(list)
    iterations = 0
    start_time, start_frames = time.perf_counter(), agent.frames
    tracks_rooms = agent.reports_rooms
    # The family's own columns (Crafter's achievements, a scenario's progress) on every row: the
    # logger fixes its columns from the first row, whose episodes may not have ended yet.
    family_columns = envs.episode_columns(config.env.id)
    finished = agent.frames >= config.frames
    while not finished:
        result = agent.iterate()
        iterations += 1
        for key, value in result["metrics"].items():
            if key in agent.gauges:
                levels[key] = value
            else:
                sums[key] += value
        for key, values in result["episodes"].items():
            episodes[key] += values
        scenario_ended = config.stop_at_scenario_end and bool(episodes["scenario_steps"])
        finished = agent.frames >= config.frames or scenario_ended
        if agent.iteration % interval and not finished:
            continue
        elapsed = time.perf_counter() - start_time
        row: dict = {
            "frames": agent.frames,
            "episode_return": _mean(episodes["episode_return"]),
            "episode_length": _mean(episodes["episode_length"]),
            "episodes": len(episodes["episode_return"]),
            "sps": (agent.frames - start_frames) / max(elapsed, 1e-9),
        }
        if tracks_rooms:
            row["rooms"] = len(agent.rooms_seen)
            row["episode_rooms"] = _mean(episodes["episode_rooms"])
        row.update({key: _mean(episodes[key]) for key in family_columns})
        row.update({key: value / iterations for key, value in sums.items()})
        row.update(levels)
        logger.write(row)
        progress.update(row)
        sums.clear()
        episodes.clear()
        iterations = 0
        start_time, start_frames = time.perf_counter(), agent.frames
        if agent.iteration % checkpoint_every == 0 or finished:
            checkpoint.save(
                run_dir / "checkpoints",
                agent.frames,
                {
                    "config": config_module.to_dict(config),
                    "agent": agent.state_dict(),
                    "env": env.state_dict(),
                    "rng": {"torch": torch.get_rng_state()},
                },
                config.log.keep_checkpoints,
            )


def _mean(values: list) -> float:
    return float(np.mean(values)) if values else float("nan")
