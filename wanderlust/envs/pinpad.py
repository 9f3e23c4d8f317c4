"""Visual PinPad: the sequence task of Director (Hafner et al. 2022, "Deep hierarchical planning
from pixels"), as a plain NumPy gymnasium env.

An agent walks on a 16 x 14 grid with three to six coloured pads and is rewarded each time it
steps on the pads in the order 1, 2, ..., n. It sees a 64 x 64 RGB image of the whole grid in which
the pad it stands on lights up and a bar along the bottom shows the pads it touched last. The rules
follow the public code (``embodied/envs/pinpad.py`` of danijar/director and danijar/dreamerv3, and
Director's ``load_single_env`` for the 2000-step episode); this module is written from those rules,
not from that code. docs/environments.md ("Visual PinPad") lists the rules and where we differ.

Ids: ``wanderlust/PinPad-{three,four,five,six}-v0``, registered with gymnasium on import.

Besides the image, every step's ``info`` says which pad the agent stands on (``pad``), whether it
has just stepped onto a pad (``event``: what THICK's context changes are lined up with) and how much
of the target sequence is done (``sequence_progress``).
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register

from .vector import with_defaults

__all__ = [
    "ACTION_NAMES",
    "COUNTDOWN",
    "DEFAULT_MAX_STEPS",
    "LAYOUTS",
    "PAD_COLOURS",
    "PinPadEnv",
    "REWARD",
    "layout_grid",
    "level_id",
]

NAME = "pinpad"
INFO_KEYS = ("pad", "event", "sequence_progress")
"""The env's own info keys that `wanderlust.envs.make` passes through (THICK lines context
changes up with pad events)."""
ENVPOOL_OBSERVATION_KEY = None
DEFAULT_MAX_STEPS = 2000
"""Director's episode length for PinPad (its ``load_single_env``: ``length or 2000``)."""
DEFAULT_OPTIONS: dict[str, Any] = {"max_steps": DEFAULT_MAX_STEPS}

# ------------------------------------------------------------------------------------ the grid
WIDTH, HEIGHT = 16, 14
"""Columns and rows of the grid; the outermost ring of cells is wall."""
CELL = 4
"""Pixels per cell: 16 x 16 cells (the grid and a two-row bar below it) make the 64 x 64 image."""
IMAGE_SIZE = 16 * CELL

# Each layout: pad number -> (first row, last row, first column, last column), inclusive. The
# rectangles are the original's layouts, cell for cell.
LAYOUTS: dict[str, dict[int, tuple[int, int, int, int]]] = {
    "three": {1: (1, 4, 1, 4), 2: (9, 12, 6, 9), 3: (1, 4, 11, 14)},
    "four": {1: (1, 4, 1, 4), 2: (9, 12, 11, 14), 3: (9, 12, 1, 4), 4: (1, 4, 11, 14)},
    "five": {
        1: (2, 5, 1, 3),
        2: (10, 12, 11, 14),
        3: (8, 11, 1, 3),
        4: (1, 3, 11, 14),
        5: (5, 8, 12, 14),
    },
    "six": {
        1: (1, 3, 1, 3),
        2: (10, 12, 12, 14),
        3: (5, 8, 1, 2),
        4: (10, 12, 1, 3),
        5: (1, 3, 12, 14),
        6: (5, 8, 13, 14),
    },
}

PAD_COLOURS: dict[int, tuple[int, int, int]] = {
    1: (255, 0, 0),  # red
    2: (0, 255, 0),  # green
    3: (0, 0, 255),  # blue
    4: (255, 255, 0),  # yellow
    5: (255, 0, 255),  # magenta
    6: (0, 255, 255),  # cyan
}
FLOOR = (255, 255, 255)
FLOOR_CELEBRATING = (223, 255, 223)  # the floor while the countdown after a reward runs
WALL = (192, 192, 192)  # the walls and the bar below the grid
AGENT = (0, 0, 0)

ACTION_NAMES = ("noop", "down", "up", "right", "left")
"""Action i moves the agent one cell this way (down is row + 1), as in the original's order."""
_MOVES = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # (row, column) steps

REWARD = 10.0
"""The reward for completing the sequence."""
COUNTDOWN = 10
"""Steps after a reward until the agent is moved to a random cell and the history is wiped."""
NO_PAD = -1
_WALL_CODE = -2


