"""Every command end to end on tiny budgets, and every kind of bad input."""

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wanderlust.intrinsic import BONUSES
from wanderlust.run.cli import main
from wanderlust.run.config import preset_names

pytestmark = pytest.mark.smoke

ENV = "MiniGrid-Empty-5x5-v0"


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def train(run_dir: Path, *extra: str) -> int:
    return main(["train", "--env", ENV, "--preset", "debug", "--run-dir", str(run_dir), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "empty"
    assert train(run_dir, "--frames", "1024") == 0
    return run_dir


def test_train_writes_a_complete_run_directory(trained, capsys):
    for name in ("config.yaml", "metrics.csv", "curves.png"):
        assert (trained / name).is_file(), name
    assert any(trained.joinpath("tensorboard").iterdir())
    assert list(trained.joinpath("checkpoints").glob("frames_*.pt"))
    table = rows(trained)
    assert {"frames", "episode_return", "episode_length", "intrinsic_reward", "sps"} <= set(table[0])
    frames = [int(r["frames"]) for r in table]
    assert frames == sorted(frames) and frames[-1] >= 1024


def test_train_prints_the_run_directory(tmp_path, capsys):
    assert train(tmp_path / "run", "--frames", "256", "--bonus", "none") == 0
    assert f"run directory: {tmp_path / 'run'}" in capsys.readouterr().out


def test_resume_appends_without_duplicated_or_missing_rows(tmp_path):
    run_dir = tmp_path / "run"
    assert train(run_dir, "--frames", "600") == 0
    before = rows(run_dir)
    assert main(["train", "--resume", str(run_dir), "--frames", "1200"]) == 0
    after = rows(run_dir)
    assert after[: len(before)] == before
    frames = [int(r["frames"]) for r in after]
    steps = np.diff(frames)
    assert len(set(frames)) == len(frames) and frames[-1] >= 1200
    assert (steps == 4 * 32).all(), "debug preset: one row per iteration of 4 envs × 32 steps"


def test_resume_restores_parameters_and_counters(tmp_path):
    from wanderlust.run import checkpoint

    run_dir = tmp_path / "run"
    assert train(run_dir, "--frames", "600") == 0
    saved = checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))
    assert main(["train", "--resume", str(run_dir), "--frames", "729"]) == 0  # one more iteration
    resumed = checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))
    assert resumed["agent"]["frames"] == saved["agent"]["frames"] + 128
    assert resumed["agent"]["iteration"] == saved["agent"]["iteration"] + 1
    # the optimiser continued from its saved moments rather than starting afresh
    steps_saved = saved["agent"]["optimizer"]["state"][0]["step"]
    assert resumed["agent"]["optimizer"]["state"][0]["step"] > steps_saved > 0


def test_eval_reports_mean_return_and_writes_a_video(trained, tmp_path, capsys):
    video = tmp_path / "agent.mp4"
    assert main(["eval", str(trained), "--episodes", "2", "--video", str(video)]) == 0
    out = capsys.readouterr().out
    assert "mean return" in out and "over 2 episodes" in out
    import imageio.v2 as imageio

    reader = imageio.get_reader(video, format="FFMPEG")
    count = sum(1 for _ in reader)
    assert count > 2
    assert not list(tmp_path.glob(".*tmp*"))


