"""Hierarchical chunk attention memory (HCAM): the read module of Lampinen, Chan, Banino and Hill
(2021), "Towards mental time travel: a hierarchical memory for reinforcement learning agents"
(arXiv 2105.14039), as SYSTEMS.md section 3 specifies it.

The past is stored as chunks of C tokens, each with a key that summarises it (the mean of its
tokens). A query first attends over all chunk keys; it keeps the top-k chunks and their softmax
relevance weights; it then attends over the tokens of each kept chunk (ordinary multi-head
attention), and the output is the relevance-weighted sum of those k results. Memory is read-only
here and gradients never reach it: the agent writes chunks, this module reads them.

Where SYSTEMS.md is silent, the choices follow DeepMind's public JAX module
(hierarchical_transformer_memory/hierarchical_attention/htm_attention.py); docs/hcam.md lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# A truncated normal cut at ±2 std has a smaller std than the normal it was cut from; dividing by
# this factor restores the intended std (the correction Haiku's VarianceScaling applies).
TRUNCATED_NORMAL_STD_CORRECTION = 0.87962566103423978


@dataclass
class HCAMConfig:
    input_size: int
    """Size E of each query (the residual stream of the agent's transformer layer)."""
    memory_size: int
    """Size D of each stored token, and so of each chunk key."""
    feature_size: int
    """Size of the projected queries and keys, of each within-chunk attention's model size, and of
    the output (the public module's `feature_size`)."""
    top_k: int
    """Chunks each query reads in detail; capped at the number of chunks stored (the public module's
    `k`)."""
    num_heads: int = 1
    """Heads of the within-chunk attention; the key size per head is feature_size / num_heads. The
    chunk-level relevance is single-headed. Default 1 (SYSTEMS.md; the public module)."""
    use_position_encoding: bool = True
    """Add sinusoidal position encodings to chunk contents before the within-chunk attention
    (SYSTEMS.md; the public module's `memory_position_encoding=True`)."""
    init_scale: float = 2.0
    """Scale of the variance-scaling initialisation of every weight: truncated normal with variance
    init_scale / fan_in (SYSTEMS.md; the public module's `init_scale=2.`)."""
    max_timescale: float = 1e4
    """Largest timescale of the position encoding (the public module's default)."""
    min_timescale: float = 2.0
    """Step of the frequency exponents of the position encoding, as the public module uses its
    `min_timescale` (the default 2 gives the standard transformer layout: one sine and one cosine
    per frequency, wavelengths 2π up to about 2π · max_timescale)."""

    def __post_init__(self) -> None:
        if min(self.input_size, self.memory_size, self.feature_size, self.top_k, self.num_heads) < 1:
            raise ValueError("HCAM sizes, top_k and num_heads must all be positive")
        if self.feature_size % self.num_heads:
            raise ValueError(f"feature_size {self.feature_size} is not divisible by num_heads {self.num_heads}")


def chunk_summaries(memory_contents: torch.Tensor) -> torch.Tensor:
    """The key of each chunk: the mean of its tokens. contents [B, M, C, D] → keys [B, M, D]."""
    return memory_contents.mean(dim=-2)


def position_encoding(
    length: int,
    size: int,
    min_timescale: float = 2.0,
    max_timescale: float = 1e4,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Sinusoidal encodings [length, size] for the tokens of a chunk, oldest first.

    Positions count backwards, so the newest (last) token is at position 0 and its encoding is
    sin = 0, cos = 1 whatever the chunk length. Frequencies are max_timescale^(−e / size) for
    exponents e = 0, min_timescale, 2·min_timescale, … below size; the first half of the features
    holds the sines, the second half the cosines (the public module's layout). For odd `size` the
    last cosine is dropped so that the encoding matches the token size.
    """
    exponents = torch.arange(0, size, min_timescale, device=device, dtype=torch.float64)
    inverse_frequencies = max_timescale ** (-exponents / size)
    positions = torch.arange(length - 1, -1, -1, device=device, dtype=torch.float64)
    angles = positions[:, None] * inverse_frequencies[None, :]
    encoding = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if encoding.shape[-1] < size:
        raise ValueError(f"min_timescale {min_timescale} leaves {encoding.shape[-1]} features for size {size}")
    return encoding[:, :size].to(dtype)


def variance_scaling_(weight: torch.Tensor, scale: float) -> torch.Tensor:
    """Truncated-normal (±2 std) weights of a Linear layer with variance scale / fan_in, in place."""
    fan_in = weight.shape[1]
    std = math.sqrt(scale / fan_in) / TRUNCATED_NORMAL_STD_CORRECTION
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class HCAM(nn.Module):
    """Reads a chunked memory for a batch of queries.

    Parameters: `relevance_query` (E → F) and `relevance_key` (D → F), bias-free, score chunks;
    `token_query` (E → F), `token_key` and `token_value` (D → F) and `token_output` (F → F), with
    biases, form the multi-head attention within chunks (F = feature_size). Weights use variance
    scaling with `init_scale`; biases start at zero.
    """

    def __init__(self, config: HCAMConfig):
        super().__init__()
        self.config = config
        features = config.feature_size
        self.head_size = features // config.num_heads
        self.relevance_query = nn.Linear(config.input_size, features, bias=False)
        self.relevance_key = nn.Linear(config.memory_size, features, bias=False)
        self.token_query = nn.Linear(config.input_size, features)
        self.token_key = nn.Linear(config.memory_size, features)
        self.token_value = nn.Linear(config.memory_size, features)
        self.token_output = nn.Linear(features, features)
        for layer in (
            self.relevance_query, self.relevance_key, self.token_query, self.token_key, self.token_value,
            self.token_output,
        ):
            variance_scaling_(layer.weight, config.init_scale)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(
        self,
        queries: torch.Tensor,
        memory_keys: torch.Tensor,
        memory_contents: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hierarchical attention of each query over the stored chunks.

        Args:
            queries: [B, Q, E].
            memory_keys: [B, M, D], one summary per chunk (see `chunk_summaries`).
            memory_contents: [B, M, C, D], the C tokens of each chunk, oldest first.
            mask: optional bool [B, Q, M]; True where a query may read a chunk. A blocked chunk is
                never selected while an allowed one is left; when fewer than top_k chunks are
                allowed, the relevance softmax covers only the allowed ones, and a query with no
                allowed chunk (or an empty memory, M = 0) reads zeros.

        Returns:
            [B, Q, feature_size]. No gradient flows into memory_keys or memory_contents.
        """
        cfg = self.config
        batch_size, num_queries, _ = queries.shape
        _, num_chunks, chunk_length, token_size = memory_contents.shape
        if memory_keys.shape != (batch_size, num_chunks, token_size):
            raise ValueError(
                f"memory_keys {tuple(memory_keys.shape)} do not match contents {tuple(memory_contents.shape)}"
            )
        if mask is not None and (mask.dtype != torch.bool or mask.shape != (batch_size, num_queries, num_chunks)):
            raise ValueError(f"mask must be bool [B, Q, M] = {(batch_size, num_queries, num_chunks)}")
        # Stored memories are fixed records of the past (the public module stops
        # gradients into them); the agent's loss trains only how they are read.
        memory_keys = memory_keys.detach()
        memory_contents = memory_contents.detach()

        # Chunk level: which chunks each query reads, and how much each counts.
        relevance_logits = torch.einsum(
            "bqf,bmf->bqm", self.relevance_query(queries), self.relevance_key(memory_keys)
        ) / math.sqrt(cfg.feature_size)
        if mask is not None:
            # The lowest finite value, not -inf: a query with every chunk blocked must give finite
            # softmax values (and gradients), which the line after the softmax then zeroes.
            relevance_logits = relevance_logits.masked_fill(~mask, torch.finfo(relevance_logits.dtype).min)
        num_selected = min(cfg.top_k, num_chunks)
        top_logits, top_chunks = relevance_logits.topk(num_selected, dim=-1)  # [B, Q, k]
        relevance = top_logits.softmax(dim=-1)
        if mask is not None:
            # Exact already when some chunk is allowed (blocked weights underflow to 0); this only
            # changes the all-blocked case, whose uniform weights become zeros.
            relevance = relevance * mask.gather(-1, top_chunks).to(relevance.dtype)

        # Token level: attention of each query over the tokens of each of its selected chunks.
        if cfg.use_position_encoding:
            memory_contents = memory_contents + position_encoding(
                chunk_length, token_size, cfg.min_timescale, cfg.max_timescale,
                device=memory_contents.device, dtype=memory_contents.dtype,
            )
        heads, head_size = cfg.num_heads, self.head_size
        batch_index = torch.arange(batch_size, device=queries.device).view(batch_size, 1, 1)
        if num_queries * num_selected < num_chunks:
            # Few reads (acting: one query per env): project only the tokens of the selected chunks.
            selected = memory_contents[batch_index, top_chunks]  # [B, Q, k, C, D]
            split_heads = (batch_size, num_queries, num_selected, chunk_length, heads, head_size)
            selected_keys = self.token_key(selected).view(split_heads)  # [B, Q, k, C, H, head_size]
            selected_values = self.token_value(selected).view(split_heads)
        else:
            # Many reads (training on a sequence): project every stored token once, then gather.
            split_heads = (batch_size, num_chunks, chunk_length, heads, head_size)
            selected_keys = self.token_key(memory_contents).view(split_heads)[batch_index, top_chunks]
            selected_values = self.token_value(memory_contents).view(split_heads)[batch_index, top_chunks]
        token_queries = self.token_query(queries).view(batch_size, num_queries, heads, head_size)
        token_logits = torch.einsum("bqhd,bqkchd->bqkhc", token_queries, selected_keys) / math.sqrt(head_size)
        chunk_reads = torch.einsum("bqkhc,bqkchd->bqkhd", token_logits.softmax(dim=-1), selected_values)

        # The output projection is affine, so applying it once to the relevance-weighted sum of the
        # chunk reads equals applying it to each read and summing, with the bias scaled by the total
        # relevance (1, or 0 for a query that may read nothing).
        combined = torch.einsum("bqk,bqkhd->bqhd", relevance, chunk_reads).reshape(batch_size, num_queries, -1)
        total_relevance = relevance.sum(dim=-1, keepdim=True)
        return F.linear(combined, self.token_output.weight) + total_relevance * self.token_output.bias
