"""Rooms over training: a thumbnail of each room at first sight, rooms.png, and rooms curves."""

import csv
import io
import importlib.util

import matplotlib.image
import numpy as np
import pytest
import torch
import yaml
from fakes import Corridor
from gymnasium import spaces

from wanderlust.agents.episodes import RoomLog
from wanderlust.agents.ppo import PPO, PPOConfig
from wanderlust.intrinsic import NoBonus
from wanderlust.run import checkpoint
from wanderlust.run import train as train_module
from wanderlust.run.cli import main
from wanderlust.run.plot import curves, plot_rooms, plot_run, rooms_figure, runs_figure

pytestmark = pytest.mark.unit

SIZE = 16


class PixelCorridor(Corridor):
    """The fake corridor with Atari-shaped observations [4, 16, 16] and rooms (position // 2).

    The newest frame of the stack holds a step counter and the env's index, so that two visits to
    one room never look alike; the older frames are a constant 200, unlike any newest frame.
    Remembers (rooms, observations) after every step.
    """

    family = "atari"

    def __init__(self, num_envs: int = 3):
        super().__init__(num_envs=num_envs, length=5, max_steps=12, room_size=2)
        self.single_observation_space = spaces.Box(0, 255, (4, SIZE, SIZE), np.uint8)
        self.clock = 0
        self.history: list[tuple[np.ndarray, np.ndarray]] = []

    def _obs(self) -> np.ndarray:
        obs = np.full((self.num_envs, 4, SIZE, SIZE), 200, dtype=np.uint8)
        obs[:, -1] = 0
        obs[:, -1, 0, 0] = self.clock % 200
        obs[:, -1, 0, 1] = np.arange(self.num_envs)
        obs[:, -1, 1, : self.length + 1] = 0
        obs[np.arange(self.num_envs), -1, 1, self.position] = 100
        return obs

    def step(self, actions):
        self.clock += 1
        obs, reward, terminated, truncated, info = super().step(actions)
        self.history.append((info["room"].copy(), obs.copy()))
        return obs, reward, terminated, truncated, info


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def first_sights(history, num_envs):
    """{room: (newest frame, frames)} read off the env's own history, env 0 first within a step."""
    found = {}
    for step, (rooms, obs) in enumerate(history, start=1):
        for env, room in enumerate(rooms.tolist()):
            if room not in found:
                found[room] = (obs[env, -1], step * num_envs)
    return found


def pixel_agent(env=None):
    torch.manual_seed(0)
    config = PPOConfig(num_steps=16, network="C", epochs=1, minibatches=1)
    return PPO(config, env or PixelCorridor(), NoBonus(), total_frames=10_000, device=torch.device("cpu"))


def through_torch_save(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# ------------------------------------------------------------------ the bookkeeping


def test_room_log_keeps_the_newest_frame_of_the_first_env_to_enter_each_room():
    log = RoomLog(thumbnails=True)
    stack = lambda step: np.stack(  # noqa: E731  [envs=2, 4, 2, 2]; the newest frame is step*10 + env
        [np.stack([np.full((2, 2), 255 - i, np.uint8) for i in range(3)] + [np.full((2, 2), step * 10 + env, np.uint8)])
         for env in range(2)]
    )
    log.observe(np.array([1, 1]), stack(1), frames=2)
    log.observe(np.array([1, 2]), stack(2), frames=4)
    log.observe(np.array([2, 1]), stack(3), frames=6)  # both rooms again: nothing replaced
    log.observe(np.array([3, 3]), stack(4), frames=8)
    assert log.seen == {1, 2, 3} and sorted(log.thumbnails) == [1, 2, 3]
    assert {room: int(image[0, 0]) for room, image in log.thumbnails.items()} == {1: 10, 2: 21, 3: 40}
    assert log.found_at == {1: 2, 2: 4, 3: 8}
    assert all(image.dtype == np.uint8 and image.shape == (2, 2) for image in log.thumbnails.values())

    plain = RoomLog(thumbnails=False)
    plain.observe(np.array([4, 5]), stack(1), frames=2)
    assert plain.seen == {4, 5} and plain.thumbnails == {} and plain.found_at == {}


def test_ppo_keeps_the_observation_of_the_step_each_room_was_first_entered():
    env = PixelCorridor()
    agent = pixel_agent(env)
    agent.collect()
    expected = first_sights(env.history, env.num_envs)
    assert len(expected) >= 2  # the test means something only if rooms were discovered
    assert set(agent.rooms.thumbnails) == set(expected) == agent.rooms_seen
    for room, (image, frames) in expected.items():
        np.testing.assert_array_equal(agent.rooms.thumbnails[room], image)
        assert agent.rooms.found_at[room] == frames
    # Some room was seen again later, looking different (the step counter): the first sight stays.
    revisits = [(room, obs[env_index, -1]) for rooms, obs in env.history for env_index, room in enumerate(rooms.tolist())]
    assert any(not np.array_equal(image, expected[room][0]) for room, image in revisits)

    agent.collect()  # a second rollout replaces nothing already found
    expected = first_sights(env.history, env.num_envs)
    for room, (image, frames) in expected.items():
        np.testing.assert_array_equal(agent.rooms.thumbnails[room], image)
        assert agent.rooms.found_at[room] == frames


def test_minigrid_rooms_are_counted_without_thumbnails():
    torch.manual_seed(0)
    agent = PPO(PPOConfig(num_steps=16, hidden_size=16), Corridor(num_envs=3, room_size=2), NoBonus(), 10_000, torch.device("cpu"))
    agent.collect()
    assert agent.rooms_seen and agent.rooms.thumbnails == {}


def test_thumbnails_survive_a_checkpoint_and_old_checkpoints_still_load():
    agent = pixel_agent()
    agent.collect()
    state = through_torch_save(agent.state_dict())  # what checkpoints hold: weights_only=True loads it
    resumed = pixel_agent()
    resumed.load_state_dict(state)
    assert resumed.rooms_seen == agent.rooms_seen
    assert resumed.rooms.found_at == agent.rooms.found_at
    assert set(resumed.rooms.thumbnails) == set(agent.rooms.thumbnails)
    for room, image in agent.rooms.thumbnails.items():
        np.testing.assert_array_equal(resumed.rooms.thumbnails[room], image)

    del state["room_thumbnails"]  # a checkpoint from before thumbnails
    old = pixel_agent()
    old.load_state_dict(state)
    assert old.rooms_seen == agent.rooms_seen and old.rooms.thumbnails == {}


# ------------------------------------------------------------------ rooms.png


def write_config(run_dir, seed=0, env_id="ALE/MontezumaRevenge-v5", bonus="rnd"):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"env": {"id": env_id}, "bonus": bonus, "seed": seed}))


