"""esper_core.options: one toolkit, one message style for every component's options."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from attrs import field, frozen

from esper_core.errors import ConfigError
from esper_core.options import (
    InvalidValue,
    any_number,
    as_bool,
    as_fraction,
    as_int,
    as_path,
    check,
    int_at_least,
    is_bool,
    non_empty_text,
    number_in,
    one_of,
    parse_options,
    reject_all,
)

OWNER = "task 'demo'"


@frozen(kw_only=True)
class Demo:
    size: int = field(default=8, validator=int_at_least(1))
    limit: int | None = field(default=None, validator=int_at_least(0, optional=True))
    rate: float = field(default=0.5, validator=number_in(0.0, 1.0, low_open=True))
    shift: float = field(default=0.0, validator=any_number)
    mode: str = field(default="fast", validator=one_of("fast", "slow"))
    flag: bool = field(default=False, validator=is_bool)
    name: str | None = field(default=None, validator=non_empty_text("a name", optional=True))
    augment: bool = field(default=True, converter=as_bool)
    batches: int = field(default=2, converter=as_int(1))
    share: float = field(default=0.1, converter=as_fraction)
    path: str | None = field(default=None, converter=as_path)

    def __attrs_post_init__(self) -> None:
        if self.limit is not None and self.limit > self.size:
            raise ConfigError(f"limit {self.limit} exceeds size {self.size}")


def message(given: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_options(Demo, given, owner=OWNER, **kwargs)
    return str(info.value)


def test_defaults_and_given_values() -> None:
    assert parse_options(Demo, None, owner=OWNER) == Demo()
    parsed = parse_options(Demo, {"size": 4, "augment": "no", "batches": "3", "share": "0.25"}, owner=OWNER)
    assert (parsed.size, parsed.augment, parsed.batches, parsed.share) == (4, False, 3, 0.25)
    assert parse_options(Demo, {"rate": 1}, owner=OWNER, base=Demo(size=2)).size == 2


def test_unknown_key_suggests_and_lists_the_allowed() -> None:
    text = message({"sise": 3})
    assert text.startswith("task 'demo': unknown option 'sise' (did you mean 'size'?); allowed options: ")
    assert "augment, batches, flag" in text
    # 'size' is a field of the class that this owner does not allow: no look-alike is suggested.
    assert message({"size": 3}, allowed={"rate", "sizes"}) == ("task 'demo': option 'size' does not apply here; "
                                                              "allowed options: rate, sizes")
    assert message({"x": 1}, allowed=()) == "task 'demo': unknown option 'x'; allowed options: none"


@pytest.mark.parametrize(("given", "expected"), [
    ({"size": 0}, "task 'demo' option 'size' = 0 is invalid; expected an integer ≥ 1"),
    ({"size": "ten"}, "task 'demo' option 'size' = 'ten' is invalid; expected an integer ≥ 1, got a string"),
    ({"size": True}, "task 'demo' option 'size' = true is invalid; expected an integer ≥ 1, got true/false"),
    ({"limit": -1}, "task 'demo' option 'limit' = -1 is invalid; expected an integer ≥ 0"),
    ({"rate": 0.0}, "task 'demo' option 'rate' = 0.0 is invalid; expected a finite number in (0, 1]"),
    ({"rate": [1]}, "task 'demo' option 'rate' = [1] is invalid; expected a finite number in (0, 1], got a list"),
    ({"shift": float("nan")}, "task 'demo' option 'shift' = nan is invalid; expected a finite number"),
    ({"mode": "fats"}, "task 'demo' option 'mode' = 'fats' is invalid; expected one of 'fast', 'slow' "
                       "(did you mean 'fast'?)"),
    ({"flag": "yes"}, "task 'demo' option 'flag' = 'yes' is invalid; expected true or false"),
    ({"name": " "}, "task 'demo' option 'name' = ' ' is invalid; expected a name"),
    ({"augment": "maybe"}, "task 'demo' option 'augment' = 'maybe' is invalid; expected true or false"),
    ({"batches": 0}, "task 'demo' option 'batches' = 0 is invalid; expected an integer ≥ 1"),
    ({"share": "half"}, "task 'demo' option 'share' = 'half' is invalid; expected a number in (0, 1)"),
    ({"share": 1.0}, "task 'demo' option 'share' = 1.0 is invalid; expected a number in (0, 1)"),
    ({"path": ""}, "task 'demo' option 'path' = '' is invalid; expected a non-empty path"),
])
def test_bad_values_name_owner_key_value_and_what_is_allowed(given: dict, expected: str) -> None:
    assert message(given) == expected


def test_a_config_table_owner_names_keys_as_the_file_does() -> None:
    with pytest.raises(ConfigError, match=r"^\[run\] size = 0 is invalid; expected an integer ≥ 1$"):
        parse_options(Demo, {"size": 0}, owner="[run]", noun="key")
    with pytest.raises(ConfigError, match=r"^\[run\]: unknown key 'sizes' \(did you mean 'size'\?\)"):
        parse_options(Demo, {"sizes": 0}, owner="[run]", noun="key")


def test_checks_across_fields_and_non_tables_name_the_owner() -> None:
    assert message({"limit": 9}) == "task 'demo': limit 9 exceeds size 8"
    assert message([("size", 3)]) == "task 'demo': options must be a table of key = value, got [('size', 3)]"


def test_direct_construction_raises_a_value_error_naming_the_key() -> None:
    with pytest.raises(ValueError, match="^size = 0 is invalid; expected an integer ≥ 1$") as info:
        Demo(size=0)
    assert isinstance(info.value, InvalidValue) and isinstance(info.value, ConfigError)


def test_a_component_without_options_refuses_every_key() -> None:
    reject_all({}, owner="policy 'noop'")
    reject_all(None, owner="policy 'noop'")
    with pytest.raises(ConfigError, match="^policy 'noop': unknown option 'x'; allowed options: none$"):
        reject_all({"x": 1}, owner="policy 'noop'")


@frozen(kw_only=True)
class Foreign:
    """Validators written with attrs' own helpers still give the one message style."""

    mode: str = field(default="a", validator=attrs.validators.in_(("a", "b")))
    count: int = field(default=1, validator=attrs.validators.instance_of(int))
    level: float = field(default=0.0, converter=float)
    text: str | None = field(default=None, validator=check(lambda v: v is None or v.isalpha(), "letters"))


