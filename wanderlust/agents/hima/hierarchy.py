"""HIMA's second level: a visual block and an option block with their own basal ganglia, and the
feedback that runs options (SYSTEMS.md section 4: "visual and options at level 2, feedback running
options"; the HIMA paper, Dzhivelikian et al. 2022; block layout and level-2 settings from the seed
config, agent.SEED_CONFIG).

An **option** is a learned sequence of level-1 motor patterns (elementary actions), at most
`max_option_length` long. In code it is an *option code*: the option block's spatial-pooler
columns for the sequence, kept in a vocabulary of at most `max_options` codes (`OptionVocabulary`).

Blocks (the seed config's numbering in brackets):
- the level-1 motor block [3] (`motor_memory`): a temporal memory over the motor bits plus a few
  "start" columns, basal context = its own previous cells (so it knows where in a sequence it is),
  feedback input = the running option's code. It learns each executed option by replaying it
  (start, a1, ..., ak) with that option's code as feedback, so that with the code as feedback it
  predicts, step by step, the option's next motor pattern: its predicted cells that also have an
  active feedback segment.
- the level-2 visual block [4]: a spatial pooler over the level-1 visual block's active columns and
  a temporal memory over its columns (apical input = the option code chosen there): a model of
  state → option → state at option boundaries.
- the option block [5]: a spatial pooler over the executed motor sequence (the level-1 motor bits
  of each step, laid side by side, one slot per position) whose columns are the option code, and a
  temporal memory over option codes (basal = its own previous cells, apical = the level-2 visual
  columns), whose apically supported prediction proposes the options that followed here before.
- the level-2 basal ganglia (`DualBasalGanglia`): stimulus = the level-2 visual columns,
  responses = option codes, α = β = 0.1, off-policy, softmax β = 0.5, γ = 0.997 (seed config).

Level 2 steps only at option boundaries (`Level2.boost`, `Level2.end_episode`). A running option
ends after the step where (a) the level-1 basal ganglia chose an action outside its non-empty
predicted pattern (the lower level overrode it), or (b) it has run `max_option_length` steps; and
at an episode's end. Where its pattern is empty (its learned sequence has run its course) level 1
acts alone and the option goes on, so that the executed sequence, one step longer or more, becomes
a new option: options grow from behaviour up to `max_option_length`. At a boundary:
1. the executed sequence is encoded by the option pooler; its code joins the vocabulary (or matches
   a known option: overlap ≥ `option_match` of the code) and the motor block replays it with that
   code as feedback;
2. the level-2 visual block encodes the level-1 visual columns (s2') and its memory activates them;
   the option memory activates the executed code and predicts with s2' as apical input;
3. the level-2 basal ganglia's TD update of (s2, chosen option) over the option's k steps:
   δ = R / |option| + γ^k · max V(s2', candidates') − V(s2, option), R = Σ_i γ^i r_i (extrinsic;
   likewise for the intrinsic striatum with the level-1 intrinsic rewards);
4. the level-2 basal ganglia choose the next option among the candidates: the vocabulary's
   options that the option memory predicts (all of them when it predicts none).
With an empty vocabulary the agent runs a *free* segment of max_option_length steps (no feedback,
no TD update): its sequence becomes the first option. When the vocabulary is full, an executed
sequence that matches no option is not learned.

Feedback: while an option runs, each level-1 action whose motor bits the option predicts (at least
half of them) gets `boost` in the level-1 thalamus (score + boost × the best score; the other
actions 0). boost = low + (high − low) · c with (low, high) = `feedback_boost_range`, c = the chosen
option's value rank among the candidates at its choice, (V − V_min) / (V_max − V_min), 0 when all
candidates are valued equally: an option the level-2 striatum prefers pushes its actions harder.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from wanderlust.agents.hima.basal_ganglia import DualBasalGanglia, DualBasalGangliaConfig
from wanderlust.agents.hima.spatial_pooler import SpatialPooler, SpatialPoolerConfig
from wanderlust.agents.hima.temporal_memory import TemporalMemory, TemporalMemoryConfig

START_BITS = 3
"""Columns of the motor block that mark an option's start (the context of its first action)."""


