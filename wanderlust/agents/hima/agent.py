"""The assembled HIMA agent, level 1 (SYSTEMS.md section 4; the HIMA paper, Dzhivelikian,
Latyshev, Kuderov and Panov, Brain Informatics 2022, doi:10.1186/s40708-022-00156-6).

Blocks:
- input blocks: the visual observation (the binary egocentric window, flattened) and the motor
  action (4 actions × 3 bits = 12 bits, action a = bits 3a, 3a+1, 3a+2);
- the visual block: a spatial pooler (1000 columns, 20 active) over the window, and a temporal
  memory over its columns (15 cells each) whose basal context is its own previous cells and whose
  apical input is the motor block's action bits, so it predicts the next window from the
  state-action pair;
- the basal ganglia (`DualBasalGanglia`): stimulus = the visual block's active columns, responses =
  the four actions' motor bits; an extrinsic striatum learns the env's reward, an intrinsic one the
  empowerment-based intrinsic reward;
- empowerment (`TransitionMemory`): an action-free first-order memory of the visual columns'
  transitions, whose 4-step superposition gives the empowerment of the state just reached;
- dreaming (`dreaming.py`): the visual codes clustered into prototype states, a first-order
  (state, action) → next-state memory over them, reward and anomaly models (the anomaly per action
  that led there), and imagined rollouts in that model.

One environment step (`HIMA._step`), on arriving in observation o with reward r:
1. the spatial pooler encodes o into columns s' (learning);
2. the visual memory activates s' against its prediction from (s, a) and learns; anomaly = the
   fraction of s' it did not predict (the memory is reset at an episode's first observation);
3. the dream model takes in the step (dreaming.py): s' joins its cluster, the transition memory
   learns (s, a) → s' (their cluster states), the reward model r there, the anomaly model the
   transition memory's anomaly of reaching it by a;
4. the empowerment memory learns s → s' and estimates the empowerment E(s') (bits, horizon 4,
   floored at 0); intrinsic reward = E(s') + intrinsic_offset (bits; the seed's −10);
5. the basal ganglia's TD update of (s, a) with r, the intrinsic reward and the next state s'
   (none when the episode terminated);
6. after a step with r ≤ 0.2 and the dream model's anomaly < 0.4, with probability
   min(((1 − anomaly)/0.75)^1.3, 0.12): a dream from s', 3–12 imagined rollouts (dreaming.py);
7. the basal ganglia choose the next action a' for s', and the visual memory predicts the next
   state from s' and a' (its apical input).
The first observation of an episode skips 3–6 (the env's auto-reset ignored the last action).

With `hierarchy=True`, level 2 (hierarchy.py) runs options: in step 7 the running option's
predicted actions get a boost in the thalamus, level 2 steps (TD update, next option) only when an
option ends, and steps 5 and the episode's end pass it the rewards and the boundary.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from wanderlust.agents.hima.basal_ganglia import DualBasalGanglia, DualBasalGangliaConfig
from wanderlust.agents.hima.dreaming import (
    ClusterTransition,
    DreamingConfig,
    StateClusters,
    StateScalarModel,
    dream,
    dream_probability,
    rollout,
)
from wanderlust.agents.hima.empowerment import TransitionMemory, TransitionMemoryConfig
from wanderlust.agents.hima.hierarchy import Level2, Level2Config
from wanderlust.agents.hima.spatial_pooler import SpatialPooler, SpatialPoolerConfig
from wanderlust.agents.hima.temporal_memory import TemporalMemory, TemporalMemoryConfig, TemporalMemoryState
from wanderlust.agents.episodes import Learner, new_episodes, record_step

SEED_CONFIG = "cog-isa/htm-rl, hima/hima/experiments/hima/configs/four_rooms_9x9_swap_empowered_dreaming.yaml"
"""The seed's configuration of this experiment, the source of the defaults SYSTEMS.md leaves open."""


def _visual_pooler_config() -> SpatialPoolerConfig:
    # Permanence steps: the seed config's synPermActiveInc 0.1 / synPermInactiveDec 0.01. Boosting
    # stays on (SYSTEMS.md §4 names it; the seed config sets boostStrength 0.0, docs/hima.md).
    return SpatialPoolerConfig(input_size=0, permanence_increment=0.1, permanence_decrement=0.01)


