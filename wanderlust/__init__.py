"""wanderlust: exploration and hierarchy in reinforcement learning.

    import wanderlust
    run_dir = wanderlust.train(env="MiniGrid-DoorKey-8x8-v0", bonus="rnd", frames=500_000)
"""

__version__ = "0.1.0"


def train(*args, **kwargs):
    """Trains an agent and returns its run directory; see wanderlust.run.train.train."""
    from wanderlust.run.train import train as _train

    return _train(*args, **kwargs)


def evaluate(*args, **kwargs):
    """Mean return of a run's policy (and an optional video); see wanderlust.run.evaluate.evaluate."""
    from wanderlust.run.evaluate import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


__all__ = ["__version__", "evaluate", "train"]
