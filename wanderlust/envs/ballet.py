"""Ballet: the memory task of the HCAM paper (Lampinen et al. 2021), as a plain NumPy gymnasium env.

Dancers perform one after another while the agent watches; then the agent is told a dance and must
walk onto the dancer that performed it. The rules follow DeepMind's public pycolab version
(``hierarchical_transformer_memory/pycolab_ballet``) step for step: the timeline, the 13 dances,
the shapes and colours, what the agent sees, when the instruction changes and how the step limit
counts. That version needs pycolab, which does not run under NumPy 2; this one is written from the
rules, not from its code. docs/environments.md ("Ballet") lists where it differs (the observation is
uint8 rather than floats in [0, 1], the instruction is a token id rather than a string, the cell
size is an option).

Ids: ``wanderlust/Ballet-{2,4,8}_delay{16,48}-v0``, the paper's six levels, registered with
gymnasium on import, so ``gymnasium.make`` builds them too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register

from .vector import with_defaults

__all__ = [
    "ACTION_NAMES",
    "BalletEnv",
    "COLOURS",
    "DANCES",
    "DANCE_NAMES",
    "INSTRUCTIONS",
    "LEVELS",
    "SHAPES",
    "SLOTS",
    "choice_frame",
    "InstructionPlane",
    "dance_offsets",
    "default_max_steps",
    "instruction_token",
    "shape_mask",
    "unpack",
]

NAME = "ballet"
ENVPOOL_OBSERVATION_KEY = None
DEFAULT_OPTIONS: dict[str, Any] = {"cell_size": 9, "max_steps": None}
"""Family options: pixels per cell (the paper's 9) and the step limit (None: the level's)."""

# ------------------------------------------------------------------------------------ the room
ROOM_SIZE = 11
"""The room is 11 x 11 cells: a one-cell wall around a 9 x 9 floor."""
VIEW_SIZE = 11
"""The agent sees an 11 x 11-cell window centred on itself."""
AGENT_START = (5, 5)
SLOTS = ((2, 2), (2, 5), (2, 8), (5, 2), (5, 8), (8, 2), (8, 5), (8, 8))
"""(row, column) of the eight places a dancer can stand; each is the centre of a 3 x 3 block of the
floor, and the agent's start is the centre of the ninth."""
DANCE_LENGTH = 16

ACTION_NAMES = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
"""Action i moves the agent one cell this way (north is up, row - 1); dances use the same moves."""
_MOVES = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
_MOVE_OF = dict(zip(ACTION_NAMES, _MOVES))

# The 13 dances of the original, each 16 moves that end where they began and stay within the
# dancer's 3 x 3 block. The order fixes the instruction tokens (token = 1 + index).
DANCES: dict[str, tuple[str, ...]] = {
    name: tuple(moves.split())
    for name, moves in (
        ("circle_cw", "N E S S W W N N E E S S W W N E"),
        ("circle_ccw", "N W S S E E N N W W S S E E N W"),
        ("up_and_down", "N S S N N S S N N S S N N S S N"),
        ("left_and_right", "E W W E E W W E E W W E E W W E"),
        ("diagonal_uldr", "NW SE SE NW NW SE SE NW NW SE SE NW NW SE SE NW"),
        ("diagonal_urdl", "NE SW SW NE NE SW SW NE NE SW SW NE NE SW SW NE"),
        ("plus_cw", "N S E W S N W E N S E W S N W E"),
        ("plus_ccw", "N S W E S N E W N S W E S N E W"),
        ("times_cw", "NE SW SE NW SW NE NW SE NE SW SE NW SW NE NW SE"),
        ("times_ccw", "NW SE SW NE SE NW NE SW NW SE SW NE SE NW NE SW"),
        ("zee", "NE W W E E SW NE SW SW E E W W NE SW NE"),
        ("chevron_down", "NW S SE NE N SW NE SW NE S SW NW N SE NW SE"),
        ("chevron_up", "SE N NW SW S NE SW NE SW N NE SE S NW SE NW"),
    )
}
DANCE_NAMES = tuple(DANCES)

