"""Recurrent cores: the memory between the actor-critic's encoder and its heads.

A core reads a sequence of encoder features and carries an explicit state from one call to the next
(DESIGN.md's "carry"), so that acting (one step per call) and training (whole sequences per call)
run the same computation:

    outputs, state = core(features [T, B, F], state, episode_start [T, B])

Every tensor of a state has the batch at dim 1, so a trainer can take a subset of environments with
`tuple(s[:, envs] for s in state)`. A step whose `episode_start` is True begins a new episode: the
core forgets everything before it, BEFORE that step is processed. States are never modified in
place: a trainer may keep the state a rollout started from and replay the rollout from it.

Three cores, one for each `--memory` choice (`build_core`):

- `LSTMCore`: the LSTM the actor-critic has always had (orthogonal weights, zero biases).
- `WindowCore`: a pre-LayerNorm transformer over a window of the current episode's recent steps.
- `HCAMCore`: the same transformer layers, each with a hierarchical chunk attention memory (HCAM)
  block added residually, after Lampinen et al. (2021), "Towards mental time travel" (arXiv
  2105.14039): every C steps the last C inputs of each layer are stored as a chunk, and the layer's
  HCAM block reads the stored chunks of the episode.

Shared transformer layer (pre-LayerNorm, residual):

    x ← x + SelfAttention(LN(x) over LN(local context))
    x ← x + HCAM(LN_m(x), LN_m(stored chunks))        (HCAMCore only)
    x ← x + MLP(LN(x))                                  (d → mlp_size → d, GELU)

then a final LayerNorm. The local context of a layer is a set of that layer's recent inputs, kept in
the state between calls the way Transformer-XL keeps its memory: as stored values, with no gradient
into the calls that produced them. Positions inside the local context are a learned bias per head
and per distance (0 = the current step), added to the attention logits and initialised to zero; a
relative bias rather than absolute positions, because a stored input must keep its meaning as the
window slides past it. Linear weights are orthogonal (gain √2 before the GELU, 1 elsewhere), biases
zero, as in the rest of wanderlust.nets.

Training sequences are processed in parallel over time: masks built from each step's episode index
and step count within its episode say which keys every query may see. A call with T = 1 (acting) is
the same code on a one-step sequence; tests check that T one-step calls give the outputs and the
final state of one T-step call.
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wanderlust.memory.hcam import HCAM, HCAMConfig, chunk_summaries
from wanderlust.nets.init import SQRT2, orthogonal

CoreState = tuple[torch.Tensor, ...]

MEMORIES = ("lstm", "window", "hcam")


class Core(nn.Module):
    """Interface of a recurrent core; see the module docstring for the contract."""

    output_size: int

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> CoreState:
        """The state before any step: tensors with the batch at dim 1."""
        raise NotImplementedError

    def forward(
        self, features: torch.Tensor, state: CoreState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, CoreState]:
        """features [T, B, F], bool episode_start [T, B] → (outputs [T, B, output_size], new state)."""
        raise NotImplementedError


def parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


# ---------------------------------------------------------------------------------------------- LSTM
class LSTMCore(Core):
    """An LSTM whose state is zeroed where an episode starts. State: (h, c), each [layers, B, hidden].

    With `projection_size` > 0 a linear layer maps the features to that size before the LSTM and
    another maps the LSTM's output back to it, so that the core reads and writes the same widths as
    the transformer cores (`build_core` uses this for equal-size comparisons). Without it this is
    exactly the actor-critic's original LSTM.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, projection_size: int = 0):
        super().__init__()
        self.input_projection = orthogonal(nn.Linear(input_size, projection_size), 1.0) if projection_size else None
        self.lstm = nn.LSTM(projection_size or input_size, hidden_size, num_layers=num_layers)
        for name, param in self.lstm.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param, 1.0)
            else:
                nn.init.zeros_(param)
        self.output_projection = orthogonal(nn.Linear(hidden_size, projection_size), 1.0) if projection_size else None
        self.output_size = projection_size or hidden_size

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> CoreState:
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(
        self, features: torch.Tensor, state: CoreState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, CoreState]:
        if self.input_projection is not None:
            features = self.input_projection(features)
        keep = (~episode_start).unsqueeze(-1).to(features.dtype)
        h, c = state
        # One fused LSTM call per stretch of steps in which no env starts an episode: the state is
        # zeroed only where a stretch begins, so this equals stepping one step at a time.
        starts = episode_start.any(dim=1).nonzero().flatten().tolist()
        bounds = sorted({0, *starts, features.shape[0]})
        outputs = []
        for begin, end in zip(bounds[:-1], bounds[1:]):
            h, c = h * keep[begin], c * keep[begin]
            out, (h, c) = self.lstm(features[begin:end], (h, c))
            outputs.append(out)
        output = torch.cat(outputs)
        if self.output_projection is not None:
            output = self.output_projection(output)
        return output, (h, c)


