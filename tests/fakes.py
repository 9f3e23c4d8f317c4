"""A tiny vector environment that follows wanderlust.envs' contract, for fast unit tests.

A corridor of `length` cells: action 1 moves right, anything else stays. Reaching the end gives
reward 1 and terminates; episodes are truncated after `max_steps`. Observations are MiniGrid-shaped
(7×7×3 uint8) with the agent's position written into one cell. Auto-reset is next-step. With
`room_size`, info["room"] is position // room_size, as envs that report rooms give it.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class Corridor:
    family = "minigrid"
    backend = "fake"
    env_id = "Corridor"

    def __init__(self, num_envs: int = 4, length: int = 5, max_steps: int = 12, room_size: int = 0):
        self.num_envs = num_envs
        self.room_size = room_size
        self.length = length
        self.max_steps = max_steps
        self.single_observation_space = spaces.Box(0, 255, (7, 7, 3), np.uint8)
        self.single_action_space = spaces.Discrete(3)
        self.position = np.zeros(num_envs, dtype=np.int64)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.returns = np.zeros(num_envs)
        self.needs_reset = np.zeros(num_envs, dtype=bool)

    def _obs(self) -> np.ndarray:
        obs = np.zeros((self.num_envs, 7, 7, 3), dtype=np.uint8)
        obs[np.arange(self.num_envs), 3, np.minimum(self.position, 6), 0] = 10
        return obs

    def state_dict(self) -> dict:  # as VecEnv: nothing of the env is checkpointed
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def reset(self, seed=None):
        self.position[:] = 0
        self.steps[:] = 0
        self.returns[:] = 0
        self.needs_reset[:] = False
        return self._obs(), self._rooms({})

    def _rooms(self, info: dict) -> dict:
        if self.room_size:
            info["room"] = self.position // self.room_size
        return info

    def step(self, actions):
        actions = np.asarray(actions)
        reward = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        info = {
            "episode_done": np.zeros(self.num_envs, dtype=bool),
            "episode_return": np.zeros(self.num_envs),
            "episode_length": np.zeros(self.num_envs, dtype=np.int64),
        }
        resetting = self.needs_reset.copy()
        self.position[resetting] = 0
        self.steps[resetting] = 0
        self.returns[resetting] = 0
        live = ~resetting
        self.position[live] += actions[live] == 1
        self.steps[live] += 1
        reached = live & (self.position >= self.length)
        reward[reached] = 1.0
        self.returns[live] += reward[live]
        terminated[reached] = True
        truncated[live & ~reached & (self.steps >= self.max_steps)] = True
        done = terminated | truncated
        info["episode_done"] = done
        info["episode_return"] = np.where(done, self.returns, 0.0)
        info["episode_length"] = np.where(done, self.steps, 0)
        self.needs_reset = done
        return self._obs(), reward, terminated, truncated, self._rooms(info)

    def close(self):
        pass


def fake_training(header: list[str], row: list):
    """A stand-in for the benchmark grids' `subprocess.call` of `wanderlust train`: it writes one
    checkpoint file and a metrics.csv of `header` and one `row` into the run directory the command
    names, and records the command. Returns (fake call, list of the commands seen)."""
    import csv
    from pathlib import Path

    calls: list = []

    def call(command, **_):
        calls.append(command)
        run_dir = Path(command[command.index("--run-dir") + 1] if "--run-dir" in command else command[-1])
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints" / "frames_000000001000.pt").write_text("x")
        with open(run_dir / "metrics.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerow(row)
        return 0

    return call, calls