INSTRUCTIONS = ("watch", *DANCE_NAMES)
"""The instruction vocabulary: token 0 is "watch", token 1 + i is ``DANCE_NAMES[i]``."""
WATCH = 0


def instruction_token(word: str) -> int:
    """The token id of "watch" or a dance name."""
    return INSTRUCTIONS.index(word)


@functools.cache
def dance_offsets(name: str) -> np.ndarray:
    """The dance's 16 moves as (row, column) steps, int64 [16, 2] (read-only)."""
    offsets = np.array([_MOVE_OF[move] for move in DANCES[name]], dtype=np.int64)
    offsets.flags.writeable = False
    return offsets


# ------------------------------------------------------------------------------ how things look
SHAPES = (
    "triangle", "empty_square", "plus", "inverse_plus", "ex", "inverse_ex", "circle",
    "empty_circle", "tee", "upside_down_tee", "h", "u", "upside_down_u", "vertical_stripes",
    "horizontal_stripes",
)  # fmt: skip
"""The 15 dancer shapes, named as in the original (the glyphs are our own: ``shape_mask``)."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 128),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "brown": (128, 64, 0),
    "pink": (255, 64, 255),
    "cyan": (0, 255, 255),
    "dark_green": (0, 100, 0),
    "dark_red": (100, 0, 0),
    "dark_blue": (0, 0, 100),
    "olive": (100, 100, 0),
    "teal": (0, 100, 100),
    "lavender": (215, 200, 255),
    "peach": (255, 210, 170),
    "rose": (255, 205, 230),
    "light_green": (200, 255, 200),
    "light_yellow": (255, 255, 200),
}
"""The 19 dancer colours of the original, as RGB."""
AGENT_COLOUR = (255, 255, 255)  # a full white cell
WALL_COLOUR = (40, 40, 40)  # a full dark grey cell
# The floor, and everything outside the room that the agent's window shows, is black.

MIN_CELL_SIZE = 3

# At 3 and 4 px a cell, shapes drawn from their geometry below would coincide (a 3-px disc is a
# plus), so these sizes have their own 15 glyphs, each as close to its name as the pixels allow.
_TINY_GLYPHS = {
    3: {
        "triangle": ".#. ### ###",
        "empty_square": "### #.# ###",
        "plus": ".#. ### .#.",
        "inverse_plus": "#.# ... #.#",
        "ex": "#.# .#. #.#",
        "inverse_ex": ".#. #.# .#.",
        "circle": "### ### ###",
        "empty_circle": "... .#. ...",
        "tee": "### .#. .#.",
        "upside_down_tee": ".#. .#. ###",
        "h": "#.# ### #.#",
        "u": "#.# #.# ###",
        "upside_down_u": "### #.# #.#",
        "vertical_stripes": "#.# #.# #.#",
        "horizontal_stripes": "### ... ###",
    },
    4: {
        "triangle": ".##. .##. #### ####",
        "empty_square": "#### #..# #..# ####",
        "plus": ".##. #### #### .##.",
        "inverse_plus": "#..# .... .... #..#",
        "ex": "#..# .##. .##. #..#",
        "inverse_ex": ".##. #..# #..# .##.",
        "circle": "#### #### #### ####",
        "empty_circle": ".... .##. .##. ....",
        "tee": "#### .##. .##. .##.",
        "upside_down_tee": ".##. .##. .##. ####",
        "h": "#..# #### #### #..#",
        "u": "#..# #..# #..# ####",
        "upside_down_u": "#### #..# #..# #..#",
        "vertical_stripes": "#.#. #.#. #.#. #.#.",
        "horizontal_stripes": "#### .... #### ....",
    },
}


@functools.cache
def shape_mask(shape: str, size: int) -> np.ndarray:
    """Which pixels of a ``size`` x ``size`` cell the shape covers, bool (read-only).

    Drawn from each shape's geometry with bars a third of the cell wide (3 px at the paper's 9),
    so that the 15 shapes stay distinct at every size from 3 up (tested for 3 to 32).
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    if size < MIN_CELL_SIZE:
        raise ValueError(f"cell size must be at least {MIN_CELL_SIZE}, got {size}")
    if size in _TINY_GLYPHS:
        rows = _TINY_GLYPHS[size][shape].split()
        mask = np.array([[pixel == "#" for pixel in row] for row in rows])
    else:
        mask = _GEOMETRY[shape](*_pixel_grid(size))
    mask = np.ascontiguousarray(mask, dtype=bool)
    mask.flags.writeable = False
    return mask


