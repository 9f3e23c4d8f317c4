"""`wanderlust play`: keyboard control of an environment in a window, optionally with a run's bonus.

Three layers, so that everything but drawing is testable without a window:

- key maps turn key names (as ``pygame.key.name`` spells them: "left", "space", "p") into action
  indices: MiniGrid's fixed keys, and Atari's arrows and FIRE composed into the game's own actions;
- `PlaySession` owns one rendering environment and, with a run, the run's bonus scoring each step
  through `StepScorer`, exactly as training scores it;
- `run_window` is the pygame loop: it reads keys, steps the session and draws its frame and a
  status line (and, with a run, a sparkline of the last bonuses).

MiniGrid is turn-based (one step per key press); Atari runs in real time at the game's own pace
(60 Hz / frame skip 4 = 15 agent steps a second), taking NOOP while no key is held.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from minigrid.core.actions import Actions

from wanderlust import envs
from wanderlust.run import config as config_module
from wanderlust.run.replay import LoadedRun, StepScorer, load_run
from wanderlust.run.train import RunDirError

TARGET_WINDOW_PIXELS = 800
"""The default scale is the largest integer that keeps the frame's longer side within this."""
SPARKLINE_LENGTH = 50
ATARI_STEPS_PER_SECOND = 15  # ALE's 60 frames a second over the frame skip of 4
IDLE_TICKS_PER_SECOND = 30  # how often a turn-based window polls its keys
QUIT_KEYS = frozenset({"escape", "q"})
RESET_KEY = "r"
HEADLESS_DRIVERS = frozenset({"offscreen", "dummy"})


class DisplayError(ValueError):
    """No window can be opened here. A ValueError, so that the CLI reports it as a user error."""


# --- key maps -------------------------------------------------------------------------------------


class KeyMap(Protocol):
    realtime: bool
    """True: the game advances every tick with `action_for_held`; False: one step per key press."""
    help: str
    """One line naming the keys."""

    def action_for_press(self, key: str) -> int | None: ...

    def action_for_held(self, held: Sequence[str]) -> int: ...


class TurnKeys:
    """A turn-based game: each key press sends one action (holding a key repeats it)."""

    realtime = False

    def __init__(self, actions: Mapping[str, int], help: str) -> None:
        self.actions = dict(actions)
        self.help = f"{help}  r reset  q quit"

    def action_for_press(self, key: str) -> int | None:
        return self.actions.get(key)

    def action_for_held(self, held: Sequence[str]) -> int:
        raise TypeError("a turn-based game steps on key presses only")


def _named(action_names: Sequence[str], keys: Mapping[str, str]) -> dict[str, int]:
    """Key → action index, for actions given by their names in the env's `ACTION_NAMES`."""
    return {key: action_names.index(name) for key, name in keys.items()}


def minigrid_keys() -> TurnKeys:
    """Arrows turn and move forward; space toggles, p picks up, d drops, enter is `done`."""
    actions = {
        "left": int(Actions.left), "right": int(Actions.right), "up": int(Actions.forward),
        "space": int(Actions.toggle), "p": int(Actions.pickup), "d": int(Actions.drop),
        "return": int(Actions.done), "enter": int(Actions.done),  # the keypad's enter too
    }
    return TurnKeys(actions, "left/right turn  up forward  space toggle  p pickup  d drop  enter done")


def ballet_keys() -> TurnKeys:
    """Arrows move N, E, S, W; the roguelike keys y, u, b, n move NW, NE, SW, SE. During the watch
    phase the agent is frozen and any of them just passes a step."""
    from wanderlust.envs.ballet import ACTION_NAMES

    keys = {"up": "N", "right": "E", "down": "S", "left": "W", "y": "NW", "u": "NE", "b": "SW", "n": "SE"}
    return TurnKeys(_named(ACTION_NAMES, keys), "arrows move  y/u/b/n diagonals (NW/NE/SW/SE)")


def gridworld_keys() -> TurnKeys:
    """Arrows move; space stays put (which costs twice a move)."""
    from wanderlust.envs.gridworld import ACTION_NAMES

    keys = {"right": "right", "down": "down", "left": "left", "up": "up", "space": "stay"}
    return TurnKeys(_named(ACTION_NAMES, keys), "arrows move  space stay")


def pinpad_keys() -> TurnKeys:
    """Arrows move; space does nothing for a step (the original's no-op)."""
    from wanderlust.envs.pinpad import ACTION_NAMES

    keys = {"right": "right", "down": "down", "left": "left", "up": "up", "space": "noop"}
    return TurnKeys(_named(ACTION_NAMES, keys), "arrows move  space wait")


