"""Replays of a trained run and the pictures made from them: the numbers behind each picture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wanderlust.intrinsic.base import Rollout
from wanderlust.run import analyze
from wanderlust.run.cli import main
from wanderlust.run.evaluate import BAR_COLOURS, bar_panel, overlay_episode
from wanderlust.run.replay import StepScorer, load_run, play_episodes

pytestmark = pytest.mark.unit

ENV = "MiniGrid-MultiRoom-N2-S4-v0"  # two rooms, reported in info["room"] on the gymnasium backend


def _train(directory, bonus: str, *extra: str):
    run_dir = directory / bonus
    args = ["train", "--env", ENV, "--bonus", bonus, "--preset", "debug", "--frames", "512", "--run-dir", str(run_dir), *extra]
    assert main(args) == 0
    return run_dir


@pytest.fixture(scope="module")
def ride_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("runs"), "ride")


def test_replay_scores_steps_as_a_training_rollout_would(ride_run):
    """StepScorer, one step at a time, gives the bonus that one rollout over the same transitions
    gives through PPO's protocol (reset and observe per step, then reward for the whole rollout)."""
    run = load_run(ride_run, "cpu")
    (episode,) = play_episodes(run, 1, seed=3)
    assert episode.length > 0 and len(episode.intrinsic) == episode.length
    fresh = load_run(ride_run, "cpu").agent.bonus
    obs = torch.as_tensor(np.stack(episode.observations))
    first = obs[:1]
    # the rollout: the auto-reset step that brings the first observation, then the episode
    before = torch.cat([first, obs[:-1]])[:, None]
    after = torch.cat([first, obs[1:]])[:, None]
    actions = torch.tensor([0, *episode.actions])[:, None]
    for t in range(len(actions)):
        fresh.reset(torch.tensor([t == 0]))
        fresh.observe(before[t], actions[t], after[t])
    valid = torch.ones_like(actions, dtype=torch.bool)
    valid[0] = False
    dones = torch.zeros_like(valid)
    dones[-1] = True
    expected = fresh.reward(Rollout(before, after, actions, dones, valid))[1:, 0]
    assert np.allclose(episode.intrinsic, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert episode.intrinsic[0] != 0 or any(episode.intrinsic)  # RIDE pays for changing the view


def test_a_run_trained_on_envpool_replays_on_gymnasium(tmp_path):
    from wanderlust.envs import envpool_installed

    if not envpool_installed():
        pytest.skip("envpool is not installed")
    run = load_run(_train(tmp_path, "rnd", "--backend", "envpool"), "cpu")
    assert run.config.env.backend == "envpool"  # the run's own config, as it trained
    (episode,) = play_episodes(run, 1, record_frames=True)
    assert len(episode.positions) == len(episode.frames) == episode.length + 1


def test_step_scorer_clips_like_ppo():
    class Constant(torch.nn.Module):
        def reset(self, mask): ...
        def observe(self, obs, actions, next_obs): ...
        def reward(self, rollout):
            return torch.full((rollout.num_steps, rollout.num_envs), 7.0)

    scorer = StepScorer(Constant(), torch.device("cpu"), clip=10.0)  # int_reward_clip 1, int_coef 0.1
    obs = np.zeros((7, 7, 3), dtype=np.uint8)
    scorer.start(obs)
    assert scorer.score(obs, 0, obs, False) == 7.0
    assert StepScorer(Constant(), torch.device("cpu"), clip=2.0).score(obs, 0, obs, False) == 2.0


def test_heatmap_counts_every_step_in_the_cell_it_ends_in(ride_run):
    data = analyze.heatmap(load_run(ride_run, "cpu"), episodes=3, layout_seed=5, seed=7)
    episodes = list(play_episodes(load_run(ride_run, "cpu"), 3, layout_seed=5, seed=7))
    assert data.steps == data.visits.sum() == sum(e.length for e in episodes)
    visits = np.zeros_like(data.visits)
    bonus = np.zeros(data.visits.shape)
    for episode in episodes:
        assert episode.positions[0] == episodes[0].positions[0]  # the same layout every episode
        for (x, y), value in zip(episode.positions[1:], episode.intrinsic):
            visits[y, x] += 1
            bonus[y, x] += value
    assert np.array_equal(visits, data.visits)
    seen = visits > 0
    assert np.allclose(data.intrinsic_mean[seen], bonus[seen] / visits[seen])
    assert (data.intrinsic_mean[~seen] == 0).all()
    # only floor the agent can stand on is ever visited: never a wall
    run = load_run(ride_run, "cpu")
    run.env.reset(seed=5)
    walls = np.array([[type(run.base_env.grid.get(x, y)).__name__ == "Wall" for x in range(data.visits.shape[1])]
                      for y in range(data.visits.shape[0])])
    assert walls.any() and not (seen & walls).any()
    assert (data.occupied >= walls).all()  # the crop keeps every wall
    assert data.map_image.shape == (data.visits.shape[0] * analyze.TILE, data.visits.shape[1] * analyze.TILE, 3)


def test_heatmap_command_writes_the_picture(ride_run, tmp_path, capsys):
    out = tmp_path / "heat.png"
    assert main(["analyze", "heatmap", str(ride_run), "--episodes", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "steps over 2 episodes" in printed and str(out) in printed
    import matplotlib.image

    picture = matplotlib.image.imread(out)
    assert picture.shape[0] > 300 and picture.shape[1] > 2 * picture.shape[0] * 0.8  # two panels side by side
    assert picture[..., :3].std() > 0.05  # not blank
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_feature_map_projects_the_bonus_features_of_replayed_states(ride_run, method):
    data = analyze.feature_map(load_run(ride_run, "cpu"), episodes=2, method=method, max_points=60, seed=1)
    assert data.points.shape == (len(data.steps), 2) and 10 <= len(data.points) <= 60
    assert np.isfinite(data.points).all() and data.points.std(0).min() > 0
    assert data.rooms is not None and len(data.rooms) == len(data.points)
    assert set(data.rooms.tolist()) <= {0, 1}
    assert data.feature_space and data.feature_size > 0


def test_pca_keeps_the_geometry_of_planar_features():
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(40, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    points = analyze.project(plane @ basis.T + 5.0, "pca")
    distances = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
    assert np.allclose(distances(points), distances(plane), atol=1e-8)


def test_features_of_a_bonus_without_a_feature_space_is_one_line(tmp_path, capsys):
    run_dir = _train(tmp_path, "count")
    assert main(["analyze", "features", str(run_dir), "--method", "pca", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: the count bonus has no feature space to project"


def test_analyze_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["analyze", "heatmap", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a wanderlust run directory" in err[0]


def test_bar_panel_draws_each_value_to_scale():
    height = 200
    panel = bar_panel(height, [1.0, -0.5, 0.0], [1.0, 1.0, 1.0])
    assert panel.shape[0] == height and panel.dtype == np.uint8
    width = panel.shape[1] // 3

    def rows_of(colour, column):
        band = panel[:, column * width:(column + 1) * width]
        return np.flatnonzero((band == colour).all(-1).any(1))

    full, half, none = (rows_of(BAR_COLOURS[i], i) for i in range(3))
    assert full.min() < 10 and half.min() > full.max()  # up from the baseline, and down from it
    assert abs(len(half) - len(full) / 2) <= 2  # half the value, half the length
    assert len(none) <= 1  # no bar for zero


def test_video_frames_carry_the_bars_of_their_step(ride_run):
    (episode,) = play_episodes(load_run(ride_run, "cpu"), 1, seed=2, record_frames=True)
    frames = list(overlay_episode(episode))
    assert len(frames) == episode.length + 1 == len(episode.frames)
    assert frames[0].shape[1] > episode.frames[0].shape[1] and frames[0].shape[0] == episode.frames[0].shape[0]
    assert np.array_equal(frames[3][:, : episode.frames[3].shape[1]], episode.frames[3])


def test_value_bars_share_a_scale_and_the_bonus_has_its_own():
    from wanderlust.run.replay import Episode

    frame = np.zeros((120, 90, 3), dtype=np.uint8)
    frame[0, 0] = 255
    episode = Episode(frames=[frame] * 2, intrinsic=[0.01], values_ext=[0.001, 0.001], values_int=[10.0, 10.0])
    _, second = overlay_episode(episode)
    assert second.shape[0] == 240  # a small frame is doubled, pixel for pixel
    assert (second[:2, :2] == 255).all() and (second[2:, :2] == 0).all()
    panel = second[:, 2 * frame.shape[1]:]
    width = panel.shape[1] // 3
    heights = [int((panel[:, i * width:(i + 1) * width] == colour).all(-1).any(1).sum()) for i, colour in enumerate(BAR_COLOURS)]
    bonus, value_ext, value_int = heights
    assert bonus == value_int > 20  # each at the top of its own scale
    assert value_ext <= 1  # 1e-4 of V_int's scale: no visible bar


def test_heatmap_on_a_grid_world_covers_its_whole_map(tmp_path):
    run_dir = tmp_path / "grid"
    args = ["train", "--env", "wanderlust/GridWorld-FourRooms9x9-v0", "--bonus", "none", "--preset", "debug",
            "--frames", "256", "--run-dir", str(run_dir)]
    assert main(args) == 0
    run = load_run(run_dir, "cpu")
    data = analyze.heatmap(run, episodes=2, layout_seed=3)
    walls = run.base_env.wall_mask()
    assert data.visits.shape == walls.shape == (9, 9) and data.occupied.all()
    assert data.steps == data.visits.sum() > 0 and not (data.visits[walls] > 0).any()
    assert data.map_image.shape == (9 * analyze.TILE, 9 * analyze.TILE, 3)


def test_change_alignment_counts_changes_near_events():
    report = analyze.ChangeReport(
        changes=[np.array([3, 10, 20]), np.array([5])], events=[np.array([4, 30]), np.array([])],
        lengths=[40, 9], window=1, frames=[])
    assert report.changes_per_episode == 2.0 and report.events_per_episode == 1.0
    assert report.precision == pytest.approx(1 / 4)  # only step 3 is within 1 of an event (4)
    assert report.recall == pytest.approx(1 / 2)  # event 4 has a change at 3; event 30 none
    wide = analyze.ChangeReport(report.changes, report.events, report.lengths, window=10, frames=[])
    assert wide.precision == pytest.approx(3 / 4) and wide.recall == pytest.approx(2 / 2)


def test_minigrid_events_are_key_and_door_changes():
    from types import SimpleNamespace

    import gymnasium as gym
    from minigrid.core.world_object import Key

    from wanderlust.run.replay import EventDetector

    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=0)
    base = env.unwrapped
    run = SimpleNamespace(config=SimpleNamespace(env=SimpleNamespace(id="MiniGrid-DoorKey-5x5-v0")), base_env=base)
    detector = EventDetector(run)
    assert detector.step({}) is False  # the first state
    assert detector.step({}) is False  # nothing changed
    base.carrying = Key("yellow")
    assert detector.step({}) is True and detector.step({}) is False
    door = next(cell for cell in base.grid.grid if cell is not None and cell.type == "door")
    door.is_locked, door.is_open = False, True
    assert detector.step({}) is True
    assert detector.step({"event": np.array([True])}) is True  # PinPad reports its own


def test_context_changes_mark_video_frames():
    from wanderlust.run.evaluate import CHANGE_COLOUR, overlay_episode
    from wanderlust.run.replay import Episode

    frame = np.zeros((400, 400, 3), np.uint8)
    episode = Episode(frames=[frame] * 3, values_ext=[0.0] * 3, values_int=[0.0] * 3, actions=[0, 0],
                      context_changes=[False, True, False])
    frames = list(overlay_episode(episode))
    assert (frames[1][0, 0] == CHANGE_COLOUR).all() and (frames[1][200, 2] == CHANGE_COLOUR).all()
    assert not (frames[0][0, 0] == CHANGE_COLOUR).all() and not (frames[2][0, 0] == CHANGE_COLOUR).all()
