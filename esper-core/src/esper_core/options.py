"""Component options, declared and checked one way (torch-free).

Every option set in Esper is an attrs class whose fields carry the validators (or, where values
may arrive as command-line strings, the converters) of this module: a task's ``[task]`` table, a
policy's ``[policy]``, a telemetry sink's ``[telemetry.<sink>]``, an observer's, a blueprint
generator's, and the run configuration's own tables. :func:`parse_options` builds one from what
the user gave, so every mistake reads the same way and names the owner, the key and what is
allowed::

    task 'cifar10': unknown option 'vla_size' (did you mean 'val_size'?); allowed options: ...
    task 'cifar10' option 'val_size' = -1 is invalid; expected an integer ≥ 1
    policy 'ppo' option 'trunk' = 'gru' is invalid; expected one of 'mlp', 'lstm'
    [run] epochs = 'ten' is invalid; expected an integer ≥ 1, got a string

(An owner written as a config table, ``[run]``, names its keys the way the TOML file does.)
"""

from __future__ import annotations

import difflib
import math
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from esper_core.errors import ConfigError
from esper_core.wording import plural

T = TypeVar("T")
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_GOT_WORDS = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
              tuple: "a list", dict: "a table", type(None): "nothing"}


# -- the one message style ---------------------------------------------------------------------


def subject(owner: str, key: str) -> str:
    """How a key is named: ``[run] epochs`` in a config table, ``task 'x' option 'k'`` otherwise."""
    return f"{owner} {key}" if owner.startswith("[") else f"{owner} option {key!r}"


def got_word(value: Any) -> str:
    """The type of ``value`` in words (``a string``, ``a list`` ...)."""
    return _GOT_WORDS.get(type(value), type(value).__name__)


def shown(value: Any) -> str:
    """``value`` as the user wrote it in TOML (or as ``KEY=VALUE``): ``true``/``false``, not
    Python's ``True``/``False``; lists likewise, item by item; anything else as ``repr``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(item) for item in value) + "]"
    return safe_repr(value)


def safe_repr(value: Any) -> str:
    """``repr(value)``; for an int of more digits than Python writes (TOML reads ``0x``, ``0o``
    and ``0b`` integers of any length), or a list or table holding one, what it is in words."""
    try:
        return repr(value)
    except ValueError:
        what = "an integer" if isinstance(value, int) else f"{got_word(value)} holding an integer"
        return f"({what} of more than {sys.get_int_max_str_digits()} digits)"


def invalid_message(owner: str, key: str, value: Any, expected: str, got: str | None = None) -> str:
    """``<owner> option '<key>' = <value> is invalid; expected <expected>[, got <type>]``."""
    tail = f", got {got}" if got else ""
    return f"{subject(owner, key)} = {shown(value)} is invalid; expected {expected}{tail}"


def unknown_message(owner: str, key: Any, allowed: Iterable[str], noun: str = "option", *,
                    elsewhere: bool = False) -> str:
    """``<owner>: unknown option '<key>' (did you mean '<close>'?); allowed options: <all>``.

    With ``elsewhere``, the key is a real option that this owner does not use (``data_dir`` on a
    task whose data is generated): the message says so rather than suggest a look-alike name."""
    names = sorted(allowed)
    listed = ", ".join(names) if names else "none"
    if elsewhere:
        return f"{owner}: {noun} {key!r} does not apply here; allowed {noun}s: {listed}"
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{owner}: unknown {noun} {key!r}{hint}; allowed {noun}s: {listed}"


class InvalidValue(ConfigError, ValueError):
    """A value a validator or converter of this module refused.

    Raised inside attrs construction; :func:`parse_options` adds the owner. It is a
    :class:`ValueError` too, so code that builds an options class directly sees what attrs
    validators raise. With ``problem`` (``"is not a usable path: it contains a NUL byte"``) the
    message says that instead of "is invalid; expected ...": ``<key> = <value> <problem>``."""

    def __init__(self, key: str | None, value: Any, expected: str, got: str | None = None, *,
                 problem: str | None = None) -> None:
        self.key, self.value, self.expected, self.got, self.problem = key, value, expected, got, problem
        tail = f", got {got}" if got else ""
        where = f"{key} = " if key else ""
        super().__init__(f"{where}{shown(value)} {problem}" if problem
                         else f"{where}{shown(value)} is invalid; expected {expected}{tail}")

    def for_owner(self, owner: str, key: str | None = None) -> ConfigError:
        name = key or self.key or "?"
        if self.problem:
            return ConfigError(f"{subject(owner, name)} = {shown(self.value)} {self.problem}")
        return ConfigError(invalid_message(owner, name, self.value, self.expected, self.got))


# -- validators (attrs ``validator=``) ---------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is a config mistake, not a number; an integer too large for a
    float, such as a TOML ``1`` followed by 400 zeros, is not finite either)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wrong_type(value: Any, ok: Callable[[Any], bool]) -> str | None:
    return None if ok(value) else got_word(value)


def check(predicate: Callable[[Any], bool], expected: str, *, optional: bool = False) -> Validator:
    """A validator: ``predicate(value)`` must hold (``None`` passes too when ``optional``)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if not predicate(value):
            raise InvalidValue(attribute.name, value, expected)

    return validate


