"""The global count bonus and NovelD: their defining properties, their keys and their checkpoints."""

import io

import pytest
import torch

from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.intrinsic.counts import (
    CountBonus,
    CountConfig,
    GlobalCounts,
    ObservationHash,
    SimHash,
    observation_keys,
)
from wanderlust.intrinsic.noveld import NovelD, NovelDConfig

try:
    from test_intrinsic import SPECS, drive, random_obs
except ImportError:
    from unit.test_intrinsic import SPECS, drive, random_obs

pytestmark = pytest.mark.unit

MINIGRID = SPECS["minigrid"]


def rollout_of(next_obs: torch.Tensor, obs: torch.Tensor | None = None, dones: torch.Tensor | None = None) -> Rollout:
    """A rollout whose observations are given; obs defaults to next_obs shifted by one step, as PPO stores them."""
    t, n = next_obs.shape[:2]
    if obs is None:
        obs = torch.cat([next_obs[:1], next_obs[:-1]])
    return Rollout(
        obs=obs, next_obs=next_obs, actions=torch.zeros(t, n, dtype=torch.long),
        dones=dones if dones is not None else torch.zeros(t, n, dtype=torch.bool),
        valid=torch.ones(t, n, dtype=torch.bool),
    )


def grids(count: int, seed: int) -> torch.Tensor:
    return random_obs(MINIGRID, (count,), torch.Generator().manual_seed(seed))


