"""HIMA, the hierarchical intrinsically motivated agent (seed 000; SYSTEMS.md section 4).

Its neocortex: an HTM spatial pooler and a temporal memory with basal, apical and feedback segments;
its basal ganglia (action selection, TD learning), empowerment (the intrinsic reward), dreaming,
the assembled learner (`HIMA`, level 1) and its second level (`Level2`: visual and option blocks).
"""

from wanderlust.agents.hima.agent import HIMA, HIMAConfig
from wanderlust.agents.hima.basal_ganglia import (
    BasalGanglia,
    BasalGangliaConfig,
    DualBasalGanglia,
    DualBasalGangliaConfig,
    Striatum,
)
from wanderlust.agents.hima.dreaming import (
    ClusterTransition,
    Dream,
    DreamingConfig,
    Rollout,
    StateClusters,
    StateScalarModel,
    dream,
    dream_probability,
    rollout,
)
from wanderlust.agents.hima.hierarchy import Level2, Level2Config, OptionVocabulary
from wanderlust.agents.hima.empowerment import (
    TransitionMemory,
    TransitionMemoryConfig,
    end_position_counts,
    exact_empowerment,
)
from wanderlust.agents.hima.spatial_pooler import SpatialPooler, SpatialPoolerConfig
from wanderlust.agents.hima.temporal_memory import TemporalMemory, TemporalMemoryConfig, TemporalMemoryState

__all__ = [
    "HIMA",
    "HIMAConfig",
    "Level2",
    "Level2Config",
    "OptionVocabulary",
    "ClusterTransition",
    "Dream",
    "DreamingConfig",
    "StateClusters",
    "StateScalarModel",
    "dream",
    "dream_probability",
    "Rollout",
    "rollout",
    "BasalGanglia",
    "BasalGangliaConfig",
    "DualBasalGanglia",
    "DualBasalGangliaConfig",
    "Striatum",
    "TransitionMemory",
    "TransitionMemoryConfig",
    "end_position_counts",
    "exact_empowerment",
    "SpatialPooler",
    "SpatialPoolerConfig",
    "TemporalMemory",
    "TemporalMemoryConfig",
    "TemporalMemoryState",
]