def _pixel_grid(n: int) -> tuple[np.ndarray, ...]:
    """Row and column indices, their offsets from the centre, and the bar widths for size n."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    centre = (n - 1) / 2
    # the plus's arms, the tee's bars, the h's posts: about a third of the cell, and of the cell's
    # parity so that a centred bar is symmetric (3 px at 9, 1 at 5, 2 at 6, 3 at 7)
    bar = min((b for b in range(n % 2 or 2, n, 2)), key=lambda b: abs(b - n / 3))
    rim = max(1, round(2 * n / 9))  # the outlines of the empty square and circle
    return i, j, i - centre, j - centre, bar, rim


def _side_bars(i, j, y, x, bar, rim):
    n = i.shape[0]
    side = min(bar, (n - bar) // 2)  # leave a gap at least as wide as the middle bar
    return (j < side) | (j >= n - side)


def _middle(index: np.ndarray, n: int, width: int) -> np.ndarray:
    start = (n - width) // 2
    return (index >= start) & (index < start + width)


def _plus(i, j, y, x, bar, rim):
    n = i.shape[0]
    return _middle(i, n, bar) | _middle(j, n, bar)


def _ex(i, j, y, x, bar, rim):
    half = (bar - 1) / 2 + 0.01  # diagonals ``bar`` pixels thick (1 at 5, 3 at 9)
    return (np.abs(y - x) <= half) | (np.abs(y + x) <= half)


def _circle(i, j, y, x, bar, rim):
    radius = (i.shape[0] - 1) / 2
    return y**2 + x**2 <= radius**2 + 0.5


def _empty_circle(i, j, y, x, bar, rim):
    radius = (i.shape[0] - 1) / 2
    distance = y**2 + x**2
    return (distance <= radius**2 + 0.5) & (distance > (radius - rim) ** 2 + 0.5)


_GEOMETRY: dict[str, Callable[..., np.ndarray]] = {
    # apex at the top, one more pixel of width every half row
    "triangle": lambda i, j, y, x, bar, rim: np.abs(x) <= (i + 1) / 2,
    "empty_square": lambda i, j, y, x, bar, rim: (
        (np.minimum(i, j) < rim) | (np.maximum(i, j) >= i.shape[0] - rim)
    ),
    "plus": _plus,
    "inverse_plus": lambda *grid: ~_plus(*grid),
    "ex": _ex,
    "inverse_ex": lambda *grid: ~_ex(*grid),
    "circle": _circle,
    "empty_circle": _empty_circle,
    "tee": lambda i, j, y, x, bar, rim: (i < bar) | _middle(j, i.shape[0], bar),
    "upside_down_tee": lambda i, j, y, x, bar, rim: (
        (i >= i.shape[0] - bar) | _middle(j, i.shape[0], bar)
    ),
    "h": lambda i, j, y, x, bar, rim: (
        _side_bars(i, j, y, x, bar, rim) | _middle(i, i.shape[0], bar)
    ),
    "u": lambda i, j, y, x, bar, rim: _side_bars(i, j, y, x, bar, rim) | (i >= i.shape[0] - bar),
    "upside_down_u": lambda i, j, y, x, bar, rim: _side_bars(i, j, y, x, bar, rim) | (i < bar),
    "vertical_stripes": lambda i, j, y, x, bar, rim: j % 2 == 0,
    "horizontal_stripes": lambda i, j, y, x, bar, rim: i % 2 == 0,
}


@functools.cache
def _dancer_sprite(shape: str, colour: str, size: int) -> np.ndarray:
    """uint8 [size, size, 3]: the shape in its colour on the black floor (read-only)."""
    sprite = shape_mask(shape, size)[:, :, None] * np.array(COLOURS[colour], dtype=np.uint8)
    sprite = sprite.astype(np.uint8)
    sprite.flags.writeable = False
    return sprite


@functools.cache
def _padded_room(size: int) -> np.ndarray:
    """The empty room (walls on a black floor) inside a black margin of half a view on every side,
    uint8 [(11 + 10) * size, (11 + 10) * size, 3] (read-only). The agent's view is a plain slice."""
    margin = VIEW_SIZE // 2
    cells = np.zeros((ROOM_SIZE + 2 * margin,) * 2 + (3,), dtype=np.uint8)
    room = cells[margin : margin + ROOM_SIZE, margin : margin + ROOM_SIZE]
    room[[0, -1], :] = WALL_COLOUR
    room[:, [0, -1]] = WALL_COLOUR
    image = np.repeat(np.repeat(cells, size, axis=0), size, axis=1)
    image.flags.writeable = False
    return image


