"""SND's defining properties: a target that learns (unlike RND's), each variant's self-supervised
objective, the seed's augmentations, and the clipped bonus."""

import math

import pytest
import torch

from test_intrinsic import SPECS, drive, random_obs
from wanderlust.intrinsic.base import BonusSpec, Rollout
from wanderlust.intrinsic.snd import (
    SNDSTD,
    SNDV,
    SNDVIC,
    TILE_SIZES,
    SNDConfig,
    augment,
    contrastive_loss,
    mask_tiles,
    vicreg_terms,
)

pytestmark = pytest.mark.unit

VARIANTS = {"snd-v": SNDV, "snd-std": SNDSTD, "snd-vic": SNDVIC}


def make(name: str, family: str = "minigrid", **config):
    torch.manual_seed(0)
    return VARIANTS[name](SNDConfig(warmup_steps=0, **config), SPECS[family])


def rollout_of(obs: torch.Tensor, next_obs: torch.Tensor | None = None, valid: torch.Tensor | None = None) -> Rollout:
    t, n = obs.shape[:2]
    return Rollout(
        obs=obs, next_obs=obs if next_obs is None else next_obs, actions=torch.zeros(t, n, dtype=torch.long),
        dones=torch.zeros(t, n, dtype=torch.bool),
        valid=torch.ones(t, n, dtype=torch.bool) if valid is None else valid,
    )


def random_rollout(family: str, steps: int, seed: int) -> Rollout:
    spec = SPECS[family]
    obs = random_obs(spec, (steps + 1, spec.num_envs), torch.Generator().manual_seed(seed))
    return rollout_of(obs[:-1], obs[1:])