# ------------------------------------------------------------------------------ transformer layers
class TransformerLayer(nn.Module):
    """One pre-LayerNorm layer: local self-attention with a learned relative position bias over
    `span` distances, an optional HCAM read, and an MLP, each added residually."""

    def __init__(self, d_model: int, heads: int, mlp_size: int, span: int, memory: HCAMConfig | None = None):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads = heads
        self.span = span
        self.attention_norm = nn.LayerNorm(d_model)
        self.qkv = orthogonal(nn.Linear(d_model, 3 * d_model), 1.0)
        self.attention_output = orthogonal(nn.Linear(d_model, d_model), 1.0)
        self.position_bias = nn.Parameter(torch.zeros(heads, span))
        self.memory_norm = nn.LayerNorm(d_model) if memory is not None else None
        self.memory = HCAM(memory) if memory is not None else None
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            orthogonal(nn.Linear(d_model, mlp_size), SQRT2), nn.GELU(), orthogonal(nn.Linear(mlp_size, d_model), 1.0)
        )

    def attend(self, context: torch.Tensor, allowed: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        """context [B, K, d]: the layer's inputs, of which the last T are the queries; allowed bool
        [B, T, K]; distance [T, K] (query time − key time). Returns the queries after attention."""
        batch, keys, width = context.shape
        steps = distance.shape[0]
        head_size = width // self.heads
        q, k, v = self.qkv(self.attention_norm(context)).chunk(3, dim=-1)
        q = q[:, keys - steps :]
        q, k, v = (z.reshape(batch, -1, self.heads, head_size).transpose(1, 2) for z in (q, k, v))
        bias = self.position_bias[:, distance.clamp(0, self.span - 1)]  # [H, T, K]
        logits_bias = bias.unsqueeze(0).masked_fill(~allowed.unsqueeze(1), float("-inf"))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_bias)
        attended = attended.transpose(1, 2).reshape(batch, steps, width)
        return context[:, keys - steps :] + self.attention_output(attended)

    def read_memory(self, x: torch.Tensor, contents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, d] reads stored chunks [B, M, C, d] of layer inputs (no gradient into them)."""
        assert self.memory is not None and self.memory_norm is not None
        contents = self.memory_norm(contents.detach())
        return x + self.memory(self.memory_norm(x), chunk_summaries(contents), contents, mask)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.mlp_norm(x))


@dataclass
class _Timeline:
    """Where each step of a call and each key of a local context lies in its episode.

    Steps of the call (batch-first): `segment` [B, T] counts the episode starts up to and including
    the step (0: the episode the state belongs to); `episode_step` [B, T] is the step's index within
    its episode. Keys: the P stored inputs of the state (right-aligned: the last is the step just
    before the call) followed by the T steps, with `key_time` [P + T] relative to the call's first
    step, `key_segment` and `key_step` [B, P + T]; stored slots before the episode began have a
    negative `key_step`.
    """

    segment: torch.Tensor
    episode_step: torch.Tensor
    key_time: torch.Tensor
    key_segment: torch.Tensor
    key_step: torch.Tensor

    @classmethod
    def build(cls, episode_start: torch.Tensor, steps_before: torch.Tensor, stored: int) -> _Timeline:
        """episode_start bool [B, T]; steps_before [B]: steps of the current episode before the call."""
        batch, steps = episode_start.shape
        device = episode_start.device
        time = torch.arange(steps, device=device)
        segment = episode_start.long().cumsum(1)
        last_start = torch.where(episode_start, time, -1).cummax(1).values
        episode_step = torch.where(last_start >= 0, time - last_start, steps_before[:, None] + time)
        stored_time = torch.arange(-stored, 0, device=device)
        return cls(
            segment=segment,
            episode_step=episode_step,
            key_time=torch.cat([stored_time, time]),
            key_segment=torch.cat([segment.new_zeros(batch, stored), segment], 1),
            key_step=torch.cat([steps_before[:, None] + stored_time, episode_step], 1),
        )

    def distance(self) -> torch.Tensor:
        """[T, K]: query time − key time (negative for keys in the future)."""
        steps = self.segment.shape[1]
        return torch.arange(steps, device=self.key_time.device)[:, None] - self.key_time[None, :]

    def same_episode(self) -> torch.Tensor:
        """bool [B, T, K]: the key is a real input of the query's episode."""
        return (self.key_segment[:, None, :] == self.segment[:, :, None]) & (self.key_step >= 0)[:, None, :]

    def in_final_episode(self) -> torch.Tensor:
        """bool [B, K]: the key belongs to the episode that is running at the end of the call."""
        return (self.key_segment == self.segment[:, -1:]) & (self.key_step >= 0)