def test_rooms_png_has_one_panel_per_room_sorted_and_titled(tmp_path):
    rng = np.random.default_rng(0)
    rooms = [11, 0, 7, 1, 3, 2, 5]
    thumbnails = {room: rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8) for room in rooms}
    found_at = {room: 100_000 * room + 36 for room in rooms}
    fig = rooms_figure(thumbnails, found_at, "title")
    assert [ax.get_title() for ax in fig.axes] == [f"room {r}\n{t} frames" for r, t in zip(
        [0, 1, 2, 3, 5, 7, 11], ["36", "100k", "200k", "300k", "500k", "700k", "1.1M"])]
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), thumbnails[2])

    write_config(tmp_path, seed=4)
    out = plot_rooms(tmp_path, thumbnails, found_at, tmp_path / "rooms.png")
    assert out == tmp_path / "rooms.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "rooms.png"]  # no temporary file left
    # 7 rooms: 6 columns of 1.8 in, 2 rows of 2.2 in plus 0.6 in for the title, at 110 dpi.
    assert matplotlib.image.imread(out).shape[:2] == (round(5.0 * 110), round(10.8 * 110))


def test_rooms_figure_title_names_env_bonus_and_seed(tmp_path, monkeypatch):
    titles = []
    real = rooms_figure

    def spy(thumbnails, found_at, title):
        titles.append(title)
        return real(thumbnails, found_at, title)

    monkeypatch.setattr("wanderlust.run.plot.rooms_figure", spy)
    write_config(tmp_path, seed=4)
    plot_rooms(tmp_path, {1: np.zeros((SIZE, SIZE), np.uint8)}, {1: 36}, tmp_path / "rooms.png")
    assert "ALE/MontezumaRevenge-v5" in titles[0] and "rnd" in titles[0] and "seed 4" in titles[0]


def test_train_writes_rooms_png_and_resume_keeps_first_sights(tmp_path, monkeypatch):
    """The whole `train` path with the pixel corridor standing in for an Atari env."""
    monkeypatch.setattr(train_module.envs, "env_family", lambda env_id: "atari")
    monkeypatch.setattr(train_module.envs, "make", lambda *args, **kwargs: PixelCorridor(num_envs=2))
    run_dir = tmp_path / "run"
    settings = {"ppo.network": "C", "ppo.num_steps": 16, "ppo.epochs": 1, "ppo.minibatches": 1, "log.interval": 1,
                "log.checkpoint_interval": 1}
    train_module.train(bonus="none", frames=64, run_dir=run_dir, overrides=settings)
    assert (run_dir / "rooms.png").is_file() and not list(run_dir.glob(".*tmp"))
    first = checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))["agent"]["room_thumbnails"]
    assert first["rooms"] and first["frames"][0] <= 64

    train_module.train(frames=128, resume=run_dir)
    resumed = checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))["agent"]["room_thumbnails"]
    count = len(first["rooms"])
    assert resumed["rooms"][:count] == first["rooms"] and resumed["frames"][:count] == first["frames"]
    with open(run_dir / "metrics.csv", newline="") as handle:
        assert int(list(csv.DictReader(handle))[-1]["rooms"]) == len(resumed["rooms"])


