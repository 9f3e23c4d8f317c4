"""Training throughput of PPO+RND, against its bound and against stable-baselines3's plain PPO.

For each setting (MiniGrid-DoorKey-8x8 and Montezuma's Revenge, 16 envs × 128 steps) it measures,
side by side in one run:

- end to end: `PPO.iterate()` (collect + RND reward + GAE + PPO update + RND update), in frames/s;
- the environment alone: the same env, backend and number of envs stepped with random actions;
- the network passes alone: the same agent's work with no environment (T + 1 acting forward passes
  on stored observations, `bonus.reward`, `advantages`, `update`, `bonus.update`);
- the bound: frames / (environment-alone time + network-alone time), and end to end as % of it;
- peak memory (peak RSS of the process that ran end to end);
- stable-baselines3 PPO with no bonus, the same encoder, head width and PPO settings.

Each measurement runs in a fresh subprocess (this script with `--child`), so that imports, caches
and peak memory do not mix: end to end (with the network passes alone interleaved, iteration by
iteration, in the same warm process), the environment alone, and each SB3 run. A repeat runs them
one after another, and speeds are compared as ratios within a repeat. Tables report the median over
repeats and the min–max.

    python benchmarks/throughput.py --setting all
    python benchmarks/throughput.py --setting doorkey --threads 1 --markdown doorkey.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

SETTINGS = ("doorkey", "montezuma")
DEFAULT_ITERATIONS = {"doorkey": 5, "montezuma": 2}
MONTEZUMA_WARMUP_STEPS = 128
"""Random-action warm-up steps per env on Montezuma (the preset's 6400 would take minutes; warm-up
is never timed, it only sets the observation statistics)."""
CHILD_TIMEOUT_S = 3600
SB3_DOORKEY_FPS_REFERENCE = 7_000
CLEANRL_MONTEZUMA_FPS_REFERENCE = 180


# --------------------------------------------------------------------------- configurations
def setting_config(setting: str):
    from wanderlust.run.config import resolve

    if setting == "doorkey":
        return resolve(
            values={"env": {"id": "MiniGrid-DoorKey-8x8-v0", "num_envs": 16}, "bonus": "rnd"},
            overrides=["ppo.num_steps=128", "ppo.epochs=4"],
        )
    if setting == "montezuma":
        return resolve(
            ["rnd_montezuma"],
            values={"env": {"num_envs": 16}},
            overrides=[f"intrinsic.warmup_steps={MONTEZUMA_WARMUP_STEPS}"],
        )
    raise ValueError(f"unknown setting {setting!r}")


def child_config(args: argparse.Namespace):
    config = setting_config(args.setting)
    if args.backend != "auto":
        config.env.backend = args.backend
    config.device = "cpu"
    return config


def frames_per_iteration(config) -> int:
    return config.ppo.num_steps * config.env.num_envs


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------- measurements (children)
def measure_end_to_end(args: argparse.Namespace) -> dict:
    """build_agent, warm-up and one untimed iteration, then N timed `iterate()` calls, each followed
    by one timed pass of the network work alone on the rollout it just collected
    (`measure_network`): both run in the same warm process, side by side in time, so that load from
    other processes hits them alike. The network work is a subset of an iteration's, so it does not
    raise the peak memory, which is that of training end to end.
    """
    import numpy as np
    import torch

    from wanderlust.run.train import build_agent

    config = child_config(args)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    env, agent = build_agent(config, torch.device("cpu"))
    times, network = [], []
    try:
        agent.warmup()
        agent.iterate()
        for _ in range(args.iterations):
            start = time.perf_counter()
            agent.iterate()
            times.append(time.perf_counter() - start)
            network.append(measure_network(agent, 1))
    finally:
        env.close()
    return {
        "seconds": sum(times),
        "iteration_seconds": times,
        "frames": args.iterations * frames_per_iteration(config),
        "backend": env.backend,
        "torch_threads": torch.get_num_threads(),
        "peak_mib": peak_rss_mib(),
        "network": {
            "seconds": sum(n["seconds"] for n in network),
            "iteration_seconds": [n["seconds"] for n in network],
            "phases": {name: sum(n["phases"][name] for n in network) for name in NETWORK_PHASES},
            "frames": sum(n["frames"] for n in network),
        },
    }


def measure_env(args: argparse.Namespace) -> dict:
    """The same env (id, options, backend, num_envs) stepped with random actions, no learner."""
    import numpy as np

    from wanderlust import envs

    config = child_config(args)
    env = envs.make(config.env.id, config.env.num_envs, config.seed, config.env.backend, **config.env.options)
    try:
        steps = config.ppo.num_steps
        rng = np.random.default_rng(config.seed)
        actions = rng.integers(0, int(env.single_action_space.n), size=((args.iterations + 1) * steps, env.num_envs))
        env.reset(seed=config.seed)
        for t in range(steps):  # one untimed rollout's worth, as end to end has
            env.step(actions[t])
        start = time.perf_counter()
        for t in range(steps, len(actions)):
            env.step(actions[t])
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "frames": args.iterations * steps * env.num_envs,
            "backend": env.backend,
            "peak_mib": peak_rss_mib(),
        }
    finally:
        env.close()


NETWORK_PHASES = ("acting", "rnd_reward", "advantages", "ppo_update", "rnd_update")


def measure_network(agent, iterations: int) -> dict:
    """Everything `iterate()` computes with networks, on the agent's last rollout, no env steps.

    Per timed iteration: T + 1 acting forward passes (with action sampling) on the stored batches
    of N observations, then `bonus.reward`, `advantages`, `update` and `bonus.update`.
    """
    import torch

    steps = agent.config.num_steps
    phases = {name: 0.0 for name in NETWORK_PHASES}
    for _ in range(iterations):
        start = time.perf_counter()
        with torch.inference_mode():
            state = agent.initial_core_state
            for t in range(steps + 1):
                out = agent.policy(agent.obs[t], state, agent.episode_start[t])
                state = out.state
                if t < steps:
                    log_probs = torch.log_softmax(out.logits, dim=-1)
                    actions = torch.multinomial(log_probs.exp(), 1).squeeze(1)
                    log_probs.gather(1, actions[:, None])
        acted = time.perf_counter()
        rollout = agent.rollout()
        intrinsic = agent.bonus.reward(rollout)
        rewarded = time.perf_counter()
        advantages, returns_ext, returns_int = agent.advantages(intrinsic)
        estimated = time.perf_counter()
        agent.update(advantages, returns_ext, returns_int)
        updated = time.perf_counter()
        agent.bonus.update(rollout)
        done = time.perf_counter()
        for name, seconds in zip(
            NETWORK_PHASES,
            (acted - start, rewarded - acted, estimated - rewarded, updated - estimated, done - updated),
        ):
            phases[name] += seconds
    return {
        "seconds": sum(phases.values()),
        "phases": phases,
        "frames": iterations * steps * agent.num_envs,
    }


def _sb3_classes():
    """The SB3 pieces, defined only in the child that needs them (SB3 is an optional dependency)."""
    import gymnasium as gym
    import numpy as np
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import VecEnv

    from wanderlust.nets.atari import ATARI_MODELS
    from wanderlust.nets.minigrid import MiniGridEncoder

    class WanderlustEncoder(BaseFeaturesExtractor):
        """wanderlust's policy encoder as SB3's features extractor (SB3 may hand it channels-first
        images: VecTransposeImage turns MiniGrid's [7, 7, 3] grids into [3, 7, 7])."""

        def __init__(self, observation_space: gym.spaces.Box, network: str, obs_shape: tuple, hidden_size: int):
            obs_shape = tuple(obs_shape)
            if network == "minigrid":
                encoder = MiniGridEncoder(obs_shape, hidden_size)
            else:
                encoder = ATARI_MODELS[network](obs_shape)
            super().__init__(observation_space, encoder.output_size)
            self.encoder = encoder
            self.transposed = tuple(observation_space.shape) != obs_shape
            if self.transposed and tuple(observation_space.shape) != (obs_shape[2], obs_shape[0], obs_shape[1]):
                raise ValueError(f"unexpected SB3 observation shape {observation_space.shape} for {obs_shape}")

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            if self.transposed:
                obs = obs.permute(0, 2, 3, 1)
            return self.encoder(obs)

    class WanderlustVecEnv(VecEnv):
        """SB3's VecEnv API over `wanderlust.envs.make` (for SB3 on the same env and backend).

        wanderlust's envs auto-reset on the step after a done (next-step); SB3 expects the reset
        observation on the done step itself. Here the done step reports done with its final
        observation as `terminal_observation` and returns that final observation, and the next
        step (whose action the env ignores) returns the new episode's first one with reward 0.
        SB3 thus sees one extra transition per episode; frames and work per frame are unchanged.
        """

        def __init__(self, env):
            self.env = env
            super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
            self._actions = None

        def reset(self):
            seed = self._seeds[0]
            obs, _ = self.env.reset(seed=seed)
            self._reset_seeds()
            return obs

        def step_async(self, actions) -> None:
            self._actions = np.asarray(actions)

        def step_wait(self):
            obs, reward, terminated, truncated, _ = self.env.step(self._actions)
            done = terminated | truncated
            infos = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(done):
                infos[i]["terminal_observation"] = obs[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            return obs, reward, done, infos

        def close(self) -> None:
            self.env.close()

        def get_attr(self, attr_name, indices=None):
            return [getattr(self.env, attr_name, None)] * len(self._get_indices(indices))

        def set_attr(self, attr_name, value, indices=None) -> None:
            raise NotImplementedError("WanderlustVecEnv has no per-env attributes")

        def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
            raise NotImplementedError("WanderlustVecEnv has no per-env methods")

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._get_indices(indices))

    return WanderlustEncoder, WanderlustVecEnv


def sb3_env_description(sb3_env: str) -> str:
    if sb3_env == "package":
        return "minigrid package (ImgObsWrapper), SB3 DummyVecEnv"
    return "wanderlust.envs.make, VecEnv adapter"


def measure_sb3(args: argparse.Namespace) -> dict:
    """SB3 PPO, no bonus, same settings and encoder; `learn` timed after an untimed warm-up learn."""
    import gymnasium as gym
    import numpy as np
    import torch
    from torch import nn
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from wanderlust import envs

    WanderlustEncoder, WanderlustVecEnv = _sb3_classes()
    config = child_config(args)
    ppo = config.ppo
    n = config.env.num_envs
    if args.sb3_env == "package":
        import minigrid  # noqa: F401  (registers the MiniGrid ids with gymnasium)
        from minigrid.wrappers import ImgObsWrapper

        def make_one():
            return ImgObsWrapper(gym.make(config.env.id))

        vec_env = DummyVecEnv([make_one] * n)
        backend = "minigrid package"
    else:
        env = envs.make(config.env.id, n, config.seed, config.env.backend, **config.env.options)
        vec_env = WanderlustVecEnv(env)
        backend = env.backend
    # The un-transposed observation shape the wanderlust encoder expects.
    obs_shape = tuple(vec_env.observation_space.shape)
    network = ppo.network
    if network == "auto":
        network = "minigrid" if envs.env_family(config.env.id) == "minigrid" else "A"
    torch.manual_seed(config.seed)
    probe = WanderlustEncoder(gym.spaces.Box(0, 255, obs_shape, np.uint8), network, obs_shape, ppo.hidden_size)
    width = probe.features_dim
    del probe
    model = SB3PPO(
        "MlpPolicy",
        vec_env,
        learning_rate=ppo.learning_rate,
        n_steps=ppo.num_steps,
        batch_size=ppo.num_steps * n // ppo.minibatches,
        n_epochs=ppo.epochs,
        gamma=ppo.gamma_ext,
        gae_lambda=ppo.gae_lambda,
        clip_range=ppo.clip_coef,
        normalize_advantage=ppo.normalize_advantages,
        ent_coef=ppo.ent_coef,
        vf_coef=ppo.vf_coef,
        max_grad_norm=ppo.max_grad_norm,
        policy_kwargs={
            "features_extractor_class": WanderlustEncoder,
            "features_extractor_kwargs": {
                "network": network,
                "obs_shape": obs_shape,
                "hidden_size": ppo.hidden_size,
            },
            "net_arch": {"pi": [width], "vf": [width]},
            "activation_fn": nn.ReLU,
            "normalize_images": False,
        },
        seed=config.seed,
        device="cpu",
        verbose=0,
    )
    per_iteration = ppo.num_steps * n
    try:
        model.learn(total_timesteps=per_iteration)  # untimed warm-up: one rollout and one update
        before = model.num_timesteps
        start = time.perf_counter()
        model.learn(total_timesteps=args.iterations * per_iteration, reset_num_timesteps=False)
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "frames": model.num_timesteps - before,
            "backend": backend,
            "env": sb3_env_description(args.sb3_env),
            "feature_width": width,
            "torch_threads": torch.get_num_threads(),
            "peak_mib": peak_rss_mib(),
        }
    finally:
        vec_env.close()


