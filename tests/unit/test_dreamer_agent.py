"""The DreamerV3 learner: observation encoding, the replay layout its acting writes, updates, and
checkpoints."""

import io

import numpy as np
import pytest
import torch

from fakes import Corridor
from wanderlust.agents.dreamer.agent import Dreamer, DreamerConfig, ObservationCodec

pytestmark = pytest.mark.unit


def tiny(**overrides) -> DreamerConfig:
    values = dict(size="debug", batch_size=3, batch_length=6, train_ratio=18, replay_capacity=400,
                  steps_per_iteration=8)
    values.update(overrides)
    return DreamerConfig(**values)


def test_minigrid_codec_is_one_hot_per_cell_and_field():
    rng = np.random.default_rng(0)
    obs = np.stack([rng.integers(0, 11, (2, 7, 7)), rng.integers(0, 6, (2, 7, 7)), rng.integers(0, 3, (2, 7, 7))], -1)
    codec = ObservationCodec("minigrid", (7, 7, 3))
    vector = codec.encode(obs.astype(np.uint8))["vector"].numpy().reshape(2, 49, 20)
    assert vector.sum(-1).tolist() == [[3] * 49] * 2
    cells = obs.reshape(2, 49, 3)
    assert (vector[..., :11].argmax(-1) == cells[..., 0]).all()
    assert (vector[..., 11:17].argmax(-1) == cells[..., 1]).all()
    assert (vector[..., 17:].argmax(-1) == cells[..., 2]).all()


def test_codec_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="does not read"):
        ObservationCodec("atari", (4, 84, 84))  # the SND seed's stack, channels first
    with pytest.raises(ValueError, match="does not read"):
        ObservationCodec("atari", (4, 64, 64, 3))  # a colour stack


@pytest.mark.parametrize("shape", [(64, 64, 3), (64, 64, 1)])
def test_codec_reads_single_atari_frames_as_images(shape):
    codec = ObservationCodec("atari", shape)
    assert codec.kind == "image" and codec.world_model_kwargs()["image_shape"] == (shape[2], 64, 64)


@pytest.mark.parametrize("grayscale", [False, True])
def test_trains_on_atari_single_frames(grayscale):
    pytest.importorskip("ale_py")
    from wanderlust.envs import make

    env = make("ALE/Pong-v5", 1, seed=0, backend="gymnasium", grayscale=grayscale, frame_stack=1,
               screen_size=64, sticky_actions=0.0, reward_clip="none")
    agent = Dreamer(tiny(), env, 10_000, torch.device("cpu"))
    metrics = agent.iterate()["metrics"]  # 8 steps; updates from the 6th: 18 / (3 · 6) = 1 per step
    env.close()
    assert agent.updates == 3
    assert np.isfinite([metrics["model_loss"], metrics["image_loss"], metrics["actor_loss"]]).all()


class Recording(Corridor):
    """The corridor, remembering what every reset and step returned."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.returned = []  # (obs, reward, terminated, truncated) per call, reset first
        self.actions = []

    def reset(self, seed=None):
        obs, info = super().reset(seed)
        self.returned.append((obs.copy(), np.zeros(self.num_envs), np.zeros(self.num_envs, bool), np.zeros(self.num_envs, bool)))
        return obs, info

    def step(self, actions):
        self.actions.append(np.array(actions))
        obs, reward, terminated, truncated, info = super().step(actions)
        self.returned.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy()))
        return obs, reward, terminated, truncated, info


def test_acting_stores_the_world_models_step_layout():
    """Step t holds observation t, the reward and is_terminal that came with it, is_first where it
    starts an episode, and the action chosen from it. Truncation is not a terminal state, and the
    step after an episode's end (a reset observation) carries no reward."""
    env = Recording(num_envs=2, length=2, max_steps=3)
    agent = Dreamer(tiny(steps_per_iteration=12, train_ratio=1e-9), env, 10_000, torch.device("cpu"))
    agent.iterate()
    storage = agent.replay.storage
    codec = agent.codec
    done_before = np.zeros(2, bool)
    for t in range(12):
        obs, reward, terminated, truncated = env.returned[t]
        assert torch.equal(storage["vector"][:, t], codec.encode(obs)["vector"])
        assert storage["action"][:, t].tolist() == env.actions[t].tolist()
        assert storage["is_first"][:, t].tolist() == (done_before | (t == 0)).tolist()
        assert storage["is_terminal"][:, t].tolist() == (terminated & ~done_before).tolist()
        assert storage["reward"][:, t].tolist() == np.where(done_before, 0.0, reward).tolist()
        done_before = (terminated | truncated) & ~done_before
    assert storage["is_terminal"].any() or not any(r[2].any() for r in env.returned)
    assert storage["is_first"][:, 1:12].any(), "some episode should have ended and restarted"