def round_trip(module: torch.nn.Module) -> dict:
    """A state dict through torch.save / torch.load(weights_only=True), as checkpoints travel."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# ---------------------------------------------------------------------------------------- counts
def test_count_bonus_is_scale_over_root_n_over_repeated_visits_and_rollouts():
    bonus = CountBonus(CountConfig(scale=0.3), MINIGRID)
    state = grids(1, 0)
    visits = 0
    for _ in range(3):  # three rollouts of 4 steps, every env in the same state every step
        rewards = drive(bonus, rollout_of(state.expand(4, 4, 7, 7, 3).clone()))
        # Time-major, environments in index order within a step: visits n = visits + 1 … visits + 16.
        expected = 0.3 / torch.arange(visits + 1, visits + 17, dtype=torch.float64).sqrt()
        torch.testing.assert_close(rewards.flatten().double(), expected, rtol=1e-6, atol=0)
        visits += 16


def test_a_state_visited_twice_in_one_rollout_gets_one_then_one_over_root_two():
    bonus = CountBonus(CountConfig(), BonusSpec((7, 7, 3), 7, 1, "minigrid"))
    a, b = grids(2, 1)
    rewards = drive(bonus, rollout_of(torch.stack([a, b, a])[:, None]))
    torch.testing.assert_close(rewards[:, 0], torch.tensor([1.0, 1.0, 2**-0.5]))


def test_different_observations_have_separate_counts():
    bonus = CountBonus(CountConfig(scale=2.0), BonusSpec((7, 7, 3), 7, 2, "minigrid"))
    a, b = grids(2, 2)
    # env 0 sees a at every step, env 1 sees b at every step.
    rewards = drive(bonus, rollout_of(torch.stack([a, b])[None].expand(5, 2, 7, 7, 3).clone()))
    expected = 2.0 / torch.arange(1, 6, dtype=torch.float32).sqrt()
    torch.testing.assert_close(rewards[:, 0], expected)
    torch.testing.assert_close(rewards[:, 1], expected)


def test_counts_are_life_long_not_reset_at_episode_ends():
    bonus = CountBonus(CountConfig(), BonusSpec((7, 7, 3), 7, 1, "minigrid"))
    state = grids(1, 3)
    dones = torch.ones(3, 1, dtype=torch.bool)  # every step ends an episode
    rewards = drive(bonus, rollout_of(state.expand(3, 1, 7, 7, 3).clone(), dones=dones))
    torch.testing.assert_close(rewards[:, 0], 1 / torch.tensor([1.0, 2.0, 3.0]).sqrt())


def test_counts_survive_a_state_dict_round_trip():
    spec = BonusSpec((7, 7, 3), 7, 1, "minigrid")
    bonus = CountBonus(CountConfig(scale=0.3), spec)
    a, b = grids(2, 4)
    drive(bonus, rollout_of(torch.stack([a, a, a, b])[:, None]))  # a three times, b once
    copy = CountBonus(CountConfig(scale=0.3), spec)
    copy.load_state_dict(round_trip(bonus))
    rewards = drive(copy, rollout_of(torch.stack([a, b])[:, None]))
    torch.testing.assert_close(rewards[:, 0], 0.3 / torch.tensor([4.0, 2.0]).sqrt())
    assert len(copy.counts) == 2


def test_global_count_table_matches_a_dictionary_over_batches():
    table = GlobalCounts()
    reference: dict[int, int] = {}
    generator = torch.Generator().manual_seed(0)
    for size in (1, 300, 57, 300):
        # Few distinct keys, so that repeats within and across batches are common; extreme keys too.
        keys = torch.randint(-40, 40, (size,), generator=generator) * (2**57)
        expected = []
        for key in keys.tolist():
            reference[key] = reference.get(key, 0) + 1
            expected.append(reference[key])
        assert table.add(keys).tolist() == expected
    assert table.keys.tolist() == sorted(reference)
    assert table.counts.tolist() == [reference[key] for key in sorted(reference)]


def test_count_return_normalization_divides_by_the_return_std():
    bonus = CountBonus(CountConfig(return_normalization=True), MINIGRID)
    rewards = drive(bonus, rollout_of(grids(16, 5).reshape(4, 4, 7, 7, 3)))
    std = bonus.reward_normalizer.stats.std.item()
    torch.testing.assert_close(rewards, torch.full((4, 4), 1.0 / (std + 1e-8)))
    assert "count/return_std" in bonus.update(rollout_of(grids(16, 5).reshape(4, 4, 7, 7, 3)))


# ---------------------------------------------------------------------------------------- keys
def test_auto_hash_is_exact_on_minigrid_and_simhash_on_pixels():
    assert isinstance(observation_keys(SPECS["minigrid"], "auto"), ObservationHash)
    assert isinstance(observation_keys(SPECS["atari"], "auto"), SimHash)
    assert isinstance(observation_keys(SPECS["procgen"], "auto"), SimHash)
    assert isinstance(observation_keys(SPECS["atari"], "exact"), ObservationHash)
    assert isinstance(observation_keys(SPECS["minigrid"], "simhash"), SimHash)
    with pytest.raises(ValueError, match="unknown hash 'sim'"):
        observation_keys(SPECS["minigrid"], "sim")


@pytest.mark.parametrize("family", ["atari", "procgen"])
@pytest.mark.parametrize("bits", [64, 100, 256])
def test_simhash_groups_identical_and_near_identical_frames_and_separates_different_ones(family, bits):
    spec = SPECS[family]
    simhash = SimHash(spec.obs_shape, family, bits=bits)
    frames = random_obs(spec, (8,), torch.Generator().manual_seed(0))
    keys = simhash(frames)
    assert keys.dtype == torch.int64 and keys.shape == (8,)
    assert torch.equal(simhash(frames.clone()), keys)
    assert keys.unique().numel() == 8
    nudged = frames.clone()
    nudged[:, -1, 10, 20] = torch.where(nudged[:, -1, 10, 20] < 255, nudged[:, -1, 10, 20] + 1, 254)
    assert torch.equal(simhash(nudged), keys)
    dark = torch.zeros_like(frames[:1])
    assert simhash(dark).item() not in keys.tolist()


def test_simhash_on_atari_reads_only_the_newest_frame():
    spec = SPECS["atari"]
    simhash = SimHash(spec.obs_shape, "atari")
    frames = random_obs(spec, (4,), torch.Generator().manual_seed(1))
    older_changed = frames.clone()
    older_changed[:, :-1] = 0
    assert torch.equal(simhash(older_changed), simhash(frames))


def test_simhash_keys_of_64_bits_are_the_sign_pattern_itself():
    spec = SPECS["procgen"]
    simhash = SimHash(spec.obs_shape, "procgen", bits=64)
    frame = random_obs(spec, (1,), torch.Generator().manual_seed(2))
    signs = (simhash.preprocess(frame) @ simhash.projection > 0)[0].tolist()
    pattern = sum(1 << i for i, bit in enumerate(signs) if bit)
    assert simhash(frame).item() == (pattern - (1 << 64) if pattern >= 1 << 63 else pattern)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_count_bonus_runs_the_ppo_protocol_on_every_family(family):
    spec = SPECS[family]
    observations = random_obs(spec, (4, spec.num_envs), torch.Generator().manual_seed(0))
    bonus = CountBonus(CountConfig(), spec)
    rewards = drive(bonus, rollout_of(observations))
    assert rewards.shape == (4, spec.num_envs) and torch.isfinite(rewards).all()
    assert all(isinstance(value, float) for value in bonus.update(rollout_of(observations)).values())


# ---------------------------------------------------------------------------------------- NovelD
def make_noveld(num_envs: int = 1, **config) -> NovelD:
    torch.manual_seed(0)
    return NovelD(NovelDConfig(**config), BonusSpec((7, 7, 3), 7, num_envs, "minigrid"))


def with_fixed_novelty(bonus: NovelD, novelty_of: dict[int, float]) -> NovelD:
    """Replaces n(s) by a table keyed on the observation's exact hash, to test the formula alone."""
    hasher = ObservationHash((7, 7, 3))
    bonus.novelty = lambda obs: torch.tensor([novelty_of[key] for key in hasher(obs).tolist()])
    return bonus


