"""Replaying a trained run: its policy acting in one environment while its bonus scores each step.

`wanderlust eval`, `analyze` and `play` all look at a run this way. The bonus sees the steps as it
did in training: `reset` at each episode's start, `observe` on every step, `reward` for the step.
Its episodic memory therefore fills as it did while training, and its running normalisers continue
from the checkpoint. The reward is the bonus as PPO adds it to the intrinsic stream, before
`int_coef`.

Episodes start with `reset(seed=...)` rather than by auto-reset, so that a fixed `layout_seed` can
replay the same procedurally generated layout in every episode (needed for heatmaps over a map).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from wanderlust.agents.dreamer.agent import Dreamer
from wanderlust.agents.ppo import PPO
from wanderlust.intrinsic.base import IntrinsicReward, Rollout
from wanderlust.run import checkpoint, config as config_module
from wanderlust.run.config import Config
from wanderlust.run.train import RunDirError, build_agent, resolve_device


REPLAYABLE = ("ppo", "dreamer")
"""Learners whose runs eval, analyze and play can replay."""


@dataclass
class LoadedRun:
    """A run's latest checkpoint, restored into one environment (gymnasium backend, rendering)."""

    run_dir: Path
    config: Config
    env: gym.vector.VectorEnv
    agent: PPO | Dreamer
    frames: int  # the checkpoint's frame count

    @property
    def has_bonus(self) -> bool:
        return getattr(self.agent, "bonus", None) is not None

    @property
    def base_env(self) -> gym.Env:
        """The single unwrapped environment (MiniGrid: reads `agent_pos`, `grid`, `width`)."""
        return self.env.unwrapped.envs[0].unwrapped

    def close(self) -> None:
        self.env.close()


def load_run(
    run_dir: str | Path, device: str = "auto", seed: int = 12345, checkpoint_path: str | Path | None = None
) -> LoadedRun:
    """A checkpoint of `run_dir` (the latest unless one is named): its policy, and its bonus with
    all its learned state."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a wanderlust run directory (no config.yaml)")
    path = Path(checkpoint_path) if checkpoint_path is not None else checkpoint.latest(run_dir / "checkpoints")
    if path is None:
        raise RunDirError(f"{run_dir} has no checkpoint yet")
    state = checkpoint.load(path)
    config = config_module.from_dict(state["config"])
    if config.algo not in REPLAYABLE:
        raise RunDirError(f"{run_dir} is a {config.algo} run; eval, analyze and play replay {' and '.join(REPLAYABLE)} runs")
    # One rendering env on the gymnasium backend, whichever backend the run trained on (envpool
    # does not render; the ids and options mean the same on both).
    on_gymnasium = dataclasses.replace(config, env=dataclasses.replace(config.env, backend="gymnasium"))
    if config.algo == "dreamer":  # no replay buffer is needed to act
        small = dataclasses.replace(config.dreamer, replay_capacity=config.dreamer.batch_length)
        on_gymnasium = dataclasses.replace(on_gymnasium, dreamer=small)
    env, agent = build_agent(on_gymnasium, resolve_device(device), num_envs=1, render=True, seed=seed)
    if config.algo == "dreamer":
        agent.world_model.load_state_dict(state["agent"]["world_model"])
        agent.behavior.load_state_dict(state["agent"]["behavior"])
        agent.world_model.eval()
    else:
        agent.policy.load_state_dict(state["agent"]["policy"])
        agent.policy.eval()
        load_for_fewer_envs(agent.bonus, state["agent"]["bonus"])
    return LoadedRun(run_dir, config, env, agent, int(state["agent"]["frames"]))


def load_for_fewer_envs(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Loads a state dict saved with N environments into a module built for fewer.

    Per-environment state (a discounted-return accumulator, say) has N rows in the checkpoint; the
    module keeps the first rows, so the replay continues where training's first environments were.
    """
    own = module.state_dict()
    fitted = {}
    for key, value in state.items():
        mine = own.get(key)
        if isinstance(value, torch.Tensor) and mine is not None and value.dim() > 0 and value.shape[1:] == mine.shape[1:]:
            value = value[: mine.shape[0]]
        fitted[key] = value
    module.load_state_dict(fitted)