def _visual_memory_config() -> TemporalMemoryConfig:
    # The apical input is one action's 3 bits: thresholds of 13 synapses could never be reached.
    # Cells and permanences: the seed config's temporal_memory_default.
    return TemporalMemoryConfig(
        cells_per_column=15, initial_permanence=0.1, max_segments_per_cell=8,
        apical_input_size=12, apical_activation_threshold=3, apical_learning_threshold=2,
    )


SOFTMAX_BETA = 0.25 * 20 / 3
"""The thalamus's inverse temperature. Both ours and the seed's multiply the count of disinhibited
bits of each candidate by it; the seed config's 0.25 applies to responses of ~20 bits (its motor
block's spatial pooler: 1000 columns at density 0.02), ours have 3 (an action's motor bits), so the
same preference per fraction of disinhibited bits is 0.25 × 20 / 3 ≈ 1.67."""


def _basal_ganglia_config() -> DualBasalGangliaConfig:
    return DualBasalGangliaConfig(
        stimulus_size=1000, response_size=12, discount=0.95, discount_intrinsic=0.5, softmax_beta=SOFTMAX_BETA,
        priority_rule="reward", intrinsic_scale=0.1,
    )


@dataclass
class HIMAConfig:
    """HIMA's settings. Sizes that follow from the env or from other blocks are set by the agent:
    visual_pooler.input_size (the window's bits), visual_memory.columns and
    basal_ganglia.stimulus_size and empowerment_memory.state_size (= visual_pooler.columns),
    empowerment_memory.state_active_bits (the pooler's active columns), visual_memory.
    apical_input_size and basal_ganglia.response_size (num_actions × bits_per_action), and every
    component's seed (drawn from the agent's seed)."""

    visual_pooler: SpatialPoolerConfig = field(default_factory=_visual_pooler_config)
    """The visual block's spatial pooler: 1000 columns, density 0.02, boosting (strength 1.0, ours)
    (SYSTEMS.md §4); permanence steps +0.1 / −0.01 (the seed config, SEED_CONFIG; its
    boostStrength is 0.0, which learned worse here: docs/hima.md "The agent"); the other defaults:
    docs/hima.md, "Spatial pooler"."""
    visual_memory: TemporalMemoryConfig = field(default_factory=_visual_memory_config)
    """The visual block's temporal memory: basal context = its own cells, apical input = the action's
    bits (SYSTEMS.md §4); 15 cells per column, initial permanence 0.1, 8 segments per cell (the seed
    config's temporal_memory_default; connected 0.5, +0.1 / −0.01, −0.001 are also its values and
    the component's defaults); apical thresholds 3 / 2, ours, for a 3-bit input."""
    basal_ganglia: DualBasalGangliaConfig = field(default_factory=_basal_ganglia_config)
    """α = β = 0.1 extrinsic, 0.01 intrinsic, priorities ×0.9 / ×1.2 (SYSTEMS.md §4; the seed
    config's level-1 block has the same rates and ×0.9 / ×1.1); γ = 0.95 extrinsic and 0.5
    intrinsic (the seed config's discount_factor / discount_factor_int; its block gamma 0.997 is
    for option rewards, level 2); softmax β = SOFTMAX_BETA ≈ 1.67 (the seed config's 0.25, rescaled
    to our 3-bit responses); the seed config's reward-modulated priorities (`priority_rule="reward"`;
    SYSTEMS.md's TD-error rule is `priority_rule="td_error"`) and intrinsic scale 0.1 (its
    `priority_int`), which let it recover from a moved goal (docs/hima.md, "The agent"). Without
    empowerment the agent sets `priority_rule="fixed"` at both levels."""
    empowerment_memory: TransitionMemoryConfig = field(
        default_factory=lambda: TransitionMemoryConfig(state_size=1000, state_active_bits=20)
    )
    """The empowerment estimate's memory: action-free one-step transitions of the visual columns
    (the seed's empowerment TM; docs/hima.md "Empowerment")."""
    dreamer: DreamingConfig = field(default_factory=DreamingConfig)
    """When to dream and when a dream stops (SYSTEMS.md §4; dreaming.py)."""
    num_actions: int = 4
    """Motor responses: the env's four moves, without "stay" (SYSTEMS.md §4: 4 actions)."""
    bits_per_action: int = 3
    """Motor bits per action (SYSTEMS.md §4: 4 actions × 3 bits = 12 columns)."""
    empowerment_horizon: int = 4
    """h of the empowerment estimate (SYSTEMS.md §4: h = 4 in the paper)."""
    dreaming: bool = True
    """Dream (SYSTEMS.md §4). Off: the agent only learns from real steps."""
    empowerment: bool = True
    """Empowerment as the intrinsic striatum's reward. Off: the intrinsic reward is 0, so the
    intrinsic striatum stays at zero and choices follow the extrinsic one alone."""
    intrinsic_offset: float = -10.0
    """Added to the empowerment (bits) to give the intrinsic reward, E + offset: the seed config's
    `punish_intrinsic_reward` (SEED_CONFIG). Negative, it makes every step cost intrinsic value, so
    actions already tried look worse than untried ones (a novelty drive, since the striata start at
    zero), and the empowerment ranks the costs. 0: the plain empowerment."""
    hierarchy: bool = True
    """Level 2 (visual and option blocks, option feedback into level 1's thalamus; hierarchy.py):
    on, as the seed's HIMA (`levels: 2` in its four-rooms configs). Off: level 1 alone."""
    level2: Level2Config = field(default_factory=Level2Config)
    """Level 2's settings (used with hierarchy=True; hierarchy.py, docs/hima.md "Hierarchy")."""
    steps_per_iteration: int = 128
    """Environment steps between two rows of metrics.csv (as QLearningConfig)."""

    def __post_init__(self) -> None:
        for name in ("num_actions", "bits_per_action", "empowerment_horizon", "steps_per_iteration"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class VisualTransition:
    """The visual memory as the dreams' state-action → next-state model (dreaming.Transition).
    The next state is the set of columns holding cells that are predicted *and* have an active
    apical segment for the action: the columns that only the basal context predicts (successors
    under other actions) are left out."""

    def __init__(self, memory: TemporalMemory, motor: list[np.ndarray]):
        self.memory = memory
        self.motor = motor

    def save_state(self) -> TemporalMemoryState:
        return self.memory.save_state()

    def restore_state(self, state: TemporalMemoryState) -> None:
        self.memory.restore_state(state)

    def predict(self, action: int) -> np.ndarray:
        self.memory.depolarize(apical_input=self.motor[action])
        return np.unique(self.memory.apical_predictive_cells // self.memory.config.cells_per_column)

    def advance(self, state: np.ndarray) -> None:
        self.memory.activate(state, learn=False)

    def snap(self, state: np.ndarray) -> np.ndarray:
        return state


def _seed(seed: int, component: int) -> int:
    return int(np.random.SeedSequence([seed, component]).generate_state(1)[0])


def _to_torch(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {key: _to_torch(item) for key, item in value.items()}
    return value


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.numpy().copy()
    if isinstance(value, dict):
        return {key: _to_numpy(item) for key, item in value.items()}
    return value


class HIMA(Learner):
    """The HIMA learner (module docstring). `iterate()` runs `steps_per_iteration` env steps."""

    gauges = frozenset({"memory_segments", "options"})

    def __init__(self, config: HIMAConfig, env, total_frames: int, seed: int = 0):
        if env.num_envs != 1:
            raise ValueError(
                f"HIMA learns online from one stream of experience (one temporal memory, one sequence "
                f"state); make the env with num_envs=1, got {env.num_envs}"
            )
        env_actions = int(env.single_action_space.n)
        if config.num_actions > env_actions:
            raise ValueError(f"num_actions={config.num_actions} exceeds the env's {env_actions} actions")
        self.config = config
        self.env = env
        self.total_frames = total_frames
        self.num_envs = 1
        self.seed = seed
        self.rng = np.random.default_rng(_seed(seed, 0))

        bits = config.num_actions * config.bits_per_action
        self.motor = [np.arange(a * config.bits_per_action, (a + 1) * config.bits_per_action) for a in range(config.num_actions)]
        input_size = int(np.prod(env.single_observation_space.shape))
        self.pooler = SpatialPooler(replace(config.visual_pooler, input_size=input_size, seed=_seed(seed, 1)))
        columns = self.pooler.config.columns
        self.memory = TemporalMemory(replace(config.visual_memory, columns=columns, apical_input_size=bits, seed=_seed(seed, 2)))
        # Without an intrinsic reward the seed's blocks have one striatum: choices follow the
        # extrinsic values alone, at both levels ("fixed" priorities).
        level1_bg, level2 = config.basal_ganglia, config.level2
        if not config.empowerment:
            level1_bg = replace(level1_bg, priority_rule="fixed")
            level2 = replace(level2, basal_ganglia=replace(level2.basal_ganglia, priority_rule="fixed"))
        self.basal_ganglia = DualBasalGanglia(
            replace(level1_bg, stimulus_size=columns, response_size=bits, seed=_seed(seed, 3))
        )
        self.empowerment = TransitionMemory(replace(
            config.empowerment_memory, state_size=columns,
            state_active_bits=self.pooler.config.active_columns_count, seed=_seed(seed, 4),
        ))
        dreamer = config.dreamer
        self.reward_model = StateScalarModel(columns, 0.0, dreamer.reward_learning_rate)
        # Per action that led into the state; an unseen arrival is as surprising as can be.
        self.anomaly_model = StateScalarModel(columns, 1.0, dreamer.anomaly_learning_rate, config.num_actions)
        if dreamer.model == "clusters":
            active = self.pooler.config.active_columns_count
            self.clusters = StateClusters(columns, active, input_size, dreamer.cluster_similarity,
                                          dreamer.cluster_decay, dreamer.max_clusters)
            self.dream_memory = TransitionMemory(replace(
                dreamer.transition_memory, state_size=columns, state_active_bits=active,
                num_actions=config.num_actions, seed=_seed(seed, 5),
            ))
            self.transition = ClusterTransition(self.dream_memory, self.clusters)
        else:
            self.transition = VisualTransition(self.memory, self.motor)
        self.level2 = (
            Level2(level2, columns, self.motor, [_seed(seed, component) for component in range(10, 16)])
            if config.hierarchy else None
        )

        self._start_counters()
        self._start_episodes(seed)

    def _start_episodes(self, seed: int) -> None:
        obs, info = self.env.reset(seed=seed)
        self.reports_rooms = "room" in info
        self.memory.reset()
        self.basal_ganglia.reset()
        if self.level2 is not None:
            self.level2.option = None
        self._metrics: dict[str, float] = defaultdict(float)
        # The first observation is taken in at the next iterate(), so that loading a checkpoint
        # leaves the learned structures exactly as saved.
        self.first_observation: np.ndarray | None = obs[0]
        self.action = 0
        self.episode_over = False

    def warmup(self) -> int:
        return 0

    # ------------------------------------------------------------------ acting and learning
    def _step(self, obs: np.ndarray, reward: float, terminated: bool, truncated: bool, first: bool) -> int:
        """Learn from arriving in `obs` with `reward`; return the next action (module docstring).
        After the episode's end the returned action is a placeholder that the auto-reset ignores."""
        input_bits = obs.reshape(-1) != 0
        columns = self.pooler.compute(input_bits, learn=True)
        if first:
            self.memory.reset()
        self.memory.activate(columns, learn=True)
        anomaly = self.memory.anomaly
        dream_anomaly = self._observe_for_dreams(columns, input_bits, reward, first)
        if first:
            return self._choose(columns)
        intrinsic_reward = 0.0
        if self.config.empowerment:
            self.empowerment.learn(self.state, None, columns)
            empowerment = self._empowerment(columns)
            intrinsic_reward = self._intrinsic_reward(empowerment)
            self._metrics["empowerment"] += empowerment
        bg = self.basal_ganglia
        if terminated:
            bg.update(self.state, self.motor[self.last_action], reward, intrinsic_reward)
        else:
            bg.update(self.state, self.motor[self.last_action], reward, intrinsic_reward, columns, self.motor)
        metrics = self._metrics
        metrics["steps"] += 1
        metrics["anomaly"] += anomaly
        metrics["intrinsic_reward"] += intrinsic_reward
        metrics["extrinsic_priority"] += bg.priority_extrinsic
        metrics["td_error"] += float(np.abs(bg.td_error).mean())
        if self.level2 is not None:
            self.level2.observe(reward, intrinsic_reward)
            if terminated or truncated:
                self.level2.end_episode(columns, terminated)
        if terminated or truncated:
            return 0
        if self.config.dreaming and self.rng.random() < dream_probability(reward, dream_anomaly, self.config.dreamer):
            self._dream()
        return self._choose(columns)

    def _observe_for_dreams(self, columns: np.ndarray, input_bits: np.ndarray, reward: float, first: bool) -> float:
        """Step 3 of the module docstring: the dream model takes in arriving in `columns` (it learns
        no transition into an episode's first observation, which no action led to); returns the
        anomaly that gates dreaming. Without dreaming the model is not kept."""
        if not self.config.dreaming:
            return 1.0
        if self.config.dreamer.model == "visual_memory":
            state, anomaly = columns, self.memory.anomaly
        else:
            state = self.clusters.state(self.clusters.learn(columns, input_bits))
            anomaly = 1.0 if first else self.dream_memory.learn(self.dream_state, self.last_action, state)
            self.transition.advance(state)
        if not first:
            self.reward_model.learn(state, reward)
            self.anomaly_model.learn(state, anomaly, self.last_action)
        self.dream_state = state
        return anomaly

    def _intrinsic_reward(self, empowerment: float) -> float:
        return empowerment + self.config.intrinsic_offset

    def _empowerment(self, columns: np.ndarray) -> float:
        """The TM estimate in bits, floored at 0: a prediction smaller than one state's SDR
        (transitions not learned yet) would give a negative log; it counts as no choice, 0 bits."""
        return max(self.empowerment.estimate(columns, self.config.empowerment_horizon), 0.0)

    def _choose(self, columns: np.ndarray) -> int:
        if self.level2 is None:
            action = self.basal_ganglia.choose(columns, self.motor)
        else:
            # Level 2 steps here when an option ends; the running option's feedback boosts the
            # actions of its predicted motor pattern.
            boost = self.level2.boost(columns)
            action = self.basal_ganglia.choose(columns, self.motor, boost=boost)
            self.level2.record(action)
            self._metrics["feedback_boost"] += float(boost.max())
            self._metrics["choices"] += 1
        self.memory.depolarize(apical_input=self.motor[action])
        self.state, self.last_action = columns, action
        return action

    def _stimulus(self, state: np.ndarray, seen: dict) -> np.ndarray:
        """What the basal ganglia see of an imagined state: with the "clusters" model, the pooler's
        code (no learning) of its cluster's last observation, or the state itself when it matches
        no cluster; with "visual_memory", the state (visual columns). `seen` keeps a dream's answers
        per state: nothing they depend on learns during a dream."""
        if self.config.dreamer.model == "visual_memory":
            return state
        key = state.tobytes()
        if key not in seen:
            index = self.clusters.match(state)
            seen[key] = state if index is None else self.pooler.compute(self.clusters.inputs[index], learn=False)
        return seen[key]

    def _dream(self) -> None:
        bg = self.basal_ganglia
        stimuli: dict = {}
        # The empowerment memory does not learn during a dream either: one estimate per state.
        empowerment: dict[bytes, float] = {}

        def choose(state: np.ndarray) -> int:
            return bg.choose(self._stimulus(state, stimuli), self.motor, learn=False)

        def learn(state: np.ndarray, action: int, reward: float, next_state: np.ndarray | None) -> None:
            state = self._stimulus(state, stimuli)
            if next_state is None:
                bg.update(state, self.motor[action], reward, 0.0)
                return
            next_state = self._stimulus(next_state, stimuli)
            intrinsic_reward = 0.0
            if self.config.empowerment:
                key = next_state.tobytes()
                if key not in empowerment:
                    empowerment[key] = self._empowerment(next_state)
                intrinsic_reward = self._intrinsic_reward(empowerment[key])
            bg.update(state, self.motor[action], reward, intrinsic_reward, next_state, self.motor)

        priorities = bg.priority_state
        config = self.config.dreamer
        start = self.dream_state
        result = dream(self.transition, lambda: rollout(
            start, self.transition, choose, learn, self.reward_model, self.anomaly_model, config, self.rng
        ), config)
        if not config.update_priorities:
            bg.restore_priority_state(priorities)
        self._metrics["dreams"] += 1
        self._metrics["dream_rollouts"] += len(result.rollouts)
        self._metrics["dream_steps"] += result.length

    def iterate(self) -> dict:
        episodes = new_episodes()
        self._metrics = defaultdict(float)
        if self.first_observation is not None:
            self.action = self._step(self.first_observation, 0.0, False, False, first=True)
            self.first_observation = None
        actions = np.zeros(1, dtype=np.int64)
        for _ in range(self.config.steps_per_iteration):
            actions[0] = self.action
            obs, reward, terminated, truncated, info = self.env.step(actions)
            self.frames += 1
            self.action = self._step(obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), self.episode_over)
            self.episode_over = bool(terminated[0] or truncated[0])
            record_step(info, episodes, self.rooms, obs, self.frames)
        self.iteration += 1
        return {"metrics": self._summary(), "episodes": episodes}

    def _summary(self) -> dict[str, float]:
        m = self._metrics
        steps = max(m["steps"], 1.0)
        summary = {
            "anomaly": m["anomaly"] / steps,
            "intrinsic_reward": m["intrinsic_reward"] / steps,
            "empowerment": m["empowerment"] / steps,
            "extrinsic_priority": m["extrinsic_priority"] / steps,
            "td_error": m["td_error"] / steps,
            "dreams": m["dreams"],
            "dream_rollouts": m["dream_rollouts"] / m["dreams"] if m["dreams"] else 0.0,
            "dream_length": m["dream_steps"] / m["dream_rollouts"] if m["dream_rollouts"] else 0.0,
            "memory_segments": self.memory.segments["basal"].size,
        }
        if self.level2 is not None:
            summary.update(self._level2_summary())
        return {name: float(value) for name, value in summary.items()}

    def _level2_summary(self) -> dict[str, float]:
        ended, anomalies = self.level2.take_ended()
        lengths = [len(option.actions) for option in ended]
        chosen = {option.index for option in ended if option.index is not None}
        return {
            "option_length": float(np.mean(lengths)) if lengths else 0.0,
            "options": len(self.level2.options),
            "options_used": len(chosen),
            "feedback_boost": self._metrics["feedback_boost"] / max(self._metrics["choices"], 1.0),
            "level2_anomaly": float(np.mean(anomalies)) if anomalies else 0.0,
        }

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The learned structures, counters and rngs as tensors and plain values (torch.load with
        weights_only=True reads them). The episode in progress is not saved."""
        state = {
            "pooler": self.pooler.state_dict(),
            "memory": self.memory.state_dict(),
            "basal_ganglia": self.basal_ganglia.state_dict(),
            "empowerment": self.empowerment.state_dict(),
            "reward_model": self.reward_model.values.copy(),
            "anomaly_model": self.anomaly_model.values.copy(),
            "dream_model": self.config.dreamer.model,
            "frames": self.frames,
            "iteration": self.iteration,
            "rooms_seen": sorted(self.rooms.seen),
            "rng": self.rng.bit_generator.state,
        }
        if self.level2 is not None:
            state["level2"] = self.level2.state_dict()
        if self.config.dreamer.model == "clusters":
            state["clusters"] = self.clusters.state_dict()
            state["dream_memory"] = self.dream_memory.state_dict()
        return _to_torch(state)

    def load_state_dict(self, state: dict) -> None:
        """Restores what `state_dict` saved; the env starts fresh episodes (as QLearning does)."""
        state = _to_numpy(state)
        # Without dreaming the dream model is never used, so its kind does not matter (and a
        # checkpoint from before the "clusters" model, which has no such key, still loads).
        model = state.get("dream_model", "visual_memory")
        if self.config.dreaming and model != self.config.dreamer.model:
            raise ValueError(
                f"the checkpoint's dreams ran on the {model!r} model, this agent's on "
                f"{self.config.dreamer.model!r} (set hima.dreamer.model to match)"
            )
        self.pooler.load_state_dict(state["pooler"])
        self.memory.load_state_dict(state["memory"])
        self.basal_ganglia.load_state_dict(state["basal_ganglia"])
        self.empowerment.load_state_dict(state["empowerment"])
        self.reward_model.load_values(state["reward_model"])
        self.anomaly_model.load_values(state["anomaly_model"])
        self.frames = int(state["frames"])
        self.iteration = int(state["iteration"])
        self.rooms.load_state_dict(list(state["rooms_seen"]), None)
        self.rng.bit_generator.state = state["rng"]
        if self.level2 is not None:
            self.level2.load_state_dict(state["level2"])
        if self.config.dreaming and model == "clusters":
            self.clusters.load_state_dict(state["clusters"])
            self.dream_memory.load_state_dict(state["dream_memory"])
        self._start_episodes(self.seed + 1_000_003 * self.iteration)