# ------------------------------------------------------------------------------------ levels
LEVELS = tuple((dancers, delay) for delay in (16, 48) for dancers in (2, 4, 8))
"""The paper's six levels, (number of dancers, delay)."""


def level_id(num_dancers: int, delay: int) -> str:
    return f"wanderlust/Ballet-{num_dancers}_delay{delay}-v0"


def default_max_steps(delay: int) -> int:
    """The original's step limit: 320 for delay 16 and 1024 otherwise (the paper uses 16 and 48)."""
    return 320 if delay == 16 else 1024


def choice_frame(num_dancers: int, delay: int) -> int:
    """The frame on which the instruction becomes the target's dance (the reset is frame 1).

    Dancer k makes its 16 moves on frames ``1 + k * (delay + 15)`` to ``16 + k * (delay + 15)``:
    the first dance starts on the reset's own frame, and each later one ``delay`` frames after the
    previous one's last move. The instruction changes ``delay`` frames after the last dance's last
    move, and the agent's action on that frame is still ignored.
    """
    return 1 + num_dancers * (DANCE_LENGTH + delay - 1)


class BalletEnv(gym.Env):
    """
    ## Description

    An 11 x 11 room: a wall around a 9 x 9 floor. The agent starts at the centre, (5, 5) as
    (row, column). ``num_dancers`` dancers (the paper's levels use 2, 4 or 8) stand in as many of
    the eight places (2, 2), (2, 5), (2, 8), (5, 2), (5, 8), (8, 2), (8, 5), (8, 8), drawn at
    random; each has its own shape (of 15), colour (of 19) and dance (of 13, each 16 one-cell
    moves that stay within the dancer's 3 x 3 block and end where they began). One dancer, drawn
    uniformly, is the target.

    **Watch phase.** The dancers perform one at a time, in a random order (dancer k performs k-th;
    their places are shuffled), one move per step. The first dance starts at once: its first move
    is already shown by the observation ``reset`` returns. After each dance comes a pause of
    ``delay`` steps (the last move and the next dance's first move are ``delay`` steps apart).
    After the last dance the same pause runs once more; then the instruction turns from "watch" to
    the target's dance name (on frame ``choice_frame(num_dancers, delay)``, counting the reset as
    frame 1). The agent cannot move during the whole watch phase, nor on the step on which the
    instruction changes: its actions are ignored.

    **Choice phase.** The agent moves; walking onto a dancer ends the episode.

    ## Observation

    A dict:

    - ``image``: uint8 [11 * cell_size, 11 * cell_size, 3], the 11 x 11 cells around the agent,
      each drawn ``cell_size`` pixels wide (the paper's 9 gives 99 x 99). The agent is always the
      centre cell, a full white square; walls are full dark grey (40, 40, 40) cells; the floor and
      everything beyond the walls is black. Dancers are their shape in their colour on black,
      drawn over the agent when they share a cell (the final frame of a choice).
    - ``instruction``: the token id of the instruction, ``Discrete(14)``: 0 = "watch", then the 13
      dance names in ``DANCE_NAMES`` order (1 = "circle_cw", ..., 13 = "chevron_up").

    ## Actions

    | Num | Move      | Num | Move      |
    |-----|-----------|-----|-----------|
    | 0   | north (up)| 4   | south     |
    | 1   | north-east| 5   | south-west|
    | 2   | east      | 6   | west      |
    | 3   | south-east| 7   | north-west|

    One cell in that direction; a move into a wall leaves the agent where it is. Dancers do not
    block: stepping onto one is how the agent chooses. Ignored during the watch phase.

    ## Reward

    1 for walking onto the target, 0 for walking onto any other dancer, 0 on every other step.

    ## Termination

    Walking onto a dancer terminates the episode. The step limit truncates it (reward 0): as in the
    original, ``max_steps`` counts frames with the reset's frame included, so an episode has at most
    ``max_steps - 1`` steps (319 at delay 16, 1023 at delay 48).

    ## Arguments

    ``num_dancers`` (1-8), ``delay`` (>= 1), ``cell_size`` (pixels per cell, >= 3; default 9),
    ``max_steps`` (default 320 for delay 16, else 1024; must leave at least one step of the choice
    phase), ``render_mode`` (None or "rgb_array": ``render()`` draws the whole room, not the
    agent's window, scaled up to at least 9 pixels per cell).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        num_dancers: int = 2,
        delay: int = 16,
        cell_size: int = 9,
        max_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        _check_int("num_dancers", num_dancers, 1, len(SLOTS))
        _check_int("delay", delay, 1)
        _check_int("cell_size", cell_size, MIN_CELL_SIZE)
        if max_steps is None:
            max_steps = default_max_steps(delay)
        choice = choice_frame(num_dancers, delay)
        _check_int("max_steps", max_steps, choice + 1)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.num_dancers = num_dancers
        self.delay = delay
        self.cell_size = cell_size
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.choice_frame = choice

        side = VIEW_SIZE * cell_size
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (side, side, 3), dtype=np.uint8),
                "instruction": spaces.Discrete(len(INSTRUCTIONS)),
            }
        )
        self.action_space = spaces.Discrete(len(ACTION_NAMES))

        self._background = _padded_room(cell_size)
        self._canvas = self._background.copy()
        self._agent_sprite = np.empty((cell_size, cell_size, 3), dtype=np.uint8)
        self._agent_sprite[:] = AGENT_COLOUR
        self._walls = np.zeros((ROOM_SIZE, ROOM_SIZE), dtype=bool)
        self._walls[[0, -1], :] = self._walls[:, [0, -1]] = True
        self._wall_cells = self._walls.tolist()

        # The level (set by reset)
        self.dancer_slots: tuple[tuple[int, int], ...] = ()
        self.dancer_dances: tuple[str, ...] = ()
        self.dancer_shapes: tuple[str, ...] = ()
        self.dancer_colours: tuple[str, ...] = ()
        self.target = -1
        # The state (set by reset, changed by step)
        self.frame = 0  # 0 before the first reset
        self.agent_position = AGENT_START
        self.dancer_positions: list[tuple[int, int]] = []
        self.instruction = WATCH
        self._countdown = 0
        self._next_dancer = 0
        self._dancing = -1
        self._move = 0
        self._ended = True
        self._occupant: list[list[int]] = []
        self._dancer_moves: list[list[tuple[int, int]]] = []
        self._sprites: list[np.ndarray] = []

    # ------------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        n = self.num_dancers
        # The original's draw, in its order: the target, then one shuffle of each list.
        target = int(rng.integers(n))
        slots, dances, colours, shapes = (
            list(SLOTS), list(DANCE_NAMES), list(COLOURS), list(SHAPES)
        )
        for values in (slots, dances, colours, shapes):
            rng.shuffle(values)
        self.target = target
        self.dancer_slots = tuple(slots[:n])
        self.dancer_dances = tuple(dances[:n])
        self.dancer_colours = tuple(colours[:n])
        self.dancer_shapes = tuple(shapes[:n])
        self._dancer_moves = [[_MOVE_OF[move] for move in DANCES[name]] for name in dances[:n]]
        self._sprites = [
            _dancer_sprite(shape, colour, self.cell_size)
            for shape, colour in zip(self.dancer_shapes, self.dancer_colours)
        ]

        self.frame = 0
        self.agent_position = AGENT_START
        self.dancer_positions = list(self.dancer_slots)
        self.instruction = WATCH
        self._countdown = 1  # the first dance starts on the reset's own frame
        self._next_dancer = 0
        self._dancing = -1
        self._move = 0
        self._ended = False
        self._occupant = [[-1] * ROOM_SIZE for _ in range(ROOM_SIZE)]
        self._canvas[...] = self._background
        self._draw_cell(*AGENT_START)
        for index, (row, column) in enumerate(self.dancer_positions):
            self._occupant[row][column] = index
            self._draw_cell(row, column)
        self._advance(None)  # the reset is frame 1, as pycolab's first frame
        return self._observation(), {}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._ended:
            raise RuntimeError("step() called before reset() or after the episode ended")
        move = int(action)
        if not 0 <= move < len(_MOVES) or move != action:
            raise ValueError(f"action must be an int in 0..7, got {action!r}")
        reward, terminated = self._advance(move)
        truncated = not terminated and self.frame >= self.max_steps
        self._ended = terminated or truncated
        return self._observation(), reward, terminated, truncated, {}

    def render(self) -> np.ndarray | None:
        """The whole room (not the agent's window), uint8, at least 9 pixels per cell."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array'; this env was made without")
            return None
        margin = (VIEW_SIZE // 2) * self.cell_size
        side = ROOM_SIZE * self.cell_size
        room = self._canvas[margin : margin + side, margin : margin + side]
        scale = -(-9 // self.cell_size)
        if scale > 1:
            room = np.repeat(np.repeat(room, scale, axis=0), scale, axis=1)
        return room.copy()

    # ----------------------------------------------------------------------------- the rules
    @property
    def phase(self) -> str:
        """"watch" or "choice"."""
        return "watch" if self.instruction == WATCH else "choice"

    def _advance(self, action: int | None) -> tuple[float, bool]:
        """One frame of the original's update order: the agent (or the dance clock), then the
        dancers; returns (reward, terminated)."""
        self.frame += 1
        if self.instruction == WATCH:  # actions are ignored; the clock runs
            if self._countdown > 0:
                self._countdown -= 1
                if self._countdown == 0:
                    if self._next_dancer < self.num_dancers:
                        self._dancing = self._next_dancer
                        self._next_dancer += 1
                        self._move = 0
                    else:
                        self.instruction = 1 + DANCE_NAMES.index(self.dancer_dances[self.target])
        elif action is not None:
            row, column = self.agent_position
            d_row, d_column = _MOVES[action]
            if not self._wall_cells[row + d_row][column + d_column]:
                self.agent_position = (row + d_row, column + d_column)
                self._draw_cell(row, column)
                self._draw_cell(row + d_row, column + d_column)

        dancer = self._dancing
        if dancer >= 0:  # only in the watch phase
            row, column = self.dancer_positions[dancer]
            d_row, d_column = self._dancer_moves[dancer][self._move]
            new_row, new_column = row + d_row, column + d_column
            self.dancer_positions[dancer] = (new_row, new_column)
            self._occupant[row][column] = -1
            self._occupant[new_row][new_column] = dancer
            self._draw_cell(row, column)
            self._draw_cell(new_row, new_column)
            self._move += 1
            if self._move == DANCE_LENGTH:
                self._dancing = -1
                self._countdown = self.delay
        # A dancer that is not dancing ends the episode when the agent stands on it.
        row, column = self.agent_position
        met = self._occupant[row][column]
        if met >= 0 and met != dancer:
            return (1.0 if met == self.target else 0.0), True
        return 0.0, False

    # --------------------------------------------------------------------------- drawing
    def _draw_cell(self, row: int, column: int) -> None:
        """Repaint one room cell on the padded canvas: a dancer over the agent over the room."""
        size = self.cell_size
        top = (row + VIEW_SIZE // 2) * size
        left = (column + VIEW_SIZE // 2) * size
        dancer = self._occupant[row][column] if self._occupant else -1
        if dancer >= 0:
            tile = self._sprites[dancer]
        elif (row, column) == self.agent_position:
            tile = self._agent_sprite
        else:
            tile = self._background[top : top + size, left : left + size]
        self._canvas[top : top + size, left : left + size] = tile

    def _observation(self) -> dict[str, Any]:
        size = self.cell_size
        row, column = self.agent_position
        window = VIEW_SIZE * size
        top, left = row * size, column * size
        image = self._canvas[top : top + window, left : left + window]
        return {"image": image.copy(), "instruction": np.int64(self.instruction)}


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")


# --------------------------------------------------------------------------- registration
_LEVEL_KWARGS = {
    level_id(dancers, delay): {"num_dancers": dancers, "delay": delay} for dancers, delay in LEVELS
}


def _register_levels() -> None:
    for env_id, kwargs in _LEVEL_KWARGS.items():
        if env_id not in gym.registry:
            register(id=env_id, entry_point=f"{__name__}:BalletEnv", kwargs=kwargs)


_register_levels()


# ------------------------------------------------------------------------------ the family
def registered_ids() -> tuple[str, ...]:
    return tuple(sorted(_LEVEL_KWARGS))


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "Ballet")
    _check_int("cell_size", resolved["cell_size"], MIN_CELL_SIZE)
    if resolved["max_steps"] is not None:
        _check_int("max_steps", resolved["max_steps"], 2)
    return resolved


class InstructionPlane(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Packs the dict observation into one uint8 array [H, W, 4]: the image's three channels and a
    fourth holding the instruction token at every pixel (networks read it at pixel [0, 0]).

    PPO's rollout storage, the bonuses and the replay tools all hold observations as one array;
    this is Ballet's, as ``MiniGridImage`` is MiniGrid's. ``gymnasium.make`` gives the dict.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        height, width, _ = env.observation_space["image"].shape
        self.observation_space = spaces.Box(0, 255, (height, width, 4), dtype=np.uint8)

    def observation(self, observation: dict[str, Any]) -> np.ndarray:
        image = observation["image"]
        packed = np.empty((*image.shape[:2], 4), dtype=np.uint8)
        packed[..., :3] = image
        packed[..., 3] = observation["instruction"]
        return packed


def unpack(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images [..., H, W, 3], instruction tokens [...]) of packed observations [..., H, W, 4]."""
    return obs[..., :3], obs[..., 0, 0, 3]


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """One gymnasium env (a ``BalletEnv``; its step limit is its own, so no ``TimeLimit``), its
    observation packed into one array by ``InstructionPlane``."""
    if env_id not in _LEVEL_KWARGS:
        raise ValueError(f"{env_id!r} is not a Ballet id; known: {', '.join(registered_ids())}")
    env = gym.make(
        env_id,
        render_mode=render_mode,
        cell_size=options["cell_size"],
        max_steps=options["max_steps"],
    )
    return InstructionPlane(env)


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    raise ValueError(
        f"envpool has no version of {env_id} (Ballet is a NumPy env); "
        "use backend='gymnasium' or 'auto'"
    )


def room_reader(env_id: str) -> None:
    """Ballet has one room: no room statistics."""
    return None


def training_reward(options: dict[str, Any]) -> None:
    """The env's own reward (0 or 1) is the training reward."""
    return None
