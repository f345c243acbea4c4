"""Lists of names in the PPO and IQL options (``bc_heads``, ``entropy_heads``, ``bc_dataset``,
``dataset``) are read by core's one parser, :func:`esper_core.options.name_list`: a blank item
(``'a,,b'``, ``','``, a trailing comma, ``['a', ' ']``) is refused by the option's name, never
dropped — ``bc_heads = "op,"`` used to clone the op head alone without a word, ``dataset = "a,"``
to read one dataset where two were meant. Torch-free: only the config classes are built."""

from __future__ import annotations

import pytest

from esper_core.errors import ConfigError
from esper_core.options import parse_options
from esper_policies.iql.config import IQLConfig
from esper_policies.ppo.config import PPOConfig

HEADS = "a non-empty list of op, slot, blueprint \\(comma-separated on the command line\\)"
DIRECTORIES = "a directory or a list of distinct directories \\(comma-separated on the command line\\)"

#: (config class, owner, option, a good value, what it expects)
OPTIONS = [
    (PPOConfig, "policy 'ppo'", "bc_heads", ("op", "slot"), HEADS),
    (PPOConfig, "policy 'ppo'", "entropy_heads", ("op", "slot"), HEADS),
    (PPOConfig, "policy 'ppo'", "bc_dataset", ("runs/a", "runs/b"), DIRECTORIES),
    (IQLConfig, "policy 'iql'", "dataset", ("runs/a", "runs/b"), DIRECTORIES),
]

#: (text, the blank item the message names)
BLANK = [
    ("{0},,{1}", "a blank entry \\(item 2\\)"),
    (",", "a blank entry \\(item 1\\)"),
    ("{0},", "a blank entry \\(item 2\\)"),
    ("{0}, {1}, ", "a blank entry \\(item 3\\)"),
]


def _options(cls, option, value):
    return {"dataset": "runs/a", option: value} if cls is IQLConfig else {option: value}


@pytest.mark.parametrize(("text", "got"), BLANK, ids=["a,,b", "comma", "trailing-comma", "trailing-comma-space"])
@pytest.mark.parametrize(("cls", "owner", "option", "good", "expected"), OPTIONS, ids=[o[2] for o in OPTIONS])
def test_a_blank_item_is_refused_by_the_option_name(cls, owner, option, good, expected, text, got):
    value = text.format(*good)
    with pytest.raises(ConfigError, match=rf"^{owner} option '{option}' = {value!r} is invalid; "
                                          rf"expected {expected}, got {got}$"):
        parse_options(cls, _options(cls, option, value), owner=owner)
    # built directly (as the tests and the trainers' resume paths do), the option is named too
    with pytest.raises(ValueError, match=rf"^{option} = {value!r} is invalid; expected {expected}, got {got}$"):
        cls(**_options(cls, option, value))


@pytest.mark.parametrize(("cls", "owner", "option", "good", "expected"), OPTIONS, ids=[o[2] for o in OPTIONS])
def test_a_blank_item_in_a_toml_list_is_refused(cls, owner, option, good, expected):
    with pytest.raises(ConfigError, match=rf"option '{option}' = \[.*\] is invalid; expected {expected}, "
                                          rf"got a blank entry \(item 2\)$"):
        parse_options(cls, _options(cls, option, [good[0], " "]), owner=owner)


@pytest.mark.parametrize("value", ["", "  ", []])
@pytest.mark.parametrize(("cls", "owner", "option", "good", "expected"), OPTIONS, ids=[o[2] for o in OPTIONS])
def test_an_empty_list_stays_refused(cls, owner, option, good, expected, value):
    # none of these has a meaning for "no item": no heads cloned or rewarded is not offered, and
    # no dataset is bc_dataset's default (None, the option left out) or IQL's missing dataset
    with pytest.raises(ConfigError, match=rf"option '{option}' = .* is invalid; expected {expected}, got none$"):
        parse_options(cls, _options(cls, option, value), owner=owner)


@pytest.mark.parametrize(("cls", "owner", "option", "good", "expected"), OPTIONS, ids=[o[2] for o in OPTIONS])
def test_good_lists_read_as_before(cls, owner, option, good, expected):
    for value in (",".join(good), f" {good[1]} , {good[0]} ", list(good)):
        parsed = getattr(parse_options(cls, _options(cls, option, value), owner=owner), option)
        # heads come back in the actor's order, directories in the order given
        assert sorted(parsed) == sorted(good), value
    assert getattr(parse_options(cls, _options(cls, option, good[0]), owner=owner), option) == (good[0],)


def test_an_unknown_factor_is_named():
    with pytest.raises(ConfigError, match=rf"policy 'ppo' option 'entropy_heads' = 'op,colour' is invalid; "
                                          rf"expected {HEADS}, got an unknown factor 'colour'$"):
        parse_options(PPOConfig, {"entropy_heads": "op,colour"}, owner="policy 'ppo'")


def test_bc_dataset_left_out_is_none():
    assert PPOConfig().bc_dataset is None and PPOConfig(bc_dataset=None).bc_dataset is None


@pytest.mark.parametrize("value", ["runs/a,runs/a", "runs/a, runs/b, runs/a", ["runs/a", "runs/a"]])
@pytest.mark.parametrize(("cls", "owner", "option"), [(PPOConfig, "policy 'ppo'", "bc_dataset"),
                                                      (IQLConfig, "policy 'iql'", "dataset")])
def test_a_dataset_named_twice_is_refused_by_name(cls, owner, option, value):
    # its episodes would count twice, silently
    with pytest.raises(ConfigError, match=rf"^{owner} option '{option}' = .* is invalid; expected {DIRECTORIES}, "
                                          r"got 'runs/a' twice \(items 1 and [23]\)$"):
        parse_options(cls, {"dataset": "runs/b", option: value} if cls is IQLConfig else {option: value},
                      owner=owner)
