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


def test_a_key_given_twice_on_the_command_line_is_refused_not_overwritten():
    from esper_core.config import parse_key_values

    with pytest.raises(ConfigError, match=r"^--policy-option 'lr' is given twice \('lr=0.1' and ' lr=0.2'\); "
                                          r"give it once$"):
        parse_key_values(["lr=0.1", "hidden=8", " lr=0.2"], flag="--policy-option")


def test_a_bad_value_in_the_config_file_is_refused_even_where_a_flag_overrides_it(tmp_path):
    path = write(tmp_path, '[run]\nepochs = "abc"\n')
    with pytest.raises(ConfigError, match=r"^\[run\] epochs = 'abc' is invalid; expected an integer"):
        RunConfig.from_sources(path, {"epochs": 2})
    good = write(tmp_path, "[run]\nepochs = 3\n")
    assert RunConfig.from_sources(good, {"epochs": 2}).epochs == 2


@pytest.mark.parametrize(("table", "key", "value", "message"), [
    ("gates", "g5_min_contribution", [1, 2],
     "[gates] g5_min_contribution = [1, 2] is invalid; expected a finite number, got a list"),
    ("gates", "g2_min_epochs", "two",
     "[gates] g2_min_epochs = 'two' is invalid; expected an integer ≥ 0, got a string"),
    ("kasmina", "blending_epochs", "x",
     "[kasmina] blending_epochs = 'x' is invalid; expected an integer ≥ 1, got a string"),
    ("kasmina", "alpha_temperature", [1],
     "[kasmina] alpha_temperature = [1] is invalid; expected a finite number ≥ 0, got a list"),
    # a value of the right type out of range names the table and key the same way (it once read
    # "[gates]: must be a non-negative number, got -5.0" and "'g4_window' must be >= 1: 0")
    ("gates", "confidence_z", -5, "[gates] confidence_z = -5.0 is invalid; expected a finite number ≥ 0"),
    ("gates", "g4_window", 0, "[gates] g4_window = 0 is invalid; expected an integer ≥ 1"),
    ("kasmina", "alpha_temperature", -1, "[kasmina] alpha_temperature = -1.0 is invalid; expected a finite number ≥ 0"),
    ("kasmina", "probation_epochs", 2, "[kasmina] probation_epochs = 2 is invalid; expected an integer ≥ 5"),
    ("kasmina", "training_objective", "fed",
     "[kasmina] training_objective = 'fed' is invalid; expected one of 'feedback', 'straight_through'"),
    # α never exceeds 1: a G3 threshold above it could never pass
    ("gates", "g3_min_alpha", 2, "[gates] g3_min_alpha = 2.0 is invalid; expected a finite number in [0, 1]"),
    ("gates", "g3_min_alpha", -0.1, "[gates] g3_min_alpha = -0.1 is invalid; expected a finite number in [0, 1]"),
    ("gates", "g2_min_improvement", float("nan"),
     "[gates] g2_min_improvement = nan is invalid; expected a finite number"),
    # a bool is no number (float(True) once made it 1.0), and is shown as TOML writes it
    ("gates", "confidence_z", True, "[gates] confidence_z = true is invalid; expected a finite number ≥ 0, "
                                    "got true/false"),
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


@pytest.mark.parametrize(("text", "message"), [
    # finite but huge weights summed to inf, and the summary then held "total_reward": NaN
    ("[rewards]\nterminal_accuracy = 1.7e308\n",
     "[rewards] terminal_accuracy = 1.7e+308 is invalid; expected a weight from -1000000 to 1000000"),
    ("[rewards]\nparam_rent = -2e6\n", "[rewards] param_rent = -2000000.0 is invalid; expected a weight from"),
    # an integer too large for a float once raised OverflowError (a traceback)
    ("[rewards]\nparam_rent = 1" + "0" * 400 + "\n", "[rewards] param_rent = 1000"),
    ("[rewards]\nparam_rent = true\n", "[rewards] param_rent = true is invalid; expected a weight from "
                                       "-1000000 to 1000000 (a larger one would overflow the reward sums), "
                                       "got true/false"),
    ("[run]\nepochs = true\n", "[run] epochs = true is invalid"),
    ("[run]\nepisodes = 100000000000000000000\n", "[run] episodes = 100000000000000000000 is invalid; "
                                                  "expected an integer ≥ 1 and ≤ 100000"),
])
def test_out_of_range_values_are_refused_in_toml_words(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_sources(write(tmp_path, text))
    assert message in str(info.value)
    assert "True" not in str(info.value) and "\n" not in str(info.value)


def test_reward_weights_up_to_the_bound_are_accepted(tmp_path):
    config = RunConfig.from_sources(write(tmp_path, "[rewards]\nparam_rent = 1e6\naction_cost = -1e6\n"))
    assert config.reward_weights == {"param_rent": 1e6, "action_cost": -1e6}


def test_a_special_config_file_is_refused_before_it_is_opened(tmp_path):
    import os

    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(ConfigError, match=r"config file '.*pipe.toml' is not a regular file \(a named pipe\)"):
        read_toml(fifo)
    if Path("/dev/zero").exists():  # reading it would fill memory
        with pytest.raises(ConfigError, match=r"config file '/dev/zero' is not a regular file \(a character device\)"):
            read_toml(Path("/dev/zero"))
    with pytest.raises(ConfigError, match="is not a regular file \\(a directory\\)"):
        read_toml(tmp_path)


def test_an_oversized_config_file_is_refused(tmp_path, monkeypatch):
    from esper_core import files

    path = write(tmp_path, "[run]\nseed = 1\n" + "#" * 100 + "\n")
    monkeypatch.setattr(files.read_input_file, "__kwdefaults__",
                        {**files.read_input_file.__kwdefaults__, "max_bytes": 50})
    with pytest.raises(ConfigError, match=r"config file '.*run.toml' is \d+ bytes; at most 50 are read"):
        read_toml(path)
