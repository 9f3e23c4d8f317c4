"""Recurrent cores (LSTM, window transformer, HCAM transformer): one T-step call equals T one-step
calls; episode starts clear the state and nothing else does; outputs are causal; the window core
sees exactly `window` steps; the HCAM core writes a chunk every C steps, reads its memory without
gradients into it, drops its oldest chunk when full and never reads an earlier episode; both
transformers match a per-environment, per-step reference loop; the three memories have the same
size; states made while acting can be trained on."""

import pytest
import torch

from wanderlust.nets.cores import (
    MEMORIES,
    HCAMCore,
    LSTMCore,
    MemoryConfig,
    WindowCore,
    build_core,
    core_sizes,
)
from wanderlust.nets.policy import build_policy

pytestmark = pytest.mark.unit

FEATURES = 5
CHUNK = 3


def make(name: str, **sizes):
    """A small core whose parameters (LayerNorms and position biases included) are all perturbed
    away from their initial values, so that every term takes part."""
    torch.manual_seed(0)
    if name == "lstm":
        core = LSTMCore(FEATURES, 8, num_layers=2)
    elif name == "window":
        core = WindowCore(FEATURES, **{"d_model": 8, "layers": 2, "heads": 2, "mlp_size": 16, "window": 5, **sizes})
    else:
        core = HCAMCore(FEATURES, **{
            "d_model": 8, "layers": 2, "heads": 2, "mlp_size": 16, "chunk_size": CHUNK, "top_k": 2,
            "max_chunks": 3, **sizes,
        })
    with torch.no_grad():
        for parameter in core.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return core


def features(steps: int, batch: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(steps, batch, FEATURES, generator=torch.Generator().manual_seed(seed))


def no_starts(steps: int, batch: int) -> torch.Tensor:
    return torch.zeros(steps, batch, dtype=torch.bool)


def mixed_starts(steps: int, batch: int) -> torch.Tensor:
    """Starts at t = 0, mid-chunk, on a chunk boundary, twice in one env, and never in the last env."""
    starts = no_starts(steps, batch)
    starts[0, 0] = starts[7, 1] = starts[9, 0] = starts[14, 1] = starts[12, 2] = True
    return starts


def warm_state(core, batch: int, steps: int = 11):
    """A state in the middle of an episode: stored inputs, memory chunks and step counts all in use."""
    _, state = core(features(steps, batch, seed=7), core.initial_state(batch), no_starts(steps, batch))
    return state


def assert_states_close(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype
        if x.is_floating_point():
            torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
        else:
            assert torch.equal(x, y)


@pytest.mark.parametrize("name", MEMORIES)
def test_shapes_and_batch_at_dim_one(name):
    core = make(name)
    state = core.initial_state(4)
    assert all(s.shape[1] == 4 for s in state)
    outputs, after = core(features(6, 4), state, no_starts(6, 4))
    assert outputs.shape == (6, 4, core.output_size)
    assert [(s.shape, s.dtype) for s in after] == [(s.shape, s.dtype) for s in state]


@pytest.mark.parametrize("name", ["window", "hcam"])
def test_stored_inputs_carry_no_gradient_into_later_calls(name):
    core = make(name)
    _, state = core(features(8, 2).requires_grad_(), core.initial_state(2), no_starts(8, 2))
    assert not any(s.requires_grad for s in state)


def test_position_bias_counts_steps_back_from_the_current_one():
    """Distance 0 is the query's own step: a large bias there makes the layer attend to itself only."""
    layer = make("window").layers[0]
    context = torch.randn(1, 3, 8)
    with torch.no_grad():
        layer.position_bias.zero_()
        layer.position_bias[:, 0] = 50.0
    everything = layer.attend(context, torch.ones(1, 1, 3, dtype=torch.bool), torch.tensor([[2, 1, 0]]))
    itself = layer.attend(context[:, 2:], torch.ones(1, 1, 1, dtype=torch.bool), torch.tensor([[0]]))
    torch.testing.assert_close(everything, itself, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MEMORIES)
def test_subset_of_environments_runs_alone(name):
    """PPO's recurrent minibatches take `s[:, envs]` of the state: environments must not interact."""
    core = make(name)
    state, x, starts = warm_state(core, 3), features(20, 3), mixed_starts(20, 3)
    outputs, after = core(x, state, starts)
    envs = torch.tensor([2, 0])
    sub_outputs, sub_after = core(x[:, envs], tuple(s[:, envs] for s in state), starts[:, envs])
    torch.testing.assert_close(sub_outputs, outputs[:, envs], atol=1e-5, rtol=0)
    assert_states_close(sub_after, tuple(s[:, envs] for s in after))


@pytest.mark.parametrize("name", MEMORIES)
def test_one_sequence_call_equals_step_by_step_calls(name):
    core = make(name)
    steps, batch = 20, 3
    state, x, starts = warm_state(core, batch), features(steps, batch), mixed_starts(steps, batch)
    outputs, final = core(x, state, starts)
    step_outputs = []
    step_state = state
    for t in range(steps):
        out, step_state = core(x[t : t + 1], step_state, starts[t : t + 1])
        step_outputs.append(out)
    torch.testing.assert_close(torch.cat(step_outputs), outputs, atol=1e-5, rtol=0)
    assert_states_close(step_state, final)
    # and in uneven pieces, so that calls begin inside chunks and windows
    piece_state, pieces = state, []
    for begin, end in ((0, 4), (4, 13), (13, 14), (14, 20)):
        out, piece_state = core(x[begin:end], piece_state, starts[begin:end])
        pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces), outputs, atol=1e-5, rtol=0)
    assert_states_close(piece_state, final)


