"""Pixel networks keep their conv weights channels-last (nets.init.channels_last): the same function
as channels-first weights, and checkpoints in either order load."""

from __future__ import annotations

import copy
import importlib.util
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from wanderlust.nets import atari
from wanderlust.nets.embedding import Embedding

pytestmark = pytest.mark.unit

STACK = (4, 96, 96)


def _frames() -> torch.Tensor:
    return torch.randn(6, 1, 96, 96)


def _pixels(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 256, (6, *shape), dtype=torch.uint8)


PIXEL_NETWORKS = {  # name → builds (network, an input batch); each test builds only its own
    "rnd target": lambda: (atari.rnd_networks((1, 96, 96))[0], _frames()),
    "rnd predictor": lambda: (atari.rnd_networks((1, 96, 96))[1], _frames()),
    **{f"model {name}": (lambda make=make: (make(STACK), _pixels(STACK))) for name, make in atari.ATARI_MODELS.items()},
    "embedding atari": lambda: (Embedding(STACK, "atari"), _pixels(STACK)),
    "embedding procgen": lambda: (Embedding((3, 64, 64), "procgen"), _pixels((3, 64, 64))),
}


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return PIXEL_NETWORKS[name]()


def conv_weights(network: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in network.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("name", list(PIXEL_NETWORKS))
def test_pixel_networks_are_channels_last_and_compute_what_channels_first_weights_do(name):
    network, batch = build(name)
    weights = conv_weights(network)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous() for w in weights)  # 1×1 kernels are both; the others are not
    first = copy.deepcopy(network).to(memory_format=torch.contiguous_format)
    assert all(w.is_contiguous() for w in conv_weights(first))
    out_last, out_first = network(batch), first(batch)
    torch.testing.assert_close(out_last, out_first, rtol=1e-4, atol=1e-5)
    out_last.pow(2).sum().backward()
    out_first.pow(2).sum().backward()
    for a, b in zip(conv_weights(network), conv_weights(first)):
        # float sums in another order: equal up to rounding relative to the gradient's size
        assert (a.grad - b.grad).norm() <= 1e-4 * b.grad.norm()
        assert a.grad.is_contiguous(memory_format=torch.channels_last)


def test_a_channels_first_checkpoint_loads_into_a_channels_last_network_and_round_trips():
    network, batch = build("rnd predictor")
    older = copy.deepcopy(network).to(memory_format=torch.contiguous_format)  # as checkpoints before
    with torch.no_grad():
        for parameter in older.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    network.load_state_dict(older.state_dict())
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(network))
    torch.testing.assert_close(network(batch), older(batch), rtol=1e-4, atol=1e-5)
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    buffer.seek(0)
    fresh, _ = build("rnd predictor")
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    for a, b in zip(fresh.state_dict().values(), network.state_dict().values()):
        assert torch.equal(a, b)


def test_the_memory_format_benchmark_times_every_pixel_network(capsys):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "memory_format.py"
    spec = importlib.util.spec_from_file_location("memory_format_benchmark", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    benchmark.networks(repeats=1, minibatch=2)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "×" in line]
    assert len(rows) == 2 + len(atari.ATARI_MODELS)  # RND predictor, A–D, the pixel embedding
