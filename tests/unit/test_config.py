"""Config resolution: presets stack, overrides are typed, unknown keys and bad values are refused."""

import pytest

from wanderlust.intrinsic import RNDConfig
from wanderlust.run import config as config_module
from wanderlust.run.config import ConfigError, parse_override, resolve

pytestmark = pytest.mark.unit


def test_defaults_are_minigrid_with_rnd():
    config = resolve()
    assert config.env.id.startswith("MiniGrid-") and config.bonus == "rnd"
    assert isinstance(config.intrinsic, RNDConfig)
    assert (config.ppo.gamma_ext, config.ppo.gamma_int) == (0.999, 0.99)


def test_presets_stack_in_order_and_flags_win():
    config = resolve(["rnd_montezuma", "debug"], {"seed": 7})
    assert config.env.id == "ALE/MontezumaRevenge-v5"  # from rnd_montezuma
    assert config.env.num_envs == 4 and config.frames == 2048  # debug, stacked last, wins
    assert config.ppo.learning_rate == 1e-4 and config.intrinsic.obs_norm == "mean"
    assert config.seed == 7
    assert config.presets == ["rnd_montezuma", "debug"]


def test_overrides_are_parsed_and_typed():
    config = resolve(overrides=["ppo.learning_rate=1e-4", "ppo.epochs=8", "intrinsic.obs_norm=mean", "env.options={full_obs: true}"])
    assert config.ppo.learning_rate == 1e-4 and isinstance(config.ppo.learning_rate, float)
    assert config.ppo.epochs == 8
    assert config.intrinsic.obs_norm == "mean"
    assert config.env.options == {"full_obs": True}
    assert parse_override("a.b.c=3") == {"a": {"b": {"c": 3}}}



def test_an_env_option_override_keeps_the_other_options():
    """`--set env.options.K=V` sets one option: the preset's others stay, and several add up."""
    preset = resolve(["atari100k"]).env.options
    config = resolve(["atari100k"], overrides=["env.options.noop_max=0", "env.options.sticky_actions=0.25"])
    assert config.env.options == {**preset, "noop_max": 0, "sticky_actions": 0.25}
    assert preset["screen_size"] == 64 and preset["noop_max"] == 30


def test_a_presets_options_replace_those_of_the_preset_it_includes():
    assert resolve(["rnd_montezuma"]).env.options == {"reward_clip": "positive"}
    assert resolve(["snd_procgen"]).env.options == {}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["ppo.learnig_rate=1e-4"], "unknown config key 'ppo.learnig_rate'; did you mean ppo.learning_rate"),
        (["ppo.epochs=four"], "ppo.epochs must be int"),
        (["frames=-5"], "frames must be a positive number"),
        (["ppo.lr_decay_frames=-1"], "ppo.lr_decay_frames must not be negative"),
        (["nonsense"], "is not KEY=VALUE"),
        (["bonus=rdn"], "unknown bonus 'rdn'"),
        (["intrinsic.foo=1"], "unknown config key 'intrinsic.foo'"),
    ],
)
def test_bad_values_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        resolve(overrides=overrides)
    assert "\n" not in str(error.value)


def test_unknown_preset_suggests_close_names():
    with pytest.raises(ConfigError, match="did you mean debug"):
        resolve(["debg"])


def test_bonus_none_takes_no_intrinsic_section():
    assert resolve(overrides=["bonus=none"]).intrinsic is None


def test_config_round_trips_through_yaml(tmp_path):
    config = resolve(["debug"], overrides=["ppo.lstm_size=16"])
    config_module.save(config, tmp_path / "config.yaml")
    assert config_module.load(tmp_path / "config.yaml") == config


def test_every_preset_resolves_alone_and_under_debug():
    for name in config_module.preset_names():
        resolve([name])
        resolve([name, "debug"])


def test_a_preset_includes_others_beneath_itself(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("frames: 1000\nppo:\n  ent_coef: 0.5\n  epochs: 3\n")
    top = tmp_path / "top.yaml"
    top.write_text(f"include: {base}\nppo:\n  ent_coef: 0.25\n")
    config = resolve([str(top)])
    assert config.frames == 1000 and config.ppo.epochs == 3  # from the included preset
    assert config.ppo.ent_coef == 0.25  # the including preset wins


def test_ride_presets_carry_the_papers_coefficient_and_entropy_cost():
    n7s4 = resolve(["ride_multiroom_n7s4"])
    assert (n7s4.env.id, n7s4.bonus, n7s4.frames) == ("MiniGrid-MultiRoom-N7-S4-v0", "ride", 30_000_000)
    assert (n7s4.ppo.int_coef, n7s4.ppo.ent_coef, n7s4.ppo.lr_schedule) == (0.1, 0.0005, "linear")
    n12s10 = resolve(["ride_multiroom_n12s10"])
    assert (n12s10.frames, n12s10.ppo.int_coef, n12s10.ppo.ent_coef) == (100_000_000, 0.5, 0.001)


def test_an_include_cycle_is_a_one_line_error(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"include: {loop}\n")
    with pytest.raises(ConfigError, match="includes itself"):
        resolve([str(loop)])


def test_a_nested_override_keeps_the_values_its_parent_gives_the_rest():
    """HIMAConfig builds its basal ganglia and memory with other values than their classes'
    defaults; overriding one nested field must keep those, not fall back to the class's defaults."""
    from wanderlust.agents.hima import HIMAConfig

    default = HIMAConfig()
    config = resolve([], {"algo": "hima"}, ["hima.basal_ganglia.softmax_beta=2", "hima.visual_memory.cells_per_column=20"])
    assert config.hima.basal_ganglia.softmax_beta == 2
    assert config.hima.basal_ganglia.discount == default.basal_ganglia.discount
    assert config.hima.basal_ganglia.stimulus_size == default.basal_ganglia.stimulus_size
    assert config.hima.visual_memory.cells_per_column == 20
    assert config.hima.visual_memory.initial_permanence == default.visual_memory.initial_permanence
    assert config.hima.visual_memory.apical_input_size == default.visual_memory.apical_input_size
