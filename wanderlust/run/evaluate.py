"""`wanderlust eval`: the mean return of a trained policy, and optionally an mp4 of it playing.

The video shows, beside each frame, bars for the bonus the step into that frame earned and for the
policy's two value estimates (extrinsic and intrinsic), with the number written under each. The
bonus bar is scaled to the bonus's largest magnitude in the episode; the two value bars share the
largest magnitude of either value in the episode, so that their heights compare.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from wanderlust.run.replay import Episode, load_run, play_episodes


def evaluate(
    run_dir: str | Path,
    episodes: int = 10,
    video: str | Path | None = None,
    greedy: bool = False,
    seed: int = 12345,
    device: str = "auto",
) -> dict:
    """Plays `episodes` episodes with the run's latest checkpoint (sampled actions unless greedy).

    Episode i starts from `reset(seed=seed + i)`. With `video`, every episode is written to that
    mp4 file with the bonus and value bars beside the frames.
    Returns {"mean_return", "std_return", "episodes", "returns", "lengths"}.
    """
    if episodes <= 0:
        raise ValueError(f"--episodes must be positive, got {episodes}")
    run = load_run(run_dir, device, seed)
    returns: list[float] = []
    lengths: list[int] = []
    fps = 30 if run.config.env.id.startswith("ALE/") else 8
    try:
        with video_writer(Path(video), fps) if video else contextlib.nullcontext() as append:
            played = play_episodes(run, episodes, seed=seed, greedy=greedy, record_frames=bool(video), score=bool(video))
            for episode in played:
                returns.append(episode.episode_return)
                lengths.append(episode.length)
                if append is not None:
                    for frame in overlay_episode(episode):
                        append(frame)
    finally:
        run.close()
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": len(returns),
        "returns": returns,
        "lengths": lengths,
    }


BAR_COLOURS = ((230, 120, 40), (60, 140, 230), (150, 90, 210))  # bonus, V_ext, V_int
MIN_VIDEO_HEIGHT = 300
"""Frames lower than this are scaled up by a whole factor (nearest pixel) in videos."""


def overlay_episode(episode: Episode) -> Iterator[np.ndarray]:
    """The episode's frames, each with a panel of three bars on its right: the bonus earned by the
    step into the frame (none on the first), V_ext and V_int of the frame's state. A frame into
    which THICK's context changed has a yellow border."""
    bonus = [0.0, *episode.intrinsic] if episode.intrinsic else [0.0] * len(episode.frames)
    series = (bonus, episode.values_ext, episode.values_int)
    value_scale = _largest(episode.values_ext + episode.values_int)  # shared, so that the values compare
    scales = [_largest(bonus), value_scale, value_scale]
    for t, frame in enumerate(episode.frames):
        values = [values[t] for values in series]
        scale = max(1, MIN_VIDEO_HEIGHT // frame.shape[0])  # small frames (Ballet's 99 px) grow, pixels kept sharp
        frame = frame.repeat(scale, axis=0).repeat(scale, axis=1)
        if t > 0 and t < len(episode.context_changes) and episode.context_changes[t]:
            frame = mark_change(frame)
        yield np.concatenate([frame, bar_panel(frame.shape[0], values, scales)], axis=1)


CHANGE_COLOUR = (255, 215, 0)


def mark_change(frame: np.ndarray, width: int = 6) -> np.ndarray:
    """The frame inside a yellow border: THICK's context changed into this state."""
    marked = frame.copy()
    marked[:width], marked[-width:], marked[:, :width], marked[:, -width:] = CHANGE_COLOUR, CHANGE_COLOUR, CHANGE_COLOUR, CHANGE_COLOUR
    return marked


def _largest(values: list[float]) -> float:
    return max((abs(v) for v in values), default=0.0) or 1.0


def bar_panel(height: int, values: list[float], scales: list[float]) -> np.ndarray:
    """uint8 [height, width, 3]: one vertical bar per value (value / scale of the bar's height,
    downwards when negative, from a middle baseline), its label and its number underneath."""
    from PIL import Image, ImageDraw, ImageFont

    width = max(120, height // 3)
    image = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(image)
    slot = width // len(values)
    size = max(9, min(height // 40, slot // 6))  # "-0.000123" fits under its bar
    font = ImageFont.load_default(size=size)
    text_height = 2 * size + 8
    top, bottom = 6, height - text_height
    middle = (top + bottom) // 2
    for index, (label, value, scale, colour) in enumerate(zip(("bonus", "V ext", "V int"), values, scales, BAR_COLOURS)):
        left, right = index * slot + slot // 4, (index + 1) * slot - slot // 4
        end = middle - round(np.clip(value / scale, -1, 1) * (middle - top))
        draw.rectangle((left, min(middle, end), right, max(middle, end)), fill=colour)
        draw.line((index * slot + 2, middle, (index + 1) * slot - 2, middle), fill=(120, 120, 120))
        draw.text((index * slot + 3, bottom + 2), label, fill=(220, 220, 220), font=font)
        draw.text((index * slot + 3, bottom + 4 + size), f"{value:.3g}", fill=(220, 220, 220), font=font)
    return np.asarray(image)


@contextlib.contextmanager
def video_writer(path: Path, fps: int) -> Iterator[Callable[[np.ndarray], None]]:
    """Yields `append(frame)`; the mp4 (H.264 through imageio-ffmpeg) is written to a temporary file
    and renamed at the end, so a failed or interrupted eval leaves no half-written video."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1, format="FFMPEG") as writer:

            def append(frame: np.ndarray) -> None:
                height, width = frame.shape[:2]  # H.264 wants even sizes: pad by one pixel where needed
                writer.append_data(np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0))))

            yield append
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