def optional(validator: Validator) -> Validator:
    """``validator``, or ``None`` (meaning "use the default behaviour")."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return validate


#: The largest integer an option may hold: torch and NumPy take seeds, sizes and counts as
#: 64-bit integers, and a larger one would fail deep inside them (or wrap) instead of here.
INT_MAX = 2**63 - 1


#: The most episodes (or policy-training rounds) one command runs: ``esper run --episodes``,
#: ``evaluate --episodes``, ``collect --episodes`` and PPO's ``rounds``. Far beyond any real
#: use (an episode takes seconds to hours), while a mistyped count is refused at once instead of
#: running until it is killed.
MAX_EPISODES = 100_000

#: The most epochs of one episode (``esper run/evaluate/collect --epochs``, ``[run] epochs``, PPO's
#: ``episode_length``): far beyond any real schedule, while a mistyped count is refused at once.
MAX_EPOCHS = 100_000


def check_count(value: Any, *, flag: str, low: int = 1, high: int = MAX_EPISODES) -> int:
    """A command-line count (``--episodes``) in ``[low, high]``; else a :class:`ConfigError`
    naming ``flag``, the value and the range (the one wording of :func:`int_at_least`)."""
    if not (_is_int(value) and low <= value <= high):
        raise ConfigError(f"{flag} {value!r} is invalid; expected {_int_expected(low, high, value)}")
    return int(value)


def _int_expected(low: int, high: int, value: Any) -> str:
    if _is_int(value) and value > high:
        return f"an integer ≥ {low} and ≤ {high}"
    return f"an integer ≥ {low}"


def int_at_least(low: int, *, high: int = INT_MAX, optional: bool = False) -> Validator:
    """An ``int`` (not a bool) that is ``≥ low`` (and ``≤ high``, by default :data:`INT_MAX`)."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if not (_is_int(value) and low <= value <= high):
            raise InvalidValue(attribute.name, value, _int_expected(low, high, value),
                               _wrong_type(value, _is_int))

    return validate


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(high):
        if math.isinf(low):
            return "a finite number"
        return f"a finite number {'>' if low_open else '≥'} {low:g}"
    bracket = ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")
    return f"a finite number in {bracket}"


def number_in(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
              high_open: bool = False, optional: bool = False) -> Validator:
    """A finite number in ``[low, high]`` (an end is open with ``low_open`` / ``high_open``)."""
    expected = _interval(low, high, low_open, high_open)

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        inside = is_number(value) and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
        if not inside:
            raise InvalidValue(attribute.name, value, expected, _wrong_type(value, _is_real))

    return validate


def positive_number(*, optional: bool = False) -> Validator:
    """A finite number > 0."""
    return number_in(0.0, low_open=True, optional=optional)


def non_negative_number(*, optional: bool = False) -> Validator:
    """A finite number ≥ 0."""
    return number_in(0.0, optional=optional)


#: Any finite number (thresholds that may legitimately be negative).
any_number: Validator = number_in()


def is_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidValue(attribute.name, value, "true or false")