@pytest.mark.parametrize("name", MEMORIES)
def test_episode_start_clears_the_state_and_nothing_else_does(name):
    core = make(name)
    steps, start = 12, 5
    state, x = warm_state(core, 3), features(steps, 3)
    starts = no_starts(steps, 3)
    starts[start, 0] = starts[steps - 1, 2] = True  # env 2 starts on the last step: its state is one step old
    outputs, final = core(x, state, starts)
    fresh, fresh_final = core(x[start:], core.initial_state(3), no_starts(steps - start, 3))
    torch.testing.assert_close(outputs[start:, 0], fresh[:, 0], atol=1e-5, rtol=0)
    assert_states_close(tuple(s[:, :1] for s in final), tuple(s[:, :1] for s in fresh_final))
    _, one_step = core(x[steps - 1 :], core.initial_state(3), no_starts(1, 3))
    assert_states_close(tuple(s[:, 2:] for s in final), tuple(s[:, 2:] for s in one_step))
    # env 1 had no start: what it remembers changes its outputs
    assert (outputs[start:, 1] - fresh[:, 1]).abs().max() > 1e-3


@pytest.mark.parametrize("name", MEMORIES)
def test_outputs_do_not_depend_on_future_features(name):
    core = make(name)
    state, x = warm_state(core, 2), features(10, 2)
    outputs, _ = core(x, state, no_starts(10, 2))
    later = x.clone()
    later[6:] += 1.0
    changed, _ = core(later, state, no_starts(10, 2))
    torch.testing.assert_close(changed[:6], outputs[:6], atol=1e-6, rtol=0)
    assert (changed[6] - outputs[6]).abs().max() > 1e-3


@pytest.mark.parametrize("layers, window", [(2, 5), (3, 8), (1, 4)])
def test_window_core_sees_exactly_the_last_window_steps(layers, window):
    core = make("window", layers=layers, window=window)
    steps, t = 16, 14
    x = features(steps, 1)
    outputs, _ = core(x, core.initial_state(1), no_starts(steps, 1))
    for offset, matters in ((window, False), (window + 3, False), (window - 1, True)):
        perturbed = x.clone()
        perturbed[t - offset] += 1.0
        changed, _ = core(perturbed, core.initial_state(1), no_starts(steps, 1))
        difference = (changed[t] - outputs[t]).abs().max()
        assert difference > 1e-3 if matters else difference < 1e-6, (offset, difference)


