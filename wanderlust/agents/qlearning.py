"""Tabular Q(λ): HIMA's baseline (SYSTEMS.md section 4), for environments with small discrete
observations (HIMA's grid worlds above all).

Every distinct observation is a state: its bytes index a table that grows as new states appear.
Each environment learns online, after every step s, a → r, s′, with Watkins's Q(λ) and replacing
eligibility traces:

    δ = r + γ · max_a′ Q(s′, a′) · (1 − terminated) − Q(s, a)
    e(s, a) ← 1;   Q ← Q + α · δ · e;   e ← γλ · e if the next action is greedy, else e ← 0

Traces are cleared at episode ends. Actions are chosen by `exploration`: "softmax" (a Boltzmann
distribution over Q / temperature), "egreedy" (the greedy action, or a uniform one with probability
ε), or "ucb" (Q + c·√(ln N(s) / N(s, a)), untried actions first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wanderlust.agents.episodes import Learner, new_episodes, record_step

EXPLORATIONS = ("softmax", "egreedy", "ucb")
TRACE_FLOOR = 1e-4
"""Traces below this are dropped: γλ-decayed entries that no longer change Q measurably."""


@dataclass
class QLearningConfig:
    learning_rate: float = 0.1
    """α. Our choice (the HIMA seed's Q-learning settings are not in SYSTEMS.md)."""
    gamma: float = 0.99
    """Discount."""
    trace_decay: float = 0.9
    """λ of the eligibility traces."""
    exploration: str = "softmax"
    """"softmax", "egreedy" or "ucb" (SYSTEMS.md: "softmax, ε-greedy or UCB exploration")."""
    temperature: float = 0.05
    """Softmax temperature over Q values (rewards here are of order 1 and step costs 0.005)."""
    epsilon: float = 0.1
    """ε of ε-greedy."""
    ucb_coef: float = 0.5
    """c of UCB."""
    initial_value: float = 0.0
    """Q of a state-action pair never updated."""
    steps_per_iteration: int = 128
    """Environment steps per environment between two rows of metrics.csv."""


class QLearning(Learner):
    """The tabular learner. `iterate()` runs `steps_per_iteration` steps of every environment."""

    gauges = frozenset({"states"})

    def __init__(self, config: QLearningConfig, env, total_frames: int, seed: int = 0):
        if config.exploration not in EXPLORATIONS:
            raise ValueError(f"unknown exploration {config.exploration!r}; choose one of {', '.join(EXPLORATIONS)}")
        self.config = config
        self.env = env
        self.total_frames = total_frames
        self.num_envs = env.num_envs
        self.num_actions = int(env.single_action_space.n)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.index: dict[bytes, int] = {}
        self.keys: list[bytes] = []
        self.q = np.zeros((0, self.num_actions))
        self.visits = np.zeros((0, self.num_actions), dtype=np.int64)
        self._start_counters()
        self._start_episodes(seed)

    def _start_episodes(self, seed: int) -> None:
        obs, info = self.env.reset(seed=seed)
        self.reports_rooms = "room" in info
        self.states = self._states(obs)
        self.actions: np.ndarray | None = None  # the next actions, once chosen
        self.traces: list[dict[tuple[int, int], float]] = [{} for _ in range(self.num_envs)]
        self.prev_done = np.zeros(self.num_envs, dtype=bool)

    def _states(self, obs: np.ndarray) -> np.ndarray:
        """The table row of each environment's observation, adding rows for new ones."""
        rows = np.empty(len(obs), dtype=np.int64)
        for i, one in enumerate(np.asarray(obs)):
            key = one.tobytes()
            row = self.index.get(key)
            if row is None:
                row = self.index[key] = len(self.keys)
                self.keys.append(key)
            rows[i] = row
        if len(self.keys) > len(self.q):
            grow = max(len(self.keys), 2 * len(self.q), 64) - len(self.q)
            self.q = np.concatenate([self.q, np.full((grow, self.num_actions), self.config.initial_value)])
            self.visits = np.concatenate([self.visits, np.zeros((grow, self.num_actions), dtype=np.int64)])
        return rows

    def act(self, states: np.ndarray) -> np.ndarray:
        cfg = self.config
        values = self.q[states]
        if cfg.exploration == "softmax":
            logits = (values - values.max(axis=1, keepdims=True)) / cfg.temperature
            probs = np.exp(logits)
            probs /= probs.sum(axis=1, keepdims=True)
            return np.array([self.rng.choice(self.num_actions, p=p) for p in probs])
        if cfg.exploration == "egreedy":
            greedy = self._greedy(values)
            explore = self.rng.random(len(states)) < cfg.epsilon
            return np.where(explore, self.rng.integers(0, self.num_actions, len(states)), greedy)
        counts = self.visits[states]
        total = counts.sum(axis=1, keepdims=True)
        bonus = cfg.ucb_coef * np.sqrt(np.log(np.maximum(total, 1)) / np.maximum(counts, 1))
        return self._greedy(np.where(counts == 0, np.inf, values + bonus))

    def _greedy(self, values: np.ndarray) -> np.ndarray:
        """Argmax per row, ties broken at random."""
        best = values == values.max(axis=1, keepdims=True)
        return np.array([self.rng.choice(np.flatnonzero(row)) for row in best])

    def warmup(self) -> int:
        return 0

    def iterate(self) -> dict:
        cfg = self.config
        episodes = new_episodes()
        td_sum, td_count = 0.0, 0
        # The action Watkins's rule judged at the end of the last iteration is the one taken now.
        actions = self.act(self.states) if self.actions is None else self.actions
        for _ in range(cfg.steps_per_iteration):
            obs, reward, terminated, truncated, info = self.env.step(actions)
            self.frames += self.num_envs
            next_states = self._states(obs)
            next_actions = self.act(next_states)
            for env in range(self.num_envs):
                if self.prev_done[env]:  # an auto-reset step: its action was ignored
                    self.traces[env] = {}
                    continue
                state, action = self.states[env], actions[env]
                bootstrap = 0.0 if terminated[env] else cfg.gamma * self.q[next_states[env]].max()
                delta = reward[env] + bootstrap - self.q[state, action]
                self.visits[state, action] += 1
                trace = self.traces[env]
                trace[(state, action)] = 1.0
                greedy = self.q[next_states[env], next_actions[env]] == self.q[next_states[env]].max()
                decay = cfg.gamma * cfg.trace_decay if greedy else 0.0
                for pair, weight in list(trace.items()):
                    self.q[pair] += cfg.learning_rate * delta * weight
                    weight *= decay
                    if weight < TRACE_FLOOR:
                        del trace[pair]
                    else:
                        trace[pair] = weight
                td_sum += abs(delta)
                td_count += 1
            self.prev_done = np.asarray(terminated) | np.asarray(truncated)
            record_step(info, episodes, self.rooms, obs, self.frames)
            self.states, actions = next_states, next_actions
        self.actions = actions
        self.iteration += 1
        metrics = {"td_error": td_sum / max(td_count, 1), "states": float(len(self.keys))}
        return {"metrics": metrics, "episodes": episodes}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        size = len(self.keys)
        observations = np.frombuffer(b"".join(self.keys), dtype=np.uint8).reshape(size, -1) if size else np.zeros((0, 0), np.uint8)
        return {
            "q": torch.from_numpy(self.q[:size].copy()),
            "visits": torch.from_numpy(self.visits[:size].copy()),
            "observations": torch.from_numpy(observations.copy()),
            "frames": self.frames,
            "iteration": self.iteration,
            "rooms_seen": sorted(self.rooms.seen),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores the table and counters; environments start fresh episodes (their state is not saved)."""
        self.keys = [bytes(row) for row in state["observations"].numpy()]
        self.index = {key: row for row, key in enumerate(self.keys)}
        self.q = state["q"].numpy().copy()
        self.visits = state["visits"].numpy().copy()
        self.frames = int(state["frames"])
        self.iteration = int(state["iteration"])
        self.rooms.load_state_dict(state["rooms_seen"], None)
        self.rng.bit_generator.state = state["rng"]
        self._start_episodes(self.seed + 1_000_003 * self.iteration)
