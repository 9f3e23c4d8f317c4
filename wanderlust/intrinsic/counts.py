"""Visit counts: hashing observations to keys, episodic and life-long counts, and the count bonus.

The count bonuses (RIDE's episodic counts, NovelD's first-visit gate, the global count) key on the
exact observation (PITFALLS 4: not a kNN pseudo-count). An observation's key is a 64-bit linear hash
of its bytes, Σ_i w_i·x_i mod 2⁶⁴ with fixed random odd weights: two different observations share
a key with probability about 2⁻⁶³, so on discrete observations the counts are exact in practice.
Pixels rarely repeat exactly, so there the keys can instead come from SimHash (Tang et al. 2017),
which gives nearby frames the same key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer


class ObservationHash(nn.Module):
    """uint8 observations [B, *shape] → int64 keys [B]; the weights are a buffer, so keys survive
    checkpoints and `.to(device)`."""

    def __init__(self, obs_shape: tuple[int, ...], seed: int = 0):
        super().__init__()
        size = 1
        for dim in obs_shape:
            size *= dim
        generator = torch.Generator().manual_seed(seed)
        weights = torch.randint(-(2**62), 2**62, (size,), generator=generator, dtype=torch.int64) * 2 + 1
        self.register_buffer("weights", weights)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # int64 arithmetic wraps modulo 2⁶⁴, which is the hash's definition.
        return (obs.flatten(1).long() * self.weights).sum(1)


class EpisodicCounts:
    """Per-environment visit counts of keys within the current episode.

    `reset(mask)` clears the environments in the bool mask; `add(keys)` counts one visit of each
    env's key and returns the counts after the visit (1 on a first visit). Episodic counts are not
    saved in checkpoints: a resumed run starts new episodes.
    """

    def __init__(self, num_envs: int):
        self._counts: list[dict[int, int]] = [{} for _ in range(num_envs)]

    def reset(self, mask: torch.Tensor) -> None:
        for env in torch.nonzero(mask.cpu()).flatten().tolist():
            self._counts[env].clear()

    def add(self, keys: torch.Tensor) -> torch.Tensor:
        out = []
        for counts, key in zip(self._counts, keys.tolist()):
            counts[key] = counts.get(key, 0) + 1
            out.append(counts[key])
        return torch.tensor(out, dtype=torch.float32, device=keys.device)


class SimHash(nn.Module):
    """Locality-sensitive keys for pixels (Tang et al. 2017, "#Exploration"): key = sign(A·g(s)).

    g(s) keeps the newest frame (Atari: the last of the stack; Procgen: the RGB frame) and averages
    it down to `size`×`size`; MiniGrid cells are used as they are. Pixels stay in 0–255: scaling g
    (to [0, 1], say) would change no sign, only cost a pass over the frames. A is a fixed
    Gaussian matrix with `bits` columns. Nearby frames share most signs, so small pixel changes
    rarely change the key, while frames that differ visibly land on different keys. The `bits`
    signs are packed into 64-bit words; longer codes fold their words into one key with the
    64-bit linear hash (a collision then needs two equal 64-bit sums, probability ≈ 2⁻⁶³).
    """

    def __init__(self, obs_shape: tuple[int, ...], family: str, bits: int = 256, size: int = 52, seed: int = 0):
        super().__init__()
        if bits < 1:
            raise ValueError(f"SimHash needs at least one bit, got {bits}")
        self.family, self.bits, self.size = family, bits, size
        if family == "minigrid":
            input_size = math.prod(obs_shape)
        else:
            self.frame_channels = 1 if family == "atari" else obs_shape[0]
            input_size = self.frame_channels * size * size
        generator = torch.Generator().manual_seed(seed)
        # A buffer, so that a resumed run hashes with the same projection whatever torch's RNG does.
        self.register_buffer("projection", torch.randn(input_size, bits, generator=generator))
        words = -(-bits // 64)
        self.register_buffer("bit_values", torch.ones(64, dtype=torch.int64) << torch.arange(64), persistent=False)
        self.fold = ObservationHash((words,), seed=seed + 1) if words > 1 else None

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """g(s): uint8 observations [B, ...] → float [B, D]."""
        if self.family == "minigrid":
            return obs.flatten(1).float()
        return F.adaptive_avg_pool2d(obs[:, -self.frame_channels :].float(), self.size).flatten(1)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        signs = (self.preprocess(obs) @ self.projection) > 0
        padding = -self.bits % 64
        if padding:
            signs = F.pad(signs, (0, padding))
        # The 64 distinct powers of two never carry into each other, so the sum is the bit pattern
        # (bit 63 wraps to the sign bit, which int64 arithmetic does modulo 2⁶⁴).
        words = (signs.view(signs.shape[0], -1, 64).long() * self.bit_values).sum(-1)
        return words[:, 0] if self.fold is None else self.fold(words)


HASH_MODES = ("auto", "exact", "simhash")


def observation_keys(spec: BonusSpec, mode: str, simhash_bits: int = 256, simhash_size: int = 52) -> nn.Module:
    """The key function of the count bonuses: "exact" (ObservationHash of the whole observation),
    "simhash" (SimHash of the newest frame) or "auto" (exact on MiniGrid and the grid worlds,
    SimHash on pixels)."""
    if mode not in HASH_MODES:
        raise ValueError(f"unknown hash {mode!r}; choose one of: {', '.join(HASH_MODES)}")
    if mode == "exact" or (mode == "auto" and spec.family in ("minigrid", "gridworld")):
        return ObservationHash(spec.obs_shape)
    return SimHash(spec.obs_shape, spec.family, simhash_bits, simhash_size)


class GlobalCounts(nn.Module):
    """Life-long visit counts of int64 keys, as a sorted key tensor and a count tensor.

    `add(keys)` counts a batch of visits given in visit order and returns each visit's count after
    it (a key seen twice in the batch gets N + 1, then N + 2). The whole batch is one sort and a few
    searchsorted calls, on whatever device the keys are, instead of a Python loop per visit. The
    table is the module's extra state: it is saved in state dicts and restored by load_state_dict
    whatever its size (a buffer would refuse a size mismatch).
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys = torch.zeros(0, dtype=torch.int64)
        self.counts = torch.zeros(0, dtype=torch.int64)

    def __len__(self) -> int:
        return self.keys.numel()

    def lookup(self, keys: torch.Tensor) -> torch.Tensor:
        """The counts of `keys` [B] so far (0 for unseen keys), int64 [B]."""
        self._follow(keys.device)
        if len(self) == 0:
            return torch.zeros_like(keys)
        position = torch.searchsorted(self.keys, keys).clamp(max=len(self) - 1)
        found = self.keys[position] == keys
        return torch.where(found, self.counts[position], torch.zeros_like(keys))

    @torch.no_grad()
    def add(self, keys: torch.Tensor) -> torch.Tensor:
        """keys int64 [B], in visit order → counts after each visit, int64 [B]."""
        self._follow(keys.device)
        # A stable sort keeps equal keys in visit order, so a key's i-th visit in the batch is the
        # i-th entry of its run in the sorted order.
        sorted_keys, order = torch.sort(keys, stable=True)
        run_start = torch.ones_like(sorted_keys, dtype=torch.bool)
        run_start[1:] = sorted_keys[1:] != sorted_keys[:-1]
        start_positions = torch.nonzero(run_start).flatten()
        run_index = torch.cumsum(run_start.long(), 0) - 1
        position = torch.arange(keys.numel(), device=keys.device)
        visit_in_batch = position - start_positions[run_index] + 1
        counts_after = torch.empty_like(keys)
        counts_after[order] = self.lookup(sorted_keys) + visit_in_batch
        run_lengths = torch.diff(start_positions, append=torch.tensor([keys.numel()], device=keys.device))
        self._merge(sorted_keys[run_start], run_lengths)
        return counts_after

    def _merge(self, unique_keys: torch.Tensor, visits: torch.Tensor) -> None:
        """Adds `visits` to the counts of sorted distinct `unique_keys`, inserting unseen ones."""
        if len(self) > 0:
            position = torch.searchsorted(self.keys, unique_keys).clamp(max=len(self) - 1)
            seen = self.keys[position] == unique_keys
            self.counts.index_add_(0, position[seen], visits[seen])
            unique_keys, visits = unique_keys[~seen], visits[~seen]
        if unique_keys.numel() == 0:
            return
        # Merge two sorted lists without re-sorting the table: each entry moves right by the
        # number of entries of the other list that are smaller than it.
        new_slots = torch.searchsorted(self.keys, unique_keys) + torch.arange(unique_keys.numel(), device=visits.device)
        old_slots = torch.arange(len(self), device=visits.device) + torch.searchsorted(unique_keys, self.keys)
        size = len(self) + unique_keys.numel()
        merged_keys = torch.empty(size, dtype=torch.int64, device=visits.device)
        merged_counts = torch.empty_like(merged_keys)
        merged_keys[old_slots], merged_counts[old_slots] = self.keys, self.counts
        merged_keys[new_slots], merged_counts[new_slots] = unique_keys, visits
        self.keys, self.counts = merged_keys, merged_counts

    def _follow(self, device: torch.device) -> None:
        if self.keys.device != device:
            self.keys, self.counts = self.keys.to(device), self.counts.to(device)

    def get_extra_state(self) -> dict:
        return {"keys": self.keys.clone(), "counts": self.counts.clone()}

    def set_extra_state(self, state: dict) -> None:
        self.keys, self.counts = state["keys"].clone(), state["counts"].clone()