@pytest.mark.parametrize(("given", "expected"), [
    ({"mode": "c"}, "sink 's' option 'mode' = 'c' is invalid; expected one of 'a', 'b'"),
    ({"count": "2"}, "sink 's' option 'count' = '2' is invalid; expected an integer, got a string"),
    ({"level": [1]}, "sink 's' option 'level' = [1] is invalid; expected a number, got a list"),
    ({"text": "a1"}, "sink 's' option 'text' = 'a1' is invalid; expected letters"),
])
def test_foreign_validators_and_converters_are_reworded(given: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_options(Foreign, given, owner="sink 's'")
    assert str(info.value) == expected


@frozen(kw_only=True)
class _Unchecked:
    on: bool = True
    label: str = "x"
    count: int = 1


@pytest.mark.parametrize(("given", "expected"), [
    ({"on": "yes"}, "[kasmina] on = 'yes' is invalid; expected true or false, got a string"),
    ({"on": 1}, "[kasmina] on = 1 is invalid; expected true or false, got an integer"),
    ({"label": 3}, "[kasmina] label = 3 is invalid; expected a string, got an integer"),
    ({"count": 2.5}, "[kasmina] count = 2.5 is invalid; expected an integer, got a number"),
])
def test_a_field_with_no_validator_still_gets_only_its_own_type(given: dict, expected: str) -> None:
    # Such a field would take any value if nothing checked it ("yes" would turn a flag on).
    with pytest.raises(ConfigError) as info:
        parse_options(_Unchecked, given, owner="[kasmina]", noun="key")
    assert str(info.value) == expected
    assert parse_options(_Unchecked, {"on": False, "label": "y", "count": 2}, owner="[kasmina]") == \
        _Unchecked(on=False, label="y", count=2)


def test_the_lifecycle_flags_refuse_a_string() -> None:
    from esper_core.config import build_section
    from esper_core.contracts.settings import LifecycleSettings

    for key in ("auto_advance", "mask_by_gates", "detach_host_in_blending"):
        with pytest.raises(ConfigError, match=rf"^\[kasmina\] {key} = 'no' is invalid; expected true or false"):
            build_section(LifecycleSettings, {key: "no"}, "kasmina")
    assert build_section(LifecycleSettings, {"mask_by_gates": False}, "kasmina").mask_by_gates is False


def test_values_are_shown_as_toml_writes_them():
    from esper_core.options import invalid_message, shown

    assert (shown(True), shown(False), shown([True, "a", 1.5]), shown("x")) == ("true", "false", "[true, 'a', 1.5]",
                                                                                "'x'")
    assert (invalid_message("[run]", "epochs", True, "an integer ≥ 1")
            == "[run] epochs = true is invalid; expected an integer ≥ 1")


def test_an_integer_too_large_for_a_float_is_no_number_not_a_traceback():
    from esper_core.options import is_number

    assert not is_number(10**400) and not is_number(-(10**400)) and is_number(10**300)


def test_an_integer_longer_than_python_writes_is_named_not_raised():
    # TOML reads 0x... of any length, and a quoted number reaches as_int as a string: past
    # Python's 4300-digit limit, repr() and int() raised ValueError from inside the message.
    huge = int("F" * 4000, 16)
    assert message({"size": huge}) == (f"{OWNER} option 'size' = (an integer of more than 4300 digits) is invalid; "
                                       "expected an integer ≥ 1 and ≤ 9223372036854775807")
    assert message([huge]) == f"{OWNER}: options must be a table of key = value, got (a list holding an integer of " \
                              "more than 4300 digits)"
    assert message({"batches": "9" * 5000}) == (f"{OWNER} option 'batches' = '{'9' * 5000}' holds an integer too long "
                                                "to read (more than 4300 digits)")


@pytest.mark.parametrize(("path", "why"), [("a\x00b", "it contains a NUL byte"),
                                           ("d/" + "x" * 256, "file name too long (a name of 256 bytes; at most 255)")])
def test_a_path_option_the_os_refuses_is_named(path, why):
    assert message({"path": path}) == f"{OWNER} option 'path' = {path!r} is not a usable path: {why}"


def test_name_list_refuses_a_name_twice_only_when_asked():
    from esper_core.options import InvalidValue, name_list

    assert name_list("a,a") == ("a", "a")
    with pytest.raises(InvalidValue, match=r"expected distinct dataset directories, got 'a' twice \(items 1 and 3\)"):
        name_list("a, b, a", noun="dataset directory", unique=True)


def test_check_count_names_the_flag_and_the_shared_bound():
    from esper_core.errors import ConfigError
    from esper_core.options import MAX_EPISODES, check_count

    assert check_count(MAX_EPISODES, flag="--episodes") == MAX_EPISODES
    for value, expected in ((0, "an integer ≥ 1"), (MAX_EPISODES + 1, f"an integer ≥ 1 and ≤ {MAX_EPISODES}"),
                            (True, "an integer ≥ 1")):
        with pytest.raises(ConfigError, match=f"^--episodes {value!r} is invalid; expected {expected}$"):
            check_count(value, flag="--episodes")
