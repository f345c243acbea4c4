from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esper_core.config import RunConfig, build_section, dump_toml, read_toml
from esper_core.contracts import GateThresholds, LifecycleSettings
from esper_core.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_defaults():
    config = RunConfig()
    # No task or policy: resolving the run picks the installed defaults (test_installed_defaults.py).
    assert (config.task, config.policy, config.episodes, config.seed) == (None, None, 1, 0)
    assert config.compare_baseline is True and config.telemetry == ("jsonl",)


def test_file_and_overrides(tmp_path):
    path = write(tmp_path, """
[run]
task = "cifar10"
epochs = 7
blueprints = ["conv_light", "norm"]
[training]
lr = 0.01
[task]
data_dir = "/data"
[rewards]
param_rent = 2.0
""")
    config = RunConfig.from_sources(path, {"epochs": 3, "seed": None, "slots": "block1,block2"})
    assert config.task == "cifar10" and config.epochs == 3
    assert config.slots == ("block1", "block2")
    assert config.blueprints == ("conv_light", "norm")
    assert config.training.lr == 0.01 and config.task_options == {"data_dir": "/data"}
    assert config.reward_weights == {"param_rent": 2.0}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[run]\nepochz = 3\n', "[run]: unknown key 'epochz' (did you mean 'epochs'?); allowed keys: "),
        ('[runn]\n', "unknown config table [runn]"),
        ('[run]\nepochs = 0\n', "epochs = 0 is invalid; expected an integer ≥ 1"),
        ('[run]\nepochs = "ten"\n', "epochs = 'ten' is invalid"),
        ('[run]\ndevice = "tpu"\n', "device = 'tpu' is invalid; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ('[run]\nparam_budget = -5\n', "param_budget = -5 is invalid"),
        ('[run]\ncompare_baseline = "yes"\n', "compare_baseline = 'yes' is invalid; expected true or false"),
        ('[training]\nlr = -1.0\n', "[training] lr = -1.0 is invalid"),
        ('[training]\noptimizer = "rmsprop"\n', "one of 'adamw', 'sgd'"),
        ('[training]\nmomentum = 0.9\n',
         "[training]: unknown key 'momentum'; allowed keys: batch_size, lr, lr_schedule"),
        ('[rewards]\nparam_rent = "high"\n', "[rewards] param_rent = 'high' is invalid"),
        ('run = 3\n', "config key 'run' must be a table"),
        ('[telemetry]\nsqlite = 3\n', "expected a table [telemetry.sqlite]"),
    ],
)
def test_bad_values_name_key_value_and_allowed(tmp_path, text, needle):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_sources(write(tmp_path, text))
    assert needle in str(info.value)


def test_malformed_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="is not valid TOML"):
        read_toml(write(tmp_path, "[run\nepochs = 3"))
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "nope.toml")


def test_sections_override_contract_defaults():
    base = LifecycleSettings(detach_host_in_blending=False)
    merged = build_section(LifecycleSettings, {"blending_epochs": 3}, "kasmina", base=base)
    assert merged.blending_epochs == 3 and merged.detach_host_in_blending is False
    with pytest.raises(ConfigError, match=r"\[kasmina\]: unknown key 'blend'; allowed keys: .*blending_epochs"):
        build_section(LifecycleSettings, {"blend": 3}, "kasmina", base=base)
    with pytest.raises(ConfigError, match=r"\[kasmina\].*probation_epochs"):
        build_section(LifecycleSettings, {"probation_epochs": 2}, "kasmina", base=base)
    with pytest.raises(ConfigError, match=r"\[gates\].*g2_min_epochs"):
        build_section(GateThresholds, {"g2_min_epochs": "two"}, "gates", base=GateThresholds())


def test_round_trip_through_toml(tmp_path):
    config = RunConfig.from_dict({"run": {"epochs": 4, "blueprints": ["a", "b"]}, "task": {"train_size": 64},
                                  "telemetry": {"sqlite": {"path": "runs.sqlite"}}})
    path = write(tmp_path, dump_toml(config.to_dict()))
    assert RunConfig.from_sources(path) == config


@given(epochs=st.one_of(st.integers(-5, 50), st.floats(allow_nan=True), st.text(max_size=3), st.booleans()))
def test_epochs_property(epochs):
    valid = isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1
    if valid:
        assert RunConfig.from_dict({"run": {"epochs": epochs}}).epochs == epochs
    else:
        with pytest.raises(ConfigError, match="epochs"):
            RunConfig.from_dict({"run": {"epochs": epochs}})


def test_task_options_from_the_command_line(tmp_path):
    from esper_core.config import parse_key_values

    assert parse_key_values(["train_size=64", "download=true", "path=/tmp/a b.txt", "ratio=0.5"]) == {
        "train_size": 64, "download": True, "path": "/tmp/a b.txt", "ratio": 0.5}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_key_values(["oops"])
    path = write(tmp_path, "[task]\ntrain_size = 32\nval_size = 16\n")
    config = RunConfig.from_sources(path, {}, task_options={"train_size": 64})
    assert config.task_options == {"train_size": 64, "val_size": 16}


@pytest.mark.parametrize(("table", "key", "value", "message"), [
    ("gates", "g5_min_contribution", [1, 2],
     "[gates] g5_min_contribution = [1, 2] is invalid; expected a number, got a list"),
    ("gates", "g2_min_epochs", "two", "[gates] g2_min_epochs = 'two' is invalid; expected an integer, got a string"),
    ("kasmina", "blending_epochs", "x",
     "[kasmina] blending_epochs = 'x' is invalid; expected an integer, got a string"),
    ("kasmina", "alpha_temperature", [1],
     "[kasmina] alpha_temperature = [1] is invalid; expected a number, got a list"),
])
def test_a_wrong_type_names_the_key_and_the_type_in_words(table, key, value, message):
    cls = {"gates": GateThresholds, "kasmina": LifecycleSettings}[table]
    with pytest.raises(ConfigError) as info:
        build_section(cls, {key: value}, table, base=cls())
    assert str(info.value) == message
    assert "Attribute(" not in str(info.value) and "<class" not in str(info.value)


@pytest.mark.parametrize(("content", "message"), [
    ("[run]\nseed = " + "[" * 50_000 + "]" * 50_000 + "\n", "is nested too deeply"),
    (b"[run]\nseed = \xff\n", "is not UTF-8 text"),
])
def test_a_hostile_config_file_is_a_config_error(tmp_path, content, message):
    path = tmp_path / "hostile.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_toml(path)