def _trainable(state: CoreState) -> CoreState:
    """States made under torch.inference_mode (acting) cannot be saved for backward; copy them when
    they enter a call that records gradients (training on a rollout)."""
    if torch.is_inference_mode_enabled():
        return state
    return tuple(s.clone() if s.is_inference() else s for s in state)


def _last(tokens: torch.Tensor, count: int) -> torch.Tensor:
    """The last `count` entries along dim 1 (none for count 0)."""
    return tokens[:, tokens.shape[1] - count :]


class WindowCore(Core):
    """A transformer over a window of the last `window` steps of the current episode.

    The window is split across the layers: layer l attends to its inputs at the last s_l steps
    (s_l − 1 = (window − 1) / layers, the remainder going to the first layers), so the stack's
    output at step t depends on exactly the embeddings of steps t − window + 1 … t (a layer at step
    t sees the previous layer's outputs at s_l steps, each of which saw s_{l−1} steps, ...). Giving
    every layer the whole window would let the stack see layers × (window − 1) steps back.

    State: (stored layer inputs [layers, B, max s_l − 1, d], right-aligned, zero where they are not
    inputs of the current episode; steps taken in the current episode [1, B], int64).
    """

    def __init__(
        self, input_size: int, d_model: int = 64, layers: int = 4, heads: int = 4, mlp_size: int = 256,
        window: int = 64,
    ):
        super().__init__()
        if window < 1 or layers < 1:
            raise ValueError("window and layers must be positive")
        lookback, extra = divmod(window - 1, layers)
        spans = [1 + lookback + (1 if layer < extra else 0) for layer in range(layers)]
        self.window = window
        self.stored = max(spans) - 1
        self.d_model = d_model
        self.output_size = d_model
        self.input = orthogonal(nn.Linear(input_size, d_model), 1.0)
        self.layers = nn.ModuleList(TransformerLayer(d_model, heads, mlp_size, span) for span in spans)
        self.output_norm = nn.LayerNorm(d_model)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> CoreState:
        return (
            torch.zeros(len(self.layers), batch_size, self.stored, self.d_model, device=device),
            torch.zeros(1, batch_size, dtype=torch.long, device=device),
        )

    def forward(
        self, features: torch.Tensor, state: CoreState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, CoreState]:
        stored_inputs, steps_before = _trainable(state)
        x = self.input(features).transpose(0, 1)  # [B, T, d]
        timeline = _Timeline.build(episode_start.transpose(0, 1), steps_before[0], self.stored)
        distance = timeline.distance()
        same_episode = timeline.same_episode()
        keep = _last(timeline.in_final_episode(), self.stored).unsqueeze(-1)
        new_inputs = []
        for layer, inputs in zip(self.layers, stored_inputs):
            context = torch.cat([inputs, x], 1)
            new_inputs.append(_last(context, self.stored).detach() * keep)
            allowed = same_episode & ((distance >= 0) & (distance < layer.span))
            x = layer.feed_forward(layer.attend(context, allowed, distance))
        steps_after = timeline.episode_step[:, -1:].T + 1
        return self.output_norm(x).transpose(0, 1), (torch.stack(new_inputs), steps_after)