def test_updates_follow_the_train_ratio_and_change_every_network():
    env = Corridor(num_envs=2, length=3, max_steps=6)
    config = tiny(train_ratio=9)  # 9 / (3 · 6) = 0.5 updates per environment step
    agent = Dreamer(config, env, 10_000, torch.device("cpu"))
    world_before = {name: p.detach().clone() for name, p in agent.world_model.named_parameters()}
    actor_before = [p.detach().clone() for p in agent.behavior.actor.parameters()]
    critic_before = [p.detach().clone() for p in agent.behavior.critic.parameters()]
    result = agent.iterate()  # 8 steps × 2 envs; updates start once 6 steps per env are stored
    assert agent.frames == 16
    # Steps 6, 7 and 8 of each env make 3 × 2 × 0.5 = 3 updates due.
    assert agent.updates == 3
    metrics = result["metrics"]
    assert np.isfinite([metrics["model_loss"], metrics["actor_loss"], metrics["critic_loss"]]).all()
    moved = [name for name, p in agent.world_model.named_parameters() if not torch.equal(world_before[name], p)]
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, agent.behavior.actor.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, agent.behavior.critic.parameters()))
    assert any(name.startswith("rssm.") for name in moved) and any(name.startswith("decoder.") for name in moved)


@pytest.mark.parametrize("world_model", ["flat", "thick"])
def test_checkpoint_resumes_the_same_training(world_model):
    config = tiny(world_model=world_model)
    first = Dreamer(config, Corridor(num_envs=2), 10_000, torch.device("cpu"), seed=3)
    first.iterate()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)  # as checkpoints do: copies, and loadable without pickle
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    second = Dreamer(config, Corridor(num_envs=2), 10_000, torch.device("cpu"), seed=99)
    second.load_state_dict(state)
    assert second.frames == first.frames and second.updates == first.updates
    for name, tensor in first.replay.storage.items():
        assert torch.equal(tensor, second.replay.storage[name])
    torch.manual_seed(5)
    a = first.train_step()
    torch.manual_seed(5)
    b = second.train_step()
    assert a == b
    for p, q in zip(first.world_model.parameters(), second.world_model.parameters()):
        assert torch.equal(p, q)


def test_thick_trains_its_high_level_model_and_mixes_the_long_return():
    agent = Dreamer(tiny(world_model="thick"), Corridor(num_envs=2), 10_000, torch.device("cpu"))
    before = [p.detach().clone() for p in agent.highlevel.parameters()]
    metrics = agent.iterate()["metrics"]
    assert agent.updates > 0
    for key in ("hl_loss", "sparse_loss", "context_changes", "coarse_kl_loss", "long_return", "coarse_critic_loss"):
        assert np.isfinite(metrics[key]), key
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.highlevel.parameters()))
    assert agent.highlevel.config.max_elapsed == agent.config.batch_length


def test_prefill_takes_random_actions_counts_them_and_records_them_in_the_carry():
    env = Corridor(num_envs=2, length=3, max_steps=6)
    agent = Dreamer(tiny(prefill=5), env, 10_000, torch.device("cpu"))
    assert agent.warmup() == 10 and agent.frames == 10 and agent.updates == 0
    stored = agent.replay.storage["action"][:, 4]
    taken = agent.carry[1].argmax(-1)  # the previous action the next prior step will read
    assert torch.equal(stored, taken)
