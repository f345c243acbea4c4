from __future__ import annotations

from typing import Any

import pytest

from esper_blueprints_cnn.converters import to_widths
from esper_blueprints_cnn.tasks.cifar import ALLOWED_OPTIONS as CIFAR_ALLOWED
from esper_blueprints_cnn.tasks.cifar import DEFAULT_OPTIONS as CIFAR_DEFAULTS
from esper_blueprints_cnn.tasks.options import ImageTaskOptions
from esper_blueprints_cnn.tasks.procedural import ALLOWED_OPTIONS, DEFAULT_OPTIONS, make_shapes_task
from esper_core.errors import ConfigError
from esper_core.options import parse_options


def parse(options: Any) -> ImageTaskOptions:
    return parse_options(ImageTaskOptions, options, owner="task 'shapes'", allowed=ALLOWED_OPTIONS,
                         base=DEFAULT_OPTIONS)


def test_defaults_pass_through() -> None:
    assert parse({}) == DEFAULT_OPTIONS
    assert DEFAULT_OPTIONS.widths == (4, 8, 16) and DEFAULT_OPTIONS.test_size == 2000
    assert DEFAULT_OPTIONS.augment is True


def test_typed_and_string_values_are_accepted() -> None:
    opts = parse({"train_size": "64", "batch_size": 32, "widths": "4,8", "augment": "false",
                  "data_seed": 3})
    assert (opts.train_size, opts.batch_size, opts.widths, opts.augment, opts.data_seed) == (
        64, 32, (4, 8), False, 3
    )
    assert parse({"widths": [4, 8, 16]}).widths == (4, 8, 16)
    assert (parse({"image_size": "20"}).image_size, parse({"epoch_size": "50"}).epoch_size) == (20, 50)
    assert parse({"augment": 1}).augment is True


def test_unknown_key_names_key_and_allowed() -> None:
    with pytest.raises(ConfigError) as err:
        parse({"data_seeds": 1})
    message = str(err.value)
    assert message.startswith("task 'shapes': unknown option 'data_seeds' (did you mean 'data_seed'?); allowed "
                              "options: ")
    for key in sorted(ALLOWED_OPTIONS):
        assert key in message


def test_an_option_of_other_image_tasks_is_refused_without_a_look_alike() -> None:
    # data_dir is CIFAR's: on a generated dataset it does not apply, and 'data_seed' is no fix for it.
    with pytest.raises(ConfigError) as err:
        parse({"data_dir": "/tmp"})
    message = str(err.value)
    assert message.startswith("task 'shapes': option 'data_dir' does not apply here; allowed options: ")
    assert "did you mean" not in message
    assert all(key in message for key in ALLOWED_OPTIONS)


def test_cifar_refuses_the_procedural_only_key() -> None:
    with pytest.raises(ConfigError, match="'data_seed'"):
        parse_options(ImageTaskOptions, {"data_seed": 1}, owner="task 'cifar10'", allowed=CIFAR_ALLOWED,
                      base=CIFAR_DEFAULTS)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train_size", 0),
        ("train_size", "many"),
        ("val_size", -1),
        ("batch_size", True),
        ("batch_size", 12.5),
        ("widths", []),
        ("widths", [8, -1]),
        ("widths", {"a": 1}),
        ("widths", 8),
        ("augment", "maybe"),
        ("augment", 2),
        ("data_seed", -1),
        ("image_size", 3),
        ("epoch_size", 0),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"^task 'shapes' option '{key}' = .* is invalid; expected "):
        parse({key: value})


def test_bad_cifar_values() -> None:
    for key, value in [("data_dir", ""), ("data_dir", 3), ("download", "perhaps")]:
        with pytest.raises(ConfigError, match=f"option '{key}'"):
            parse_options(ImageTaskOptions, {key: value}, owner="task 'cifar10'", allowed=CIFAR_ALLOWED,
                          base=CIFAR_DEFAULTS)


def test_options_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="table"):
        parse([("train_size", 3)])


def test_factory_validates_before_generating() -> None:
    with pytest.raises(ConfigError, match="'epochs'"):
        make_shapes_task(seed=0, device="cpu", options={"epochs": 3})


@pytest.mark.parametrize(("value", "got"), [
    ("8,,16", r"a blank entry \(item 2\)"),
    (",", r"a blank entry \(item 1\)"),
    ("8,16,", r"a blank entry \(item 3\)"),
    ("8, 16, ", r"a blank entry \(item 3\)"),
    ("", "none"),
])
def test_command_line_widths_with_a_blank_item_are_refused_not_dropped(value: str, got: str) -> None:
    # "8,,16" and "8,16," used to build a two-block host without a word (a blank item dropped)
    with pytest.raises(ConfigError, match=rf"^task 'shapes' option 'widths' = {value!r} is invalid; expected a "
                                          rf"non-empty list of positive integers, got {got}$"):
        parse({"widths": value})
    with pytest.raises(ValueError, match=rf"^{value!r} is invalid; expected a non-empty list of positive integers, "
                                         rf"got {got}$"):
        to_widths(value)


def test_command_line_widths_are_stripped() -> None:
    assert to_widths(" 4 , 8,16 ") == (4, 8, 16) and to_widths("4") == (4,)
    assert to_widths([4, "8"]) == (4, 8)