def one_of(*choices: Any, optional: bool = False) -> Validator:
    """One of ``choices`` (a near miss gets a "did you mean")."""
    expected = "one of " + ", ".join(repr(c) for c in choices)
    words = [c for c in choices if isinstance(c, str)]

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if value not in choices:
            close = difflib.get_close_matches(value, words, n=1) if isinstance(value, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InvalidValue(attribute.name, value, expected + hint)

    return validate


def non_empty_text(what: str = "a non-empty string", *, optional: bool = False) -> Validator:
    """A non-blank string (a name, a path ...), described to the user as ``what``."""
    return check(lambda v: isinstance(v, str) and bool(v.strip()), what, optional=optional)


def _refuse_unusable_path(key: str | None, value: str, what: str) -> None:
    """Raise ``InvalidValue`` ("<key> = '<value>' is not a usable path: <why>") for a path the OS
    refuses by its spelling (:func:`esper_core.files.path_problem`)."""
    from esper_core.files import path_problem  # not at import time: this module is loaded by `esper --help`

    why = path_problem(value)
    if why is not None:
        raise InvalidValue(key, value, what, problem=f"is not a usable path: {why}")


def usable_path(what: str = "a path", *, optional: bool = False) -> Validator:
    """A non-blank path string the OS can take: one holding a NUL byte or a file or folder name
    longer than :data:`esper_core.files.NAME_MAX` bytes is refused as ``is not a usable path:
    <why>`` (:func:`esper_core.files.path_problem`), here rather than by whatever opens it."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if optional and value is None:
            return
        if not (isinstance(value, str) and value.strip()):
            raise InvalidValue(attribute.name, value, what)
        _refuse_unusable_path(attribute.name, value, what)

    return validate


def usable_paths(key: str, paths: Iterable[str]) -> tuple[str, ...]:
    """``paths`` (of option ``key``), each one the OS can take (:func:`usable_path`): a converter's
    last step for a list of paths; the refusal names the path, not the whole list."""
    paths = tuple(paths)
    for path in paths:
        _refuse_unusable_path(key, path, "a usable path")
    return paths


# -- converters (attrs ``converter=``): values that may arrive as command-line strings ----------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def as_bool(value: Any) -> bool:
    """``true``/``false``, ``1``/``0`` or ``yes``/``no``/``on``/``off`` (any case)."""
    if isinstance(value, bool):
        return value
    if _is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise InvalidValue(None, value, "true or false")


def as_int(low: int, *, high: int = INT_MAX, optional: bool = False) -> Callable[[Any], Any]:
    """A converter to an int in ``[low, high]``; a string of digits is read as one."""

    def convert(value: Any) -> Any:
        if optional and value is None:
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            try:
                value = int(value.strip())
            except ValueError as exc:  # more digits than Python reads
                from esper_core.files import too_long_integer

                raise InvalidValue(None, value, _int_expected(low, high, value),
                                   problem=too_long_integer(exc) or str(exc)) from None
        if not (_is_int(value) and low <= value <= high):
            raise InvalidValue(None, value, _int_expected(low, high, value), _wrong_type(value, _is_int))
        return value

    return convert


def name_list(value: Any, *, noun: str = "name", allow_empty: bool = False,
              unique: bool = False) -> tuple[str, ...]:
    """Names, as a list of strings or as one comma-separated string (a command-line option, an
    environment variable): the one parser of every list of names Esper reads.

    A blank name is refused, never dropped: ``','``, ``'a,,b'``, a trailing comma and
    ``['a', ' ']`` name something the user did not mean. An empty list (``''`` or ``[]``) is
    refused too, unless ``allow_empty`` (where "none" is a meaningful choice, e.g. no telemetry
    sinks). With ``unique``, a name given twice is refused (the same dataset twice would count
    its episodes twice). Names from a string are stripped of surrounding spaces (``'a, b'``). Raises
    :class:`InvalidValue` naming what was expected (``noun``: "slot name" ...) and what was wrong.
    """
    text = isinstance(value, str)
    names = plural(noun)
    if allow_empty:
        expected = (f"comma-separated {names} ('' for none)" if text else f"a list of {names} ([] for none)")
    else:
        expected = f"one or more comma-separated {names}" if text else f"a non-empty list of {names}"
    if text:
        items: list[Any] = [v.strip() for v in value.split(",")] if value.strip() else []
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise InvalidValue(None, value, expected, got_word(value))
    for i, item in enumerate(items, start=1):
        if not isinstance(item, str):
            raise InvalidValue(None, value, expected, f"{got_word(item)} (item {i})")
        if not item.strip():
            raise InvalidValue(None, value, expected, f"a blank entry (item {i})")
    if not items and not allow_empty:
        raise InvalidValue(None, value, expected, "none")
    if unique:
        for i, item in enumerate(items, start=1):
            if item in items[:i - 1]:
                first = items.index(item) + 1
                raise InvalidValue(None, value, f"distinct {names}", f"{item!r} twice (items {first} and {i})")
    return tuple(items)


def option_names(text: str, *, option: str, noun: str, allow_empty: bool = False,
                 unique: bool = False) -> tuple[str, ...]:
    """A command-line option's comma-separated names (:func:`name_list`; ``unique``: a name given
    twice is refused); a bad list is a :class:`ConfigError` naming ``option`` (``--against ','
    is invalid; expected ...``)."""
    try:
        return name_list(text, noun=noun, allow_empty=allow_empty, unique=unique)
    except InvalidValue as exc:
        tail = f", got {exc.got}" if exc.got else ""
        raise ConfigError(f"{option} {text!r} is invalid; expected {exc.expected}{tail}") from None


def as_fraction(value: Any) -> float:
    """A number strictly between 0 and 1 (a split carved from another keeps both non-empty)."""
    expected = "a number in (0, 1)"
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidValue(None, value, expected) from None
    if not (is_number(value) and 0 < value < 1):
        raise InvalidValue(None, value, expected)
    return float(value)


def as_path(value: Any) -> str | None:
    """An optional non-blank path string the OS can take (:func:`usable_path`)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(None, value, "a non-empty path")
    _refuse_unusable_path(None, value, "a non-empty path")
    return value