def key(obs: torch.Tensor) -> int:
    return ObservationHash((7, 7, 3))(obs[None]).item()


def test_noveld_novelty_is_the_l2_norm_of_rnd_error():
    bonus = make_noveld()
    states = grids(6, 6)
    torch.testing.assert_close(bonus.novelty(states), (2 * bonus.rnd.raw_reward(states)).sqrt())


def test_noveld_is_the_clipped_novelty_difference_with_alpha():
    a, b, c, d = grids(4, 7)
    novelty = {key(a): 2.0, key(b): 3.0, key(c): 1.0, key(d): 0.4}
    bonus = with_fixed_novelty(make_noveld(alpha=0.5), novelty)
    # a → b: 3 − 0.5·2 = 2;  b → c: 1 − 1.5 < 0 → 0;  c → d: 0.4 − 0.5 < 0 → 0 (n(s') ≤ α·n(s)).
    rewards = drive(bonus, rollout_of(torch.stack([b, c, d])[:, None], obs=torch.stack([a, b, c])[:, None]))
    torch.testing.assert_close(rewards[:, 0], torch.tensor([2.0, 0.0, 0.0]))
    edge = with_fixed_novelty(make_noveld(alpha=0.5), {key(a): 2.0, key(b): 1.0})
    assert drive(edge, rollout_of(b[None, None], obs=a[None, None])).item() == 0.0  # n(s') = α·n(s)


