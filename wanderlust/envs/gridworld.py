"""HIMA's grid worlds: the biogwlab-like maps of the HIMA paper (Kuderov, Dzhivelikian and Panov,
Brain Informatics 2022) as a NumPy gymnasium env, with the paper's room-swapping scenario.

The rules follow the seed's public configs and its ``biogwlab`` environment (cog-isa/htm-rl,
``hima/experiments/hima``): the map files, the 5 x 5 window around the agent with one binary
plane per thing seen, the five actions (four moves and "stay"), the action costs (a move costs
0.005, staying costs twice that), the food's +1, the 200-step limit (400 on the 18 x 18 map) and
the four-rooms scenario (every 100 goals the agent and the food move to freshly drawn rooms, in
three stages of 1000 goals) and the cross scenario (food at the centre for 1000 episodes, then
on one arm for 1000 more). It is written from those rules, not from the seed's code.
docs/environments.md ("Grid worlds (HIMA)") lists where it differs.

Ids: ``wanderlust/GridWorld-{FourRooms9x9,Cross11x11,TwoDoors11x11,FourRooms18x18,Empty8x8}-v0``
(start and goal redrawn every episode), ``wanderlust/GridWorld-FourRooms{9x9,18x18}-Scenario-v0``
(the swap scenario) and ``wanderlust/GridWorld-Cross11x11-Scenario-v0`` (the cross scenario),
registered with gymnasium on import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register

from .vector import with_defaults

__all__ = [
    "ACTION_NAMES",
    "CHANNEL_NAMES",
    "EPISODE_SCENARIOS",
    "EpisodeScenario",
    "GOAL",
    "GridMap",
    "GridWorldEnv",
    "MAPS",
    "OUT_OF_BOUNDS",
    "VIEW_SIZE",
    "WALL",
    "grid_map",
]

NAME = "gridworld"
INFO_KEYS = ("goals_reached", "phase", "stage", "scenario_steps", "scenario_done")
"""The scenario's info keys, which `wanderlust.envs.make` passes through."""
EPISODE_COLUMNS = ("goals_reached", "scenario_steps")
"""metrics.csv columns of scenario runs: goals reached in the scenario at each episode's end, and
the steps a scenario took, on the rows where one finished (the seed's metric)."""
ENVPOOL_OBSERVATION_KEY = None
GOALS_PER_PHASE = 100
PHASES_PER_STAGE = 10
DEFAULT_OPTIONS: dict[str, Any] = {
    "max_steps": None,
    "move_cost": 0.005,
    "stay_cost": 0.01,
    "floor_colours": None,
    "floor_seed": 0,
    "goals_per_phase": GOALS_PER_PHASE,
    "phases_per_stage": PHASES_PER_STAGE,
}
"""Family options (``make(..., **options)``): the step limit (None: the map's), the cost of a move
and of staying, the number of floor colours (None: the map's), the seed of the floor pattern, and
the swap scenario's length (goals per phase, phases per stage; the seed's 100 and 10)."""

# ---------------------------------------------------------------------------------- the maps
# '#' wall; '.' floor; 'D' doorway (floor joining two rooms); 'S' floor where the scenario starts
# the agent in that room. Rooms are the 4-connected regions of '.' and 'S', numbered in row-major
# order of their first cell. Each map is the seed's .map file (1 = wall) with its doors marked;
# the seed's maps have no border of walls: the map edge is the boundary. A doorway counts as the
# lowest-numbered room it joins.
_LAYOUTS: dict[str, str] = {
    # htm_agent/maps/four_rooms_9x9.map; starts and doors from scenarios/four_rooms_swap.yaml
    "four_rooms_9x9": """
        ....#....
        ..S.D.S..
        ....#....
        ....#....
        ##D###D##
        ....#....
        ....#....
        ..S.D.S..
        ....#....
    """,
    # hima/maps/cross_11x11.map: one corridor across, one down, meeting in the middle
    "cross_11x11": """
        #####.#####
        #####.#####
        #####.#####
        #####.#####
        #####.#####
        ...........
        #####.#####
        #####.#####
        #####.#####
        #####.#####
        #####.#####
    """,
    # htm_agent/maps/two_doors_11x11.map
    "two_doors_11x11": """
        ...........
        ...........
        ...........
        ###D###D###
        ...........
        ...........
        ...........
        ...........
        ...........
        ...........
        ...........
    """,
    # htm_agent/maps/four_rooms_18x18.map (walls and doors two cells thick);
    # starts and doors from scenarios/four_rooms_18x18_swap.yaml
    "four_rooms_18x18": """
        ........##........
        ........##........
        ....S...DD..S.....
        ........DD........
        ........##........
        ........##........
        ........##........
        ........##........
        ####DD######DD####
        ####DD######DD####
        ........##........
        ........##........
        ........##........
        ........##........
        ....S...DD..S.....
        ........DD........
        ........##........
        ........##........
    """,
    # not a map file of the seed: its open-field configs are 8 x 8 (two_levels_8x8_obs_default)
    "empty": """
        ........
        ........
        ........
        ........
        ........
        ........
        ........
        ........
    """,
}

