"""Checkpoints: written whole or not at all, loaded with weights_only, refused when foreign.

A checkpoint is a dict with a format marker, the resolved config and the learner's state. It is
written to a temporary file in the same folder, synced and renamed over its final name, so a run
killed at any moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

FORMAT = "wanderlust-checkpoint"
VERSION = 1
_NAME = re.compile(r"^frames_(\d+)\.pt$")


class CheckpointError(ValueError):
    """A missing, corrupt or foreign checkpoint; the message is one line."""


def save(directory: Path, frames: int, state: dict, keep: int = 3) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"frames_{frames:012d}.pt"
    tmp = directory / f".{path.name}.tmp"
    with open(tmp, "wb") as handle:
        torch.save({"format": FORMAT, "version": VERSION, **state}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(directory)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink()
    return path


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in `directory`, oldest first (temporary files are ignored)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        raise CheckpointError(f"{path} is not a readable wanderlust checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a wanderlust checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}, this wanderlust reads {VERSION}")
    return state


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