@dataclass
class CountConfig:
    scale: float = 1.0
    """β in β/√N(s') (Tang et al. 2017 write β; RIDE's count baseline uses 1/√N and leaves the weight
    to its intrinsic reward coefficient, which is PPO's `int_coef` here)."""
    hash: str = "auto"
    """How observations become keys: "exact" (64-bit hash of the whole observation, RIDE's exact
    counts), "simhash" (Tang et al.'s SimHash of the newest frame), "auto" (exact on MiniGrid,
    SimHash on Atari and Procgen)."""
    simhash_bits: int = 256
    """SimHash code length k (Tang et al.'s pixel-SimHash on Atari; their study ranges 64–512)."""
    simhash_size: int = 52
    """Side of the downsampled frame that SimHash projects (Tang et al.'s 52×52 on Atari)."""
    return_normalization: bool = False
    """Divide by the running std of the per-env discounted intrinsic return; neither RIDE's count
    baseline nor Tang et al. normalise the count bonus."""


class CountBonus(IntrinsicReward):
    """Global count bonus scale/√N(s'), N counting every visit so far including this one.

    Counts are life-long (never reset at episode ends) and shared by all environments. They are
    updated per rollout in `reward`, in time order (step by step, environments in index order
    within a step), which gives the same bonuses as counting in `observe` while hashing the
    rollout in large batches.
    """

    name = "count"
    requires = frozenset({"next_obs"})
    families = ("minigrid", "atari", "procgen", "gridworld")

    def __init__(self, config: CountConfig, spec: BonusSpec):
        super().__init__()
        self.config = config
        self.hasher = observation_keys(spec, config.hash, config.simhash_bits, config.simhash_size)
        self.counts = GlobalCounts()
        self.reward_normalizer = DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int)
        self._metrics: dict[str, float] = {}

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        # next_obs is time-major, so flattening keeps visit order; chunks bound SimHash's memory.
        keys = torch.cat([self.hasher(part) for part in rollout.next_obs.flatten(0, 1).split(4096)])
        distinct_before = len(self.counts)
        visits = self.counts.add(keys)
        raw = (self.config.scale / visits.double().sqrt()).float().reshape(rollout.num_steps, rollout.num_envs)
        self._metrics = {
            "count/raw_reward": raw.mean().item(),
            "count/distinct_states": float(len(self.counts)),
            "count/new_states": float(len(self.counts) - distinct_before),
        }
        if not self.config.return_normalization:
            return raw
        rewards = self.reward_normalizer(raw)
        self._metrics["count/return_std"] = self.reward_normalizer.stats.std.item()
        return rewards

    def update(self, rollout: Rollout) -> dict[str, float]:
        return dict(self._metrics)