MEASUREMENTS = {
    "e2e": measure_end_to_end,
    "env": measure_env,
    "sb3": measure_sb3,
}


def run_child(args: argparse.Namespace) -> None:
    set_threads(args.threads)
    result = MEASUREMENTS[args.child](args)
    Path(args.child_out).write_text(json.dumps(result))


# --------------------------------------------------------------------------- driver (parent)
@dataclass
class Job:
    kind: str  # a key of MEASUREMENTS
    sb3_env: str = "wanderlust"  # for kind "sb3": "package" or "wanderlust"

    @property
    def key(self) -> str:
        return f"sb3-{self.sb3_env}" if self.kind == "sb3" else self.kind


@dataclass
class SettingResult:
    setting: str
    iterations: int
    repeats: list[dict] = field(default_factory=list)  # job key → child result or {"error": ...}
    errors: list[str] = field(default_factory=list)


def jobs_for(setting: str, args: argparse.Namespace) -> list[Job]:
    jobs = [Job("e2e"), Job("env")]
    if not args.skip_sb3:
        if setting == "doorkey":
            jobs.append(Job("sb3", "package"))
            if not args.skip_sb3_same_env:
                jobs.append(Job("sb3", "wanderlust"))
        else:
            jobs.append(Job("sb3", "wanderlust"))
    return jobs


