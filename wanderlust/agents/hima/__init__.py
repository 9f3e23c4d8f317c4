"""HIMA, the hierarchical intrinsically motivated agent (seed 000; SYSTEMS.md section 4).

Its neocortex: an HTM spatial pooler and a temporal memory with basal, apical and feedback segments;
its basal ganglia (action selection, TD learning) and empowerment (the intrinsic reward).
"""

from wanderlust.agents.hima.basal_ganglia import (
    BasalGanglia,
    BasalGangliaConfig,
    DualBasalGanglia,
    DualBasalGangliaConfig,
    Striatum,
)
from wanderlust.agents.hima.empowerment import (
    TMEmpowerment,
    TMEmpowermentConfig,
    end_position_counts,
    exact_empowerment,
)
from wanderlust.agents.hima.spatial_pooler import SpatialPooler, SpatialPoolerConfig
from wanderlust.agents.hima.temporal_memory import TemporalMemory, TemporalMemoryConfig, TemporalMemoryState

__all__ = [
    "BasalGanglia",
    "BasalGangliaConfig",
    "DualBasalGanglia",
    "DualBasalGangliaConfig",
    "Striatum",
    "TMEmpowerment",
    "TMEmpowermentConfig",
    "end_position_counts",
    "exact_empowerment",
    "SpatialPooler",
    "SpatialPoolerConfig",
    "TemporalMemory",
    "TemporalMemoryConfig",
    "TemporalMemoryState",
]
