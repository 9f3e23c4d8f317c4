"""Memories for agents: hierarchical chunk attention (hcam.py)."""

from __future__ import annotations

from wanderlust.memory.hcam import HCAM, HCAMConfig, chunk_summaries, position_encoding

__all__ = ["HCAM", "HCAMConfig", "chunk_summaries", "position_encoding"]
