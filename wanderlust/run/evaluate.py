"""`wanderlust eval`: the mean return of a trained policy, and optionally an mp4 of it playing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wanderlust.run import checkpoint, config as config_module
from wanderlust.run.train import RunDirError, build_agent, resolve_device


def evaluate(
    run_dir: str | Path,
    episodes: int = 10,
    video: str | Path | None = None,
    greedy: bool = False,
    seed: int = 12345,
    device: str = "auto",
) -> dict:
    """Plays `episodes` episodes with the run's latest checkpoint (sampled actions unless greedy).

    With `video`, environment 0 is rendered and its episodes are written to that mp4 file.
    Returns {"mean_return", "std_return", "episodes", "returns", "lengths"}.
    """
    run_dir = Path(run_dir)
    if episodes <= 0:
        raise ValueError(f"--episodes must be positive, got {episodes}")
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a wanderlust run directory (no config.yaml)")
    path = checkpoint.latest(run_dir / "checkpoints")
    if path is None:
        raise RunDirError(f"{run_dir} has no checkpoint yet")
    state = checkpoint.load(path)
    config = config_module.from_dict(state["config"])
    torch_device = resolve_device(device)
    num_envs = 1 if video else min(episodes, 8)
    env, agent = build_agent(config, torch_device, num_envs=num_envs, render=video is not None, seed=seed)
    agent.policy.load_state_dict(state["agent"]["policy"])
    policy = agent.policy.eval()
    frames: list[np.ndarray] = []
    returns: list[float] = []
    lengths: list[int] = []
    try:
        obs, _ = env.reset(seed=seed)
        lstm_state = policy.initial_state(num_envs, torch_device)
        starts = torch.ones(num_envs, dtype=torch.bool, device=torch_device)
        prev_done = np.zeros(num_envs, dtype=bool)
        if video:
            frames.append(np.asarray(env.render())[0])
        while len(returns) < episodes:
            with torch.inference_mode():
                out = policy(torch.from_numpy(np.asarray(obs)).to(torch_device), lstm_state, starts)
                if greedy:
                    actions = out.logits.argmax(-1)
                else:
                    actions = torch.multinomial(torch.softmax(out.logits, -1), 1).squeeze(1)
            lstm_state = out.state
            obs, _, terminated, truncated, info = env.step(actions.cpu().numpy())
            # Next-step auto-reset: the step after an episode's end returns the new first observation.
            starts = torch.as_tensor(prev_done, device=torch_device)
            prev_done = np.asarray(terminated) | np.asarray(truncated)
            if video:
                frames.append(np.asarray(env.render())[0])
            ended = np.asarray(info["episode_done"])
            returns += np.asarray(info["episode_return"])[ended].tolist()
            lengths += np.asarray(info["episode_length"])[ended].tolist()
    finally:
        env.close()
    returns, lengths = returns[:episodes], lengths[:episodes]
    if video:
        write_video(Path(video), frames, fps=30 if config.env.id.startswith("ALE/") else 8)
    return {
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "episodes": len(returns),
        "returns": returns,
        "lengths": lengths,
    }


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Writes frames to an mp4 (H.264 through imageio-ffmpeg), via a temporary file and a rename."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    # H.264 wants even frame sizes; pad by one pixel where needed.
    height, width = frames[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1, format="FFMPEG") as writer:
        for frame in frames:
            writer.append_data(np.pad(frame, pad))
    tmp.replace(path)