def spawn(job: Job, setting: str, iterations: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="wanderlust-bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable, str(Path(__file__).resolve()),
            "--child", job.kind,
            "--sb3-env", job.sb3_env,
            "--setting", setting,
            "--iterations", str(iterations),
            "--backend", args.backend,
            "--threads", str(args.threads),
            "--child-out", str(out),
        ]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"error": f"exit {proc.returncode}: {tail[0]}"}
        return json.loads(out.read_text())


def fps(result: dict | None) -> float | None:
    if not result or "error" in result or result.get("seconds", 0) <= 0:
        return None
    return result["frames"] / result["seconds"]


def per_repeat_values(repeat: dict) -> dict:
    """The table's numbers for one repeat (ratios are taken within the repeat)."""
    e2e, env = repeat.get("e2e"), repeat.get("env")
    net = e2e.get("network") if e2e and "error" not in e2e else None
    values: dict = {"e2e": fps(e2e), "env": fps(env), "network": fps(net)}
    if values["env"] and values["network"]:
        # Both ran the same number of frames as end to end does.
        values["bound"] = env["frames"] / (env["seconds"] + net["seconds"])
    else:
        values["bound"] = None
    values["pct_bound"] = 100 * values["e2e"] / values["bound"] if values["e2e"] and values["bound"] else None
    # % of bound for each iteration and the network pass right after it (the most side-by-side pairs;
    # the environment-alone time is per iteration of its own process).
    values["pct_pairs"] = []
    if values["bound"]:
        env_per_iteration = env["seconds"] / len(net["iteration_seconds"])
        values["pct_pairs"] = [
            100 * (env_per_iteration + n) / e for e, n in zip(e2e["iteration_seconds"], net["iteration_seconds"])
        ]
    values["peak_mib"] = e2e.get("peak_mib") if e2e and "error" not in e2e else None
    for key in ("sb3-package", "sb3-wanderlust"):
        sb3 = fps(repeat.get(key))
        values[key] = sb3
        values[f"ratio-{key}"] = values["e2e"] / sb3 if values["e2e"] and sb3 else None
        values[f"peak-{key}"] = repeat[key].get("peak_mib") if sb3 else None
    # Seconds per iteration, for the breakdown of where end-to-end time goes.
    if e2e and "error" not in e2e and env and "error" not in env and net and "error" not in net:
        count = len(e2e["iteration_seconds"])
        breakdown = {"env.step": env["seconds"] / count}
        breakdown.update({name: seconds / count for name, seconds in net["phases"].items()})
        breakdown["end to end"] = e2e["seconds"] / count
        breakdown["other (overhead)"] = breakdown["end to end"] - sum(
            v for k, v in breakdown.items() if k != "end to end"
        )
        values["breakdown"] = breakdown
    return values