class AtariKeys:
    """Arrows and space (FIRE), composed into the game's own actions while they are held.

    ALE names a combined action by its parts in a fixed order: vertical, horizontal, FIRE
    ("UPRIGHTFIRE"). Keys whose part the game lacks are ignored; when the game lacks the whole
    combination of the held keys, the oldest held key is dropped until it has one, so the key
    pressed last always counts.
    """

    realtime = True
    help = "arrows move  space fire (hold several keys to combine)  r reset  q quit"
    PARTS = {"up": "UP", "down": "DOWN", "left": "LEFT", "right": "RIGHT", "space": "FIRE"}

    def __init__(self, action_meanings: Sequence[str]) -> None:
        self.meanings = list(action_meanings)
        self.index = {meaning: i for i, meaning in enumerate(self.meanings)}
        if "NOOP" not in self.index:
            raise ValueError(f"this game has no NOOP action (its actions: {', '.join(self.meanings)})")

    def action_for_press(self, key: str) -> int | None:
        return self.index.get(self.PARTS[key]) if key in self.PARTS else None

    def action_for_held(self, held: Sequence[str]) -> int:
        """The game's action for the held keys, `held` in the order they were pressed."""
        usable = [key for key in held if self.action_for_press(key) is not None]
        while usable:
            action = self.index.get(self._compose(usable))
            if action is not None:
                return action
            usable = usable[1:]
        return self.index["NOOP"]

    def _compose(self, keys: Sequence[str]) -> str:
        parts = set()
        for key in keys:  # of two opposite directions, the later pressed wins
            part = self.PARTS[key]
            opposite = {"UP": "DOWN", "DOWN": "UP", "LEFT": "RIGHT", "RIGHT": "LEFT"}.get(part)
            parts.discard(opposite)
            parts.add(part)
        return "".join(part for part in ("UP", "DOWN", "RIGHT", "LEFT", "FIRE") if part in parts)


# --- the session ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReport:
    """What one step did."""

    action: int
    reward: float  # the env's reward for this step (with a run: the reward the run trained on)
    intrinsic: float | None  # the run's bonus for this step; None without a run
    episode_return: float  # the sum of `reward` over the episode so far
    step: int  # steps taken in this episode, this one included
    done: bool  # the episode ended on this step (terminated or truncated)


def check_playable(env_id: str) -> str:
    """The family of a registered id that can be shown in a window; ValueError (one line) if not."""
    family = envs.env_family(env_id)
    if family == "procgen":
        raise ValueError(
            f"wanderlust play cannot show {env_id}: Procgen runs only on envpool, which does not "
            "render here (MiniGrid, Atari, Ballet, the grid worlds and PinPad can be played)"
        )
    return family


class PlaySession:
    """One environment played step by step, with a run's bonus scoring each step if given.

    Episodes start with `reset()`: the first from the session's seed, the later ones continuing
    the environment's random stream. After a step that ends an episode, `step` refuses until the
    next `reset()`.
    """

    def __init__(self, env: envs.VecEnv, scorer: StepScorer | None = None) -> None:
        self.env = env
        self.scorer = scorer
        self.obs: np.ndarray | None = None
        self.step_count = 0
        self.episode_return = 0.0
        self.episodes = 0
        self.done = False
        self.last: StepReport | None = None

    @classmethod
    def for_env(cls, env_id: str, seed: int = 12345, **options: Any) -> PlaySession:
        """`env_id` with its family's default options; Atari rewards are the raw game score
        (option reward_clip="none") unless `options` says otherwise."""
        if check_playable(env_id) == "atari":
            options.setdefault("reward_clip", "none")
        env = envs.make(env_id, 1, seed, "gymnasium", render=True, **options)
        session = cls(env)
        session.reset()
        return session

    @classmethod
    def for_run(cls, run: LoadedRun) -> PlaySession:
        """The run's own environment (its config's options), its bonus scoring every step."""
        session = cls(run.env, StepScorer.for_run(run) if run.has_bonus else None)
        session.reset()
        return session

    @property
    def family(self) -> str:
        return self.env.family

    @property
    def env_id(self) -> str:
        return self.env.env_id

    @property
    def base_env(self) -> Any:
        """The single unwrapped environment (MiniGrid: `agent_pos`; Atari: `get_action_meanings`)."""
        return self.env.unwrapped.envs[0].unwrapped

    def reset(self) -> None:
        obs, _ = self.env.reset()
        self.obs = obs[0]
        self.step_count = 0
        self.episode_return = 0.0
        self.done = False
        self.last = None
        self.episodes += 1
        if self.scorer is not None:
            self.scorer.start(self.obs)

    def step(self, action: int) -> StepReport:
        if self.done:
            raise RuntimeError("the episode is over; reset() starts the next one")
        next_obs, reward, terminated, truncated, _ = self.env.step(np.array([action]))
        done = bool(terminated[0] or truncated[0])
        intrinsic = None
        if self.scorer is not None:
            intrinsic = self.scorer.score(self.obs, int(action), next_obs[0], done)
        self.obs = next_obs[0]
        self.step_count += 1
        self.episode_return += float(reward[0])
        self.done = done
        self.last = StepReport(int(action), float(reward[0]), intrinsic, self.episode_return, self.step_count, done)
        return self.last

    def frame(self) -> np.ndarray:
        """The current RGB frame, uint8 [H, W, 3]."""
        return np.asarray(self.env.render())[0]

    def close(self) -> None:
        self.env.close()


