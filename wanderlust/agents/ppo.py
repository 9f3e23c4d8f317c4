"""PPO with an intrinsic reward, readable top to bottom.

One iteration: collect T steps from N environments; compute the intrinsic reward for the whole
rollout; compute extrinsic and intrinsic advantages with their own value heads and discounts (the
intrinsic stream is non-episodic); combine them as ext_coef·A_ext + int_coef·A_int; train the policy
for several epochs of minibatches; train the bonus's own networks.

Environments auto-reset on the step AFTER an episode ends (gymnasium 1.x and envpool): the step
that reports the end returns the final observation, and the next step is a reset step whose action
is ignored. Reset steps are kept in the rollout so that time stays aligned, but they are masked out
of every loss and cut the extrinsic advantage chain. A truncated episode is bootstrapped from the
value of its final observation, which next-step auto-reset hands us as the next observation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from wanderlust.agents.episodes import Learner, new_episodes, record_step
from wanderlust.intrinsic.base import IntrinsicReward, Rollout, masked_mean
from wanderlust.nets.cores import MemoryConfig
from wanderlust.nets.policy import build_policy


@dataclass
class PPOConfig:
    num_steps: int = 128
    """Steps per environment per rollout (T)."""
    learning_rate: float = 2.5e-4
    """Adam learning rate (the SND seed uses 1e-4 on Atari; see the presets)."""
    lr_schedule: str = "constant"
    """"constant", or "linear": decays to 0 at `lr_decay_frames`, by default the run's frame budget,
    so a shorter budget also means a faster decay (RIDE's schedule; PITFALLS 3)."""
    lr_decay_frames: int = 0
    """Frames over which "linear" decays the rate to 0; 0: the run's frame budget. Set it to a
    paper's budget to run the first part of the paper's schedule in a shorter run."""
    gamma_ext: float = 0.999
    gamma_int: float = 0.99
    gae_lambda: float = 0.95
    ext_coef: float = 2.0
    """Weight of the extrinsic advantage (the seed's 2)."""
    int_coef: float = 1.0
    """Weight of the intrinsic advantage (the seed's 1)."""
    int_reward_clip: float = 0.0
    """If positive, clip the weighted intrinsic reward int_coef·r to ±int_reward_clip. RIDE clips
    its single reward stream (extrinsic + coefficient × bonus) to ±1; MiniGrid pays extrinsic
    reward only on the goal step, so clipping the weighted bonus is the same elsewhere."""
    episodic_intrinsic: bool = False
    """Cut the intrinsic return at episode ends; the seed's intrinsic stream is non-episodic."""
    normalize_advantages: bool = True
    """Standardise the combined advantage per minibatch (CleanRL's and SB3's default). The SND seed
    does not (see the rnd_montezuma preset). With it, a small normalised intrinsic reward still
    drives exploration until the first extrinsic reward is found."""
    clip_coef: float = 0.1
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    epochs: int = 4
    minibatches: int = 4
    network: str = "auto"
    """"auto" (the family's own: minigrid, ballet, gridworld; "A" for Atari and Procgen), or the
    seed's "A", "B", "C", "D" on pixels."""
    hidden_size: int = 256
    """Width of the MiniGrid encoder's fully connected layers (RIDE uses 1024)."""
    lstm_size: int = 0
    """Hidden size of an LSTM core between encoder and heads; 0 means feed-forward."""
    lstm_layers: int = 1
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    """The memory core (`--memory hcam|lstm|window`) and its sizes; kind "none" by default. The
    three are built to equal size (see wanderlust.nets.cores.MemoryConfig)."""
    reconstruction_coef: float = 0.0
    """If positive, a decoder reads the heads' features and reconstructs the current observation,
    and this weights its loss (the image's mean squared error per pixel + the instruction's
    cross-entropy) in PPO's loss: the HCAM paper's self-supervised losses. Ballet's network only."""


_OWN_NETWORK = {"minigrid": "minigrid", "ballet": "ballet", "gridworld": "gridworld"}
"""Families with an encoder of their own; pixel families (Atari, Procgen) take the seed's A-D."""
_PIXEL_FAMILIES = ("atari", "procgen")


def resolve_network(network: str, family: str) -> str:
    """The policy network for a family: `network` itself, or the family's default for "auto".
    Refuses one that cannot read the family's observations (one-line ValueError)."""
    if family not in _OWN_NETWORK and family not in _PIXEL_FAMILIES:
        raise ValueError(f"PPO has no network for {family} observations yet")
    own = _OWN_NETWORK.get(family)
    if network == "auto":
        return own or "A"
    if (own is None and network in _OWN_NETWORK.values()) or (own is not None and network != own):
        fits = own or "the seed's A, B, C or D"
        raise ValueError(f"ppo.network {network!r} does not fit {family} observations: use {fits} (or auto)")
    return network


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    terminated: torch.Tensor,
    cut: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimates [T, N].

    values is [T + 1, N]: values[t + 1] is the value of the observation step t led to (the final
    observation where an episode ended). terminated[t] zeroes that bootstrap; cut[t] stops the
    λ-recursion from reaching back across t (episode ends for episodic streams).
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    not_terminated = 1.0 - terminated.to(rewards.dtype)
    keep = 1.0 - cut.to(rewards.dtype)
    for t in reversed(range(steps)):
        delta = rewards[t] + gamma * values[t + 1] * not_terminated[t] - values[t]
        running = delta + gamma * lam * keep[t] * running
        advantages[t] = running
    return advantages


class PPO(Learner):
    """The PPO learner and its rollout storage. `iterate()` runs one rollout and one update."""

    def __init__(
        self,
        config: PPOConfig,
        env,
        bonus: IntrinsicReward,
        total_frames: int,
        device: torch.device,
        seed: int = 0,
    ):
        self.config = config
        self.env = env
        self.bonus = bonus.to(device)
        self.device = device
        self.total_frames = total_frames
        self.num_envs = env.num_envs
        obs_shape = tuple(env.single_observation_space.shape)
        network = resolve_network(config.network, env.family)
        self.policy = build_policy(
            network, obs_shape, int(env.single_action_space.n), config.hidden_size, config.lstm_size,
            config.lstm_layers, config.memory, decoder=config.reconstruction_coef > 0,
        ).to(device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate, eps=1e-5)

        steps, n = config.num_steps, self.num_envs
        self.obs = torch.zeros((steps + 1, n, *obs_shape), dtype=torch.uint8, device=device)
        self.episode_start = torch.zeros((steps + 1, n), dtype=torch.bool, device=device)
        self.actions = torch.zeros((steps, n), dtype=torch.long, device=device)
        self.log_probs = torch.zeros((steps, n), device=device)
        self.rewards = torch.zeros((steps, n), device=device)
        self.terminated = torch.zeros((steps, n), dtype=torch.bool, device=device)
        self.dones = torch.zeros((steps, n), dtype=torch.bool, device=device)
        self.valid = torch.zeros((steps, n), dtype=torch.bool, device=device)
        self.values_ext = torch.zeros((steps + 1, n), device=device)
        self.values_int = torch.zeros((steps + 1, n), device=device)
        # Whether each step's next observation lies in the room its episode started in (envs that
        # report rooms only): the share of bonus earned there shows a noisy TV capturing a bonus.
        self.in_start_room = torch.zeros((steps, n), dtype=torch.bool, device=device)
        self.start_room: np.ndarray | None = None

        self.seed = seed
        # Thumbnails on Atari only: MiniGrid's observation is a 7x7 symbolic view, not a picture.
        self._start_counters(thumbnails=env.family == "atari")
        self._start_episodes(seed)

    @property
    def reports_rooms(self) -> bool:
        return self.start_room is not None

    def _start_episodes(self, seed: int) -> None:
        """Resets every environment (at the start of a run, and when a run resumes)."""
        obs, info = self.env.reset(seed=seed)
        self.start_room = np.asarray(info["room"]) if "room" in info else None
        self.obs[-1].copy_(torch.from_numpy(np.asarray(obs)))
        self.episode_start[-1] = True
        self.prev_done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self.core_state = self.policy.initial_state(self.num_envs, self.device)

    # ------------------------------------------------------------------ acting
    def _env_step(self, actions: torch.Tensor):
        obs, reward, terminated, truncated, info = self.env.step(actions.cpu().numpy())
        self.frames += self.num_envs
        if self.start_room is not None:  # a reset step shows the new episode's first room
            self.start_room = np.where(self.prev_done.cpu().numpy(), info["room"], self.start_room)
        return (
            torch.from_numpy(np.asarray(obs)),
            torch.as_tensor(reward, dtype=torch.float32),
            torch.as_tensor(terminated, dtype=torch.bool),
            torch.as_tensor(truncated, dtype=torch.bool),
            info,
        )

    def warmup(self) -> int:
        """Random-action steps that warm up the bonus's observation statistics; returns frames used."""
        steps = self.bonus.warmup_steps
        if steps <= 0:
            return 0
        start = self.frames
        chunk = []
        for step in range(steps):
            actions = torch.randint(0, int(self.env.single_action_space.n), (self.num_envs,))
            next_obs, _, terminated, truncated, _ = self._env_step(actions)
            self.obs[-1].copy_(next_obs)
            self.episode_start[-1] = self.prev_done
            self.prev_done = (terminated | truncated).to(self.device)
            chunk.append(next_obs)
            if len(chunk) == self.config.num_steps or step == steps - 1:
                self.bonus.warmup(torch.stack(chunk).to(self.device))
                chunk = []
        self.core_state = self.policy.initial_state(self.num_envs, self.device)
        self.episode_start[-1] = True
        return self.frames - start

    @torch.inference_mode()
    def collect(self) -> dict[str, list]:
        """Fills the rollout storage with T steps; returns the episodes that ended, as lists."""
        self.obs[0] = self.obs[-1]
        self.episode_start[0] = self.episode_start[-1]
        self.initial_core_state = self.core_state
        episodes = new_episodes()
        for t in range(self.config.num_steps):
            out = self.policy(self.obs[t], self.core_state, self.episode_start[t])
            self.core_state = out.state
            log_probs = torch.log_softmax(out.logits, dim=-1)
            actions = torch.multinomial(log_probs.exp(), 1).squeeze(1)
            self.actions[t] = actions
            self.log_probs[t] = log_probs.gather(1, actions[:, None]).squeeze(1)
            self.values_ext[t] = out.value_ext
            self.values_int[t] = out.value_int

            next_obs, reward, terminated, truncated, info = self._env_step(actions)
            done = (terminated | truncated).to(self.device)
            self.obs[t + 1].copy_(next_obs)
            if self.start_room is not None:
                self.in_start_room[t] = torch.from_numpy(info["room"] == self.start_room)
            self.rewards[t] = reward
            self.terminated[t] = terminated
            self.dones[t] = done
            self.valid[t] = ~self.prev_done
            # The step after an episode's end was a reset step: its next observation starts anew.
            self.episode_start[t + 1] = self.prev_done
            self.bonus.reset(self.prev_done)
            self.bonus.observe(self.obs[t], actions, self.obs[t + 1])
            self.prev_done = done
            record_step(info, episodes, self.rooms, next_obs.numpy(), self.frames)

        out = self.policy(self.obs[-1], self.core_state, self.episode_start[-1])
        self.values_ext[-1] = out.value_ext
        self.values_int[-1] = out.value_int
        return episodes

    # ------------------------------------------------------------------ learning
    def rollout(self) -> Rollout:
        return Rollout(self.obs[:-1], self.obs[1:], self.actions, self.dones, self.valid)

    def advantages(self, intrinsic_rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(combined advantages, extrinsic returns, intrinsic returns), each [T, N].

        `intrinsic_rewards` must come from this rollout's bonus BEFORE this call: computing them
        afterwards would leave the advantages blind to exploration (PITFALLS 1).
        """
        cfg = self.config
        adv_ext = gae(self.rewards, self.values_ext, self.terminated, self.dones, cfg.gamma_ext, cfg.gae_lambda)
        int_ends = self.dones if cfg.episodic_intrinsic else torch.zeros_like(self.dones)
        adv_int = gae(intrinsic_rewards, self.values_int, int_ends, int_ends, cfg.gamma_int, cfg.gae_lambda)
        returns_ext = adv_ext + self.values_ext[:-1]
        returns_int = adv_int + self.values_int[:-1]
        return cfg.ext_coef * adv_ext + cfg.int_coef * adv_int, returns_ext, returns_int

    def losses(self, obs, actions, old_log_probs, advantages, returns_ext, returns_int, mask, state=None, starts=None):
        """PPO's clipped policy loss, entropy, the two value losses and, with a decoder, the
        reconstruction losses, on one minibatch: a dict of scalars."""
        cfg = self.config
        out = self.policy(obs, state, starts)
        log_probs_all = torch.log_softmax(out.logits, dim=-1)
        log_probs = log_probs_all.gather(1, actions[:, None]).squeeze(1)
        entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
        log_ratio = log_probs - old_log_probs
        ratio = log_ratio.exp()
        if cfg.normalize_advantages:
            valid_adv = advantages[mask]
            advantages = (advantages - valid_adv.mean()) / (valid_adv.std() + 1e-8)
        terms = {
            "policy_loss": masked_mean(
                torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)), mask
            ),
            "value_loss": masked_mean((out.value_ext - returns_ext).pow(2), mask)
            + masked_mean((out.value_int - returns_int).pow(2), mask),
            "entropy": masked_mean(entropy, mask),
        }
        if self.policy.decoder is not None:
            image_loss, instruction_loss = self.policy.decoder.losses(out.features, obs)
            terms["image_loss"] = masked_mean(image_loss, mask)
            terms["instruction_loss"] = masked_mean(instruction_loss, mask)
        with torch.no_grad():
            terms["approx_kl"] = masked_mean((ratio - 1) - log_ratio, mask)
            terms["clip_fraction"] = masked_mean(((ratio - 1).abs() > cfg.clip_coef).float(), mask)
        return terms

    def update(self, advantages, returns_ext, returns_int) -> dict[str, float]:
        cfg = self.config
        steps, n = cfg.num_steps, self.num_envs
        obs = self.obs[:-1]
        sums: dict[str, torch.Tensor] = {}  # summed on the device: one sync per update
        updates = 0
        for _ in range(cfg.epochs):
            if self.policy.recurrent:
                # Whole sequences: each minibatch is a subset of environments over all T steps.
                env_order = torch.randperm(n, device=self.device)
                batches = [
                    (slice(None), env_order[i : i + max(1, n // cfg.minibatches)])
                    for i in range(0, n, max(1, n // cfg.minibatches))
                ]
            else:
                order = torch.randperm(steps * n, device=self.device)
                size = max(1, steps * n // cfg.minibatches)
                batches = [(order[i : i + size],) for i in range(0, steps * n, size)]
            for batch in batches:
                if self.policy.recurrent:
                    _, envs = batch
                    pick = lambda x: x[:, envs].reshape(-1, *x.shape[2:])  # noqa: E731
                    state = tuple(s[:, envs] for s in self.initial_core_state)
                    starts = pick(self.episode_start[:-1])
                else:
                    (index,) = batch
                    pick = lambda x: x.reshape(-1, *x.shape[2:])[index]  # noqa: E731
                    state, starts = None, None
                terms = self.losses(
                    pick(obs), pick(self.actions), pick(self.log_probs), pick(advantages),
                    pick(returns_ext), pick(returns_int), pick(self.valid), state, starts,
                )
                loss = terms["policy_loss"] - cfg.ent_coef * terms["entropy"] + cfg.vf_coef * terms["value_loss"]
                if "image_loss" in terms:
                    loss = loss + cfg.reconstruction_coef * (terms["image_loss"] + terms["instruction_loss"])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0) + value.detach()
                updates += 1
        totals = torch.stack(list(sums.values())) / updates
        return dict(zip(sums, totals.tolist()))

    def learning_rate(self) -> float:
        if self.config.lr_schedule == "linear":
            horizon = self.config.lr_decay_frames or self.total_frames
            return self.config.learning_rate * max(0.0, 1.0 - self.frames / horizon)
        return self.config.learning_rate

    def iterate(self) -> dict:
        """One rollout and one update. Returns metrics and the episodes that ended."""
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        episodes = self.collect()
        rollout = self.rollout()
        # A reset step's action was ignored by the environment: it earns no bonus.
        intrinsic_rewards = self.bonus.reward(rollout) * self.valid
        if self.config.int_reward_clip > 0 and self.config.int_coef > 0:
            bound = self.config.int_reward_clip / self.config.int_coef
            intrinsic_rewards = intrinsic_rewards.clamp(-bound, bound)
        advantages, returns_ext, returns_int = self.advantages(intrinsic_rewards)
        metrics = self.update(advantages, returns_ext, returns_int)
        metrics.update(self.bonus.update(rollout))
        valid = self.valid
        metrics["intrinsic_reward"] = masked_mean(intrinsic_rewards, valid).item()
        metrics["extrinsic_reward"] = masked_mean(self.rewards, valid).item()
        metrics["explained_variance_ext"] = explained_variance(self.values_ext[:-1][valid], returns_ext[valid])
        metrics["learning_rate"] = lr
        if self.start_room is not None:
            earned = intrinsic_rewards.abs()
            total = earned.sum()
            metrics["intrinsic_share_start_room"] = ((earned * self.in_start_room).sum() / total).item() if total > 0 else float("nan")
        self.iteration += 1
        return {"metrics": metrics, "episodes": episodes}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "bonus": self.bonus.state_dict(),
            "frames": self.frames,
            "iteration": self.iteration,
            "rooms_seen": sorted(self.rooms.seen),
            "room_thumbnails": self.rooms.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores learner state; environments start fresh episodes (their state is not saved)."""
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.bonus.load_state_dict(state["bonus"])
        self.frames = int(state["frames"])
        self.iteration = int(state["iteration"])
        self.rooms.load_state_dict(state["rooms_seen"], state.get("room_thumbnails"))
        self._start_episodes(self.seed + 1_000_003 * self.iteration)


def explained_variance(prediction: torch.Tensor, target: torch.Tensor) -> float:
    variance = target.var()
    if target.numel() < 2 or variance == 0:
        return float("nan")
    return (1.0 - (target - prediction).var() / variance).item()