def _pooler_config() -> SpatialPoolerConfig:
    # The level-1 visual pooler's values (seed config permanence steps, boosting on).
    return SpatialPoolerConfig(input_size=0, permanence_increment=0.1, permanence_decrement=0.01)


def _block_memory_config() -> TemporalMemoryConfig:
    # The seed config's temporal_memory_default (as the level-1 visual memory); the apical input
    # is another block's 20-column code, so the default thresholds 13 / 10 apply.
    return TemporalMemoryConfig(cells_per_column=15, initial_permanence=0.1, max_segments_per_cell=8,
                                apical_input_size=1)


def _motor_memory_config() -> TemporalMemoryConfig:
    # One action's 3 bits a step: basal thresholds 3 / 2. An option is learned from one execution:
    # new synapses start connected, 0.1 above the threshold so that the punishment of matching
    # segments (the option's feedback segments at its other steps) does not disconnect them.
    # Feedback: the option's 20-column code, thresholds 13 / 10.
    return TemporalMemoryConfig(
        columns=0, cells_per_column=4, activation_threshold=3, learning_threshold=2,
        initial_permanence=0.6, feedback_input_size=1,
    )


def _level2_basal_ganglia_config() -> DualBasalGangliaConfig:
    # The seed config's level-2 block: α = β = 0.1, off-policy, softmax β 0.5, block gamma 0.997;
    # reward-modulated priorities and intrinsic scale 0.1 (its basal_ganglia_default).
    return DualBasalGangliaConfig(
        stimulus_size=1000, response_size=1000, alpha=0.1, beta=0.1, off_policy=True, softmax_beta=0.5,
        discount=0.997, discount_intrinsic=0.997, priority_rule="reward", intrinsic_scale=0.1,
    )


@dataclass
class Level2Config:
    """Level 2's settings (module docstring). Sizes that follow from other blocks are set by the
    agent: the poolers' input sizes, the memories' columns and apical/feedback sizes, the basal
    ganglia's stimulus and response sizes, and the seeds."""

    visual_pooler: SpatialPoolerConfig = field(default_factory=_pooler_config)
    """Level-2 visual block's pooler over the level-1 visual columns: 1000 columns, density 0.02."""
    visual_memory: TemporalMemoryConfig = field(default_factory=_block_memory_config)
    """Level-2 visual block's memory (apical input = the chosen option's code)."""
    option_pooler: SpatialPoolerConfig = field(default_factory=_pooler_config)
    """Option block's pooler over the executed motor sequence: its columns are the option code."""
    option_memory: TemporalMemoryConfig = field(default_factory=_block_memory_config)
    """Option block's memory over option codes (apical input = the level-2 visual columns)."""
    motor_memory: TemporalMemoryConfig = field(default_factory=_motor_memory_config)
    """Level-1 motor block's memory: motor sequences with the option code as feedback; 4 cells
    per column, thresholds 3 / 2 for 3-bit actions, initial permanence 0.6 (ours)."""
    basal_ganglia: DualBasalGangliaConfig = field(default_factory=_level2_basal_ganglia_config)
    """Level-2 basal ganglia (seed config: α = β = 0.1, off-policy, softmax β 0.5, γ 0.997,
    reward-modulated priorities, intrinsic scale 0.1)."""
    max_options: int = 50
    """Size of the option vocabulary (seed config vis_options.max_options)."""
    max_option_length: int = 5
    """The longest option, in level-1 steps (ours: about a room's width in four_rooms_9x9)."""
    feedback_boost_range: list[float] = field(default_factory=lambda: [0.0, 0.8])
    """(low, high) boost of the actions the running option predicts (seed config)."""
    option_match: float = 0.75
    """An executed sequence is a known option when its code shares this fraction of a known code's
    columns (ours)."""
    propose_from_memory: bool = True
    """Candidates = the options the option memory predicts here (all when none); False: all."""

    def __post_init__(self) -> None:
        if len(self.feedback_boost_range) != 2 or not 0.0 <= self.feedback_boost_range[0] <= self.feedback_boost_range[1]:
            raise ValueError(f"feedback_boost_range must be [low, high] with 0 <= low <= high, got {self.feedback_boost_range}")
        for name in ("max_options", "max_option_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.option_match <= 1.0:
            raise ValueError(f"option_match must be in (0, 1], got {self.option_match}")


class OptionVocabulary:
    """The known option codes (sorted column arrays), at most `capacity`."""

    def __init__(self, capacity: int, match: float):
        self.capacity = capacity
        self.match = match
        self.codes: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.codes)

    def find(self, code: np.ndarray) -> int | None:
        """The known option whose code shares the most columns with `code`, if at least `match`."""
        if not self.codes or code.size == 0:
            return None
        overlaps = [np.intersect1d(known, code, assume_unique=True).size / known.size for known in self.codes]
        best = int(np.argmax(overlaps))
        return best if overlaps[best] >= self.match else None

    def add(self, code: np.ndarray) -> int | None:
        """The index of `code`'s option: a known one, else a new one while there is room."""
        index = self.find(code)
        if index is None and len(self.codes) < self.capacity and code.size:
            self.codes.append(code.copy())
            index = len(self.codes) - 1
        return index

    def state_dict(self) -> dict:
        sizes = np.array([code.size for code in self.codes], dtype=np.int64)
        flat = np.concatenate(self.codes) if self.codes else np.empty(0, dtype=np.int64)
        return {"sizes": sizes, "columns": flat.astype(np.int64)}

    def load_state_dict(self, state: dict) -> None:
        bounds = np.cumsum(np.asarray(state["sizes"], dtype=np.int64))[:-1]
        columns = np.asarray(state["columns"], dtype=np.int64)
        self.codes = [part.copy() for part in np.split(columns, bounds)] if len(state["sizes"]) else []


