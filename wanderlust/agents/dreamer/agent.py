"""The DreamerV3 learner: acts with the world model's posterior and the actor, fills sequence
replay, and trains the world model and the actor-critic at a fixed train ratio.

One `iterate()` runs `steps_per_iteration` steps of every environment. After each step the replay
gets the step (observation t, the reward and is_terminal that came with it, is_first, and the
action chosen from observation t: the layout `WorldModel.loss` reads), and the updates that the
train ratio makes due are run: each samples `batch_size` windows of `batch_length` steps, takes
one world-model step on them and one actor-critic step on an imagination from every posterior
state (official 2023 `embodied/run/train.py` and `agent.py` `Agent.train`).

Acting (official `Agent.policy`): each environment keeps its posterior carry and its previous
action; a step filters the new observation into the carry (`RSSM.obs_step`, resetting where the
observation starts an episode) and samples the action from the actor on the posterior features.

The vector env autoresets on the step after an episode ends (gymnasium's next-step mode): that
step's action is ignored and it returns the first observation of a new episode, which is stored
with is_first set. A truncated episode's last observation is stored with is_terminal false, so
the world model never learns a time limit as a terminal state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from wanderlust.agents.dreamer.behavior import ActorCritic, ActorCriticConfig, Rollout
from wanderlust.agents.dreamer.distributions import KLConfig
from wanderlust.agents.dreamer.highlevel import (
    HighLevelConfig,
    HighLevelModel,
    HighLevelPrediction,
    change_point_targets,
    long_horizon_return,
)
from wanderlust.agents.dreamer.nets import SIZES
from wanderlust.agents.dreamer.replay import SequenceReplay, TrainRatio, train_ratio_updates
from wanderlust.agents.dreamer.rssm import RSSMState
from wanderlust.agents.dreamer.world_model import ThickConfig, WorldModel, WorldModelConfig
from wanderlust.agents.episodes import Learner, new_episodes, record_step
from wanderlust.envs import atari
from wanderlust.nets.policy import PolicyOutput

WORLD_MODELS = ("flat", "thick")
FAMILIES = ("pinpad", "crafter", "minigrid", "gridworld", "atari")
"""Environment families whose observations `ObservationCodec` reads."""


def check_env(family: str, options: dict) -> None:
    """Raises a one-line ValueError, before anything is built, if the agent cannot read the
    observations of `family` with env `options` (Atari: only single frames, `frame_stack=1`)."""
    if family not in FAMILIES:
        raise ValueError(f"--algo dreamer reads {', '.join(FAMILIES)} observations, not {family}")
    if family == "atari":
        ObservationCodec(family, atari.observation_shape(atari.resolve_options(options)))


@dataclass
class DreamerConfig:
    size: str = "size12m"
    """A `SIZES` preset: "debug" (ours, tiny), "size12m", "size25m" (current release presets)."""
    world_model: str = "flat"
    """"flat" (DreamerV3's RSSM) or "thick" (THICK's C-RSSM, its high-level model and THICK
    Dreamer's critic target; see docs/thick.md)."""
    batch_size: int = 16
    """Sequences per update (official `batch_size: 16`, both releases)."""
    batch_length: int = 64
    """Steps per sequence (official `batch_length: 64`, both releases)."""
    train_ratio: float = 32.0
    """Replayed steps trained on per environment step (official 2023 default `train_ratio: 32`;
    512 for Crafter, 1024 for Atari100k: the presets set it)."""
    replay_capacity: int = 1_000_000
    """Steps held in replay over all environments (official `replay_size: 1e6`; a 64×64×3 image
    step takes 12.3 kB, so 1e6 steps are 12.3 GB: lower it on small machines)."""
    prefill: int = 0
    """Steps per environment taken with uniformly random actions before learning starts (counted
    in the frame budget; ours: 0). Updates start once replay holds `batch_length` steps per env."""
    model_lr: float = 1e-4
    """Adam learning rate of the world model (official 2023 `model_opt: {opt: adam, lr: 1e-4,
    eps: 1e-8, clip: 1000.0}`)."""
    model_eps: float = 1e-8
    """Official 2023 `model_opt.eps: 1e-8`."""
    model_grad_clip: float = 1000.0
    """Global gradient-norm clip of the world model (official 2023 `model_opt.clip: 1000.0`)."""
    kl: KLConfig = field(default_factory=KLConfig)
    """β_dyn 0.5, β_rep 0.1, free nats 1 (paper; official 2023 release)."""
    behavior: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    """The actor-critic's settings; its `units` is taken from `size`, whatever is set here."""
    thick: ThickConfig = field(default_factory=ThickConfig)
    """The C-RSSM's context and loss scales (world_model "thick")."""
    highlevel: HighLevelConfig = field(default_factory=HighLevelConfig)
    """THICK's high-level model (world_model "thick"); its `units` is taken from `size` and its
    `max_elapsed` from `batch_length`, whatever is set here."""
    steps_per_iteration: int = 64
    """Environment steps per environment in one `iterate()` (one row of metrics.csv per
    `log.interval` iterations)."""
    checkpoint_replay: bool = True
    """Store the replay in checkpoints, so a resumed run trains on the same data (checkpoints are
    then as large as the replay; see `replay_capacity`)."""


class ObservationCodec:
    """How an environment's observations enter the world model: images (H × W × 3 or H × W × 1
    uint8, square, 64 × 64 for the default convs: PinPad, Crafter, Atari with `frame_stack=1`; not
    Atari's channels-first stacks) as "image"; MiniGrid's 7 × 7 × 3 symbolic view one-hot encoded
    per cell (object, colour, state) as a binary "vector"; other small uint8 arrays (the grid
    worlds' binary window) flattened as "vector". Vectors are stored as uint8 in replay."""

    MINIGRID_SIZES = (11, 6, 3)
    """Object, colour and state values of MiniGrid's symbolic encoding (minigrid's
    OBJECT_TO_IDX, COLOR_TO_IDX, STATE_TO_IDX)."""

    def __init__(self, family: str, shape: tuple[int, ...]):
        self.family = family
        self.shape = tuple(shape)
        if (len(self.shape) == 3 and self.shape[-1] in (1, 3) and self.shape[0] == self.shape[1] >= 16
                and family != "minigrid"):
            self.kind = "image"
            self.stored: tuple[int, ...] = self.shape
        elif family == "minigrid":
            self.kind = "vector"
            self.stored = (int(np.prod(self.shape[:-1])) * sum(self.MINIGRID_SIZES),)
            self._offsets = np.cumsum((0,) + self.MINIGRID_SIZES[:-1])
        elif family in ("gridworld",):
            self.kind = "vector"
            self.stored = (int(np.prod(self.shape)),)
        else:
            raise ValueError(f"the Dreamer agent does not read {family} observations {self.shape} yet; "
                             "it takes square H × W × 3 or H × W × 1 images (pinpad, crafter; atari with "
                             "frame_stack=1), MiniGrid's symbolic view and the grid worlds")

    def fields(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        return {self.kind: (self.stored, torch.uint8)}

    def world_model_kwargs(self) -> dict:
        if self.kind == "image":
            height, width, channels = self.shape
            return {"image_shape": (channels, height, width), "vector_size": 0}
        return {"image_shape": None, "vector_size": self.stored[0]}

    def encode(self, obs: np.ndarray) -> dict[str, torch.Tensor]:
        """[N, *shape] observations -> {field: uint8 tensor [N, *stored]}."""
        obs = np.asarray(obs)
        if self.family != "minigrid":
            return {self.kind: torch.from_numpy(np.ascontiguousarray(obs.reshape(len(obs), *self.stored)))}
        n = len(obs)
        cells = obs.reshape(n, -1, 3).astype(np.int64) + self._offsets  # [N, cells, 3] -> slot per value
        onehot = np.zeros((n, cells.shape[1], sum(self.MINIGRID_SIZES)), dtype=np.uint8)
        np.put_along_axis(onehot, np.minimum(cells, onehot.shape[-1] - 1), 1, axis=2)
        return {"vector": torch.from_numpy(onehot.reshape(n, -1))}


class DreamerPolicy:
    """Acting with a world model and an actor, in the shape PPO's policy has for replay (`eval`,
    `analyze`): `initial_state`, a call on (observations, state, episode starts) that returns a
    `PolicyOutput` (the actor's log-probabilities with unimix, the critic's value as `value_ext`,
    and with THICK's C-RSSM whether a context gate opened into the state),
    and `taken(state, actions)`, which records the chosen actions in the state, since the next
    step's prior reads a_{t−1}. The state is the world model's carry (posterior, previous action)."""

    def __init__(self, world_model: WorldModel, behavior: ActorCritic, codec: ObservationCodec):
        self.world_model = world_model
        self.behavior = behavior
        self.codec = codec

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> tuple[RSSMState, torch.Tensor]:
        return self.world_model.initial(batch)

    @torch.no_grad()
    def __call__(self, obs, state: tuple[RSSMState, torch.Tensor], episode_start: torch.Tensor,
                 sample: bool = True) -> PolicyOutput:
        latent, prev_action = state
        device = prev_action.device
        obs = obs.cpu().numpy() if torch.is_tensor(obs) else np.asarray(obs)
        fields = {k: v.to(device) for k, v in self.codec.encode(obs).items()}
        embedding = self.world_model.embed(fields)
        post, _ = self.world_model.rssm.obs_step(latent, prev_action, embedding, episode_start.to(device), sample)
        features = post.features()
        logits = self.behavior.actor_dist(features).logits.squeeze(-2)
        value = self.behavior.value(features)
        change = (post.gate > 0).any(-1) if hasattr(post, "gate") else None
        return PolicyOutput(logits, value, torch.zeros_like(value), (post, prev_action), change)

    def taken(self, state: tuple[RSSMState, torch.Tensor], actions: torch.Tensor) -> tuple[RSSMState, torch.Tensor]:
        """The state after `actions` [B] (indices) were taken."""
        return state[0], self.world_model.rssm.action_input(torch.as_tensor(actions, device=state[1].device))


class Dreamer(Learner):
    """The learner the training loop drives (see `wanderlust.run.train.build_agent`)."""

    gauges = frozenset({"replay_fill"})

    def __init__(self, config: DreamerConfig, env, total_frames: int, device: torch.device, seed: int = 0):
        c = self.config = config
        if c.world_model not in WORLD_MODELS:
            raise ValueError(f"unknown world model {c.world_model!r}; choose one of {', '.join(WORLD_MODELS)}")
        if c.size not in SIZES:
            raise ValueError(f"unknown size {c.size!r}; choose one of {', '.join(SIZES)}")
        self.env = env
        self.device = device
        self.total_frames = total_frames
        self.seed = seed
        self.num_envs = env.num_envs
        self.num_actions = int(env.single_action_space.n)
        self.codec = ObservationCodec(env.family, tuple(env.single_observation_space.shape))
        size = SIZES[c.size]
        thick = c.world_model == "thick"
        self.world_model = WorldModel(WorldModelConfig(
            num_actions=self.num_actions, size=c.size, kl=c.kl, kind=c.world_model, thick=c.thick,
            **self.codec.world_model_kwargs())).to(device)
        rssm = self.world_model.rssm
        behavior = dataclasses.replace(c.behavior, units=size.units)
        self.behavior = ActorCritic(rssm.feature_size, self.num_actions, behavior,
                                    coarse_feature_size=rssm.coarse_feature_size if thick else 0).to(device)
        self.highlevel = None
        if thick:
            highlevel = dataclasses.replace(c.highlevel, units=size.units, max_elapsed=float(c.batch_length))
            self.highlevel = HighLevelModel(rssm.context_size, rssm.config.stoch, rssm.config.classes,
                                            self.num_actions, highlevel).to(device)
        self.model_optimizer = torch.optim.Adam(self.world_model.parameters(), lr=c.model_lr, eps=c.model_eps)
        self.replay = SequenceReplay(c.replay_capacity, self.num_envs, self.codec.fields(), seed=seed)
        if self.replay.env_capacity < c.batch_length:
            raise ValueError(f"replay_capacity {c.replay_capacity} holds fewer than batch_length "
                             f"{c.batch_length} steps per environment")
        self.ratio = TrainRatio(train_ratio_updates(c.train_ratio, c.batch_size, c.batch_length))
        self.policy = DreamerPolicy(self.world_model, self.behavior, self.codec)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.updates = 0
        self._start_counters()
        self._start_episodes(seed)

    def _start_episodes(self, seed: int) -> None:
        obs, info = self.env.reset(seed=seed)
        self.reports_rooms = "room" in info
        self.obs = obs
        self.is_first = np.ones(self.num_envs, dtype=bool)
        self.reward = np.zeros(self.num_envs, dtype=np.float32)
        self.is_terminal = np.zeros(self.num_envs, dtype=bool)
        self.truncated = np.zeros(self.num_envs, dtype=bool)
        self.carry = self.policy.initial_state(self.num_envs, self.device)

    # ------------------------------------------------------------------------------------- acting
    @torch.no_grad()
    def act(self, obs: np.ndarray, is_first: np.ndarray, actions: np.ndarray | None = None) -> np.ndarray:
        """Filters `obs` into each environment's carry and samples the actor's actions [N], or
        records the given `actions` (random prefill) in the carry instead."""
        out = self.policy(obs, self.carry, torch.as_tensor(is_first, device=self.device))
        if actions is None:
            chosen = torch.multinomial(out.logits.softmax(-1), 1, generator=self.generator).squeeze(-1)
        else:
            chosen = torch.as_tensor(actions, device=self.device)
        self.carry = self.policy.taken(out.state, chosen)
        return chosen.cpu().numpy()

    def _step(self, actions: np.ndarray, episodes: dict[str, list]) -> None:
        """Stores the current step with `actions`, steps the environments and keeps their returns."""
        self.replay.add({
            **self.codec.encode(self.obs),
            "action": torch.from_numpy(np.asarray(actions, dtype=np.int64)),
            "reward": torch.from_numpy(self.reward),
            "is_first": torch.from_numpy(self.is_first),
            "is_terminal": torch.from_numpy(self.is_terminal),
        })
        done = self.is_terminal | self.truncated
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self.frames += self.num_envs
        self.obs = obs
        self.is_first = done  # the step after an episode's end returns a reset observation
        self.reward = np.where(done, 0.0, np.asarray(reward, dtype=np.float32)).astype(np.float32)
        self.is_terminal = np.asarray(terminated, dtype=bool) & ~done
        self.truncated = np.asarray(truncated, dtype=bool) & ~done
        record_step(info, episodes, self.rooms, obs, self.frames)

    def warmup(self) -> int:
        """`prefill` steps per environment with uniformly random actions; returns the frames taken."""
        episodes = new_episodes()
        start = self.frames
        for _ in range(self.config.prefill):
            actions = self.act(self.obs, self.is_first, self.rng.integers(0, self.num_actions, self.num_envs))
            self._step(actions, episodes)
        return self.frames - start

    # ----------------------------------------------------------------------------------- learning
    def train_step(self) -> dict[str, float]:
        """One world-model update and one actor-critic update on a replayed batch."""
        c = self.config
        batch = self.replay.sample(c.batch_size, c.batch_length)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        self.world_model.train()
        loss, metrics, post = self.world_model.loss(batch)
        self.model_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        metrics["model_grad_norm"] = nn.utils.clip_grad_norm_(self.world_model.parameters(), c.model_grad_clip)
        self.model_optimizer.step()
        start = post.detach().flatten()
        is_terminal = batch["is_terminal"].reshape(-1)
        result = {k: float(v) for k, v in metrics.items()}
        long_return = None
        if self.highlevel is not None:
            post = post.detach()
            targets = change_point_targets(
                post.context, post.logits, post.stoch, batch["action"], batch["reward"].float(),
                batch["is_terminal"], batch["is_first"], self.behavior.config.discount,
                changed=(post.gate > 0).any(-1))
            result.update(self.highlevel.update(post.context, post.stoch, targets, self.generator))
            long_return = self._long_return
        result.update(self.behavior.update(self.world_model, start, is_terminal, self.generator, long_return))
        self.updates += 1
        return result

    @torch.no_grad()
    def _long_return(self, rollout: Rollout) -> torch.Tensor:
        """THICK Dreamer's R^long [H, N] of the imagined states 0 … H − 1: one high-level step to the
        predicted change, one coarse step past it, valued by the slow coarse critic and the coarse
        continue head (docs/thick.md, "THICK Dreamer")."""
        states = rollout.states[:-1]
        return long_horizon_return(self.highlevel, states.context, states.stoch, self._coarse_value,
                                   self.behavior.config.discount, generator=self.generator)

    def _coarse_value(self, prediction: HighLevelPrediction) -> torch.Tensor:
        rssm = self.world_model.rssm
        context, stoch = rssm.coarse_step(prediction.context, prediction.stoch, prediction.action,
                                          generator=self.generator)
        features = torch.cat([context, stoch.flatten(-2)], -1)
        value = self.behavior.twohot.decode(self.behavior.slow_coarse_critic(features))
        logits = self.world_model.coarse_cont_logits(features)
        mode = self.behavior.config.continue_mode == "mode"
        return value * ((logits > 0).to(value.dtype) if mode else torch.sigmoid(logits))

    def iterate(self) -> dict:
        c = self.config
        episodes = new_episodes()
        sums: dict[str, float] = {}
        count = 0
        for _ in range(c.steps_per_iteration):
            actions = self.act(self.obs, self.is_first)
            self._step(actions, episodes)
            due = self.ratio.due(self.num_envs)
            if self.replay.stored_per_env < c.batch_length:
                continue
            for _ in range(due):
                for key, value in self.train_step().items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
        self.iteration += 1
        metrics = {key: value / count for key, value in sums.items()}
        # Per iteration, since the loop averages metrics over a row's iterations.
        metrics["updates"] = float(count)
        metrics["replay_fill"] = self.replay.stored_per_env / self.replay.env_capacity
        return {"metrics": metrics, "episodes": episodes}

    # -------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = {
            "highlevel": self.highlevel.state_dict() if self.highlevel is not None else {},
            "highlevel_optimizer": self.highlevel.optimizer.state_dict() if self.highlevel is not None else {},
            "world_model": self.world_model.state_dict(),
            "behavior": self.behavior.state_dict(),
            "model_optimizer": self.model_optimizer.state_dict(),
            "behavior_optimizers": self.behavior.optimizer_state_dict(),
            "ratio": self.ratio.state_dict(),
            "frames": self.frames,
            "iteration": self.iteration,
            "updates": self.updates,
            "rooms_seen": sorted(self.rooms.seen),
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
        }
        if self.config.checkpoint_replay:
            state["replay"] = self.replay.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores networks, optimisers, counters and (if saved) replay; environments start fresh
        episodes (their state is not saved), each from the initial latent state."""
        self.world_model.load_state_dict(state["world_model"])
        self.behavior.load_state_dict(state["behavior"])
        if self.highlevel is not None:
            self.highlevel.load_state_dict(state["highlevel"])
            self.highlevel.optimizer.load_state_dict(state["highlevel_optimizer"])
        self.model_optimizer.load_state_dict(state["model_optimizer"])
        self.behavior.load_optimizer_state_dict(state["behavior_optimizers"])
        self.ratio.load_state_dict(state["ratio"])
        self.frames = int(state["frames"])
        self.iteration = int(state["iteration"])
        self.updates = int(state["updates"])
        self.rooms.load_state_dict(state["rooms_seen"], None)
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
        if "replay" in state:
            self.replay.load_state_dict(state["replay"])
        self._start_episodes(self.seed + 1_000_003 * self.iteration)