class HCAMCore(Core):
    """Transformer layers each with an HCAM block reading an episodic memory of chunks.

    Chunks. Steps 0 … C−1 of an episode form chunk 0, steps C … 2C−1 chunk 1, and so on. After the
    last step of a chunk is processed, each layer stores its C inputs of that chunk (layer inputs,
    as Transformer-XL stores them; values only, no gradient) as a new chunk of its memory, whose
    key is the mean of its tokens (`chunk_summaries`). A layer therefore writes exactly once every
    C steps, and its memory holds the episode's chunks completed before the current step.

    Within a layer, at a step of chunk n:
    - local self-attention covers the layer's inputs of chunk n so far, the current step included
      (the tokens not yet written to memory; at the first step of a chunk only the step itself);
    - the HCAM block (`wanderlust.memory.HCAM`, top_k chunks, `memory_heads` heads, feature size
      d) reads the layer's stored chunks, newest `max_chunks` of the episode only: when the memory
      is full the oldest chunk is dropped (a ring buffer). Chunks of earlier episodes are never read:
      an episode start empties the memory.
    The output at a step therefore carries gradient into the current chunk's features only; earlier
    chunks are reached through stored values (the paper's stop-gradient memory).

    State: (stored inputs of the current chunk [layers, B, C − 1, d], right-aligned; memory
    [layers, B, max_chunks, C, d], chunk n in slot n mod max_chunks; steps taken in the current
    episode [1, B], int64). Entries that hold nothing of the current episode are zero.

    From the paper (and SYSTEMS.md section 3): a 4-layer memory with an HCAM block in each layer,
    added to the residual stream; chunks of C steps written by the agent, keyed by their mean, read
    with stop-gradient. Choices made here where we could not check the paper's text: the local
    attention spans the current, unfinished chunk; layers store their inputs (Transformer-XL's
    convention); stored tokens pass through the block's LayerNorm when read; a full memory drops
    its oldest chunk.
    """

    def __init__(
        self, input_size: int, d_model: int = 64, layers: int = 4, heads: int = 4, mlp_size: int = 256,
        chunk_size: int = 16, top_k: int = 4, max_chunks: int = 64, memory_heads: int = 1,
    ):
        super().__init__()
        if min(chunk_size, max_chunks, layers) < 1:
            raise ValueError("chunk_size, max_chunks and layers must be positive")
        self.chunk_size = chunk_size
        self.max_chunks = max_chunks
        self.d_model = d_model
        self.output_size = d_model
        memory = HCAMConfig(input_size=d_model, memory_size=d_model, feature_size=d_model, top_k=top_k,
                            num_heads=memory_heads)
        self.input = orthogonal(nn.Linear(input_size, d_model), 1.0)
        self.layers = nn.ModuleList(
            TransformerLayer(d_model, heads, mlp_size, chunk_size, memory) for _ in range(layers)
        )
        self.output_norm = nn.LayerNorm(d_model)

    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> CoreState:
        layers, chunk, width = len(self.layers), self.chunk_size, self.d_model
        return (
            torch.zeros(layers, batch_size, chunk - 1, width, device=device),
            torch.zeros(layers, batch_size, self.max_chunks, chunk, width, device=device),
            torch.zeros(1, batch_size, dtype=torch.long, device=device),
        )

    def stored_chunks(self, state: CoreState) -> torch.Tensor:
        """[B]: chunks each environment's memory holds (per layer; every layer holds as many)."""
        return (state[2][0] // self.chunk_size).clamp(max=self.max_chunks)

    def forward(
        self, features: torch.Tensor, state: CoreState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, CoreState]:
        chunk_inputs, memory, steps_before = _trainable(state)
        size, capacity = self.chunk_size, self.max_chunks
        x = self.input(features).transpose(0, 1)  # [B, T, d]
        batch, steps, _ = x.shape
        starts = episode_start.transpose(0, 1)
        steps_before = steps_before[0]
        timeline = _Timeline.build(starts, steps_before, size - 1)
        distance = timeline.distance()
        chunk = timeline.episode_step // size  # [B, T]; also the chunks completed before the step
        local = (
            timeline.same_episode()
            & (distance >= 0)
            & ((timeline.key_step // size)[:, None, :] == chunk[:, :, None])
        )
        oldest_readable = chunk - capacity  # a step reads chunks n with oldest_readable ≤ n < chunk

        # Chunks stored before the call: slot s holds the latest chunk n < chunks_before with
        # n ≡ s (mod capacity); n < 0 means the slot is empty. Only the first `used` slots can be full.
        chunks_before = steps_before // size
        slots = torch.arange(capacity, device=x.device)
        slot_chunk = chunks_before[:, None] - 1 - torch.remainder(chunks_before[:, None] - 1 - slots, capacity)
        used = int(chunks_before.clamp(max=capacity).max())
        slot_chunk = slot_chunk[:, :used]
        old_readable = (
            (timeline.segment == 0)[:, :, None]
            & (slot_chunk >= 0)[:, None, :]
            & (slot_chunk[:, None, :] >= oldest_readable[:, :, None])
        )

        # Chunks completed during the call, gathered to the front: completed at step `done_time`.
        completes = (timeline.episode_step + 1) % size == 0
        new_count = int(completes.sum(1).max())
        done_time = torch.sort((~completes).to(torch.uint8), dim=1, stable=True).indices[:, :new_count]
        new_valid = completes.gather(1, done_time)
        new_segment = timeline.segment.gather(1, done_time)
        new_chunk = chunk.gather(1, done_time)
        time = torch.arange(steps, device=x.device)
        new_readable = (
            new_valid[:, None, :]
            & (new_segment[:, None, :] == timeline.segment[:, :, None])
            & (done_time[:, None, :] < time[None, :, None])
            & (new_chunk[:, None, :] >= oldest_readable[:, :, None])
        )
        readable = torch.cat([old_readable, new_readable], -1)  # [B, T, used + new_count]
        reads = bool(readable.any())

        steps_after = timeline.episode_step[:, -1] + 1
        keep = timeline.in_final_episode() & (timeline.key_step // size == (steps_after // size)[:, None])
        keep = _last(keep, size - 1).unsqueeze(-1)
        batch_index = torch.arange(batch, device=x.device)[:, None]
        new_inputs, new_chunks = [], []
        for layer_index, layer in enumerate(self.layers):
            context = torch.cat([chunk_inputs[layer_index], x], 1)  # [B, C − 1 + T, d]
            new_inputs.append(_last(context, size - 1).detach() * keep)
            # The C inputs ending at each step: windows[:, t] holds steps t − C + 1 … t.
            windows = context.unfold(1, size, 1).transpose(-1, -2)  # [B, T, C, d]
            fresh = windows[batch_index, done_time].detach()  # [B, new_count, C, d]
            new_chunks.append(fresh)
            x = layer.attend(context, local, distance)
            if reads:
                stored = memory[layer_index, :, :used]
                x = layer.read_memory(x, torch.cat([stored, fresh], 1) if new_count else stored, readable)
            x = layer.feed_forward(x)

        memory_after = self._write(memory, starts.any(1), new_chunks, new_valid & (
            (new_segment == timeline.segment[:, -1:]) & (new_chunk >= (steps_after // size)[:, None] - capacity)
        ), new_chunk)
        state_after = (torch.stack(new_inputs), memory_after, steps_after[None])
        return self.output_norm(x).transpose(0, 1), state_after

    def _write(
        self, memory: torch.Tensor, restarted: torch.Tensor, new_chunks: list[torch.Tensor], write: torch.Tensor,
        new_chunk: torch.Tensor,
    ) -> torch.Tensor:
        """The memory after the call: emptied where an episode started, then the chunks of the
        final episode that fit written to their slots. Copies only when something changes."""
        copied = bool(restarted.any())
        if copied:
            memory = memory * (~restarted).to(memory.dtype)[None, :, None, None, None]
        if bool(write.any()):
            if not copied:
                memory = memory.clone()
            rows, columns = write.nonzero(as_tuple=True)
            memory[:, rows, new_chunk[rows, columns] % self.max_chunks] = torch.stack(new_chunks)[:, rows, columns]
        return memory


# ------------------------------------------------------------------------------ equal-size builder
@dataclass
class MemoryConfig:
    """The memory core of an actor-critic (`--memory`) and its sizes.

    The three memories are built to the same size at the same d_model (`build_core`), so that the
    encoder and heads around them are identical too (every core outputs d_model features):
    - hcam: the reference; layers × (attention 4d², HCAM block 6d², MLP 2·d·mlp_size).
    - window: the same layers and heads, the MLP widened by as many units as an HCAM block and its
      LayerNorm have parameters (≈ 3·d: 449 hidden units instead of 256 at d = 64).
    - lstm: one layer, reading and writing d-wide through linear layers in and out, with the
      hidden size that gives the HCAM core's parameter count (≈ 3.7·d: 236 at d = 64).
    All three share the input layer d·(F + 1). Defaults (d = 64, 4 layers, F = 256): 316.6 k
    (hcam), 316.4 k (window), 316.7 k (lstm) parameters.
    """

    kind: str = "none"
    """"none" (no memory: a feed-forward policy, or the plain `lstm_size` LSTM), "hcam", "lstm" or
    "window" (`--memory`)."""
    d_model: int = 64
    """Width of the transformer cores and of every core's output."""
    layers: int = 4
    """Transformer layers (the paper's agent has 4, each with an HCAM block)."""
    heads: int = 4
    """Heads of the local self-attention."""
    mlp_size: int = 0
    """Hidden units of the HCAM core's MLPs; 0 means 4·d_model."""
    chunk_size: int = 16
    """C: steps per memory chunk."""
    top_k: int = 4
    """Chunks each HCAM query reads in detail."""
    max_chunks: int = 64
    """Chunks kept per episode (64 × 16 = 1024 steps, Ballet's longest episodes); the oldest goes first."""
    window: int = 64
    """Steps the window core sees, the current one included."""

    def __post_init__(self) -> None:
        if self.kind not in ("none", *MEMORIES):
            raise ValueError(f"unknown memory {self.kind!r}; choose one of none, {', '.join(MEMORIES)}")


def _hcam_core(config: MemoryConfig, input_size: int) -> HCAMCore:
    return HCAMCore(
        input_size, config.d_model, config.layers, config.heads, config.mlp_size or 4 * config.d_model,
        config.chunk_size, config.top_k, config.max_chunks,
    )


def equal_size_lstm_hidden(config: MemoryConfig, input_size: int) -> int:
    """The LSTM hidden size h whose `LSTMCore(projection_size=d)` has about the HCAM core's parameters:
    both have the same d·(F + 1) input layer; the rest of the LSTM is 4h(d + h) + 8h + d(h + 1)."""
    d = config.d_model
    target = parameter_count(_hcam_core(config, input_size)) - d * (input_size + 1)
    linear, constant = 5 * d + 8, d - target
    return max(1, round((-linear + math.sqrt(linear * linear - 16 * constant)) / 8))


def build_core(config: MemoryConfig, input_size: int) -> Core:
    """The core `config.kind` names, reading features of size `input_size`, sized as MemoryConfig says."""
    d = config.d_model
    if config.kind == "hcam":
        return _hcam_core(config, input_size)
    if config.kind == "window":
        block = HCAM(HCAMConfig(input_size=d, memory_size=d, feature_size=d, top_k=config.top_k))
        widen = round((parameter_count(block) + 2 * d) / (2 * d + 1))  # the block and its LayerNorm
        return WindowCore(
            input_size, d, config.layers, config.heads, (config.mlp_size or 4 * d) + widen, config.window
        )
    if config.kind == "lstm":
        return LSTMCore(input_size, equal_size_lstm_hidden(config, input_size), projection_size=d)
    raise ValueError(f"memory {config.kind!r} builds no core")


def core_sizes(config: MemoryConfig, input_size: int) -> dict[str, int]:
    """Parameters of each memory core built with `config`'s sizes (for reports and tests)."""
    sizes = {}
    for memory in MEMORIES:
        sizes[memory] = parameter_count(build_core(dataclasses.replace(config, kind=memory), input_size))
    return sizes
