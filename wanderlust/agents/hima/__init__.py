"""HIMA, the hierarchical intrinsically motivated agent (seed 000; SYSTEMS.md section 4).

Its neocortex: an HTM spatial pooler and a temporal memory with basal, apical and feedback segments.
"""

from wanderlust.agents.hima.spatial_pooler import SpatialPooler, SpatialPoolerConfig
from wanderlust.agents.hima.temporal_memory import TemporalMemory, TemporalMemoryConfig, TemporalMemoryState

__all__ = [
    "SpatialPooler",
    "SpatialPoolerConfig",
    "TemporalMemory",
    "TemporalMemoryConfig",
    "TemporalMemoryState",
]
