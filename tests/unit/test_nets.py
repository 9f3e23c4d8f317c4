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


def pixel_networks() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    torch.manual_seed(0)
    frames = torch.randn(6, 1, 96, 96)
    stacks = torch.randint(0, 256, (6, *STACK), dtype=torch.uint8)
    target, predictor = atari.rnd_networks((1, 96, 96))
    networks = {"rnd target": (target, frames), "rnd predictor": (predictor, frames)}
    networks.update({f"model {name}": (make(STACK), stacks) for name, make in atari.ATARI_MODELS.items()})
    networks["embedding atari"] = (Embedding(STACK, "atari"), stacks)
    networks["embedding procgen"] = (Embedding((3, 64, 64), "procgen"), torch.randint(0, 256, (6, 3, 64, 64), dtype=torch.uint8))
    return networks


def conv_weights(network: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in network.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("name", list(pixel_networks()))
def test_pixel_networks_are_channels_last_and_compute_what_channels_first_weights_do(name):
    network, batch = pixel_networks()[name]
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
    network, batch = pixel_networks()["rnd predictor"]
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
    fresh, _ = pixel_networks()["rnd predictor"]
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
