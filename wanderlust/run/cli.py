"""The `wanderlust` command: train, eval, plot, analyze, play, envs.

Every user error ends in one line on stderr and exit status 2 (1 for unexpected failures); pass
--debug to see the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("wanderlust")


def frame_count(text: str) -> int:
    """Accepts 1000000, 1_000_000 or 1e6; refuses negative, zero and non-integral values."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_integer() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return int(value)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise SystemExit(_fail(f"{self.prog}: {message}", 2))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wanderlust", description="Exploration and hierarchy in reinforcement learning.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train an agent; writes a run directory")
    train.add_argument("--env", help="environment id (see `wanderlust envs`); default MiniGrid-DoorKey-8x8-v0")
    train.add_argument("--bonus", help="intrinsic reward (default rnd); see docs/ for the list")
    train.add_argument("--frames", type=frame_count, help="frame budget, e.g. 1e6 (warm-up frames count)")
    train.add_argument("--num-envs", type=positive_int)
    train.add_argument("--seed", type=int)
    train.add_argument("--preset", action="append", help="YAML preset name or file; repeat or comma-separate to stack")
    train.add_argument("--run-dir", type=Path, help="where to write the run (default runs/ENV__BONUS__sSEED__TIME)")
    train.add_argument("--backend", choices=["auto", "envpool", "gymnasium"])
    train.add_argument("--device", help="auto, cpu or cuda")
    train.add_argument("--algo", choices=["ppo", "qlearning", "dreamer", "hima"],
                       help="the learner (default ppo; qlearning: tabular Q(λ), HIMA's baseline; dreamer: DreamerV3, "
                            "docs/dreamer.md; hima: docs/hima.md)")
    train.add_argument("--world-model", choices=["flat", "thick"], help="with --algo dreamer: DreamerV3's RSSM (flat) or THICK's C-RSSM")
    train.add_argument("--no-dreaming", dest="dreaming", action="store_false", default=None, help="with --algo hima: never dream")
    train.add_argument("--no-empowerment", dest="empowerment", action="store_false", default=None,
                       help="with --algo hima: no empowerment reward (the extrinsic striatum alone)")
    train.add_argument("--no-hierarchy", dest="hierarchy", action="store_false", default=None,
                       help="with --algo hima: level 1 alone, without level 2's options")
    train.add_argument("--memory", choices=["none", "hcam", "lstm", "window"], help="the policy's memory core (equal sizes; see docs/hcam.md)")
    train.add_argument("--track", choices=["wandb"], help="also log to Weights & Biases")
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override any config field, e.g. --set ppo.learning_rate=1e-4 --set intrinsic.obs_norm=mean",
    )
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run from its last checkpoint")

    evaluate = sub.add_parser("eval", help="mean return of a trained run, and an optional video")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--episodes", type=positive_int, default=10)
    evaluate.add_argument("--video", type=Path, metavar="FILE.mp4")
    evaluate.add_argument("--greedy", action="store_true", help="take the most likely action instead of sampling")
    evaluate.add_argument("--seed", type=int, default=12345)
    evaluate.add_argument("--device", default="auto")

    plot = sub.add_parser("plot", help="learning curves over runs: mean and 95%% interval per (env, bonus)")
    plot.add_argument("run_dirs", type=Path, nargs="+")
    plot.add_argument("--out", type=Path, default=Path("curves.png"))
    plot.add_argument(
        "--metric",
        help="a metrics.csv column (default: episode_return, and rooms beside it when every run logged rooms)",
    )

    analyze = sub.add_parser("analyze", help="pictures of a trained run: visitation and bonus heatmaps, feature maps, THICK's context changes")
    pictures = analyze.add_subparsers(dest="picture", required=True, parser_class=_Parser)
    heatmap = pictures.add_parser("heatmap", help="state visits and mean bonus per cell on one fixed layout (grid envs)")
    heatmap.add_argument("--layout-seed", type=int, default=0, help="reset seed of the layout every episode replays")
    features = pictures.add_parser("features", help="t-SNE or PCA of the bonus's feature space, coloured by room")
    features.add_argument("--method", choices=["tsne", "pca"], default="tsne")
    features.add_argument("--max-points", type=positive_int, default=2000)
    changes = pictures.add_parser("changes", help="THICK's context changes against the env's events (--world-model thick runs)")
    changes.add_argument("--window", type=int, default=1, help="steps between a change and an event that still count as aligned")
    for picture, episodes in ((heatmap, 20), (features, 10), (changes, 5)):
        picture.add_argument("run_dir", type=Path)
        picture.add_argument("--out", type=Path, metavar="FILE.png", help="default RUN_DIR/<picture>.png")
        picture.add_argument("--episodes", type=positive_int, default=episodes)
        picture.add_argument("--checkpoint", type=Path, help="a checkpoint file of the run (default the latest)")
        picture.add_argument("--seed", type=int, default=12345, help="seed of the policy's sampling")
        picture.add_argument("--device", default="auto")

    play = sub.add_parser("play", help="play an environment from the keyboard in a window; with --run, see a run's bonus per step")
    play.add_argument("env_id", nargs="?", metavar="ENV_ID", help="environment id (see `wanderlust envs`); may be omitted with --run")
    play.add_argument("--run", type=Path, metavar="RUN_DIR", help="show the intrinsic reward this run's bonus gives each step (plays the run's own env)")
    play.add_argument("--seed", type=int, default=12345)
    play.add_argument("--scale", type=positive_int, help="window pixels per frame pixel (default: a window of about 800 px)")
    play.add_argument("--device", default="cpu", help="where the run's bonus runs: cpu (default), cuda or auto")

    sub.add_parser("envs", help="list registered environment ids by family")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    if args.command in ("eval", "analyze", "play"):
        import torch

        torch.set_num_threads(1)  # these replay one environment: batches of one, where threads only cost
    if args.command == "train":
        from wanderlust.run.train import train

        if args.resume is not None:
            extra = [flag for flag in ("env", "bonus", "num_envs", "seed", "preset", "run_dir", "backend", "device", "track", "algo", "memory", "world_model") if getattr(args, flag)]
            extra += [flag for flag in ("dreaming", "empowerment", "hierarchy") if getattr(args, flag) is not None]
            if extra or args.overrides:
                return _fail("--resume continues a run with its own config; only --frames may be given with it", 2)
        run_dir = train(
            env=args.env, bonus=args.bonus, frames=args.frames, num_envs=args.num_envs, seed=args.seed,
            preset=args.preset, run_dir=args.run_dir, backend=args.backend, device=args.device,
            track=args.track, overrides=args.overrides, resume=args.resume, algo=args.algo, memory=args.memory,
            world_model=args.world_model, dreaming=args.dreaming, empowerment=args.empowerment,
            hierarchy=args.hierarchy,
        )
        print(f"run directory: {run_dir}")
        print(f"curves: {run_dir / 'curves.png'}")
    elif args.command == "eval":
        from wanderlust.run.evaluate import evaluate

        result = evaluate(args.run_dir, args.episodes, args.video, args.greedy, args.seed, args.device)
        print(f"mean return {result['mean_return']:.4g} ± {result['std_return']:.3g} over {result['episodes']} episodes")
        if args.video:
            print(f"video: {args.video}")
    elif args.command == "plot":
        from wanderlust.run.plot import plot_runs

        print(f"plot: {plot_runs(args.run_dirs, args.out, args.metric)}")
    elif args.command == "analyze":
        from wanderlust.run import analyze
        from wanderlust.run.replay import load_run

        run = load_run(args.run_dir, args.device, args.seed, args.checkpoint)
        try:
            out = args.out or args.run_dir / f"{args.picture}.png"
            if args.picture == "heatmap":
                data = analyze.heatmap(run, args.episodes, args.layout_seed, args.seed)
                analyze.draw_heatmap(data, out, analyze.describe(run))
                print(f"{data.steps} steps over {data.episodes} episodes, {int((data.visits > 0).sum())} cells visited")
            elif args.picture == "changes":
                report = analyze.context_changes(run, args.episodes, args.window, args.seed)
                analyze.draw_changes(report, out, analyze.describe(run))
                print(f"{report.changes_per_episode:.2f} context changes and {report.events_per_episode:.2f} events per episode; "
                      f"aligned within ±{args.window} steps: {report.precision:.0%} of changes, {report.recall:.0%} of events")
            else:
                data = analyze.feature_map(run, args.episodes, args.method, args.max_points, args.seed)
                analyze.draw_feature_map(data, out, analyze.describe(run))
                rooms = "" if data.rooms is None else f", {len(set(data.rooms.tolist()))} rooms"
                print(f"{len(data.points)} states{rooms}")
        finally:
            run.close()
        print(f"{args.picture}: {out}")
    elif args.command == "play":
        from wanderlust.run.play import play

        play(args.env_id, args.run, seed=args.seed, scale=args.scale, device=args.device)
    elif args.command == "envs":
        from wanderlust.envs import list_envs

        for family, ids in list_envs().items():
            print(f"{family} ({len(ids)})")
            for env_id in ids:
                print(f"  {env_id}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # bad flags (already reported in one line) or --help
        return int(exit_.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return run(args)
    except KeyboardInterrupt:
        return _fail("interrupted; continue with `wanderlust train --resume RUN_DIR`", 130)
    except Exception as error:  # one line for the user; --debug shows where it came from
        if args.debug:
            raise
        known = isinstance(error, (ValueError, FileNotFoundError, ImportError))
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return _fail(message if known else f"{type(error).__name__}: {message}", 2 if known else 1)


if __name__ == "__main__":
    sys.exit(main())
