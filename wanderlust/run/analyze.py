"""`wanderlust analyze`: pictures of where a trained agent goes and what its bonus finds novel.

- `heatmap`: on a grid environment, replays the run's policy on one fixed layout and draws two
  panels over the map: how many steps ended in each cell, and the mean bonus of those steps.
- `features`: a 2-D map (t-SNE or PCA) of the bonus's feature space over the states of replayed
  episodes, coloured by the room each state is in.

Both replay the run's latest checkpoint (or `--checkpoint`) through `wanderlust.run.replay`, so the
bonus scores steps exactly as it did in training. The numbers behind each picture are returned
with it, so that tests and notebooks can read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wanderlust.run.plot import pyplot, save_figure
from wanderlust.run.replay import LoadedRun, play_episodes

TILE = 16  # pixels per cell of the map drawn under a heatmap


@dataclass
class Heatmap:
    """Per-cell statistics over replayed episodes, indexed [y, x] like the picture."""

    visits: np.ndarray  # int64 [H, W]: steps that ended in the cell; sums to `steps`
    intrinsic_mean: np.ndarray  # float [H, W]: mean bonus of those steps; 0 where never visited
    steps: int
    episodes: int
    layout_seed: int
    map_image: np.ndarray  # uint8 [H * TILE, W * TILE, 3]: the layout at the episodes' start
    occupied: np.ndarray  # bool [H, W]: the cells the picture keeps in view (it crops to them)


def heatmap(run: LoadedRun, episodes: int = 20, layout_seed: int = 0, seed: int = 12345) -> Heatmap:
    """Replays `episodes` episodes on the layout of `reset(seed=layout_seed)`.

    A step is counted in the cell the agent stands in after it, with the bonus it earned: the
    bonus scores the state a step leads to (RND and counts score s_{t+1}, RIDE the change into it).
    """
    base = run.base_env
    if not (hasattr(base, "agent_pos") and (hasattr(base, "render_map") or hasattr(base, "grid"))):
        raise ValueError(f"heatmaps need a grid environment (MiniGrid, grid worlds); {run.config.env.id} has no map of cells")
    run.env.reset(seed=layout_seed)
    map_image, occupied = map_layout(base)
    visits = np.zeros((base.height, base.width), dtype=np.int64)
    bonus_sum = np.zeros((base.height, base.width))
    for episode in play_episodes(run, episodes, layout_seed=layout_seed, seed=seed):
        for (x, y), bonus in zip(episode.positions[1:], episode.intrinsic):
            visits[y, x] += 1
            bonus_sum[y, x] += bonus
    mean = np.divide(bonus_sum, visits, out=np.zeros_like(bonus_sum), where=visits > 0)
    return Heatmap(visits, mean, int(visits.sum()), episodes, layout_seed, map_image, occupied)


def map_layout(base) -> tuple[np.ndarray, np.ndarray]:
    """(the map without the agent, uint8 [H·TILE, W·TILE, 3]; bool [H, W], the cells the picture
    keeps in view) of a grid env: one with `render_map` (wanderlust's grid worlds: the whole map),
    or a MiniGrid env (the cells holding an object: MultiRoom leaves much of its map empty)."""
    if hasattr(base, "render_map"):
        return base.render_map(TILE), np.ones((base.height, base.width), dtype=bool)
    occupied = np.array([[base.grid.get(x, y) is not None for x in range(base.width)] for y in range(base.height)])
    return base.grid.render(TILE, (-1, -1)), occupied


def draw_heatmap(data: Heatmap, out: Path, title: str) -> Path:
    from matplotlib.colors import LogNorm


    height, width = data.visits.shape
    extent = (0, width, height, 0)
    visited = data.visits > 0
    fig, axes = pyplot().subplots(1, 2, figsize=(12, 6.2))
    panels = (
        ("state visits (steps ending in the cell)", np.ma.masked_where(~visited, data.visits), "viridis",
         LogNorm(vmin=1, vmax=max(1, data.visits.max()))),
        ("mean intrinsic reward per visit", np.ma.masked_where(~visited, data.intrinsic_mean), "plasma", None),
    )
    for axis, (label, values, cmap, norm) in zip(axes, panels):
        axis.imshow(data.map_image, extent=extent)
        image = axis.imshow(values, extent=extent, cmap=cmap, norm=norm, alpha=0.85, interpolation="nearest")
        fig.colorbar(image, ax=axis, fraction=0.046, pad=0.03)
        axis.set_title(label, fontsize=10)
        if data.occupied.any():  # crop to the built part of the map (MultiRoom leaves much of it empty)
            rows, columns = np.nonzero(data.occupied)
            axis.set_xlim(columns.min(), columns.max() + 1)
            axis.set_ylim(rows.max() + 1, rows.min())
        axis.set_xticks([])
        axis.set_yticks([])
    fig.suptitle(
        f"{title}\n{data.episodes} episodes, {data.steps} steps, on the fixed layout of reset(seed={data.layout_seed})",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, out)


@dataclass
class FeatureMap:
    """A 2-D projection of the bonus's features over replayed states."""

    points: np.ndarray  # float [B, 2]
    rooms: np.ndarray | None  # int [B] (envs that report rooms)
    steps: np.ndarray  # int [B]: each state's step within its episode
    method: str
    feature_space: str
    feature_size: int


def feature_map(
    run: LoadedRun, episodes: int = 10, method: str = "tsne", max_points: int = 2000, seed: int = 12345
) -> FeatureMap:
    """Plays `episodes` episodes and projects the bonus's features of every state they visit (at
    most `max_points`, evenly spaced) to 2-D."""
    if method not in ("tsne", "pca"):
        raise ValueError(f"unknown projection {method!r}; choose tsne or pca")
    if not run.has_bonus:
        raise ValueError(f"{run.run_dir} is a {run.config.algo} run, with no bonus whose features to project")
    bonus = run.agent.bonus
    if bonus.feature_space is None:
        raise ValueError(f"the {bonus.name} bonus has no feature space to project")
    observations, rooms, steps = [], [], []
    for episode in play_episodes(run, episodes, seed=seed, score=False):
        observations += episode.observations
        rooms += episode.rooms
        steps += range(len(episode.observations))
    keep = np.unique(np.linspace(0, len(observations) - 1, min(max_points, len(observations))).round().astype(int))
    device = run.agent.device
    features = torch.cat([
        bonus.features(torch.as_tensor(np.stack([observations[i] for i in chunk]), device=device)).cpu()
        for chunk in np.array_split(keep, max(1, len(keep) // 256))
    ]).double().numpy()
    return FeatureMap(
        project(features, method, seed),
        np.asarray(rooms)[keep] if rooms else None,
        np.asarray(steps)[keep],
        method,
        bonus.feature_space,
        features.shape[1],
    )


def project(features: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """[B, D] → [B, 2]: t-SNE (scikit-learn) or PCA (the top two principal components)."""
    centred = features - features.mean(0)
    if method == "pca" or len(features) < 5:
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points = centred @ components[:2].T
        return np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ImportError("t-SNE needs scikit-learn: pip install 'wanderlust[analysis]', or use --method pca") from None
    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(centred)


def draw_feature_map(data: FeatureMap, out: Path, title: str) -> Path:
    fig, axis = pyplot().subplots(figsize=(7.5, 6.5))
    if data.rooms is not None:
        for index, room in enumerate(np.unique(data.rooms)):
            chosen = data.rooms == room
            axis.scatter(*data.points[chosen].T, s=8, color=f"C{index % 10}", label=f"room {room}")
        axis.legend(fontsize=8, markerscale=2, loc="best")
    else:
        scatter = axis.scatter(*data.points.T, s=8, c=data.steps, cmap="viridis")
        fig.colorbar(scatter, ax=axis, label="step in episode (this env reports no rooms)")
    name = "t-SNE" if data.method == "tsne" else "PCA"
    axis.set_title(f"{title}\n{name} of {data.feature_space} ({data.feature_size}-d), {len(data.points)} states", fontsize=10)
    axis.set_xticks([])
    axis.set_yticks([])
    fig.tight_layout()
    return save_figure(fig, out)


@dataclass
class ChangeReport:
    """THICK's context changes against the environment's events over replayed episodes."""

    changes: list[np.ndarray]  # per episode: steps (state indices) where the context changed
    events: list[np.ndarray]  # per episode: steps where an event happened
    lengths: list[int]
    window: int
    frames: list[np.ndarray]  # the first episode's frames (empty if not recorded)

    @property
    def changes_per_episode(self) -> float:
        return float(np.mean([len(c) for c in self.changes]))

    @property
    def events_per_episode(self) -> float:
        return float(np.mean([len(e) for e in self.events]))

    @property
    def precision(self) -> float:
        """Of all context changes, the fraction within `window` steps of an event (nan: no change)."""
        return _near_fraction(self.changes, self.events, self.window)

    @property
    def recall(self) -> float:
        """Of all events, the fraction within `window` steps of a context change (nan: no event)."""
        return _near_fraction(self.events, self.changes, self.window)


def _near_fraction(points: list[np.ndarray], targets: list[np.ndarray], window: int) -> float:
    near = total = 0
    for mine, theirs in zip(points, targets):
        total += len(mine)
        if len(mine) and len(theirs):
            near += int((np.abs(mine[:, None] - theirs[None, :]).min(1) <= window).sum())
    return near / total if total else float("nan")


def context_changes(run: LoadedRun, episodes: int = 5, window: int = 1, seed: int = 12345) -> ChangeReport:
    """Replays `episodes` episodes of a THICK run (`--world-model thick`) and lines the steps where
    its C-RSSM's context changed (a gate opened into the state) up with the environment's events
    (`replay.EventDetector`: PinPad pads, MiniGrid keys and doors)."""
    if run.config.algo != "dreamer" or run.config.dreamer.world_model != "thick":
        raise ValueError(f"{run.run_dir} has no context to show: context changes need a --world-model thick run")
    changes, events, lengths, frames = [], [], [], []
    for index, episode in enumerate(play_episodes(run, episodes, seed=seed, record_frames=True, score=False)):
        # State 0 is the reset state: its context starts from 0, which is not a change to count.
        changes.append(np.flatnonzero(episode.context_changes[1:]) + 1)
        events.append(np.flatnonzero(episode.events[1:]) + 1)
        lengths.append(episode.length)
        if index == 0:
            frames = episode.frames
    return ChangeReport(changes, events, lengths, window, frames)


def draw_changes(report: ChangeReport, out: Path, title: str, shown: int = 8) -> Path:
    """The first episode's timeline (events and context changes over its steps) above the frames at
    its first `shown` context changes."""
    changes, events = report.changes[0], report.events[0]
    picked = changes[:shown]
    fig = pyplot().figure(figsize=(max(8.0, 1.4 * len(picked)), 4.2))
    grid = fig.add_gridspec(2, max(1, len(picked)), height_ratios=(1, 1.6))
    axis = fig.add_subplot(grid[0, :])
    axis.vlines(events, 0.55, 1.0, color="C1", label=f"events ({len(events)})")
    axis.vlines(changes, 0.0, 0.45, color="C0", label=f"context changes ({len(changes)})")
    axis.set_xlim(0, max(report.lengths[0], 1))
    axis.set_ylim(0, 1)
    axis.set_yticks([])
    axis.set_xlabel("step of the first replayed episode")
    axis.legend(fontsize=8, loc="upper right", ncol=2)
    axis.set_title(f"{title}\n{report.changes_per_episode:.1f} changes and {report.events_per_episode:.1f} events per episode; "
                   f"changes within ±{report.window} of an event: {report.precision:.0%}, events with a change: "
                   f"{report.recall:.0%} ({len(report.changes)} episodes)", fontsize=9)
    for index, step in enumerate(picked):
        image_axis = fig.add_subplot(grid[1, index])
        if report.frames:
            image_axis.imshow(report.frames[step])
        image_axis.set_title(f"step {step}" + (" · event" if np.abs(events - step).min(initial=99) <= report.window else ""), fontsize=8)
        image_axis.axis("off")
    fig.tight_layout()
    return save_figure(fig, out)


def describe(run: LoadedRun) -> str:
    """The picture title: which run, learner or bonus, and checkpoint."""
    config = run.config
    learner = f"bonus {config.bonus}" if config.algo == "ppo" else f"{config.algo} {config.dreamer.world_model}"
    return f"{config.env.id}, {learner}, seed {config.seed}, policy at {run.frames / 1e6:.2f}M frames"