@dataclass
class RunningOption:
    """The option being executed: what level 2 chose, and what level 1 has done under it."""

    index: int | None
    """Its vocabulary index; None for a free segment (no option known yet)."""
    state: np.ndarray
    """The level-2 visual columns where it was chosen (the TD update's stimulus)."""
    boost: float
    """The boost its predicted actions get in the level-1 thalamus."""
    actions: list[int] = field(default_factory=list)
    predicted_actions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """The actions its motor pattern predicts for the next step."""
    reward: float = 0.0
    """Σ_i γ^i r_i over its steps so far (extrinsic)."""
    reward_intrinsic: float = 0.0
    done: bool = False


class Level2:
    """The level-2 blocks, the motor block and the running option (module docstring)."""

    def __init__(self, config: Level2Config, visual_columns: int, motor: list[np.ndarray], seeds: list[int]):
        self.config = config
        self.motor = motor
        motor_bits = int(sum(bits.size for bits in motor))
        self.start_columns = np.arange(motor_bits, motor_bits + START_BITS)
        self.visual_pooler = SpatialPooler(replace(config.visual_pooler, input_size=visual_columns, seed=seeds[0]))
        visual_size = self.visual_pooler.config.columns
        self.option_pooler = SpatialPooler(replace(
            config.option_pooler, input_size=config.max_option_length * motor_bits, seed=seeds[1]))
        option_size = self.option_pooler.config.columns
        self.visual_memory = TemporalMemory(replace(
            config.visual_memory, columns=visual_size, apical_input_size=option_size, seed=seeds[2]))
        self.option_memory = TemporalMemory(replace(
            config.option_memory, columns=option_size, apical_input_size=visual_size, seed=seeds[3]))
        self.motor_memory = TemporalMemory(replace(
            config.motor_memory, columns=motor_bits + START_BITS, feedback_input_size=option_size, seed=seeds[4]))
        self.basal_ganglia = DualBasalGanglia(replace(
            config.basal_ganglia, stimulus_size=visual_size, response_size=option_size, seed=seeds[5]))
        self.options = OptionVocabulary(config.max_options, config.option_match)
        self.option: RunningOption | None = None
        self.discount = config.basal_ganglia.discount
        self.discount_intrinsic = config.basal_ganglia.discount_intrinsic
        self.steps = 0
        """Level-2 steps (options chosen), for the tests: it grows only at option boundaries."""
        self.ended: list[RunningOption] = []
        """Options that ended since the last `take_ended()` (for the agent's metrics)."""
        self.anomalies: list[float] = []
        """The level-2 visual memory's anomaly at each boundary since the last `take_ended()`."""

    # ------------------------------------------------------------------ level 1 asks
    def boost(self, visual_columns: np.ndarray) -> np.ndarray:
        """The per-action boost for level 1's next choice at `visual_columns` (the level-1 visual
        block's active columns). A boundary (a level-2 step) happens first when no option runs
        (an episode's start) or the running one is done."""
        if self.option is None:
            self._start_episode(visual_columns)
        elif self.option.done:
            self._boundary(visual_columns, terminal=False, choose=True)
        boost = np.zeros(len(self.motor))
        boost[self.option.predicted_actions] = self.option.boost
        return boost

    def record(self, action: int) -> None:
        """Level 1 took `action` under the running option: advance the option's motor pattern and
        decide whether the option ends after this step."""
        option = self.option
        overridden = option.predicted_actions.size > 0 and not np.isin(action, option.predicted_actions)
        option.actions.append(action)
        if option.index is not None:
            self.motor_memory.activate(self.motor[action], learn=False)
            self.motor_memory.depolarize(feedback_input=self.options.codes[option.index])
            option.predicted_actions = self._predicted_actions()
        option.done = bool(overridden) or len(option.actions) >= self.config.max_option_length

    def observe(self, reward: float, reward_intrinsic: float) -> None:
        """The rewards for the running option's last action (discounted by its position)."""
        option = self.option
        if option is None:
            return
        position = len(option.actions) - 1
        option.reward += self.discount**position * reward
        option.reward_intrinsic += self.discount_intrinsic**position * reward_intrinsic

    def end_episode(self, visual_columns: np.ndarray, terminated: bool) -> None:
        """The episode ended after the running option's last step: a boundary without a next
        option (bootstrapping from `visual_columns` unless the episode terminated)."""
        if self.option is not None:
            self._boundary(visual_columns, terminal=terminated, choose=False)
        self.option = None

    def take_ended(self) -> tuple[list[RunningOption], list[float]]:
        """The options that ended and the level-2 anomalies since the last call."""
        ended, anomalies = self.ended, self.anomalies
        self.ended, self.anomalies = [], []
        return ended, anomalies

    # ------------------------------------------------------------------ level 2 steps
    def _start_episode(self, visual_columns: np.ndarray) -> None:
        self.visual_memory.reset()
        self.option_memory.reset()
        state = self._encode_state(visual_columns)
        self.option_memory.depolarize(apical_input=state)
        self._choose(state)

    def _boundary(self, visual_columns: np.ndarray, terminal: bool, choose: bool) -> None:
        option = self.option
        executed = self._learn_executed(option.actions)
        state = None if terminal else self._encode_state(visual_columns)
        if executed is not None:
            self.option_memory.activate(executed, learn=True)
        if state is not None:
            self.option_memory.depolarize(apical_input=state)
        if option.index is not None:
            code = self.options.codes[option.index]
            if state is None:
                self.basal_ganglia.update(option.state, code, option.reward, option.reward_intrinsic,
                                          k=len(option.actions))
            else:
                self.basal_ganglia.update(option.state, code, option.reward, option.reward_intrinsic, state,
                                          [self.options.codes[i] for i in self._candidates()], k=len(option.actions))
        self.ended.append(option)
        if choose:
            self._choose(state)

    def _encode_state(self, visual_columns: np.ndarray) -> np.ndarray:
        state = self.visual_pooler.compute(visual_columns, learn=True)
        self.visual_memory.activate(state, learn=True)
        self.anomalies.append(self.visual_memory.anomaly)
        return state

    def _learn_executed(self, actions: list[int]) -> np.ndarray | None:
        """Encode the executed motor sequence as an option code, add it to the vocabulary and
        replay it into the motor block with that code as feedback. Returns the code."""
        if not actions:
            return None
        width = sum(bits.size for bits in self.motor)
        sequence = np.concatenate([position * width + self.motor[a] for position, a in enumerate(actions)])
        code = self.option_pooler.compute(sequence, learn=True)
        index = self.options.add(code)
        if index is not None:
            known = self.options.codes[index]
            memory = self.motor_memory
            memory.reset()
            memory.activate(self.start_columns, learn=True)
            for action in actions:
                memory.depolarize(feedback_input=known)
                memory.activate(self.motor[action], learn=True)
            memory.reset()
        return code

    def _candidates(self) -> list[int]:
        """Vocabulary indices the option memory predicts (apically supported), else all."""
        everything = list(range(len(self.options)))
        if not self.config.propose_from_memory:
            return everything
        memory = self.option_memory
        predicted = np.zeros(memory.config.columns, dtype=bool)
        predicted[memory.apical_predictive_cells // memory.config.cells_per_column] = True
        proposed = [i for i, code in enumerate(self.options.codes) if predicted[code].sum() * 2 >= code.size]
        return proposed or everything

    def _choose(self, state: np.ndarray) -> None:
        """A level-2 step: choose the next option at level-2 state `state`."""
        self.steps += 1
        candidates = self._candidates()
        if not candidates:
            self.option = RunningOption(None, state, 0.0)
            self.visual_memory.depolarize()
            return
        codes = [self.options.codes[i] for i in candidates]
        choice = self.basal_ganglia.choose(state, codes)
        index = candidates[choice]
        values = self.basal_ganglia.response_values(state, codes)
        spread = values.max() - values.min()
        rank = float((values[choice] - values.min()) / spread) if spread > 0 else 0.0
        low, high = self.config.feedback_boost_range
        self.option = RunningOption(index, state, low + (high - low) * rank)
        code = self.options.codes[index]
        self.visual_memory.depolarize(apical_input=code)
        memory = self.motor_memory
        memory.reset()
        memory.activate(self.start_columns, learn=False)
        memory.depolarize(feedback_input=code)
        # Where the option predicts nothing (it has run its course, or its feedback is not
        # learned yet) level 1 acts alone and the option goes on: the executed sequence, longer
        # than the option's, becomes a new option.
        self.option.predicted_actions = self._predicted_actions()

    def _predicted_actions(self) -> np.ndarray:
        """The actions of the running option's next motor pattern: those with at least half of
        their motor bits predicted by cells that also have an active feedback segment."""
        memory = self.motor_memory
        cells = np.intersect1d(memory.predictive_cells, memory.feedback_predictive_cells, assume_unique=True)
        predicted = np.zeros(memory.config.columns, dtype=bool)
        predicted[cells // memory.config.cells_per_column] = True
        return np.array([a for a, bits in enumerate(self.motor) if predicted[bits].sum() * 2 >= bits.size],
                        dtype=np.int64)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {
            "visual_pooler": self.visual_pooler.state_dict(),
            "visual_memory": self.visual_memory.state_dict(),
            "option_pooler": self.option_pooler.state_dict(),
            "option_memory": self.option_memory.state_dict(),
            "motor_memory": self.motor_memory.state_dict(),
            "basal_ganglia": self.basal_ganglia.state_dict(),
            "options": self.options.state_dict(),
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.visual_pooler.load_state_dict(state["visual_pooler"])
        self.visual_memory.load_state_dict(state["visual_memory"])
        self.option_pooler.load_state_dict(state["option_pooler"])
        self.option_memory.load_state_dict(state["option_memory"])
        self.motor_memory.load_state_dict(state["motor_memory"])
        self.basal_ganglia.load_state_dict(state["basal_ganglia"])
        self.options.load_state_dict(state["options"])
        self.steps = int(state["steps"])
        self.option = None
        self.ended, self.anomalies = [], []