_MAP_DEFAULTS: dict[str, tuple[int, int]] = {
    # map: (step limit, floor colours), from the seed's config for that map
    "four_rooms_9x9": (200, 5),  # gridworld/four_rooms_9x9_swap_all_together.yaml
    "cross_11x11": (200, 4),  # gridworld/cross_11x11_options.yaml
    "two_doors_11x11": (200, 4),  # no config in the seed: as cross_11x11
    "four_rooms_18x18": (400, 4),  # htm_agent/configs/four_rooms_18x18_swap_options.yaml
    "empty": (200, 3),  # htm_agent/configs/two_levels_8x8_obs_default.yaml
}

_MAP_IDS = {
    "four_rooms_9x9": "FourRooms9x9",
    "cross_11x11": "Cross11x11",
    "two_doors_11x11": "TwoDoors11x11",
    "four_rooms_18x18": "FourRooms18x18",
    "empty": "Empty8x8",
}
SCENARIO_MAPS = ("four_rooms_9x9", "cross_11x11", "four_rooms_18x18")
"""Maps with a registered scenario id: the seed's swap scenarios and its cross scenario
(``scenario=True`` works on any map with an ``EPISODE_SCENARIOS`` entry or two or more rooms)."""


@dataclass(frozen=True)
class GridMap:
    """A parsed layout. Coordinates are (row, column) with row 0 at the top."""

    name: str
    walls: np.ndarray
    """bool [height, width]"""
    room_of: np.ndarray
    """int64 [height, width]: the room of each floor cell (a doorway: the lowest-numbered room it
    joins); -1 on walls"""
    room_cells: tuple[tuple[tuple[int, int], ...], ...]
    """each room's own cells (doorways excluded), row-major"""
    starts: tuple[tuple[int, int] | None, ...]
    """each room's 'S' cell, or None"""
    doors: tuple[tuple[int, int], ...]
    """one cell per doorway (the first of its cells, row-major): where a stage-0 goal goes"""
    door_rooms: tuple[frozenset[int], ...]
    """the rooms each doorway joins"""

    @property
    def height(self) -> int:
        return int(self.walls.shape[0])

    @property
    def width(self) -> int:
        return int(self.walls.shape[1])

    @property
    def num_rooms(self) -> int:
        return len(self.room_cells)

    def adjacent_rooms(self, room: int) -> tuple[int, ...]:
        """Rooms that share a doorway with ``room``, ascending."""
        joined = {r for rooms in self.door_rooms if room in rooms for r in rooms}
        return tuple(sorted(joined - {room}))

    def doors_of(self, room: int) -> tuple[int, ...]:
        """Indices into ``doors`` of the doorways of ``room``."""
        return tuple(i for i, rooms in enumerate(self.door_rooms) if room in rooms)


def _components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """4-connected regions of ``mask``, in row-major order of their first cell; cells row-major."""
    height, width = mask.shape
    seen = np.zeros_like(mask)
    regions = []
    for row in range(height):
        for column in range(width):
            if not mask[row, column] or seen[row, column]:
                continue
            seen[row, column] = True
            stack, region = [(row, column)], []
            while stack:
                r, c = stack.pop()
                region.append((r, c))
                for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                    if 0 <= nr < height and 0 <= nc < width and mask[nr, nc] and not seen[nr, nc]:
                        seen[nr, nc] = True
                        stack.append((nr, nc))
            regions.append(sorted(region))
    return regions


def _neighbours(cell: tuple[int, int], shape: tuple[int, int]) -> list[tuple[int, int]]:
    r, c = cell
    return [
        (nr, nc)
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
        if 0 <= nr < shape[0] and 0 <= nc < shape[1]
    ]