@pytest.mark.smoke
@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ale-py is not installed")
def test_montezuma_run_writes_rooms_png(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--env", "ALE/MontezumaRevenge-v5", "--preset", "debug", "--frames", "64", "--num-envs", "2",
            "--set", "ppo.num_steps=8", "--set", "intrinsic.warmup_steps=0", "--run-dir", str(run_dir)]
    assert main(args) == 0
    with open(run_dir / "metrics.csv", newline="") as handle:
        rooms = int(list(csv.DictReader(handle))[-1]["rooms"])
    columns, rows = min(rooms, 6), -(-rooms // 6)
    height, width = 2.2 * rows + 0.6, max(1.8 * columns, 3.6)
    assert rooms >= 1
    assert matplotlib.image.imread(run_dir / "rooms.png").shape[:2] == (round(height * 110), round(width * 110))


# ------------------------------------------------------------------ rooms curves


def write_run(run_dir, seed, rows, rooms=True):
    """rows: (frames, episode_return or None, rooms)."""
    write_config(run_dir, seed)
    columns = ["frames", "episode_return", "intrinsic_reward"] + (["rooms"] if rooms else [])
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for frames, episode_return, room_count in rows:
            writer.writerow([frames, "" if episode_return is None else episode_return, 0.1] + ([room_count] if rooms else []))
    return run_dir


@pytest.fixture
def two_runs(tmp_path):
    a = write_run(tmp_path / "a", 0, [(100, None, 1), (200, 0, 2), (300, 100, 3), (400, None, 5)])
    b = write_run(tmp_path / "b", 1, [(150, 0, 1), (250, None, 1), (350, 0, 2), (450, 0, 4)])
    return a, b


def test_default_plot_draws_rooms_beside_return_with_the_mean_over_seeds(two_runs):
    a, b = two_runs
    fig = runs_figure([a, b])
    assert [ax.get_ylabel() for ax in fig.axes] == ["episode_return", "rooms discovered (cumulative)"]
    (line,) = fig.axes[1].lines
    frames, mean = line.get_xdata(), line.get_ydata()
    assert frames[0] == 150 and frames[-1] == 400  # the frames both runs cover
    expected = (np.interp(frames, [100, 200, 300, 400], [1, 2, 3, 5]) + np.interp(frames, [150, 250, 350, 450], [1, 1, 2, 4])) / 2
    np.testing.assert_allclose(mean, expected)
    assert fig.axes[1].collections  # the 95 % interval band
    (curve,) = curves([a, b], "rooms").values()
    assert curve["runs"] == 2 and (curve["low"] <= curve["mean"] + 1e-9).all() and (curve["mean"] <= curve["high"] + 1e-9).all()


def test_metric_draws_exactly_that_metric_and_rooms_needs_every_run(two_runs, tmp_path):
    a, b = two_runs
    assert [ax.get_ylabel() for ax in runs_figure([a, b], "intrinsic_reward").axes] == ["intrinsic_reward"]
    assert [ax.get_ylabel() for ax in runs_figure([a, b], "rooms").axes] == ["rooms discovered (cumulative)"]
    no_rooms = write_run(tmp_path / "c", 2, [(100, 0, 0), (200, 1, 0)], rooms=False)
    assert [ax.get_ylabel() for ax in runs_figure([a, no_rooms]).axes] == ["episode_return"]


def test_plot_command_writes_two_panels_and_no_temporary_file(two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "plots" / "curves.png"
    assert main(["plot", str(a), str(b), "--out", str(out)]) == 0
    assert matplotlib.image.imread(out).shape[:2] == (round(4.5 * 120), round(14 * 120))
    assert [p.name for p in out.parent.iterdir()] == ["curves.png"]
    assert main(["plot", str(a), str(b), "--out", str(out), "--metric", "rooms"]) == 0
    assert matplotlib.image.imread(out).shape[:2] == (round(4.5 * 120), round(7 * 120))


def test_end_of_run_curves_include_rooms_when_logged(two_runs, tmp_path):
    a, _ = two_runs
    out = plot_run(a, tmp_path / "a.png")
    assert matplotlib.image.imread(out).shape[1] == round(3 * 4.5 * 110)  # return, intrinsic reward, rooms
    plain = write_run(tmp_path / "c", 2, [(100, 0, 0), (200, 1, 0)], rooms=False)
    assert matplotlib.image.imread(plot_run(plain, tmp_path / "c.png")).shape[1] == round(2 * 4.5 * 110)
