"""`IntrinsicReward.features`: the feature space `wanderlust analyze features` projects.

Each bonus with a feature space returns, for uint8 observations, exactly the features its reward
path computes its novelty from (same preprocessing), without touching any state; the others say
so with a one-line ValueError.
"""

import pytest
import torch

from test_intrinsic import SPECS, drive, random_obs, random_rollout
from wanderlust.intrinsic import BONUSES, RNDConfig, SNDConfig, make_bonus

pytestmark = pytest.mark.unit

NAMES = sorted(name for name in BONUSES if name != "none")
# The bonuses whose novelty is computed from no feature space at all.
WITHOUT_FEATURES = {"count", "episodic-count"}


def build(name: str, family: str = "minigrid", config=None):
    torch.manual_seed(0)
    return make_bonus(name, config, SPECS[family])


def flat_state(value, prefix: str = ""):
    """(key, leaf) pairs of a state_dict, extra state (optimiser, counts) included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flat_state(item, f"{prefix}/{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from flat_state(item, f"{prefix}/{index}")
    else:
        yield prefix, value


def snapshot(bonus) -> dict:
    """Every parameter and buffer (non-persistent ones too) and the whole state_dict, copied."""
    state = {f"param:{key}": value for key, value in bonus.named_parameters()}
    state.update({f"buffer:{key}": value for key, value in bonus.named_buffers()})
    state.update({f"state:{key}": value for key, value in flat_state(bonus.state_dict())})
    return {key: value.detach().clone() if torch.is_tensor(value) else value for key, value in state.items()}


def bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous().flatten().view(torch.uint8)


def assert_bit_identical(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for key, value in before.items():
        if torch.is_tensor(value):
            assert value.dtype == after[key].dtype and value.shape == after[key].shape, key
            assert torch.equal(bits(value), bits(after[key])), f"features changed {key}"
        else:
            assert value == after[key], f"features changed {key}"


@pytest.mark.parametrize("family", sorted(SPECS))
@pytest.mark.parametrize("name", NAMES)
def test_features_are_finite_float32_rows_or_a_one_line_error(name, family):
    bonus = build(name, family)
    obs = random_obs(SPECS[family], (5,), torch.Generator().manual_seed(1))
    before = snapshot(bonus)
    assert (bonus.feature_space is None) == (name in WITHOUT_FEATURES)
    if bonus.feature_space is None:
        with pytest.raises(ValueError, match=f"^the {name} bonus has no feature space to project$"):
            bonus.features(obs)
    else:
        assert isinstance(bonus.feature_space, str) and bonus.feature_space.strip()
        features = bonus.features(obs)
        assert features.dtype == torch.float32 and features.dim() == 2
        assert features.shape[0] == 5 and features.shape[1] > 0
        assert torch.isfinite(features).all()
        assert not features.requires_grad
        assert torch.equal(features, bonus.features(obs))
    assert_bit_identical(before, snapshot(bonus))


def test_no_bonus_has_no_feature_space():
    bonus = build("none")
    assert bonus.feature_space is None
    with pytest.raises(ValueError, match="^the none bonus has no feature space to project$"):
        bonus.features(random_obs(SPECS["minigrid"], (2,), torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", NAMES)
def test_features_change_no_state_of_a_trained_bonus(name):
    """After a rollout through PPO's protocol (statistics, memories and optimisers all non-trivial),
    features leave every parameter, buffer and saved state bit-identical."""
    spec = SPECS["minigrid"]
    bonus = build(name)
    drive(bonus, random_rollout(spec, steps=4, seed=0))
    before = snapshot(bonus)
    obs = random_obs(spec, (6,), torch.Generator().manual_seed(2))
    if bonus.feature_space is None:
        with pytest.raises(ValueError):
            bonus.features(obs)
    else:
        bonus.features(obs)
    assert_bit_identical(before, snapshot(bonus))


class Recorder:
    """Records (input, output) of every forward call of a module."""

    def __init__(self, module):
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.handle = module.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        self.calls.append((inputs[0].detach().clone(), output.detach().clone()))

    def remove(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        self.handle.remove()
        return self.calls


# Bonuses whose novelty reads a target network on preprocessed inputs: (the target, the reward
# path's call on next observations [B, ...]).
TARGETS = {
    "rnd": (lambda b: b.target, lambda b, obs: b.raw_reward(obs)),
    "snd-v": (lambda b: b.target, lambda b, obs: b.raw_reward(obs)),
    "snd-std": (lambda b: b.target, lambda b, obs: b.raw_reward(obs)),
    "snd-vic": (lambda b: b.target, lambda b, obs: b.raw_reward(obs)),
    "noveld": (lambda b: b.rnd.target, lambda b, obs: b.novelty(obs)),
}


@pytest.mark.parametrize("family", ["minigrid", "atari"])
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_features_are_what_the_reward_path_feeds_and_gets_from_the_target(name, family):
    """The target's output on the reward path's own inputs: newest frame only, pixels / 255 (SND:
    cells scaled too), running normalisation and clip. Warm statistics make every step count."""
    spec = SPECS[family]
    bonus = build(name, family)
    g = torch.Generator().manual_seed(3)
    bonus.warmup(random_obs(spec, (2, 8), g) // 2)  # statistics far from the defaults and from obs
    obs = random_obs(spec, (6,), g)
    target, reward_path = TARGETS[name]
    recorder = Recorder(target(bonus))
    reward_path(bonus, obs)
    ((_, expected),) = recorder.remove()
    torch.testing.assert_close(bonus.features(obs), expected, rtol=1e-5, atol=1e-6)


def embedding_calls(name: str, bonus, spec) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 input, output) of every call of the bonus's embedding on its reward path."""
    g = torch.Generator().manual_seed(4)
    obs, next_obs = random_obs(spec, (2, spec.num_envs), g)
    actions = torch.randint(0, spec.num_actions, (spec.num_envs,), generator=g)
    if name in ("icm", "ride", "ride-no-episodic"):
        module, run = bonus.dynamics.embedding, lambda: bonus.transition_bonus(obs, actions, next_obs)
    elif name in ("e3b", "ngu"):
        def run():
            bonus.reset(torch.zeros(spec.num_envs, dtype=torch.bool))
            bonus.observe(obs, actions, next_obs)
        module = bonus.dynamics.embedding
    elif name == "disagreement":
        module, run = bonus.embedding, lambda: bonus.raw_reward(obs, actions)
    elif name == "re3":
        module, run = bonus.encoder, lambda: bonus.state_entropy(next_obs)
    else:
        raise AssertionError(name)
    recorder = Recorder(module)
    run()
    return recorder.remove()