def summarize(values: list[float | None]) -> tuple[float, float, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.median(present), min(present), max(present)


def fmt(summary: tuple[float, float, float] | None, kind: str = "fps") -> str:
    if summary is None:
        return "n/a"
    median, low, high = summary
    if kind == "pct":
        return f"{median:.0f} % ({low:.0f}–{high:.0f})"
    if kind == "ratio":
        return f"{median:.2f}× ({low:.2f}–{high:.2f})"
    if kind == "mib":
        return f"{median:,.0f}" if abs(high - low) < 1 else f"{median:,.0f} ({low:,.0f}–{high:,.0f})"
    if kind == "s":
        return f"{median:.3f} ({low:.3f}–{high:.3f})"
    return f"{median:,.0f} ({low:,.0f}–{high:,.0f})"


MAIN_COLUMNS = (
    "setting",
    "wanderlust PPO+RND fps",
    "env alone fps",
    "network alone fps",
    "bound fps",
    "% of bound",
    "peak MiB",
    "SB3 PPO fps",
    "ratio wanderlust/SB3",
)


SB3_COLUMNS = ("setting", "SB3 env [backend]", "head width", "SB3 fps", "wanderlust/SB3", "SB3 peak MiB")


def sb3_main_key(setting: str) -> str:
    return "sb3-package" if setting == "doorkey" else "sb3-wanderlust"


def main_rows(results: list[SettingResult]) -> list[list[str]]:
    rows = []
    for result in results:
        per = [per_repeat_values(r) for r in result.repeats]
        col = lambda key: summarize([v.get(key) for v in per])  # noqa: E731
        main = sb3_main_key(result.setting)
        rows.append([
            result.setting,
            fmt(col("e2e")),
            fmt(col("env")),
            fmt(col("network")),
            fmt(col("bound")),
            fmt(summarize([pair for v in per for pair in v["pct_pairs"]]), "pct"),
            fmt(col("peak_mib"), "mib"),
            fmt(col(main)),
            fmt(col(f"ratio-{main}"), "ratio"),
        ])
    return rows


def sb3_rows(results: list[SettingResult]) -> list[list[str]]:
    rows = []
    for result in results:
        per = [per_repeat_values(r) for r in result.repeats]
        for key in ("sb3-package", "sb3-wanderlust"):
            runs = [r.get(key) for r in result.repeats if r.get(key) and "error" not in r[key]]
            if not runs:
                continue
            rows.append([
                result.setting,
                f"{runs[0]['env']} [{runs[0]['backend']}]",
                str(runs[0]["feature_width"]),
                fmt(summarize([v.get(key) for v in per])),
                fmt(summarize([v.get(f"ratio-{key}") for v in per]), "ratio"),
                fmt(summarize([v.get(f"peak-{key}") for v in per]), "mib"),
            ])
    return rows


def breakdown_rows(results: list[SettingResult]) -> tuple[list[str], list[list[str]]]:
    names = ["env.step", *NETWORK_PHASES, "other (overhead)", "end to end"]
    header = ["setting", *(f"{n} s/it" for n in names)]
    rows = []
    for result in results:
        per = [per_repeat_values(r).get("breakdown") for r in result.repeats]
        per = [p for p in per if p]
        if not per:
            continue
        cells = [result.setting]
        for name in names:
            median = statistics.median(p[name] for p in per)
            share = 100 * median / statistics.median(p["end to end"] for p in per)
            cells.append(f"{median:.3f}" if name == "end to end" else f"{median:.3f} ({share:.0f} %)")
        rows.append(cells)
    return header, rows


SB3_NOTE = (
    "SB3 PPO fps: DoorKey on the minigrid package env (SB3 DummyVecEnv), Montezuma on wanderlust's env "
    "(same backend) through a VecEnv adapter; the SB3 table lists every SB3 run"
)


def target_lines(results: list[SettingResult]) -> list[str]:
    lines = [SB3_NOTE] if any(r.get(k) for res in results for r in res.repeats for k in ("sb3-package", "sb3-wanderlust")) else []
    for result in results:
        per = [per_repeat_values(r) for r in result.repeats]
        pct = summarize([pair for v in per for pair in v["pct_pairs"]])
        checks = []
        if pct:
            checks.append(f"≥ 70 % of bound: {'yes' if pct[0] >= 70 else 'NO'} ({pct[0]:.0f} %)")
        if result.setting == "doorkey":
            ratio = summarize([v.get("ratio-sb3-package") for v in per])
            if ratio:
                checks.append(f"faster than SB3 PPO (minigrid package): {'yes' if ratio[0] > 1 else 'NO'} ({ratio[0]:.2f}×)")
            checks.append(f"reference: SB3 PPO ≈ {SB3_DOORKEY_FPS_REFERENCE:,} fps with the minigrid package")
        else:
            checks.append(f"reference: CleanRL ppo_rnd_envpool ≈ {CLEANRL_MONTEZUMA_FPS_REFERENCE} fps at these settings")
        lines.append(f"{result.setting}: " + "; ".join(checks))
        for error in result.errors:
            lines.append(f"{result.setting}: {error}")
    return lines


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def busiest_load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def header_lines(args: argparse.Namespace, threads: int) -> list[str]:
    try:
        cpus_usable = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus_usable = os.cpu_count()
    packages = ("torch", "envpool", "gymnasium", "minigrid", "stable-baselines3", "ale-py", "numpy")
    load = f"{args.load_at_start}; at end (including this benchmark): {load_average()}"
    busy = args.busy_at_start  # the end's load average includes this benchmark's own processes
    warning = []
    if busy >= (os.cpu_count() or 1) - 0.5:
        warning = [
            f"WARNING: other processes were using the CPUs (1-minute load average {busy:.1f} at start on "
            f"{os.cpu_count()} CPUs). Torch's threads wait on each other, so such load can slow single "
            "iterations many times over; compare ratios only, or rerun on a quiet machine"
        ]
    return warning + [
        "command: " + shlex.join([Path(sys.executable).name, *sys.argv]),
        f"torch threads: {threads} (--threads {args.threads}); CPUs: {os.cpu_count()} ({cpus_usable} usable); "
        f"load average at start: {load}",
        "versions: python " + platform.python_version() + ", " + ", ".join(f"{p} {version(p)}" for p in packages),
        f"repeats: {args.repeats}; each measurement in a fresh subprocess; cells are median (min–max) over repeats; "
        "wanderlust/SB3 ratios are taken within each repeat, % of bound for each timed iteration and the "
        "network-alone pass run right after it (median of those pairs)",
    ]


def network_label(config) -> str:
    from wanderlust.envs import env_family

    if config.ppo.network == "minigrid" or (config.ppo.network == "auto" and env_family(config.env.id) == "minigrid"):
        return f"minigrid encoder (FC {config.ppo.hidden_size})"
    return "A" if config.ppo.network == "auto" else config.ppo.network


def setting_lines(results: list[SettingResult]) -> list[str]:
    lines = []
    for result in results:
        config = setting_config(result.setting)
        backend = next(
            (r["e2e"]["backend"] for r in result.repeats if r.get("e2e") and "error" not in r["e2e"]), "?"
        )
        p = config.ppo
        lines.append(
            f"{result.setting}: {config.env.id} [{backend}], {config.env.num_envs} envs × {p.num_steps} steps, "
            f"{p.epochs} epochs × {p.minibatches} minibatches, network {network_label(config)}, "
            f"RND warm-up {config.intrinsic.warmup_steps} steps (untimed); "
            f"{result.iterations} timed iteration(s) = {result.iterations * frames_per_iteration(config):,} frames per repeat"
        )
    return lines


def render(args: argparse.Namespace, results: list[SettingResult], threads: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:  # a file or pipe: do not squeeze the tables into 80 columns
        console = Console(width=220)
    for line in header_lines(args, threads) + setting_lines(results):
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    def show(title: str, header: list[str] | tuple[str, ...], rows: list[list[str]]) -> None:
        if not rows:
            return
        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(Text(name), justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)

    show("Throughput (frames/s)", MAIN_COLUMNS, main_rows(results))
    header, rows = breakdown_rows(results)
    show("Where an iteration's time goes (s per iteration; % of end to end)", header, rows)
    show("stable-baselines3 PPO (no bonus, same encoder and settings)", SB3_COLUMNS, sb3_rows(results))
    for line in target_lines(results):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def markdown(args: argparse.Namespace, results: list[SettingResult], threads: int) -> str:
    def table(header, rows) -> list[str]:
        if not rows:
            return []
        out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        return out + [""]

    lines = ["# wanderlust throughput", ""]
    lines += [f"- {line}" for line in header_lines(args, threads) + setting_lines(results)] + [""]
    sections = [
        ("Throughput (frames/s)", MAIN_COLUMNS, main_rows(results)),
        ("Where an iteration's time goes (s per iteration; % of end to end)", *breakdown_rows(results)),
        ("stable-baselines3 PPO (no bonus, same encoder and settings)", SB3_COLUMNS, sb3_rows(results)),
    ]
    for title, header, rows in sections:
        if rows:
            lines += [f"## {title}", ""] + table(header, rows)
    lines += [f"- {line}" for line in target_lines(results)]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", choices=(*SETTINGS, "all"), default="all")
    parser.add_argument(
        "--iterations", type=int, default=None,
        help="timed PPO iterations per repeat (default: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERATIONS.items()) + ")",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of every measurement (default 3)")
    parser.add_argument("--backend", choices=("auto", "envpool", "gymnasium"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default 0: torch's default)")
    parser.add_argument("--skip-sb3", action="store_true", help="do not measure stable-baselines3")
    parser.add_argument(
        "--skip-sb3-same-env", action="store_true",
        help="on DoorKey, measure SB3 only on the minigrid package env, not also on wanderlust's env",
    )
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    parser.add_argument("--child", choices=tuple(MEASUREMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--sb3-env", choices=("package", "wanderlust"), default="wanderlust", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be at least 1")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        run_child(args)
        return
    from rich.console import Console

    import torch

    args.load_at_start = load_average()
    args.busy_at_start = busiest_load()
    set_threads(args.threads)
    threads = torch.get_num_threads()
    console = Console(stderr=True)
    settings = SETTINGS if args.setting == "all" else (args.setting,)
    results = []
    for setting in settings:
        iterations = args.iterations or DEFAULT_ITERATIONS[setting]
        result = SettingResult(setting, iterations)
        jobs = jobs_for(setting, args)
        for repeat in range(args.repeats):
            outcome: dict = {}
            for job in jobs:
                console.print(f"[dim]{setting} repeat {repeat + 1}/{args.repeats}: {job.key}[/dim]", highlight=False)
                outcome[job.key] = spawn(job, setting, iterations, args)
                if "error" in outcome[job.key]:
                    result.errors.append(f"{job.key} failed in repeat {repeat + 1}: {outcome[job.key]['error']}")
            result.repeats.append(outcome)
        results.append(result)
    render(args, results, threads)
    if args.markdown:
        Path(args.markdown).write_text(markdown(args, results, threads))


if __name__ == "__main__":
    main()
