"""Checkpoints are atomic, loaded with weights_only, and foreign files are refused."""

import pytest
import torch

from wanderlust.run import checkpoint
from wanderlust.run.checkpoint import CheckpointError
from wanderlust.run.logger import truncate_metrics

pytestmark = pytest.mark.unit


def test_save_load_round_trip_and_keep_last(tmp_path):
    for frames in (100, 200, 300, 400):
        checkpoint.save(tmp_path, frames, {"agent": {"w": torch.full((2,), float(frames))}, "rng": torch.get_rng_state()}, keep=2)
    names = [p.name for p in checkpoint.list_checkpoints(tmp_path)]
    assert names == ["frames_000000000300.pt", "frames_000000000400.pt"]
    state = checkpoint.load(checkpoint.latest(tmp_path))
    assert torch.equal(state["agent"]["w"], torch.full((2,), 400.0))


def test_temporary_files_are_never_taken_for_checkpoints(tmp_path):
    (tmp_path / ".frames_000000000500.pt.tmp").write_bytes(b"half written")
    checkpoint.save(tmp_path, 100, {"agent": {}})
    assert checkpoint.latest(tmp_path).name == "frames_000000000100.pt"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a checkpoint at all", "not a readable wanderlust checkpoint"),
        (None, "is not a wanderlust checkpoint"),
    ],
)
def test_foreign_or_corrupt_files_are_refused(tmp_path, content, message):
    path = tmp_path / "frames_000000000001.pt"
    if content is None:
        torch.save({"model": torch.zeros(1)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_pickled_objects_are_not_loaded(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "version": 1, "payload": object()}, path)
    with pytest.raises(CheckpointError):
        checkpoint.load(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path / "nothing.pt")


def test_truncate_metrics_drops_rows_after_checkpoint_and_partial_lines(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("frames,episode_return\n100,0.5\n200,\n300,0.7\n400,0.")
    truncate_metrics(path, 200)
    assert path.read_text() == "frames,episode_return\n100,0.5\n200,\n"
    truncate_metrics(path, -1)
    assert path.read_text() == "frames,episode_return\n"
