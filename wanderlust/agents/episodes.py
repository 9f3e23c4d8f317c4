"""What every learner keeps of its episodes for the training loop (wanderlust/run/train.py): the
frame and iteration counters, the rooms entered (`RoomLog`), and the finished episodes of each
iteration (`record_step` into the lists of `new_episodes()`)."""

from __future__ import annotations

import numpy as np
import torch


def new_episodes() -> dict[str, list]:
    """The lists `record_step` fills during one iteration (family columns are added as they come)."""
    return {"episode_return": [], "episode_length": [], "episode_rooms": []}


class Learner:
    """The counters the training loop reads: `frames`, `iteration`, `rooms`, `rooms_seen`; each
    learner also says whether its env `reports_rooms`."""

    frames: int
    iteration: int
    rooms: RoomLog
    gauges: frozenset[str] = frozenset()
    """Metrics that are levels (a table's size, the replay's fill): a metrics row shows their value
    at its last iteration; every other metric is the mean over the row's iterations."""

    def _start_counters(self, thumbnails: bool = False) -> None:
        self.frames = 0
        self.iteration = 0
        self.rooms = RoomLog(thumbnails)

    @property
    def rooms_seen(self) -> set[int]:
        return self.rooms.seen


class RoomLog:
    """The rooms any env has entered since the run began and, on pixel observations, a thumbnail of
    each: the newest frame of the env that entered it first (uint8 [H, W]) and the frame count then.

    A step that enters no new room costs one set check; a thumbnail is copied only on a new room.
    """

    def __init__(self, thumbnails: bool):
        self.keep_thumbnails = thumbnails
        self.seen: set[int] = set()
        self.thumbnails: dict[int, np.ndarray] = {}
        self.found_at: dict[int, int] = {}

    def observe(self, rooms: np.ndarray, obs: np.ndarray, frames: int) -> None:
        """`rooms` [N] after a step, `obs` [N, stack, H, W] the observations that step returned."""
        rooms = np.asarray(rooms).tolist()
        if self.seen.issuperset(rooms):
            return
        for env, room in enumerate(rooms):
            if room in self.seen:
                continue
            self.seen.add(room)
            if self.keep_thumbnails:
                self.thumbnails[room] = np.array(obs[env, -1], dtype=np.uint8)
                self.found_at[room] = frames

    def state_dict(self) -> dict:
        rooms = sorted(self.thumbnails)
        return {
            "rooms": rooms,
            "frames": [self.found_at[room] for room in rooms],
            "images": [torch.from_numpy(self.thumbnails[room]) for room in rooms],
        }

    def load_state_dict(self, seen: list[int], thumbnails: dict | None) -> None:
        """`thumbnails` is None in checkpoints written before thumbnails existed."""
        self.seen = {int(room) for room in seen}
        self.thumbnails, self.found_at = {}, {}
        if thumbnails is not None:
            for room, frames, image in zip(thumbnails["rooms"], thumbnails["frames"], thumbnails["images"]):
                self.thumbnails[int(room)] = torch.as_tensor(image, dtype=torch.uint8).numpy()
                self.found_at[int(room)] = int(frames)


def record_step(info: dict, episodes: dict[str, list], rooms: RoomLog, obs: np.ndarray, frames: int) -> None:
    """Adds a step's finished episodes (return, length, rooms; Crafter: 0/1 per achievement as
    `achievement_<name>`; grid-world scenarios: `goals_reached` at each episode's end and
    `scenario_steps` where a scenario finished) to `episodes` and its rooms to `rooms`."""
    if "room" in info:
        rooms.observe(info["room"], obs, frames)
    ended = np.asarray(info["episode_done"])
    if ended.any():
        episodes["episode_return"] += np.asarray(info["episode_return"])[ended].tolist()
        episodes["episode_length"] += np.asarray(info["episode_length"])[ended].tolist()
        if "episode_rooms" in info:
            episodes["episode_rooms"] += np.asarray(info["episode_rooms"])[ended].tolist()
        for name, unlocked in info.get("episode_achievements", {}).items():
            if not name.startswith("_"):  # skip the vector env's "_name" presence masks
                episodes.setdefault(f"achievement_{name}", []).extend(np.asarray(unlocked)[ended].astype(int).tolist())
        if "goals_reached" in info:
            episodes.setdefault("goals_reached", []).extend(np.asarray(info["goals_reached"])[ended].tolist())
    if "scenario_done" in info:
        finished = np.asarray(info["scenario_done"], dtype=bool)
        if finished.any():
            episodes.setdefault("scenario_steps", []).extend(np.asarray(info["scenario_steps"])[finished].tolist())