EMBEDDINGS = ["disagreement", "e3b", "icm", "ngu", "re3", "ride", "ride-no-episodic"]


@pytest.mark.parametrize("family", ["minigrid", "atari"])
@pytest.mark.parametrize("name", EMBEDDINGS)
def test_embedding_features_are_the_embedding_the_reward_path_reads(name, family):
    """φ as the reward path computes it (the module is fed raw uint8 observations and does its own
    one-hot / pixel scaling), on exactly the observations it was fed."""
    spec = SPECS[family]
    bonus = build(name, family)
    calls = embedding_calls(name, bonus, spec)
    assert calls
    for inputs, expected in calls:
        assert inputs.dtype == torch.uint8
        torch.testing.assert_close(bonus.features(inputs), expected, rtol=1e-5, atol=1e-6)


def test_embedding_features_follow_the_trained_embedding():
    """After updates φ has moved, and features follow it (not a copy taken at construction)."""
    spec = SPECS["minigrid"]
    bonus = build("icm")
    obs = random_obs(spec, (6,), torch.Generator().manual_seed(5))
    before = bonus.features(obs)
    for seed in range(3):
        bonus.update(random_rollout(spec, steps=4, seed=seed))
    after = bonus.features(obs)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, bonus.dynamics.embedding(obs).detach())


def train(bonus, updates: int = 4) -> None:
    spec = SPECS["minigrid"]
    for seed in range(updates):
        bonus.update(random_rollout(spec, steps=8, seed=10 + seed))


def test_snd_features_move_as_its_target_trains_and_rnds_do_not():
    """Without observation normalisation (so that only the networks can move the features): SND's
    trained target changes its features under `update`, RND's frozen one never does."""
    obs = random_obs(SPECS["minigrid"], (8,), torch.Generator().manual_seed(6))
    snd = build("snd-v", config=SNDConfig(obs_norm="none", warmup_steps=0))
    rnd = build("rnd", config=RNDConfig(obs_norm="none", warmup_steps=0))
    snd_before, rnd_before = snd.features(obs), rnd.features(obs)
    train(snd)
    train(rnd)
    assert (snd.features(obs) - snd_before).abs().max() > 1e-4
    assert torch.equal(rnd.features(obs), rnd_before)


def test_rnd_features_follow_its_observation_statistics_but_not_its_predictor():
    """With RND's default normalisation, updates move the statistics, which the features (like the
    reward) then use; the predictor's training never enters them."""
    spec = SPECS["minigrid"]
    obs = random_obs(spec, (8,), torch.Generator().manual_seed(7))
    rnd = build("rnd")
    train(rnd)
    features = rnd.features(obs)
    with torch.no_grad():
        x = ((rnd._select(obs) - rnd.obs_stats.mean.float()) / (rnd.obs_stats.std.float() + 1e-8)).clamp(-5.0, 5.0)
        torch.testing.assert_close(features, rnd.target(x))
    for p in rnd.predictor.parameters():
        p.data.add_(1.0)
    assert torch.equal(rnd.features(obs), features)