TURN_KEYS = {"minigrid": minigrid_keys, "ballet": ballet_keys, "gridworld": gridworld_keys, "pinpad": pinpad_keys}


def key_map_for(session: PlaySession) -> KeyMap:
    if session.family == "atari":
        return AtariKeys(session.base_env.get_action_meanings())
    if session.family in TURN_KEYS:
        return TURN_KEYS[session.family]()
    raise ValueError(f"wanderlust play has no keys for the {session.family} family")


def resolve_env_id(env_id: str | None, run_dir: str | Path | None) -> str:
    """The id to play: ENV_ID, or the run's own id; a one-line error when they disagree."""
    if run_dir is None:
        if env_id is None:
            raise ValueError("wanderlust play needs an ENV_ID (or --run RUN_DIR to play a run's env)")
        return env_id
    config_path = Path(run_dir) / "config.yaml"
    if not config_path.is_file():
        raise RunDirError(f"{run_dir} is not a wanderlust run directory (no config.yaml)")
    run_env_id = config_module.load(config_path).env.id
    if env_id is not None and env_id != run_env_id:
        raise ValueError(
            f"ENV_ID {env_id} is not the env of run {run_dir} ({run_env_id}); "
            "omit ENV_ID to play the run's env"
        )
    return run_env_id


def check_display(environ: Mapping[str, str] | None = None, platform: str | None = None) -> None:
    """On Linux, refuses (one line) when no display is set, before anything opens a window."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux") or environ.get("SDL_VIDEODRIVER"):
        return
    if not environ.get("DISPLAY") and not environ.get("WAYLAND_DISPLAY"):
        raise DisplayError(
            "wanderlust play needs a display: none found (neither DISPLAY nor WAYLAND_DISPLAY is set)"
        )


def play(
    env_id: str | None = None,
    run_dir: str | Path | None = None,
    *,
    seed: int = 12345,
    scale: int | None = None,
    device: str = "cpu",
) -> None:
    """Opens a window on `env_id` (or the run's env) and plays it from the keyboard until quit."""
    env_id = resolve_env_id(env_id, run_dir)
    check_playable(env_id)
    check_display()
    if run_dir is not None:
        session = PlaySession.for_run(load_run(run_dir, device, seed))
    else:
        session = PlaySession.for_env(env_id, seed)
    try:
        run_window(session, key_map_for(session), scale=scale)
    finally:
        session.close()


# --- the window -----------------------------------------------------------------------------------


def default_scale(height: int, width: int) -> int:
    return max(1, TARGET_WINDOW_PIXELS // max(height, width))


def status_line(session: PlaySession) -> str:
    last = session.last
    reward = f"{last.reward:+.3g}" if last is not None else "-"
    text = f"episode {session.episodes}  step {session.step_count}  reward {reward}  return {session.episode_return:.4g}"
    if session.scorer is not None:
        bonus = f"{last.intrinsic:.4g}" if last is not None and last.intrinsic is not None else "-"
        text += f"  bonus {bonus}"
    return text


def _import_pygame() -> Any:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        raise ImportError("wanderlust play needs pygame: pip install pygame-ce") from None
    return pygame


def run_window(
    session: PlaySession,
    keys: KeyMap,
    *,
    scale: int | None = None,
    max_ticks: int | None = None,
) -> int:
    """The pygame loop until Esc, q or the window closes (or `max_ticks` ticks); returns the ticks.

    Keys are read from pygame's event queue, so a test can post key events (with
    SDL_VIDEODRIVER=dummy) and bound the loop with `max_ticks`. `r` resets; after an episode ends,
    any other key starts the next one.
    """
    pygame = _import_pygame()
    frame = session.frame()
    scale = scale or default_scale(*frame.shape[:2])
    frame_size = (frame.shape[1] * scale, frame.shape[0] * scale)
    try:
        pygame.display.init()
        if pygame.display.get_driver() in HEADLESS_DRIVERS and not os.environ.get("SDL_VIDEODRIVER"):
            # SDL falls back to drawing nowhere when the display it was given does not answer.
            raise pygame.error(f"the display does not answer (SDL fell back to its {pygame.display.get_driver()} driver)")
        pygame.font.init()
        font = pygame.font.Font(None, 22)
        line_height = font.get_linesize()
        spark_height = 36 if session.scorer is not None else 0
        width = max(frame_size[0], 640)
        screen = pygame.display.set_mode((width, frame_size[1] + 2 * line_height + spark_height + 12))
    except pygame.error as error:
        pygame.display.quit()
        raise DisplayError(f"wanderlust play could not open a window: {error}") from None
    pygame.display.set_caption(f"wanderlust play {session.env_id}")
    if not keys.realtime:
        pygame.key.set_repeat(300, 80)  # holding an arrow keeps walking
    clock = pygame.time.Clock()
    bonuses: deque[float] = deque(maxlen=SPARKLINE_LENGTH)
    held: list[str] = []
    ticks = 0
    try:
        while max_ticks is None or ticks < max_ticks:
            ticks += 1
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    return ticks
                if event.type == pygame.KEYUP:
                    name = pygame.key.name(event.key)
                    if name in held:
                        held.remove(name)
                if event.type != pygame.KEYDOWN:
                    continue
                name = pygame.key.name(event.key)
                if name in QUIT_KEYS:
                    return ticks
                if name == RESET_KEY or session.done:
                    session.reset()
                    held.clear()
                    continue
                if keys.realtime:
                    if name not in held:
                        held.append(name)
                    continue
                action = keys.action_for_press(name)
                if action is not None:
                    _record(session.step(action), bonuses)
            if keys.realtime and not session.done:
                _record(session.step(keys.action_for_held(held)), bonuses)
            _draw(pygame, screen, font, session, keys, scale, frame_size, bonuses)
            clock.tick(ATARI_STEPS_PER_SECOND if keys.realtime else IDLE_TICKS_PER_SECOND)
        return ticks
    finally:
        pygame.display.quit()


def _record(report: StepReport, bonuses: deque[float]) -> None:
    if report.intrinsic is not None:
        bonuses.append(report.intrinsic)


def _draw(pygame: Any, screen: Any, font: Any, session: PlaySession, keys: KeyMap, scale: int,
          frame_size: tuple[int, int], bonuses: deque[float]) -> None:
    screen.fill((0, 0, 0))
    frame = np.ascontiguousarray(session.frame())
    image = pygame.image.frombuffer(frame.tobytes(), (frame.shape[1], frame.shape[0]), "RGB")
    screen.blit(pygame.transform.scale(image, frame_size), (0, 0))
    y = frame_size[1] + 4
    white, grey = (235, 235, 235), (150, 150, 150)
    screen.blit(font.render(status_line(session), True, white), (6, y))
    y += font.get_linesize()
    hint = "episode over: any key starts the next, q quits" if session.done else keys.help
    screen.blit(font.render(hint, True, grey), (6, y))
    y += font.get_linesize() + 4
    if bonuses:
        label = font.render(f"bonus, last {len(bonuses)} steps (top {max(bonuses):.3g})", True, grey)
        screen.blit(label, (6, y + 15 - label.get_height() // 2))
        left = label.get_width() + 18
        _sparkline(pygame, screen, list(bonuses), pygame.Rect(left, y, screen.get_width() - left - 6, 30))
    pygame.display.flip()


def _sparkline(pygame: Any, screen: Any, values: list[float], area: Any) -> None:
    """The last bonuses as bars, scaled to the largest shown; the newest at the right."""
    top = max(max(values), 1e-12)
    bar_width = max(1, area.width // SPARKLINE_LENGTH)
    left = area.right - bar_width * len(values)
    for i, value in enumerate(values):
        height = int(round(area.height * min(max(value / top, 0.0), 1.0)))
        colour = (255, 190, 60) if i == len(values) - 1 else (90, 160, 255)
        pygame.draw.rect(screen, colour, (left + i * bar_width, area.bottom - height, max(1, bar_width - 1), height))