@functools.cache
def grid_map(name: str) -> GridMap:
    """The parsed map ``name`` (one of ``MAPS``)."""
    if name not in _LAYOUTS:
        raise ValueError(f"unknown map {name!r}; known: {', '.join(MAPS)}")
    rows = [line.strip() for line in _LAYOUTS[name].strip().splitlines()]
    chars = np.array([list(row) for row in rows])
    walls = chars == "#"
    room_mask = (chars == ".") | (chars == "S")
    rooms = _components(room_mask)
    room_of = np.full(walls.shape, -1, dtype=np.int64)
    for index, cells in enumerate(rooms):
        for cell in cells:
            room_of[cell] = index
    starts = []
    for cells in rooms:
        marked = [cell for cell in cells if chars[cell] == "S"]
        starts.append(marked[0] if marked else None)
    doors, door_rooms = [], []
    for cells in _components(chars == "D"):
        touching = {
            int(room_of[n])
            for cell in cells
            for n in _neighbours(cell, walls.shape)
            if room_of[n] >= 0
        }
        doors.append(cells[0])
        door_rooms.append(frozenset(touching))
    for cells, touching in zip(_components(chars == "D"), door_rooms):
        for cell in cells:  # a doorway counts as the lowest-numbered room it joins
            room_of[cell] = min(touching)
    for array in (walls, room_of):
        array.flags.writeable = False
    return GridMap(
        name=name,
        walls=walls,
        room_of=room_of,
        room_cells=tuple(tuple(cells) for cells in rooms),
        starts=tuple(starts),
        doors=tuple(doors),
        door_rooms=tuple(door_rooms),
    )


MAPS = tuple(_LAYOUTS)

# ------------------------------------------------------------------------- what the agent sees
VIEW_SIZE = 5
"""The agent sees the 5 x 5 cells centred on itself (the seed's view rectangle
[[-2, -2], [2, 2]])."""
_RADIUS = VIEW_SIZE // 2
WALL, OUT_OF_BOUNDS, GOAL = 0, 1, 2
FIRST_FLOOR_CHANNEL = 3
CHANNEL_NAMES = ("wall", "out_of_bounds", "goal")
"""Channels 0-2; channel 3 + k is floor colour k."""

ACTION_NAMES = ("right", "down", "left", "up", "stay")
"""The seed's action list, in its order: move right (column + 1), down (row + 1), left, up, stay."""
_MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0), (0, 0))
STAY = 4

# the scenario
STAGES = ("door", "adjacent_room", "any_room")
"""The swap scenario's stages, in order: the goal at a doorway of the agent's room; in a room next
to the agent's; in any other room."""


@dataclass(frozen=True)
class EpisodeScenario:
    """A scenario counted in episodes rather than goals (the seed's cross scenario).

    Stage k lasts ``stage_episodes[k]`` episodes. When it begins, one goal cell is drawn from
    ``stage_goals[k]`` and stays for the stage; every episode starts on a cell drawn from
    ``starts``. The scenario ends with the last episode of the last stage, reached or not.
    """

    starts: tuple[tuple[int, int], ...]
    stage_goals: tuple[tuple[tuple[int, int], ...], ...]
    stage_episodes: tuple[int, ...]
    stage_names: tuple[str, ...]

    @property
    def episodes(self) -> int:
        return sum(self.stage_episodes)

    def stage_of(self, episode: int) -> int:
        """The stage of the scenario's ``episode``-th episode (1-based)."""
        bound = 0
        for stage, length in enumerate(self.stage_episodes):
            bound += length
            if episode <= bound:
                return stage
        return len(self.stage_episodes) - 1


EPISODE_SCENARIOS: dict[str, EpisodeScenario] = {
    # hima/experiments/hima/configs/cross_11x11_options.yaml: food [6, 6], agent [6, 1], [1, 6],
    # [6, 11], [11, 6] with change_position (coordinates of the map padded by the 3 x 3 view's one
    # wall; htm_agent/configs/cross_11x11_empowerment.yaml, unpadded: [5, 5] and [5, 0], [0, 5],
    # [5, 10], [10, 5]); scenarios/cross_11x11.yaml: after episode 1000 set_food_positions to
    # one of [8, 5], [2, 5], [5, 8], [5, 2] (rand, sample_size 1); stop at episode 2000.
    "cross_11x11": EpisodeScenario(
        starts=((5, 0), (0, 5), (5, 10), (10, 5)),
        stage_goals=(((5, 5),), ((8, 5), (2, 5), (5, 8), (5, 2))),
        stage_episodes=(1000, 1000),
        stage_names=("centre", "arm"),
    ),
}
"""Maps whose ``scenario=True`` is an episode-counted scenario instead of the room swap."""