# -- building an options class from user input -------------------------------------------------


def parse_options(cls: type[T], given: Mapping[str, Any] | None, *, owner: str,
                  allowed: Iterable[str] | None = None, base: T | None = None, noun: str = "option") -> T:
    """Build attrs class ``cls`` from ``given`` (on top of ``base``, else the class defaults).

    ``owner`` names who the options belong to (``"task 'cifar10'"``, ``"[run]"``); ``allowed``
    narrows the keys a user may set (default: every field). Unknown keys, wrong types, values out
    of range and cross-field inconsistencies all raise :class:`ConfigError` in the one style.
    """
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ConfigError(f"{owner}: options must be a table of key = value, got {safe_repr(given)}")
    fields = attrs.fields_dict(cls)  # type: ignore[arg-type]
    names = set(fields) if allowed is None else set(allowed)
    for key in given:
        if key not in names:
            raise ConfigError(unknown_message(owner, key, names, noun, elsewhere=key in fields))
    # A field with neither a converter nor a validator (a plain ``bool``) would otherwise take
    # any value, and "yes" would be true; the others check their own input, in their own words.
    _check_types(cls, {k: v for k, v in given.items()
                       if fields[k].converter is None and fields[k].validator is None}, owner)
    for key, value in given.items():  # converters do not know their field: name it here
        converter = fields[key].converter
        if callable(converter):
            try:
                converter(value)
            except InvalidValue as exc:
                raise exc.for_owner(owner, key) from None
            except (TypeError, ValueError) as exc:  # a converter not from this module (``float``)
                _check_types(cls, {key: value}, owner)
                raise ConfigError(f"{subject(owner, key)} = {shown(value)} is invalid: {exc}") from None
    values = attrs.asdict(base, recurse=False) if base is not None else {}  # type: ignore[arg-type]
    values.update(given)
    try:
        return cls(**values)
    except InvalidValue as exc:
        raise exc.for_owner(owner) from None
    except ConfigError as exc:  # a check across fields (``__attrs_post_init__``)
        raise ConfigError(f"{owner}: {exc}") from None
    except (TypeError, ValueError) as exc:
        _check_types(cls, given, owner)
        # attrs' own validators raise (message, attribute, expected, value): say it plainly.
        if len(exc.args) == 4 and isinstance(exc.args[1], attrs.Attribute):
            _, attribute, expected, value = exc.args
            raise ConfigError(invalid_message(owner, attribute.name, value, _describe(expected))) from None
        raise ConfigError(f"{owner}: {exc}") from None


def reject_all(given: Mapping[str, Any] | None, *, owner: str) -> None:
    """For a component that takes no options: any key is an error (a typo must not pass silently)."""
    for key in given or {}:
        raise ConfigError(unknown_message(owner, key, ()))


def _describe(expected: Any) -> str:
    if isinstance(expected, type):
        return _TYPE_WORDS.get(expected, expected.__name__)
    if isinstance(expected, tuple | list | set | frozenset):
        return "one of " + ", ".join(repr(c) for c in expected)
    return str(expected)


def _plain_kinds(hint: Any) -> tuple[type, ...] | None:
    """The scalar types a field annotation allows (None for annotations left to validators)."""
    if hint in _TYPE_WORDS:
        return (hint,)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if args and all(a in _TYPE_WORDS for a in args):
            return tuple(args)
    return None


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    return any(isinstance(value, k) for k in kinds if k is not bool) or (float in kinds and isinstance(value, int))


def _check_types(cls: type[Any], given: Mapping[str, Any], owner: str) -> None:
    """Name the key and the expected type in words for a value of the wrong type (validators
    not written with this module name neither plainly)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation not resolvable at runtime: the validators' message stands
        return
    for key, value in given.items():
        kinds = _plain_kinds(hints.get(key))
        if kinds is None or (value is None and type(None) in typing.get_args(hints[key])):
            continue
        if not _fits(value, kinds):
            expected = " or ".join(_TYPE_WORDS[k] for k in kinds)
            raise ConfigError(invalid_message(owner, key, value, expected, got_word(value)))