def pale(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """A pad that is not lit: one tenth of its colour over nine tenths white, rounded down."""
    red, green, blue = ((10 * channel + 90 * 255) // 100 for channel in colour)
    return red, green, blue


def level_id(layout: str) -> str:
    return f"wanderlust/PinPad-{layout}-v0"


@functools.cache
def layout_grid(layout: str) -> np.ndarray:
    """int8 [14, 16]: -2 for wall, 0 for floor, k for a cell of pad k (read-only)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown PinPad layout {layout!r}; known: {', '.join(LAYOUTS)}")
    grid = np.zeros((HEIGHT, WIDTH), dtype=np.int8)
    grid[[0, -1], :] = grid[:, [0, -1]] = _WALL_CODE
    for pad, (top, bottom, left, right) in LAYOUTS[layout].items():
        grid[top : bottom + 1, left : right + 1] = pad
    grid.flags.writeable = False
    return grid


@functools.cache
def _background(layout: str, celebrating: bool, lit: int) -> np.ndarray:
    """uint8 [64, 64, 3]: floor, walls, pads (pad ``lit`` in full colour, the others pale) and the
    empty bar, without the agent (read-only)."""
    grid = layout_grid(layout)
    cells = np.empty((16, 16, 3), dtype=np.uint8)
    cells[:] = FLOOR_CELEBRATING if celebrating else FLOOR
    cells[:HEIGHT][grid == _WALL_CODE] = WALL
    for pad in LAYOUTS[layout]:
        cells[:HEIGHT][grid == pad] = PAD_COLOURS[pad] if pad == lit else pale(PAD_COLOURS[pad])
    cells[HEIGHT:] = WALL
    image = np.repeat(np.repeat(cells, CELL, axis=0), CELL, axis=1)
    image.flags.writeable = False
    return image


class PinPadEnv(gym.Env):
    """
    ## Description

    A 16 x 14 grid (columns x rows) with a wall around it and ``n`` pads (3 to 6: the layouts
    "three", "four", "five" and "six"), each a block of cells in its own colour. The target
    sequence is pad 1, then 2, ..., then n. The env remembers the last ``n`` pads the agent has
    registered: a pad is registered on a step that ends on one of its cells (a no-op included)
    unless it is the last pad registered already, so walking around on one pad, or leaving and
    re-entering it, registers it once. When those ``n`` pads are 1, 2, ..., n, in this order, the
    step gives reward 10 and a countdown of 10 steps starts: the next nine steps give no reward
    whatever the agent does, and on the tenth the agent is put on a random free cell and the
    history is wiped before its action is applied. A wrong pad therefore ends the run of correct
    pads (only pad 1 starts a new one).

    ## Observation

    uint8 [64, 64, 3], the whole grid at 4 pixels a cell, rows 0-13, and below it a grey bar two
    cells high. The floor is white, light green while the countdown runs; walls and the bar are
    grey (192, 192, 192); pads are a pale tint of their colour, and the pad the agent stands on is
    drawn in its full colour (it lights up). The agent is a black cell. The bar shows the
    registered pads, oldest first, as cells of their full colour at columns 1, 3, 5, ... of the
    first bar row.

    ## Actions

    ``Discrete(5)``: 0 no-op, 1 down, 2 up, 3 right, 4 left. A move into a wall leaves the agent
    where it is (and registers nothing, even on a pad).

    ## Reward, termination

    10 on each step that completes the sequence, else 0. Episodes never terminate; they are
    truncated after ``max_steps`` steps (default 2000, Director's).

    ## Info

    ``pad`` (the pad the agent stands on after the step, 1..n, or -1), ``event`` (True when the
    agent stands on a pad it did not stand on before the step: it walked or was put onto it) and
    ``sequence_progress`` (how many pads of the target the registered history ends with, 0..n: n
    from a rewarding step until the history changes or is wiped). ``reset`` gives the same keys.

    ## Arguments

    ``layout`` ("three", "four", "five" or "six"), ``max_steps`` (>= 1, default 2000),
    ``render_mode`` (None or "rgb_array": ``render()`` returns the observation's image).
    ``reset(options={"start": (row, column)})`` puts the agent on that free cell instead of a
    random one.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        layout: str = "three",
        max_steps: int = DEFAULT_MAX_STEPS,
        render_mode: str | None = None,
    ) -> None:
        grid = layout_grid(layout)  # validates the name
        _check_int("max_steps", max_steps, 1)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.layout = layout
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        self.num_pads = len(LAYOUTS[layout])
        self.target = tuple(range(1, self.num_pads + 1))
        self.observation_space = spaces.Box(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(len(ACTION_NAMES))

        self._cells = grid.tolist()
        self._free = [
            (r, c) for r in range(HEIGHT) for c in range(WIDTH) if grid[r, c] != _WALL_CODE
        ]
        # The state (set by reset)
        self.agent_position = self._free[0]
        self.history: list[int] = []
        self.countdown = 0
        self.steps = 0
        self._ended = True
        self._image = np.zeros(self.observation_space.shape, dtype=np.uint8)

    # ------------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        start = (options or {}).get("start")
        if start is None:
            self.agent_position = self._random_free_cell()
        else:
            row, column = (int(value) for value in start)
            inside = 0 <= row < HEIGHT and 0 <= column < WIDTH
            if not inside or self._cells[row][column] == _WALL_CODE:
                raise ValueError(f"start must be a free cell (row, column), got {start!r}")
            self.agent_position = (row, column)
        self.history = []
        self.countdown = 0
        self.steps = 0
        self._ended = False
        self._draw()
        return self._image.copy(), self._info(event=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._ended:
            raise RuntimeError("step() called before reset() or after the episode ended")
        move = int(action)
        if move != action or not 0 <= move < len(_MOVES):
            raise ValueError(f"action must be an int in 0..4, got {action!r}")
        before = self._pad_at(self.agent_position)

        if self.countdown:
            self.countdown -= 1
            if self.countdown == 0:  # the celebration is over: a fresh start somewhere
                self.agent_position = self._random_free_cell()
                self.history.clear()
        row, column = self.agent_position
        d_row, d_column = _MOVES[move]
        target = self._cells[row + d_row][column + d_column]
        if target != _WALL_CODE:
            self.agent_position = (row + d_row, column + d_column)
            if target > 0 and (not self.history or self.history[-1] != target):
                self.history.append(target)
                del self.history[: -self.num_pads]

        reward = 0.0
        if not self.countdown and tuple(self.history) == self.target:
            reward = REWARD
            self.countdown = COUNTDOWN
        self.steps += 1
        truncated = self.steps >= self.max_steps
        self._ended = truncated
        self._draw()
        pad = self._pad_at(self.agent_position)
        entered = pad != NO_PAD and pad != before
        return self._image.copy(), reward, False, truncated, self._info(entered)

    def render(self) -> np.ndarray | None:
        """The observation's image (the original renders exactly what the agent sees)."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array'; this env was made without")
            return None
        return self._image.copy()

    # ----------------------------------------------------------------------------- helpers
    @property
    def sequence_progress(self) -> int:
        """How many of the target's first pads the registered history ends with (0..n)."""
        if not self.history:
            return 0
        last = self.history[-1]  # the target has distinct pads: only k = last can match
        if self.history[-last:] == list(self.target[:last]):
            return last
        return 0

    def _pad_at(self, position: tuple[int, int]) -> int:
        code = self._cells[position[0]][position[1]]
        return code if code > 0 else NO_PAD

    def _random_free_cell(self) -> tuple[int, int]:
        return self._free[int(self.np_random.integers(len(self._free)))]

    def _info(self, event: bool) -> dict[str, Any]:
        return {
            "pad": self._pad_at(self.agent_position),
            "event": bool(event),
            "sequence_progress": self.sequence_progress,
        }

    def _draw(self) -> None:
        image = self._image
        lit = self._pad_at(self.agent_position)
        image[...] = _background(self.layout, bool(self.countdown), lit)
        row, column = self.agent_position
        image[CELL * row : CELL * (row + 1), CELL * column : CELL * (column + 1)] = AGENT
        top = CELL * HEIGHT
        for index, registered in enumerate(self.history):
            left = CELL * (2 * index + 1)
            image[top : top + CELL, left : left + CELL] = PAD_COLOURS[registered]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


# --------------------------------------------------------------------------- registration
_LEVEL_KWARGS = {level_id(layout): {"layout": layout} for layout in LAYOUTS}


def _register_levels() -> None:
    for env_id, kwargs in _LEVEL_KWARGS.items():
        if env_id not in gym.registry:
            register(id=env_id, entry_point=f"{__name__}:PinPadEnv", kwargs=kwargs)


_register_levels()


# ------------------------------------------------------------------------------ the family
def registered_ids() -> tuple[str, ...]:
    return tuple(sorted(_LEVEL_KWARGS))


def resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    resolved = with_defaults(options, DEFAULT_OPTIONS, "PinPad")
    _check_int("max_steps", resolved["max_steps"], 1)
    return resolved


def make_single(env_id: str, options: dict[str, Any], render_mode: str | None = None) -> gym.Env:
    """One gymnasium env (a ``PinPadEnv``; its step limit is its own, so no ``TimeLimit``)."""
    if env_id not in _LEVEL_KWARGS:
        raise ValueError(f"{env_id!r} is not a PinPad id; known: {', '.join(registered_ids())}")
    return gym.make(env_id, render_mode=render_mode, max_steps=options["max_steps"])


def envpool_config(
    env_id: str, options: dict[str, Any], envpool_ids: frozenset[str]
) -> tuple[str, dict[str, Any]]:
    raise ValueError(
        f"envpool has no version of {env_id} (PinPad is a NumPy env); "
        "use backend='gymnasium' or 'auto'"
    )


def room_reader(env_id: str) -> None:
    """PinPad has one room: no room statistics."""
    return None


def training_reward(options: dict[str, Any]) -> None:
    """The env's own reward (0 or 10) is the training reward."""
    return None