@pytest.mark.parametrize("family", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_runs_the_ppo_protocol_on_every_family(name, family):
    bonus = make(name, family)
    rollout = random_rollout(family, steps=3, seed=0)
    rewards = drive(bonus, rollout)
    assert rewards.shape == (3, SPECS[family].num_envs)
    assert ((rewards >= 0) & (rewards <= 1)).all()
    metrics = bonus.update(rollout)
    assert metrics and all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert all(key.startswith(f"{name}/") for key in metrics)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_target_moves_under_the_update_and_the_predictor_trains_too(name):
    """Unlike RND's, SND's target is trained (its self-supervised loss), in the same step as the predictor."""
    bonus = make(name)
    target = [p.clone() for p in bonus.target.parameters()]
    predictor = [p.clone() for p in bonus.predictor.parameters()]
    bonus.update(random_rollout("minigrid", steps=8, seed=1))
    assert all(p.requires_grad for p in bonus.target.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(target, bonus.target.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(predictor, bonus.predictor.parameters()))


def test_the_target_objective_alone_moves_the_target():
    """The target's gradient comes from its own loss, not from the predictor's (whose target is detached)."""
    bonus = make("snd-vic")
    bonus.predictor.requires_grad_(False)
    before = [p.clone() for p in bonus.target.parameters()]
    bonus.update(random_rollout("minigrid", steps=8, seed=1))
    assert all(not torch.equal(a, b) for a, b in zip(before, bonus.target.parameters()))


def test_contrastive_loss_is_low_for_identical_pairs_labelled_same_and_high_if_labelled_different():
    features = torch.randn(16, 32)
    same, distances = contrastive_loss(features, features.clone(), torch.zeros(16), magnitude_limit=200.0)
    assert same.item() == 0.0 and torch.equal(distances, torch.zeros(16))
    different, _ = contrastive_loss(features, features.clone(), torch.ones(16), magnitude_limit=200.0)
    assert different.item() == pytest.approx(1.0)
    far = torch.zeros(16, 32)
    far[:, 0] = math.sqrt(32.0)  # mean squared difference 1 to the zero vector
    assert contrastive_loss(far, torch.zeros(16, 32), torch.ones(16), 200.0)[0].item() == pytest.approx(0.0, abs=1e-6)


def test_contrastive_loss_penalises_feature_magnitude_only_above_the_limit():
    big = torch.full((4, 8), 15.0)  # mean(z²) = 225 per view: 450 in all, 250 above the limit
    loss, _ = contrastive_loss(big, big.clone(), torch.zeros(4), magnitude_limit=200.0)
    assert loss.item() == pytest.approx(250.0)
    small = torch.full((4, 8), 9.0)  # 81 + 81 < 200
    assert contrastive_loss(small, small.clone(), torch.zeros(4), 200.0)[0].item() == 0.0


@pytest.mark.parametrize("tile_size", TILE_SIZES)
def test_tile_masking_zeroes_about_ten_percent_in_whole_tiles(tile_size):
    torch.manual_seed(tile_size)
    ones = torch.ones(256, 2, 96, 96)
    masked = mask_tiles(ones, tile_size, drop_probability=0.1)
    assert (masked == 0).float().mean().item() == pytest.approx(0.1, abs=0.02)
    assert torch.equal(masked[:, 0], masked[:, 1])  # the same tiles in every channel
    tiles = masked[:, 0].reshape(256, 96 // tile_size, tile_size, 96 // tile_size, tile_size)
    per_tile = tiles.amax((2, 4)) - tiles.amin((2, 4))
    assert (per_tile == 0).all()  # each tile is wholly kept or wholly zeroed


def test_tile_masking_crops_tiles_larger_than_the_remainder():
    masked = mask_tiles(torch.ones(8, 3, 7, 7), tile_size=4, drop_probability=0.5)
    assert masked.shape == (8, 3, 7, 7)


def test_augmentations_are_applied_per_sample_with_their_probability():
    torch.manual_seed(0)
    x = torch.randn(4000, 1, 16, 16)
    assert torch.equal(augment(x, 0.0, 0.1, 0.2), x)
    noisy = augment(x, 1.0, 0.0, 0.2)  # tiles with drop probability 0 keep everything
    assert ((noisy - x).abs() <= 0.2 + 1e-6).all() and (noisy != x).flatten(1).all(1).all()
    # With every tile dropped, only samples that drew neither augmentation (0.5 · 0.5) stay as they were.
    untouched = (augment(x, 0.5, 1.0, 0.2) == x).flatten(1).all(1).float().mean().item()
    assert untouched == pytest.approx(0.25, abs=0.03)


def hadamard(size: int) -> torch.Tensor:
    matrix = torch.ones(1, 1)
    while matrix.shape[0] < size:
        matrix = torch.cat([torch.cat([matrix, matrix], 1), torch.cat([matrix, -matrix], 1)])
    return matrix


def test_vicreg_variance_is_zero_when_every_feature_has_unit_std_and_positive_when_collapsed():
    # Hadamard columns after the first: zero mean, std √(8/7) > 1, pairwise uncorrelated.
    spread = hadamard(8)[:, 1:]
    invariance, variance, covariance = vicreg_terms(spread, spread.clone())
    assert invariance.item() == 0.0 and variance.item() == 0.0
    assert covariance.item() == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.ones(8, 7)
    _, collapsed_variance, _ = vicreg_terms(collapsed, collapsed.clone())
    assert collapsed_variance.item() == pytest.approx(2 * (1 - 0.01))  # 1 − √1e-4 per view
    duplicated = torch.cat([spread[:, :1]] * 7, 1)
    assert vicreg_terms(duplicated, duplicated.clone())[2].item() > 1.0


def stdim_losses(bonus: SNDSTD, rollouts: list[Rollout]) -> list[float]:
    return [sum(bonus.update(r)[f"snd-std/{k}"] for k in ("global_local_loss", "local_local_loss")) for r in rollouts]


def test_stdim_loss_falls_when_consecutive_frames_are_informative_and_not_otherwise():
    """Where s' follows from s, the target learns to pick s's local features out of the minibatch's;
    where s' is drawn independently of s, nothing can be learnt and the loss stays near 2·ln B."""
    spec = SPECS["minigrid"]
    frames = random_obs(spec, (16, spec.num_envs), torch.Generator().manual_seed(0))
    informative = rollout_of(frames, frames.roll(1, dims=-2))  # s' is s shifted by one cell
    batch = frames.shape[0] * frames.shape[1]
    chance = 2 * math.log(batch)
    bonus = make("snd-std", learning_rate=1e-3)
    losses = stdim_losses(bonus, [informative] * 40)
    assert losses[0] > 0.8 * chance and losses[-1] < 0.5 * chance
    control = make("snd-std", learning_rate=1e-3)
    g = torch.Generator().manual_seed(1)
    independent = [rollout_of(frames, random_obs(spec, frames.shape[:2], g)) for _ in range(40)]
    assert stdim_losses(control, independent)[-1] > 0.8 * chance


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_bonus_is_the_clipped_scaled_mean_squared_error(name):
    bonus = make(name)
    rollout = random_rollout("minigrid", steps=4, seed=2)
    raw = bonus.raw_reward(rollout.next_obs.flatten(0, 1)).reshape(4, -1)
    with torch.no_grad():
        inputs = bonus._inputs(rollout.next_obs.flatten(0, 1))
        mean_error = (bonus.predictor(inputs) - bonus.target(inputs)).pow(2).mean(1)  # a mean, not RND's ½·sum
    assert torch.allclose(raw.flatten(), mean_error)
    expected_scale = {"snd-v": 0.5, "snd-std": 1.0, "snd-vic": 0.25}[name]
    assert bonus.reward_scale == expected_scale
    assert torch.allclose(bonus.reward(rollout), (expected_scale * raw).clamp(0, 1))
    saturated = make(name, reward_scale=1e6)
    assert torch.equal(saturated.reward(rollout), torch.ones(4, rollout.num_envs))


def test_return_normalization_divides_the_clipped_bonus_by_the_return_std():
    bonus = make("snd-v", return_normalization=True)
    rollout = random_rollout("minigrid", steps=4, seed=2)
    clipped = (0.5 * bonus.raw_reward(rollout.next_obs.flatten(0, 1)).reshape(4, -1)).clamp(0, 1)
    out = bonus.reward(rollout)
    assert torch.allclose(out * bonus.reward_normalizer.stats.std.float(), clipped, rtol=1e-4)
    assert "snd-v/return_std" in bonus.update(rollout)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_repeated_states_bonus_falls_over_updates_and_a_novel_one_stays_higher(name):
    spec = SPECS["minigrid"]
    seen = random_obs(spec, (8, spec.num_envs), torch.Generator().manual_seed(3))
    rollout = rollout_of(seen)
    bonus = make(name, learning_rate=1e-3)
    bonus.warmup(seen)
    before = bonus.raw_reward(seen.flatten(0, 1)).mean()
    for _ in range(60):
        bonus.update(rollout)
    after = bonus.raw_reward(seen.flatten(0, 1)).mean()
    novel = random_obs(spec, (32,), torch.Generator().manual_seed(4))
    assert after < 0.4 * before
    assert bonus.raw_reward(novel).mean() > 2 * after


def test_atari_bonus_reads_only_the_newest_frame():
    bonus = make("snd-v", "atari")
    obs = torch.randint(0, 256, (2, 4, 96, 96), dtype=torch.uint8)
    older_changed = obs.clone()
    older_changed[:, :3] = 0
    assert torch.equal(bonus.raw_reward(obs), bonus.raw_reward(older_changed))
    newest_changed = obs.clone()
    newest_changed[:, 3] = 0
    assert not torch.equal(bonus.raw_reward(obs), bonus.raw_reward(newest_changed))


class RecordingSTD(SNDSTD):
    """Records the rollout rows each target step trained on."""

    def _target_objective(self, batch):
        self.seen_rows.append(batch.rows)
        return super()._target_objective(batch)


def test_auto_reset_steps_are_left_out_of_training():
    spec = SPECS["minigrid"]
    torch.manual_seed(0)
    bonus = RecordingSTD(SNDConfig(warmup_steps=0, minibatch_size=5), spec)
    bonus.seen_rows = []
    rollout = random_rollout("minigrid", steps=4, seed=0)
    rollout.valid[1, 2] = False
    rollout.valid[3, 0] = False
    bonus.update(rollout)
    rows = torch.cat(bonus.seen_rows)
    invalid = {1 * spec.num_envs + 2, 3 * spec.num_envs + 0}
    assert sorted(rows.tolist()) == sorted(set(range(4 * spec.num_envs)) - invalid)


def test_an_update_with_fewer_than_two_transitions_changes_nothing():
    bonus = make("snd-vic")
    before = [p.clone() for p in bonus.parameters()]
    rollout = random_rollout("minigrid", steps=2, seed=0)
    rollout.valid[:] = False
    rollout.valid[0, 0] = True
    assert bonus.update(rollout) == {}
    assert all(torch.equal(a, b) for a, b in zip(before, bonus.parameters()))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_state_dict_round_trips_networks_heads_statistics_and_optimizer(name):
    bonus = make(name)
    rollout = random_rollout("minigrid", steps=3, seed=5)
    bonus.reward(rollout)
    bonus.update(rollout)
    copy = make(name)
    copy.load_state_dict(bonus.state_dict())
    probe = random_obs(SPECS["minigrid"], (6,), torch.Generator().manual_seed(6))
    assert torch.equal(copy.raw_reward(probe), bonus.raw_reward(probe))
    assert torch.equal(copy.obs_stats.mean, bonus.obs_stats.mean)
    for ours, theirs in zip(bonus.parameters(), copy.parameters()):
        assert torch.equal(ours, theirs)
    saved, loaded = bonus.optimizer.state_dict(), copy.optimizer.state_dict()
    assert saved["state"].keys() == loaded["state"].keys() and len(saved["state"]) == len(list(bonus.parameters()))
    assert torch.equal(saved["state"][0]["exp_avg"], loaded["state"][0]["exp_avg"])


def test_vicreg_views_can_be_two_augmentations_and_unknown_views_are_refused():
    bonus = make("snd-vic", vicreg_views="augmented")
    assert "snd-vic/variance" in bonus.update(random_rollout("minigrid", steps=3, seed=0))
    with pytest.raises(ValueError, match="vicreg_views"):
        make("snd-vic", vicreg_views="twins")


def test_minigrid_inputs_are_scaled_cells_and_pixel_inputs_scaled_frames():
    grid = make("snd-v")
    highest = torch.tensor([[[[c - 1 for c in (11, 6, 4)]] * 7] * 7], dtype=torch.uint8)
    assert torch.allclose(grid._select(highest), torch.ones(1, 3, 7, 7))
    pixels = make("snd-v", "procgen")
    white = torch.full((1, *SPECS["procgen"].obs_shape), 255, dtype=torch.uint8)
    assert torch.allclose(pixels._select(white), torch.ones(1, 3, 64, 64))


def test_predictor_mask_is_the_fixed_75_percent_not_rnds_env_count_rule():
    bonus = SNDV(SNDConfig(warmup_steps=0), BonusSpec((7, 7, 3), 7, 128, "minigrid"))
    assert bonus.update_proportion == 0.25  # fixed, not RND's 32 / num_envs rule