def test_plot_groups_seeds(tmp_path):
    for seed in (1, 2):
        assert train(tmp_path / f"s{seed}", "--frames", "512", "--seed", str(seed)) == 0
    out = tmp_path / "curves.png"
    assert main(["plot", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", str(out), "--metric", "intrinsic_reward"]) == 0
    assert out.stat().st_size > 1000
    from wanderlust.run.plot import curves

    data = curves([tmp_path / "s1", tmp_path / "s2"], "intrinsic_reward")
    (label, curve), = data.items()
    assert curve["runs"] == 2 and ENV in label
    assert (curve["low"] <= curve["mean"] + 1e-9).all() and (curve["mean"] <= curve["high"] + 1e-9).all()


def test_envs_lists_families(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "minigrid" in out and "MiniGrid-MultiRoom-N7-S4-v0" in out


def test_python_api_returns_the_run_directory(tmp_path):
    import wanderlust

    run_dir = wanderlust.train(env=ENV, bonus="none", frames=256, preset="debug", run_dir=tmp_path / "api")
    assert run_dir == tmp_path / "api" and (run_dir / "metrics.csv").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--env", "MiniGrid-DorKey-8x8-v0"], "did you mean MiniGrid-DoorKey-8x8-v0"),
        (["train", "--bonus", "rdn"], "unknown bonus 'rdn'"),
        (["train", "--frames", "-5"], "must be a positive whole number"),
        (["train", "--frames", "lots"], "not a number"),
        (["train", "--set", "ppo.lerning_rate=1"], "unknown config key 'ppo.lerning_rate'"),
        (["train", "--preset", "nosuch"], "unknown preset 'nosuch'"),
        (["train", "--env", "wanderlust/Ballet-2_delay16-v0"], "the rnd bonus reads minigrid, atari, procgen, gridworld observations, not ballet"),
        (["train", "--env", "wanderlust/GridWorld-FourRooms9x9-v0", "--bonus", "icm"], "the icm bonus reads minigrid, atari, procgen observations, not gridworld"),
        (["train", "--set", "ppo.network=ballet"], "ppo.network 'ballet' does not fit minigrid observations"),
        (["train", "--set", "ppo.reconstruction_coef=1"], "ppo.reconstruction_coef needs the ballet network, not 'minigrid'"),
        (["train", "--set", "ppo.reconstruction_coef=-1"], "ppo.reconstruction_coef must not be negative"),
        (["train", "--env", "wanderlust/PinPad-three-v0", "--bonus", "none"], "PPO has no network for pinpad"),
        pytest.param(
            ["train", "--algo", "dreamer", "--env", "ALE/Pong-v5"], "does not read atari observations (4, 96, 96)",
            marks=pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ale-py is not installed"),
        ),
        (["eval", "/nonexistent/run"], "not a wanderlust run directory"),
        (["plot", "/nonexistent/run"], "not a wanderlust run directory"),
        pytest.param(
            ["train", "--track", "wandb"], "needs the wandb package",
            marks=pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed"),
        ),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys, tmp_path):
    code = main([*args, "--run-dir", str(tmp_path / "x")] if args[0] == "train" else args)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_existing_run_directory_is_not_overwritten(trained, capsys):
    before = {p: p.stat().st_mtime_ns for p in trained.rglob("*")}
    assert train(trained, "--frames", "256") == 2
    assert "already exists" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in trained.rglob("*")} == before


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(run_dir, "--frames", "256") == 0
    latest = sorted((run_dir / "checkpoints").glob("frames_*.pt"))[-1]
    latest.write_bytes(b"garbage")
    assert main(["train", "--resume", str(run_dir), "--frames", "512"]) == 2
    assert "not a readable wanderlust checkpoint" in capsys.readouterr().err
    torch.save({"weights": torch.zeros(1)}, latest)
    assert main(["eval", str(run_dir)]) == 2
    assert "is not a wanderlust checkpoint" in capsys.readouterr().err


def test_no_traceback_without_debug_and_traceback_with_it():
    cmd = [sys.executable, "-m", "wanderlust", "train", "--env", "Nope-v0"]
    quiet = subprocess.run(cmd, capture_output=True, text=True, env=_quiet_env())
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    loud = subprocess.run([sys.executable, "-m", "wanderlust", "--debug", *cmd[3:]], capture_output=True, text=True, env=_quiet_env())
    assert loud.returncode != 0 and "Traceback" in loud.stderr


def test_progress_bar_on_a_terminal(tmp_path):
    """On a terminal, training draws a rich progress bar with frames, fps, return and intrinsic
    reward (off a terminal the other tests see plain log lines)."""
    import pty

    cmd = [sys.executable, "-m", "wanderlust", "train", "--env", ENV, "--preset", "debug", "--frames", "1024",
           "--run-dir", str(tmp_path / "tty")]
    leader, follower = pty.openpty()
    process = subprocess.Popen(cmd, stdin=follower, stdout=follower, stderr=follower, env={**_quiet_env(), "COLUMNS": "160"})
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    text = output.decode(errors="replace")
    assert "━" in text and "1024/1024" in text  # rich's bar, complete
    assert "fps" in text and "return" in text and "intrinsic" in text
    assert "frames 1024/1024" not in text  # no plain log line on a terminal
    assert f"run directory: {tmp_path / 'tty'}" in text


def _quiet_env() -> dict:
    # One torch thread per subprocess: the test workers already occupy the cores.
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _wait_for_rows(path: Path, count: int, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") > count:
            return
        time.sleep(0.02)


def test_sigkill_at_any_moment_resumes_cleanly(tmp_path):
    """SIGKILL a training process at several moments (before its first checkpoint, between
    checkpoints, mid-write); every resume must continue with no duplicated or missing rows."""
    import signal
    import time

    run_dir = tmp_path / "killed"
    budget = 5_000
    start = [sys.executable, "-m", "wanderlust", "train", "--env", ENV, "--preset", "debug", "--frames", str(budget),
             "--run-dir", str(run_dir), "--set", "log.checkpoint_interval=3"]
    resume = [sys.executable, "-m", "wanderlust", "train", "--resume", str(run_dir)]
    metrics = run_dir / "metrics.csv"
    # (rows to wait for, extra delay): killed at start-up, then at moments between and during writes
    for attempt, (rows_seen, delay) in enumerate(((0, 0.0), (2, 0.0), (6, 0.013), (11, 0.031), (17, 0.002))):
        assert attempt == 0 or (run_dir / "config.yaml").exists()
        process = subprocess.Popen(start if attempt == 0 else resume, env=_quiet_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if attempt == 0:  # as soon as the run directory exists: before any checkpoint
            deadline = time.monotonic() + 60
            while not (run_dir / "config.yaml").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            _wait_for_rows(metrics, rows_seen)
            time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = subprocess.run(resume, env=_quiet_env(), capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    frames = [int(r["frames"]) for r in rows(run_dir)]
    assert frames[-1] >= budget
    assert len(frames) == len(set(frames)), "no duplicated rows"
    steps = np.diff(frames)
    assert (steps == 128).all(), f"no missing rows: {sorted(set(steps.tolist()))}"
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.parametrize("bonus", sorted(BONUSES))
def test_every_bonus_trains_checkpoints_and_resumes(bonus, tmp_path):
    """Each bonus end to end: train, checkpoint (its networks, optimiser and counts loaded back with
    weights_only=True), resume with a larger budget."""
    run_dir = tmp_path / bonus
    assert main(["train", "--env", ENV, "--bonus", bonus, "--preset", "debug", "--frames", "256", "--run-dir", str(run_dir)]) == 0
    assert main(["train", "--resume", str(run_dir), "--frames", "512"]) == 0
    table = rows(run_dir)
    assert int(table[-1]["frames"]) >= 512 and all(np.isfinite(float(r["intrinsic_reward"])) for r in table)


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_runs_under_debug(preset, tmp_path):
    stack = "debug" if preset == "debug" else f"{preset},debug"
    run_dir = tmp_path / preset
    assert main(["train", "--preset", stack, "--frames", "300", "--run-dir", str(run_dir)]) == 0
    table = rows(run_dir)
    assert table and int(table[-1]["frames"]) >= 300
    if "montezuma" in preset:
        assert "rooms" in table[0] and int(table[-1]["rooms"]) >= 1


def test_track_wandb_logs_every_row(tmp_path, monkeypatch):
    """`--track wandb` hands the resolved config to wandb.init and every metrics row to run.log
    (a stand-in module records the calls; the real wandb would need an account or offline mode)."""
    import importlib.machinery
    import types

    calls = {"init": [], "log": [], "finish": 0}

    class Run:
        def log(self, row, step):
            calls["log"].append((step, row))

        def finish(self):
            calls["finish"] += 1

    fake = types.ModuleType("wandb")
    fake.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    fake.init = lambda **kwargs: calls["init"].append(kwargs) or Run()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    run_dir = tmp_path / "tracked"
    assert train(run_dir, "--frames", "512", "--track", "wandb") == 0
    assert len(calls["init"]) == 1 and calls["init"][0]["config"]["track"] == "wandb"
    assert calls["finish"] == 1
    assert [step for step, _ in calls["log"]] == [int(r["frames"]) for r in rows(run_dir)]
    assert all("sps" in row and "frames" in row for _, row in calls["log"])


@pytest.mark.parametrize("memory", ["hcam", "lstm", "window"])
def test_every_memory_trains_on_ballet_and_resumes(memory, tmp_path):
    run_dir = tmp_path / memory
    args = ["train", "--preset", "hcam_ballet,debug", "--memory", memory, "--frames", "256", "--run-dir", str(run_dir)]
    assert main(args) == 0
    import yaml

    assert yaml.safe_load((run_dir / "config.yaml").read_text())["ppo"]["memory"]["kind"] == memory
    assert main(["train", "--resume", str(run_dir), "--frames", "384"]) == 0
    assert int(rows(run_dir)[-1]["frames"]) >= 384


def test_a_ballet_replay_shows_the_dancers_dancing_and_the_agent_choosing(tmp_path):
    """What `eval --video` draws (replay frames of the whole room): on 2_delay16 the picture changes on
    exactly 31 steps of the watch phase (two dances of 16 moves, the first of which the reset makes,
    as pycolab's first frame; the agent cannot move), and then the agent moves during the choice
    phase; with the HCAM agent and its decoder."""
    from wanderlust.envs.ballet import WATCH, unpack
    from wanderlust.run.evaluate import overlay_episode
    from wanderlust.run.replay import load_run, play_episodes

    run_dir = tmp_path / "ballet"
    assert main(["train", "--preset", "hcam_ballet,debug", "--frames", "256", "--run-dir", str(run_dir)]) == 0
    run = load_run(run_dir, device="cpu")
    assert run.agent.policy.decoder is not None
    (episode,) = play_episodes(run, 1, record_frames=True, score=False)
    run.close()
    changed = [not np.array_equal(a, b) for a, b in zip(episode.frames, episode.frames[1:])]
    watch = [int(unpack(obs)[1]) == WATCH for obs in episode.observations[1:]]  # the instruction after the step
    assert sum(c for c, w in zip(changed, watch) if w) == 31
    assert any(c for c, w in zip(changed, watch) if not w)
    assert len(list(overlay_episode(episode))) == episode.length + 1


@pytest.mark.parametrize("bonus", ["rnd", "count"])
def test_bonuses_that_read_grid_worlds_train_on_one(bonus, tmp_path):
    """PPO with RND is HIMA's exploration baseline on the grid worlds (issue: HIMA)."""
    run_dir = tmp_path / bonus
    args = ["train", "--env", "wanderlust/GridWorld-FourRooms9x9-v0", "--bonus", bonus, "--preset", "debug",
            "--frames", "512", "--run-dir", str(run_dir)]
    assert main(args) == 0
    assert any(float(row["intrinsic_reward"]) > 0 for row in rows(run_dir))


@pytest.mark.parametrize("env,world_model", [("wanderlust/PinPad-three-v0", "flat"), ("MiniGrid-DoorKey-5x5-v0", "thick")])
def test_dreamer_trains_and_resumes(env, world_model, tmp_path, capsys):
    """--algo dreamer end to end on images (PinPad) and on MiniGrid's symbolic view, flat and THICK:
    world model and actor-critic losses logged, checkpoint with replay loaded back with
    weights_only=True."""
    run_dir = tmp_path / "dreamer"
    args = ["train", "--algo", "dreamer", "--world-model", world_model, "--env", env, "--preset", "debug",
            "--frames", "256", "--run-dir", str(run_dir)]
    assert main(args) == 0
    assert main(["train", "--resume", str(run_dir), "--frames", "384"]) == 0
    table = rows(run_dir)
    assert int(table[-1]["frames"]) >= 384
    assert all(np.isfinite(float(table[-1][key])) for key in ("model_loss", "actor_loss", "critic_loss", "kl_loss"))
    assert float(table[-1]["updates"]) > 0 and 0 < float(table[-1]["replay_fill"]) <= 1
    if env.startswith("MiniGrid"):  # eval replays a Dreamer run's policy (PinPad episodes are 2000 steps)
        video = tmp_path / "dreamer.mp4"
        assert main(["eval", str(run_dir), "--episodes", "2", "--video", str(video)]) == 0
        assert "mean return" in capsys.readouterr().out and video.stat().st_size > 0
        picture = tmp_path / "changes.png"
        assert main(["analyze", "changes", str(run_dir), "--episodes", "1", "--out", str(picture)]) == 0
        assert "context changes" in capsys.readouterr().out and picture.stat().st_size > 0
    else:  # a flat world model has no context to show
        assert main(["analyze", "changes", str(run_dir), "--episodes", "1"]) == 2
        assert "--world-model thick" in capsys.readouterr().err
    assert main(["train", "--algo", "dreamer", "--bonus", "rnd", "--env", env, "--run-dir", str(tmp_path / "x")]) == 2
    assert "use --bonus none" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_crafter_logs_achievement_success_rates_and_a_score(tmp_path):
    pytest.importorskip("crafter")
    from wanderlust.envs.crafter import ACHIEVEMENT_KEYS, score_from_metrics

    run_dir = tmp_path / "crafter"
    args = ["train", "--preset", "crafter,debug", "--frames", "192", "--run-dir", str(run_dir),
            "--set", "env.options={length: 20, area: 16}"]
    assert main(args) == 0
    table = rows(run_dir)
    assert set(ACHIEVEMENT_KEYS) <= set(table[0])
    ended = [row for row in table if row["episodes"] != "0"]
    assert ended and all(0.0 <= float(row[key]) <= 1.0 for row in ended for key in ACHIEVEMENT_KEYS)
    assert 0.0 <= score_from_metrics(run_dir) <= 100.0


def test_hima_trains_with_its_switches_resumes_and_refuses_what_it_cannot_run(tmp_path, capsys):
    import yaml

    run_dir = tmp_path / "hima"
    env = "wanderlust/GridWorld-FourRooms9x9-v0"
    assert main(["train", "--algo", "hima", "--env", env, "--frames", "256", "--no-dreaming", "--no-empowerment",
                 "--no-hierarchy", "--run-dir", str(run_dir)]) == 0
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"]["num_envs"] == 1 and config["bonus"] == "none"
    assert config["hima"]["dreaming"] is False and config["hima"]["empowerment"] is False
    assert config["hima"]["hierarchy"] is False
    assert main(["train", "--resume", str(run_dir), "--frames", "384"]) == 0
    table = rows(run_dir)
    assert int(table[-1]["frames"]) >= 384 and all(float(row["intrinsic_reward"]) == 0 for row in table)
    capsys.readouterr()
    for args, message in (
        (["--env", "MiniGrid-Empty-5x5-v0"], "5×5 window"),
        (["--env", env, "--num-envs", "2"], "--num-envs 1"),
        (["--env", env, "--set", "hima.level2.feedback_boost_range=[0.8,0.1]"], "feedback_boost_range"),
    ):
        assert main(["train", "--algo", "hima", *args, "--run-dir", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err and not (tmp_path / "x").exists()
    # Level 2 (on by default) trains and logs its metrics.
    assert main(["train", "--algo", "hima", "--env", env, "--frames", "256", "--no-dreaming",
                 "--run-dir", str(tmp_path / "level2")]) == 0
    assert float(rows(tmp_path / "level2")[-1]["option_length"]) > 0