def test_noveld_is_zero_on_a_second_visit_and_its_gate_resets_only_for_the_ended_episode():
    a, b = grids(2, 8)
    bonus = with_fixed_novelty(make_noveld(num_envs=2, alpha=0.0), {key(a): 1.0, key(b): 1.0})
    # Both envs see a, b, a, b; env 1's episode ends at step 1, so its next steps start a new episode.
    next_obs = torch.stack([a, b, a, b])[:, None].expand(4, 2, 7, 7, 3).clone()
    dones = torch.zeros(4, 2, dtype=torch.bool)
    dones[1, 1] = True
    rewards = drive(bonus, rollout_of(next_obs, dones=dones))
    torch.testing.assert_close(rewards[:, 0], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(rewards[:, 1], torch.tensor([1.0, 1.0, 1.0, 1.0]))
    # Without any reset the gate stays shut across rollouts for states seen in the episode.
    rewards = drive(bonus, rollout_of(torch.stack([a, b])[:, None].expand(2, 2, 7, 7, 3).clone()))
    assert rewards.abs().sum() == 0


def test_noveld_pays_for_stepping_into_a_novel_state_and_not_back():
    bonus = make_noveld(num_envs=8, learning_rate=1e-3, epochs=1, minibatches=1)
    familiar = grids(8, 9)
    for _ in range(30):  # the predictor learns the familiar states
        bonus.rnd.update(rollout_of(familiar[None]))
    novel = grids(8, 10)
    into_novel = drive(bonus, rollout_of(novel[None], obs=familiar[None]))
    assert (into_novel > 0).all()
    bonus.reset(torch.ones(8, dtype=torch.bool))
    back = drive(bonus, rollout_of(familiar[None], obs=novel[None]))
    assert (back == 0).all()


def test_noveld_scores_with_the_predictor_before_its_update_and_never_moves_the_target():
    bonus = make_noveld(num_envs=4)
    observations = grids(12, 11).reshape(3, 4, 7, 7, 3)
    rollout = rollout_of(observations)
    target = [p.clone() for p in bonus.rnd.target.parameters()]
    predictor = [p.clone() for p in bonus.rnd.predictor.parameters()]
    for t in range(3):
        bonus.reset(torch.zeros(4, dtype=torch.bool))
        bonus.observe(rollout.obs[t], rollout.actions[t], rollout.next_obs[t])
    expected_novelty = bonus.novelty(observations.flatten(0, 1)).mean().item()
    bonus.reward(rollout)
    metrics = bonus.update(rollout)
    assert metrics["noveld/novelty"] == pytest.approx(expected_novelty)
    assert all(torch.equal(a, b) for a, b in zip(target, bonus.rnd.target.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(predictor, bonus.rnd.predictor.parameters()))
    assert set(metrics) == {
        "noveld/raw_reward", "noveld/novelty", "noveld/first_visit_fraction", "noveld/predictor_loss",
    }


def test_noveld_reads_n_of_s_from_obs_whether_or_not_obs_repeats_next_obs():
    bonus = make_noveld(num_envs=2)
    sequence = grids(8, 12).reshape(4, 2, 7, 7, 3)
    unrelated = grids(6, 15).reshape(3, 2, 7, 7, 3)
    for obs in (sequence[:-1], unrelated):  # PPO's shifted storage, and an arbitrary rollout
        rollout = rollout_of(sequence[1:], obs=obs)
        for t in range(3):
            bonus.reset(torch.ones(2, dtype=torch.bool))  # every step is a first visit
            bonus.observe(rollout.obs[t], rollout.actions[t], rollout.next_obs[t])
        after = bonus.novelty(rollout.next_obs.flatten(0, 1))
        before = bonus.novelty(obs.flatten(0, 1))
        expected = (after - 0.5 * before).clamp(min=0).reshape(3, 2)
        torch.testing.assert_close(bonus.reward(rollout), expected)


def test_noveld_state_dict_round_trips_predictor_optimizer_and_normalisers():
    bonus = make_noveld(num_envs=4, return_normalization=True)
    drive(bonus, rollout_of(grids(8, 13).reshape(2, 4, 7, 7, 3)))
    copy = make_noveld(num_envs=4, return_normalization=True)
    copy.load_state_dict(round_trip(bonus))
    probe = grids(5, 14)
    assert torch.equal(copy.novelty(probe), bonus.novelty(probe))
    assert torch.equal(copy.reward_normalizer.discounted_return, bonus.reward_normalizer.discounted_return)
    assert copy.rnd.optimizer.state_dict()["state"].keys() == bonus.rnd.optimizer.state_dict()["state"].keys()


def test_noveld_defaults_follow_the_family():
    assert make_noveld().rnd.config.obs_norm == "none" and make_noveld().warmup_steps == 0
    pixels = NovelD(NovelDConfig(), SPECS["atari"])
    assert pixels.rnd.config.obs_norm == "meanstd" and pixels.warmup_steps == 128
    assert isinstance(pixels.hasher, SimHash)


@pytest.mark.parametrize("family", sorted(SPECS))
def test_noveld_runs_the_ppo_protocol_on_every_family(family):
    spec = SPECS[family]
    observations = random_obs(spec, (3, spec.num_envs), torch.Generator().manual_seed(0))
    bonus = NovelD(NovelDConfig(), spec)
    rewards = drive(bonus, rollout_of(observations))
    assert rewards.shape == (3, spec.num_envs) and torch.isfinite(rewards).all() and (rewards >= 0).all()