def floor_pattern(shape: tuple[int, int], colours: int, seed: int) -> np.ndarray:
    """The floor colour of every cell, int64 [height, width] in 0..colours-1.

    The seed's recipe for its "areas": between n/3 and 1.7 n centres (n = number of cells) at
    random cells with random colours; a cell takes the colour of its nearest centre (the first such
    centre on ties). One colour gives a plain floor.
    """
    height, width = shape
    if colours == 1:
        return np.zeros(shape, dtype=np.int64)
    rng = np.random.default_rng(seed)
    cells = height * width
    count = int(rng.integers(max(cells // 3, colours), max(int(1.7 * cells), colours + 1)))
    centres = rng.integers(cells, size=count)
    centre_colours = rng.integers(colours, size=count)
    rows, columns = np.divmod(centres, width)
    grid_rows, grid_columns = np.mgrid[0:height, 0:width]
    distance = (grid_rows[..., None] - rows) ** 2 + (grid_columns[..., None] - columns) ** 2
    return centre_colours[np.argmin(distance, axis=-1)].astype(np.int64)


# ------------------------------------------------------------------------------- drawing
_WALL_RGB = (64, 64, 72)
_GOAL_RGB = (40, 190, 60)
_AGENT_RGB = (250, 210, 0)
_FLOOR_RGB = (
    (214, 228, 240),
    (188, 208, 228),
    (232, 220, 200),
    (205, 225, 205),
    (225, 205, 225),
    (200, 200, 200),
    (240, 235, 190),
    (180, 215, 215),
)
"""Light floor shades; colour k uses shade k mod 8."""


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


def _check_cost(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 (it is subtracted), got {value}")


class GridWorldEnv(gym.Env):
    """One of HIMA's grid worlds: walk to the food (the goal) in few steps.

    ## Observation

    uint8 [5, 5, 3 + floor_colours], binary: the 5 x 5 cells centred on the agent, north up
    (``obs[2, 2]`` is the agent's cell, ``obs[0, 2]`` the cell two rows above it). Channels:

    - 0 ``wall``: a wall, or a cell beyond the map edge (as in the seed, the edge is a wall);
    - 1 ``out_of_bounds``: a cell beyond the map edge;
    - 2 ``goal``: the food;
    - 3 + k: a floor cell of colour k (the map's fixed floor pattern, ``floor_pattern``).

    The agent itself is not drawn (it is always the centre).

    ## Actions

    ``Discrete(5)``: 0 right, 1 down, 2 left, 3 up (one cell; into a wall or off the map the agent
    stays where it is), 4 stay.

    ## Reward

    ``-move_cost`` (0.005) for a move, blocked or not; ``-stay_cost`` (0.01) for staying; plus 1 on
    the step that reaches the goal (so 0.995 for a move onto it).

    ## Episodes

    Reaching the goal terminates the episode; ``max_steps`` steps (200; 400 on four_rooms_18x18)
    truncate it. Without the scenario, every reset draws the agent's start uniformly among the floor
    cells and the goal uniformly among the floor cells of the other rooms (any other floor cell on a
    one-room map).

    ## Scenario (``scenario=True``)

    The seed's "swap" scenario, over many episodes. Goals are counted; every 100 goals (a phase)
    the env draws a new task: the agent's start room and the goal's place. Stage 0 (the first 10
    phases): a random room, the goal on a doorway of that room. Stage 1: a random room, the goal on
    a random cell of a room next to it. Stage 2: two different random rooms. The agent starts on
    its room's start cell (the seed's fixed cells; a random cell of the room where the map has
    none). An episode that runs out of steps counts no goal and the task stays. The scenario ends
    with the goal that completes stage 2 (3000 goals): that step has ``info["scenario_done"]``;
    the next reset starts a new scenario. ``reset(seed=...)`` always starts a new one; a reset
    without a seed continues the current one, as vector envs' auto-reset does.

    On cross_11x11 (``EPISODE_SCENARIOS``) ``scenario=True`` is the seed's cross scenario instead,
    counted in episodes: each episode starts at a random arm end; the food is at the centre for
    episodes 1-1000 (stage 0), then on one arm cell, drawn once from (8,5), (2,5), (5,8), (5,2),
    for episodes 1001-2000 (stage 1). The step that ends episode 2000, goal or timeout, has
    ``info["scenario_done"]``. ``phase`` equals ``stage`` there.

    ``info`` on reset and step: ``room`` (the agent's room); with the scenario also
    ``goals_reached`` (goals in this scenario so far), ``phase``, ``stage``, ``scenario_steps``
    (steps in this scenario so far: the seed's metric at its end) and ``scenario_done``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        map_name: str = "four_rooms_9x9",
        scenario: bool = False,
        max_steps: int | None = None,
        move_cost: float = 0.005,
        stay_cost: float = 0.01,
        floor_colours: int | None = None,
        floor_seed: int = 0,
        goals_per_phase: int = GOALS_PER_PHASE,
        phases_per_stage: int = PHASES_PER_STAGE,
        tile_size: int = 8,
        render_mode: str | None = None,
    ) -> None:
        self.map = grid_map(map_name)
        default_steps, default_colours = _MAP_DEFAULTS[map_name]
        max_steps = default_steps if max_steps is None else max_steps
        floor_colours = default_colours if floor_colours is None else floor_colours
        _check_int("max_steps", max_steps, 1)
        _check_int("floor_colours", floor_colours, 1)
        _check_int("floor_seed", floor_seed, 0)
        _check_int("goals_per_phase", goals_per_phase, 1)
        _check_int("phases_per_stage", phases_per_stage, 1)
        _check_int("tile_size", tile_size, 1)
        _check_cost("move_cost", move_cost)
        _check_cost("stay_cost", stay_cost)
        if not isinstance(scenario, bool):
            raise ValueError(f"scenario must be a bool, got {scenario!r}")
        episode_scenario = EPISODE_SCENARIOS.get(map_name) if scenario else None
        if scenario and episode_scenario is None and (self.map.num_rooms < 2 or not self.map.doors):
            raise ValueError(f"the scenario needs a map with two or more rooms; {map_name} has one")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")

        self.map_name = map_name
        self.scenario = scenario
        self.episode_scenario = episode_scenario
        """The episode-counted scenario of this map (None: the room swap, or no scenario)."""
        self.max_steps = int(max_steps)
        self.move_cost = float(move_cost)
        self.stay_cost = float(stay_cost)
        self.floor_colours = int(floor_colours)
        self.floor_seed = int(floor_seed)
        self.goals_per_phase = int(goals_per_phase)
        self.phases_per_stage = int(phases_per_stage)
        self.tile_size = int(tile_size)
        self.render_mode = render_mode

        self.height, self.width = self.map.height, self.map.width
        self.floor = floor_pattern(self.walls_shape, self.floor_colours, self.floor_seed)
        self.num_channels = FIRST_FLOOR_CHANNEL + self.floor_colours
        self.observation_space = spaces.Box(
            0, 1, (VIEW_SIZE, VIEW_SIZE, self.num_channels), dtype=np.uint8
        )
        self.action_space = spaces.Discrete(len(ACTION_NAMES))

        # Everything but the goal, padded by the view radius: a window is one slice of it.
        pad = _RADIUS
        static = np.zeros(
            (self.height + 2 * pad, self.width + 2 * pad, self.num_channels), dtype=np.uint8
        )
        static[..., WALL] = 1
        static[..., OUT_OF_BOUNDS] = 1
        inner = static[pad : pad + self.height, pad : pad + self.width]
        inner[..., OUT_OF_BOUNDS] = 0
        inner[..., WALL] = self.map.walls
        floor_cells = ~self.map.walls
        for colour in range(self.floor_colours):
            inner[..., FIRST_FLOOR_CHANNEL + colour] = floor_cells & (self.floor == colour)
        self._static = static
        self._walls = self.map.walls.tolist()
        self._floor_cells = [tuple(cell) for cell in np.argwhere(floor_cells).tolist()]

        # State (set by reset)
        self.agent = (0, 0)  # (row, column)
        self.goal = (0, 0)
        self.steps = 0
        self._ended = True
        # the scenario's state
        self.goals_reached = 0
        self.scenario_steps = 0
        self.scenario_episodes = 0
        self.scenario_done = False
        self._task_stage = -1
        self.task_start: tuple[int, int] = (0, 0)
        self.task_goal: tuple[int, int] = (0, 0)
        self.task_rooms: tuple[int, int] = (0, 0)
        self._scenario_started = False
        self._saved_scenario: dict | None = None

    # ----------------------------------------------------------------------------- geometry
    @property
    def walls_shape(self) -> tuple[int, int]:
        return (self.map.height, self.map.width)

    @property
    def agent_pos(self) -> tuple[int, int]:
        """The agent's (x, y) = (column, row)."""
        return (int(self.agent[1]), int(self.agent[0]))

    @property
    def room(self) -> int:
        """The agent's room."""
        return int(self.map.room_of[self.agent])

    @property
    def phase(self) -> int:
        """The scenario's phase: the number of completed blocks of ``goals_per_phase`` goals (an
        episode-counted scenario: its stage, one task each)."""
        if self.episode_scenario is not None:
            return self.stage
        return self.goals_reached // self.goals_per_phase

    @property
    def stage(self) -> int:
        """The scenario's stage (index into ``stage_names``) of the current phase (an
        episode-counted scenario: of the current episode)."""
        if self.episode_scenario is not None:
            return self.episode_scenario.stage_of(max(self.scenario_episodes, 1))
        return min(self.phase // self.phases_per_stage, len(STAGES) - 1)

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The names of the scenario's stages."""
        if self.episode_scenario is not None:
            return self.episode_scenario.stage_names
        return STAGES

    @property
    def scenario_goals(self) -> int | None:
        """Goals that finish the swap scenario (None for an episode-counted one)."""
        if self.episode_scenario is not None:
            return None
        return len(STAGES) * self.phases_per_stage * self.goals_per_phase

    def wall_mask(self) -> np.ndarray:
        """bool [height, width]: the walls."""
        return self.map.walls.copy()

    # ------------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if self.scenario:
            if self._saved_scenario is not None:
                self._load_scenario(self._saved_scenario)
                self._saved_scenario = None
                new_scenario = self.scenario_done or not self._scenario_started
            else:
                new_scenario = seed is not None or not self._scenario_started or self.scenario_done
            if new_scenario:
                self._start_scenario()
            self._begin_scenario_episode()
            self.agent, self.goal = self.task_start, self.task_goal
        else:
            self.agent, self.goal = self._draw_episode()
        self.steps = 0
        self._ended = False
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._ended:
            raise RuntimeError("step() called before reset() or after the episode ended")
        move = int(action)
        if not 0 <= move < len(_MOVES) or move != action:
            raise ValueError(f"action must be an int in 0..{len(_MOVES) - 1}, got {action!r}")
        if move == STAY:
            reward = -self.stay_cost
        else:
            reward = -self.move_cost
            d_row, d_column = _MOVES[move]
            row, column = self.agent[0] + d_row, self.agent[1] + d_column
            if 0 <= row < self.height and 0 <= column < self.width and not self._walls[row][column]:
                self.agent = (row, column)
        self.steps += 1
        terminated = self.agent == self.goal
        if terminated:
            reward += 1.0
        truncated = not terminated and self.steps >= self.max_steps
        self._ended = terminated or truncated
        if self.scenario:
            self.scenario_steps += 1
            if terminated:
                self._goal_reached()
            rule = self.episode_scenario
            if rule is not None and self._ended and self.scenario_episodes >= rule.episodes:
                self.scenario_done = True
        return self._observation(), float(reward), terminated, truncated, self._info()

    def render(self) -> np.ndarray | None:
        """The whole map with the goal and the agent, ``tile_size`` pixels a cell."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array'; this env was made without")
            return None
        frame = self.render_map(self.tile_size, goal=True)
        self._paint(frame, self.agent, _AGENT_RGB, self.tile_size, inset=True)
        return frame

    def render_map(self, tile_size: int = 8, goal: bool = False) -> np.ndarray:
        """uint8 [height * tile_size, width * tile_size, 3]: walls and floor colours, without the
        agent (and without the goal unless ``goal``)."""
        _check_int("tile_size", tile_size, 1)
        palette = np.array(_FLOOR_RGB, dtype=np.uint8)[self.floor % len(_FLOOR_RGB)]
        palette[self.map.walls] = _WALL_RGB
        frame = np.repeat(np.repeat(palette, tile_size, axis=0), tile_size, axis=1)
        if goal:
            self._paint(frame, self.goal, _GOAL_RGB, tile_size, inset=False)
        return frame

    @staticmethod
    def _paint(
        frame: np.ndarray, cell: tuple[int, int], rgb: tuple[int, int, int], tile: int, inset: bool
    ) -> None:
        margin = tile // 4 if inset and tile >= 4 else 0
        top, left = cell[0] * tile + margin, cell[1] * tile + margin
        frame[top : top + tile - 2 * margin, left : left + tile - 2 * margin] = rgb

    # ----------------------------------------------------------------------------- the rules
    def _observation(self) -> np.ndarray:
        row, column = self.agent
        window = self._static[row : row + VIEW_SIZE, column : column + VIEW_SIZE].copy()
        g_row, g_column = self.goal[0] - row + _RADIUS, self.goal[1] - column + _RADIUS
        if 0 <= g_row < VIEW_SIZE and 0 <= g_column < VIEW_SIZE:
            window[g_row, g_column, GOAL] = 1
        return window

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"room": self.room}
        if self.scenario:
            info.update(
                goals_reached=self.goals_reached,
                phase=self.phase,
                stage=self.stage,
                scenario_steps=self.scenario_steps,
                scenario_done=self.scenario_done,
            )
        return info

    def _draw_episode(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Without the scenario: a random start, and a random goal in another room."""
        rng = self.np_random
        start = self._floor_cells[int(rng.integers(len(self._floor_cells)))]
        if self.map.num_rooms > 1:
            room = self.map.room_of[start]
            candidates = [cell for cell in self._floor_cells if self.map.room_of[cell] != room]
        else:
            candidates = [cell for cell in self._floor_cells if cell != start]
        goal = candidates[int(rng.integers(len(candidates)))]
        return start, goal

    @property
    def scenario_state(self) -> dict | None:
        """The scenario's progress, for a checkpoint: goals, steps and finished episodes so far, the
        current task and the env's random stream (None without the scenario). An episode in
        progress is not part of it: it counts neither as an episode nor as a goal, but its steps
        do count."""
        if not self.scenario:
            return None
        return {
            "goals_reached": self.goals_reached,
            "scenario_steps": self.scenario_steps,
            "finished_episodes": self.scenario_episodes - (0 if self._ended else 1),
            "scenario_done": self.scenario_done,
            "started": self._scenario_started,
            "task_stage": self._task_stage,
            "task": [list(self.task_start), list(self.task_goal), list(self.task_rooms)],
            "rng": self.np_random.bit_generator.state,
        }

    @scenario_state.setter
    def scenario_state(self, state: dict | None) -> None:
        """Continue a saved scenario: the next reset, seeded or not, begins a new episode of its
        current task (a new scenario if it had finished)."""
        if state is not None and not self.scenario:
            raise ValueError("this env runs no scenario; its saved state cannot be loaded")
        self._saved_scenario = state

    def _load_scenario(self, state: dict) -> None:
        self.goals_reached = int(state["goals_reached"])
        self.scenario_steps = int(state["scenario_steps"])
        self.scenario_episodes = int(state["finished_episodes"])
        self.scenario_done = bool(state["scenario_done"])
        self._scenario_started = bool(state["started"])
        self._task_stage = int(state["task_stage"])
        start, goal, rooms = state["task"]
        self.task_start, self.task_goal, self.task_rooms = tuple(start), tuple(goal), tuple(rooms)
        self.np_random.bit_generator.state = state["rng"]

    def _start_scenario(self) -> None:
        self.goals_reached = 0
        self.scenario_steps = 0
        self.scenario_episodes = 0
        self.scenario_done = False
        self._scenario_started = True
        self._task_stage = -1
        if self.episode_scenario is None:
            self._draw_task()

    def _begin_scenario_episode(self) -> None:
        """Count the episode; an episode-counted scenario draws its start (every episode) and, when
        a stage begins, the stage's goal."""
        self.scenario_episodes += 1
        rule = self.episode_scenario
        if rule is None:
            return
        rng = self.np_random
        stage = self.stage
        if stage != self._task_stage:
            goals = rule.stage_goals[stage]
            self.task_goal = goals[int(rng.integers(len(goals)))]
            self._task_stage = stage
        self.task_start = rule.starts[int(rng.integers(len(rule.starts)))]
        self.task_rooms = (self.room_at(self.task_start), self.room_at(self.task_goal))

    def room_at(self, cell: tuple[int, int]) -> int:
        """The room of a floor cell."""
        return int(self.map.room_of[cell])

    def _goal_reached(self) -> None:
        self.goals_reached += 1
        if self.episode_scenario is not None:
            return  # an episode-counted scenario ends by its episodes (in step)
        if self.goals_reached >= self.scenario_goals:
            self.scenario_done = True
        elif self.goals_reached % self.goals_per_phase == 0:
            self._draw_task()

    def _draw_task(self) -> None:
        """The start and the goal of the next phase, by the rule of its stage."""
        rng, grid = self.np_random, self.map
        stage = STAGES[self.stage]
        agent_room = int(rng.integers(grid.num_rooms))
        if stage == "door":
            doors = grid.doors_of(agent_room)
            goal = grid.doors[doors[int(rng.integers(len(doors)))]]
            goal_room = int(grid.room_of[goal])
        else:
            if stage == "adjacent_room":
                rooms = grid.adjacent_rooms(agent_room)
            else:
                rooms = tuple(room for room in range(grid.num_rooms) if room != agent_room)
            goal_room = rooms[int(rng.integers(len(rooms)))]
            cells = grid.room_cells[goal_room]
            goal = cells[int(rng.integers(len(cells)))]
        start = grid.starts[agent_room]
        if start is None:
            cells = grid.room_cells[agent_room]
            start = cells[int(rng.integers(len(cells)))]
        self.task_start, self.task_goal = start, goal
        self.task_rooms = (agent_room, goal_room)


# --------------------------------------------------------------------------- registration
def env_id(map_name: str, scenario: bool = False) -> str:
    """The registered id of a map, with or without the scenario."""
    return f"wanderlust/GridWorld-{_MAP_IDS[map_name]}{'-Scenario' if scenario else ''}-v0"


_ID_KWARGS: dict[str, dict[str, Any]] = {
    **{env_id(name): {"map_name": name} for name in MAPS},
    **{env_id(name, True): {"map_name": name, "scenario": True} for name in SCENARIO_MAPS},
}


def is_scenario(env_id: str) -> bool:
    """Whether `env_id` is a registered scenario env (agent and goal move every 100 goals)."""
    return _ID_KWARGS.get(env_id, {}).get("scenario", False)


def _register_ids() -> None:
    for id_, kwargs in _ID_KWARGS.items():
        if id_ not in gym.registry:
            register(id=id_, entry_point=f"{__name__}:GridWorldEnv", kwargs=kwargs)


_register_ids()


# ------------------------------------------------------------------------------ the family
def registered_ids() -> tuple[str, ...]:
    return tuple(sorted(_ID_KWARGS))


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "GridWorld")
    if resolved["max_steps"] is not None:
        _check_int("max_steps", resolved["max_steps"], 1)
    if resolved["floor_colours"] is not None:
        _check_int("floor_colours", resolved["floor_colours"], 1)
    _check_int("floor_seed", resolved["floor_seed"], 0)
    _check_cost("move_cost", resolved["move_cost"])
    _check_cost("stay_cost", resolved["stay_cost"])
    return resolved


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """One gymnasium env (a ``GridWorldEnv``: its step limit is its own, so no ``TimeLimit``);
    its observation is already one uint8 array."""
    if env_id not in _ID_KWARGS:
        raise ValueError(f"{env_id!r} is not a GridWorld id; known: {', '.join(registered_ids())}")
    return gym.make(env_id, render_mode=render_mode, **options)


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    raise ValueError(
        f"envpool has no version of {env_id} (GridWorld is a NumPy env); "
        "use backend='gymnasium' or 'auto'"
    )


def _agent_room(info: dict[str, Any]) -> np.ndarray | None:
    return info.get("room")


def room_reader(env_id: str) -> Callable[[dict[str, Any]], np.ndarray | None]:
    """Every grid world reports the agent's room in ``info["room"]``."""
    return _agent_room


def training_reward(options: dict[str, Any]) -> None:
    """The env's own reward (goal and step costs) is the training reward."""
    return None