class StepScorer:
    """Scores one environment's transitions one at a time with a bonus, as PPO's rollout would.

    `clip` bounds the bonus as PPO's `int_reward_clip` does (0: no bound).
    """

    def __init__(self, bonus: IntrinsicReward, device: torch.device, clip: float = 0.0):
        self.bonus = bonus
        self.device = device
        self.clip = clip

    @classmethod
    def for_run(cls, run: LoadedRun) -> StepScorer:
        ppo = run.config.ppo
        clip = ppo.int_reward_clip / ppo.int_coef if ppo.int_reward_clip > 0 and ppo.int_coef > 0 else 0.0
        return cls(run.agent.bonus, run.agent.device, clip)

    def start(self, obs: np.ndarray) -> None:
        """A new episode begins at `obs` (one observation, unbatched)."""
        first = self._batch(obs)
        # In training the first observation arrives as the next observation of the auto-reset
        # step, after `reset`; the bonus's episodic memory holds it from then on.
        self.bonus.reset(torch.ones(1, dtype=torch.bool, device=self.device))
        self.bonus.observe(first, torch.zeros(1, dtype=torch.long, device=self.device), first)
        self.bonus.reward(Rollout(first[None], first[None], *self._step_flags(0, valid=False)))

    def score(self, obs: np.ndarray, action: int, next_obs: np.ndarray, done: bool) -> float:
        """The bonus for the step obs → next_obs taken with `action`."""
        before, after = self._batch(obs), self._batch(next_obs)
        self.bonus.reset(torch.zeros(1, dtype=torch.bool, device=self.device))
        actions = torch.tensor([action], dtype=torch.long, device=self.device)
        self.bonus.observe(before, actions, after)
        rollout = Rollout(before[None], after[None], actions[None], *self._step_flags(done, valid=True)[1:])
        bonus = float(self.bonus.reward(rollout)[0, 0])
        return min(max(bonus, -self.clip), self.clip) if self.clip > 0 else bonus

    def _batch(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs), device=self.device)[None]

    def _step_flags(self, done: bool, valid: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actions, dones, valid), each [1, 1]."""
        return (
            torch.zeros(1, 1, dtype=torch.long, device=self.device),
            torch.full((1, 1), bool(done), device=self.device),
            torch.full((1, 1), valid, device=self.device),
        )


@dataclass
class Episode:
    """One replayed episode of T steps. Arrays over states have T + 1 rows (the first state too)."""

    observations: list[np.ndarray] = field(default_factory=list)  # T + 1 observations
    actions: list[int] = field(default_factory=list)  # T
    rewards: list[float] = field(default_factory=list)  # T, the training reward
    intrinsic: list[float] = field(default_factory=list)  # T, the bonus for reaching state t + 1
    values_ext: list[float] = field(default_factory=list)  # T + 1
    values_int: list[float] = field(default_factory=list)  # T + 1
    positions: list[tuple[int, int]] = field(default_factory=list)  # T + 1 (grid envs: agent_pos)
    rooms: list[int] = field(default_factory=list)  # T + 1 (envs that report rooms)
    frames: list[np.ndarray] = field(default_factory=list)  # T + 1 RGB frames (if recorded)
    context_changes: list[bool] = field(default_factory=list)  # T + 1 (THICK: a gate opened into state t)
    events: list[bool] = field(default_factory=list)  # T + 1: an event happened on the step into state t
    episode_return: float = 0.0  # the env's own score (Atari: unclipped)

    @property
    def length(self) -> int:
        return len(self.actions)


def play_episodes(
    run: LoadedRun,
    episodes: int,
    *,
    layout_seed: int | None = None,
    seed: int = 12345,
    greedy: bool = False,
    record_frames: bool = False,
    score: bool = True,
) -> Iterator[Episode]:
    """Plays `episodes` episodes with the run's policy (sampled, or the most likely action).

    Episode i starts from `reset(seed=layout_seed)` when a layout seed is given (the same layout
    every time; the policy's sampling still varies), else from `reset(seed=seed + i)`. With
    `score=False` the bonus is not run and `intrinsic` stays empty (faster, for returns only).
    """
    agent, device = run.agent, run.agent.device
    scorer = StepScorer.for_run(run) if score and run.has_bonus else None
    generator = torch.Generator(device=device).manual_seed(seed)
    for index in range(episodes):
        obs, info = run.env.reset(seed=layout_seed if layout_seed is not None else seed + index)
        episode = Episode()
        state = agent.policy.initial_state(1, device)
        starts = torch.ones(1, dtype=torch.bool, device=device)
        if scorer is not None:
            scorer.start(obs[0])
        done = False
        events = EventDetector(run)
        while True:
            with torch.inference_mode():
                out = agent.policy(torch.as_tensor(np.asarray(obs), device=device), state, starts)
            state, starts = out.state, torch.zeros(1, dtype=torch.bool, device=device)
            _record_state(run, episode, obs[0], info, out, record_frames)
            episode.events.append(events.step(info))
            if done:
                break
            if greedy:
                action = int(out.logits.argmax(-1))
            else:
                action = int(torch.multinomial(torch.softmax(out.logits[0], -1), 1, generator=generator))
            state = agent.policy.taken(state, torch.tensor([action], device=device))
            next_obs, reward, terminated, truncated, info = run.env.step(np.array([action]))
            done = bool(terminated[0] or truncated[0])
            episode.actions.append(action)
            episode.rewards.append(float(reward[0]))
            if scorer is not None:
                episode.intrinsic.append(scorer.score(obs[0], action, next_obs[0], done))
            if done:
                episode.episode_return = float(info["episode_return"][0])
            obs = next_obs
        yield episode


def _record_state(run: LoadedRun, episode: Episode, obs: np.ndarray, info: dict, out, record_frames: bool) -> None:
    episode.observations.append(np.array(obs))
    episode.values_ext.append(float(out.value_ext[0]))
    episode.values_int.append(float(out.value_int[0]))
    base = run.base_env
    if hasattr(base, "agent_pos"):
        x, y = base.agent_pos
        episode.positions.append((int(x), int(y)))
    if "room" in info:
        episode.rooms.append(int(np.asarray(info["room"])[0]))
    if out.context_change is not None:
        episode.context_changes.append(bool(out.context_change[0]))
    if record_frames:
        episode.frames.append(np.asarray(run.env.render())[0])


class EventDetector:
    """Whether the step into each state was an *event*, the moments THICK's context changes should
    line up with: PinPad's `event` (the agent stepped onto a pad); in MiniGrid, the agent's carried
    object or a door's state changed (a key picked up or dropped, a door opened, closed or
    unlocked). Other environments report no events. The first state of an episode is no event."""

    def __init__(self, run: LoadedRun):
        self.run = run
        self.minigrid = run.config.env.id.startswith("MiniGrid")
        self.last = None

    def _minigrid_state(self) -> tuple:
        base = self.run.base_env
        carrying = None if base.carrying is None else (base.carrying.type, base.carrying.color)
        doors = tuple((cell.is_open, cell.is_locked) for cell in base.grid.grid if cell is not None and cell.type == "door")
        return carrying, doors

    def step(self, info: dict) -> bool:
        if "event" in info:
            return bool(np.asarray(info["event"])[0])
        if not self.minigrid:
            return False
        state = self._minigrid_state()
        event = self.last is not None and state != self.last
        self.last = state
        return event