def test_hcam_gradients_reach_the_current_chunk_and_parameters_but_not_stored_chunks():
    core = make("hcam")
    x = features(10, 1).requires_grad_()
    outputs, _ = core(x, core.initial_state(1), no_starts(10, 1))
    t = 7  # chunk 2 (steps 6, 7, 8); chunks 0 and 1 are in memory
    outputs[t].sum().backward()
    per_step = x.grad.abs().sum((1, 2))
    assert (per_step[6 : t + 1] > 0).all(), "the current chunk's features get gradients"
    assert (per_step[:6] == 0).all(), "stored chunks are values: no gradient through them"
    assert (per_step[t + 1 :] == 0).all()
    for name, parameter in core.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # ...yet stored chunks are read: changing an earlier chunk's features changes the output
    perturbed = x.detach().clone()
    perturbed[1] += 1.0
    changed, _ = core(perturbed, core.initial_state(1), no_starts(10, 1))
    assert (changed[t] - outputs[t].detach()).abs().max() > 1e-3


def test_hcam_writes_one_chunk_every_chunk_size_steps():
    core = make("hcam", max_chunks=4)
    state = core.initial_state(2)
    x = features(20, 2)
    starts = no_starts(20, 2)
    starts[13, 1] = True
    episode_steps = torch.zeros(2, dtype=torch.long)
    for t in range(20):
        episode_steps = torch.where(starts[t], 0, episode_steps) + 1
        _, state = core(x[t : t + 1], state, starts[t : t + 1])
        expected = (episode_steps // CHUNK).clamp(max=4)
        assert torch.equal(core.stored_chunks(state), expected)
        memory = state[1]
        filled = memory.abs().sum((-1, -2)) > 0  # [layers, B, slots]
        assert torch.equal(filled.sum(-1), expected.expand(len(core.layers), 2))
        # the inputs of the unfinished chunk wait in the state, right-aligned
        waiting = (state[0].abs().sum(-1) > 0).sum(-1)
        assert torch.equal(waiting, (episode_steps % CHUNK).expand(len(core.layers), 2))


def test_hcam_drops_its_oldest_chunk_when_full():
    # One layer: deeper layers store inputs that already mix in what the first layer read.
    core = make("hcam", layers=1, max_chunks=2)
    x = features(12, 1)
    outputs, _ = core(x, core.initial_state(1), no_starts(12, 1))
    perturbed = x.clone()
    perturbed[0:CHUNK] += 1.0  # chunk 0
    changed, _ = core(perturbed, core.initial_state(1), no_starts(12, 1))
    difference = (changed - outputs).abs().amax((1, 2))
    assert (difference[2 * CHUNK : 3 * CHUNK] > 1e-4).all(), "chunks 0 and 1 are held during chunk 2"
    assert (difference[3 * CHUNK :] < 1e-6).all(), "chunk 0 is dropped when chunk 2 is written"


def test_hcam_never_reads_a_previous_episode():
    core = make("hcam")
    steps, start = 18, 10
    x = features(steps, 1)
    starts = no_starts(steps, 1)
    starts[start] = True
    state = warm_state(core, 1)
    outputs, _ = core(x, state, starts)
    perturbed = x.clone()
    perturbed[:start] += 1.0
    noisy_state = (state[0] + 1.0, state[1] + 1.0, state[2])
    changed, _ = core(perturbed, noisy_state, starts)
    torch.testing.assert_close(changed[start:], outputs[start:], atol=1e-6, rtol=0)
    # without the episode start the same perturbation is read
    unchanged_episode, _ = core(x, state, no_starts(steps, 1))
    perturbed_episode, _ = core(perturbed, state, no_starts(steps, 1))
    assert (unchanged_episode[start:] - perturbed_episode[start:]).abs().max() > 1e-3


def reference_outputs(core, x: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """The transformer cores, one environment and one step at a time, from a fresh state: each
    layer's inputs of the current episode are kept in a list; a window layer attends to its last
    `span`, an HCAM layer to those of the current chunk and reads the chunks completed before."""
    steps, batch, _ = x.shape
    outputs = torch.zeros(steps, batch, core.output_size)
    hcam = isinstance(core, HCAMCore)
    for b in range(batch):
        history = [[] for _ in core.layers]
        for t in range(steps):
            if starts[t, b]:
                history = [[] for _ in core.layers]
            step = len(history[0])
            h = core.input(x[t, b])
            for inputs, layer in zip(history, core.layers):
                inputs.append(h)
                if hcam:
                    size = core.chunk_size
                    chunk = step // size
                    visible = inputs[chunk * size :]
                else:
                    visible = inputs[-layer.span :]
                count = len(visible)
                h = layer.attend(
                    torch.stack(visible)[None], torch.ones(1, 1, count, dtype=torch.bool),
                    torch.arange(count - 1, -1, -1)[None],
                )
                if hcam and chunk > 0:
                    held = range(max(0, chunk - core.max_chunks), chunk)
                    memory = torch.stack([torch.stack(inputs[n * size : (n + 1) * size]) for n in held])
                    h = layer.read_memory(h, memory[None], torch.ones(1, 1, len(held), dtype=torch.bool))
                h = layer.feed_forward(h)[0, 0]
            outputs[t, b] = core.output_norm(h)
    return outputs


@pytest.mark.parametrize("name", ["window", "hcam"])
def test_transformer_cores_match_a_step_by_step_reference(name):
    core = make(name, max_chunks=2) if name == "hcam" else make(name)
    x, starts = features(20, 3), mixed_starts(20, 3)
    with torch.no_grad():
        outputs, _ = core(x, core.initial_state(3), starts)
        expected = reference_outputs(core, x, starts)
    torch.testing.assert_close(outputs, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", MEMORIES)
def test_a_state_made_while_acting_can_be_trained_on(name):
    """PPO keeps the state of the rollout's first step, made under inference_mode, for its update."""
    core = make(name)
    with torch.inference_mode():
        state = warm_state(core, 2)
    outputs, _ = core(features(8, 2), state, no_starts(8, 2))
    outputs.sum().backward()
    assert all(p.grad is not None for p in core.parameters())


def test_memories_have_equal_size_at_the_same_width():
    for config, input_size in ((MemoryConfig(), 256), (MemoryConfig(d_model=32, layers=2), 100)):
        sizes = core_sizes(config, input_size)
        assert set(sizes) == set(MEMORIES)
        assert max(sizes.values()) <= 1.25 * min(sizes.values()), sizes
        for memory in MEMORIES:
            core = build_core(MemoryConfig(**{**vars(config), "kind": memory}), input_size)
            assert core.output_size == config.d_model
    with pytest.raises(ValueError):
        MemoryConfig(kind="gru")


@pytest.mark.parametrize("name", MEMORIES)
def test_policy_runs_a_memory_core_on_time_major_batches(name):
    torch.manual_seed(0)
    memory = MemoryConfig(kind=name, d_model=8, layers=1, heads=2, chunk_size=2, max_chunks=4, window=3)
    policy = build_policy("minigrid", (7, 7, 3), 7, hidden_size=16, memory=memory)
    assert policy.recurrent
    steps, batch = 5, 3
    obs = torch.randint(0, 3, (steps * batch, 7, 7, 3), dtype=torch.uint8)
    starts = torch.zeros(steps * batch, dtype=torch.bool)
    out = policy(obs, policy.initial_state(batch), starts)
    assert out.logits.shape == (steps * batch, 7) and out.value_ext.shape == (steps * batch,)
    state = policy.initial_state(batch)
    for t in range(steps):
        step = policy(obs[t * batch : (t + 1) * batch], state, starts[t * batch : (t + 1) * batch])
        state = step.state
        torch.testing.assert_close(step.logits, out.logits[t * batch : (t + 1) * batch], atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        build_policy("minigrid", (7, 7, 3), 7, hidden_size=16, lstm_size=8, memory=memory)
    assert not build_policy("minigrid", (7, 7, 3), 7, hidden_size=16).recurrent
