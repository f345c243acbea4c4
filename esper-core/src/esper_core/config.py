"""Run configuration: a TOML file plus command-line overrides, validated into attrs classes.

Every error names the key, the value and what is allowed, as a :class:`ConfigError`; the CLI
turns that into a one-line message and exit code 2. The resolved configuration (with task
defaults filled in) is written back to the run directory with :func:`dump_toml`.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from esper_core.errors import ConfigError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
OPTIMIZERS = ("adamw", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine")


def _check(pred: Callable[[Any], bool], allowed: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def validator(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not pred(value):
            raise ConfigError(f"{attribute.name} = {value!r} is invalid; expected {allowed}")

    return validator


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


def int_at_least(n: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    return _check(lambda v: _is_int(v) and v >= n, f"an integer ≥ {n}")


def optional_int_at_least(n: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    return _check(lambda v: v is None or (_is_int(v) and v >= n), f"an integer ≥ {n}")


def positive_number(optional: bool = False) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    return _check(lambda v: (optional and v is None) or (_is_num(v) and v > 0), "a finite number > 0")


def non_negative_number() -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    return _check(lambda v: v is None or (_is_num(v) and v >= 0), "a finite number ≥ 0")


def one_of(*choices: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    return _check(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def _name_list(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"expected a list of names, got {value!r}")
    return tuple(value)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


@frozen(kw_only=True)
class TrainingConfig:
    """Optimiser settings; ``None`` takes the task's default."""

    batch_size: int | None = field(default=None, validator=optional_int_at_least(1))
    lr: float | None = field(default=None, validator=positive_number(optional=True))
    seed_lr: float | None = field(default=None, validator=positive_number(optional=True))
    weight_decay: float | None = field(default=None, validator=non_negative_number())
    optimizer: str | None = field(default=None, validator=_check(lambda v: v is None or v in OPTIMIZERS,
                                                                 "one of 'adamw', 'sgd'"))
    #: host learning-rate schedule over an episode (seeds keep ``seed_lr``)
    lr_schedule: str | None = field(default=None, validator=_check(
        lambda v: v is None or v in LR_SCHEDULES, "one of 'constant', 'step', 'cosine'"))
    #: ``step``: the epoch from which the host lr is multiplied by ``lr_step_factor``
    lr_step_epoch: int | None = field(default=None, validator=optional_int_at_least(1))
    lr_step_factor: float | None = field(default=None, validator=positive_number(optional=True))


@frozen(kw_only=True)
class RunConfig:
    """Everything ``esper run`` needs, before task defaults are applied (``None`` = default)."""

    #: None: the task an installed plugin declares the default (esper_core.setup.defaults)
    task: str | None = field(default=None, validator=_check(
        lambda v: v is None or (isinstance(v, str) and v), "a task name"))
    #: None: the policy an installed plugin declares the default
    policy: str | None = field(default=None, validator=_check(
        lambda v: v is None or (isinstance(v, str) and v), "a policy name"))
    epochs: int | None = field(default=None, validator=optional_int_at_least(1))
    episodes: int = field(default=1, validator=int_at_least(1))
    seed: int = field(default=0, validator=int_at_least(0))
    device: str = field(default="auto", validator=_check(
        lambda v: isinstance(v, str) and bool(DEVICE_PATTERN.match(v)), "'auto', 'cpu', 'cuda' or 'cuda:N'"))
    slots: tuple[str, ...] | None = field(default=None, converter=_name_list)
    blueprints: tuple[str, ...] | None = field(default=None, converter=_name_list)
    #: most live seeds at once; None = the task's default (1 unless the task says otherwise)
    max_seeds: int | None = field(default=None, validator=optional_int_at_least(1))
    param_budget: int | None = field(default=None, validator=optional_int_at_least(0))
    compare_baseline: bool = field(default=True, validator=_check(_is_bool, "true or false"))
    #: reuse a finished baseline whose numbers cannot differ (esper_core.tolaria.baseline)
    baseline_cache: bool = field(default=True, validator=_check(_is_bool, "true or false"))
    deterministic: bool = field(default=False, validator=_check(_is_bool, "true or false"))
    #: torch intra-op threads on CPU; 0 = automatic (see esper_core.setup.seeding.choose_threads)
    threads: int = field(default=0, validator=int_at_least(0))
    reward_preset: str = field(default="shaped", validator=_check(lambda v: isinstance(v, str) and v, "a preset name"))
    telemetry: tuple[str, ...] = field(default=("jsonl",), converter=_name_list)
    #: training observers to run; None = every installed one, [] = none
    observers: tuple[str, ...] | None = field(default=None, converter=_name_list)
    out: str | None = field(default=None, validator=_check(lambda v: v is None or (isinstance(v, str) and v), "a path"))
    #: a blueprint library file (from ``esper discover``): its blueprints join the task's catalog
    blueprint_library: str | None = field(
        default=None, validator=_check(lambda v: v is None or (isinstance(v, str) and v), "a path"))
    #: run checkpoints kept in ``RUN_DIR/checkpoints/`` (one is written after every epoch)
    checkpoint_keep: int = field(default=2, validator=int_at_least(1))
    training: TrainingConfig = field(factory=TrainingConfig)
    task_options: Mapping[str, Any] = field(factory=dict)
    policy_options: Mapping[str, Any] = field(factory=dict)
    kasmina: Mapping[str, Any] = field(factory=dict)
    gates: Mapping[str, Any] = field(factory=dict)
    reward_weights: Mapping[str, float] = field(factory=dict)
    #: per-sink options, from ``[telemetry.<sink>]`` tables
    telemetry_options: Mapping[str, Mapping[str, Any]] = field(factory=dict)
    #: per-observer options, from ``[observers.<name>]`` tables
    observer_options: Mapping[str, Mapping[str, Any]] = field(factory=dict)

    @classmethod
    def from_sources(cls, path: Path | None = None, overrides: Mapping[str, Any] | None = None,
                     *, task_options: Mapping[str, Any] | None = None,
                     policy_options: Mapping[str, Any] | None = None) -> RunConfig:
        """Read ``path`` (if given), then apply the non-None ``overrides`` of ``[run]`` keys,
        ``task_options`` over its ``[task]`` table and ``policy_options`` over ``[policy]``."""
        data = dict(read_toml(path)) if path is not None else {}
        if task_options:
            data["task"] = {**_table(data, "task"), **task_options}
        if policy_options:
            data["policy"] = {**_table(data, "policy"), **policy_options}
        return cls.from_dict(data, overrides or {})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> RunConfig:
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise ConfigError(
                f"unknown config table [{sorted(unknown)[0]}]; allowed tables: {', '.join(_SECTIONS)}"
            )
        run = dict(_table(data, "run"))
        run.update({k: v for k, v in (overrides or {}).items() if v is not None})
        scalar_fields = [a.name for a in attrs.fields(cls) if a.name not in _NESTED]
        _reject_unknown("run", run, scalar_fields)
        training = _build(TrainingConfig, _table(data, "training"), "training")
        sink_options = _options_tables(data, "telemetry")
        observer_options = _options_tables(data, "observers")
        weights = dict(_table(data, "rewards"))
        for key, value in weights.items():
            if not _is_num(value):
                raise ConfigError(f"[rewards] {key} = {value!r} is invalid; expected a finite number (a weight)")
        return _build(
            cls,
            {
                **run,
                "training": training,
                "task_options": dict(_table(data, "task")),
                "policy_options": dict(_table(data, "policy")),
                "kasmina": dict(_table(data, "kasmina")),
                "gates": dict(_table(data, "gates")),
                "reward_weights": weights,
                "telemetry_options": sink_options,
                "observer_options": observer_options,
            },
            "run",
        )

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped form (tables as in the input file)."""
        run = {a.name: getattr(self, a.name) for a in attrs.fields(type(self)) if a.name not in _NESTED}
        return {
            "run": {k: list(v) if isinstance(v, tuple) else v for k, v in run.items() if v is not None},
            "training": {k: v for k, v in attrs.asdict(self.training).items() if v is not None},
            "task": dict(self.task_options),
            "policy": dict(self.policy_options),
            "kasmina": dict(self.kasmina),
            "gates": dict(self.gates),
            "rewards": dict(self.reward_weights),
            "telemetry": {k: dict(v) for k, v in self.telemetry_options.items()},
            "observers": {k: dict(v) for k, v in self.observer_options.items()},
        }


_SECTIONS = ("run", "training", "task", "policy", "kasmina", "gates", "rewards", "telemetry", "observers")
_NESTED = {"training", "task_options", "policy_options", "kasmina", "gates", "reward_weights",
           "telemetry_options", "observer_options"}


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"config key {name!r} must be a table ([{name}]), got {value!r}")
    return value


def _options_tables(data: Mapping[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """``[section.<name>]`` sub-tables: each component's own options."""
    out = {}
    for name, options in _table(data, section).items():
        if not isinstance(options, Mapping):
            raise ConfigError(f"[{section}] {name} = {options!r} is invalid; expected a table "
                              f"[{section}.{name}] of that component's options")
        out[name] = dict(options)
    return out


def _reject_unknown(section: str, data: Mapping[str, Any], allowed: list[str]) -> None:
    import difflib

    for key in data:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(
                f"unknown key [{section}] {key!r}{suggestion}; allowed keys: {', '.join(sorted(allowed))}"
            )


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _plain_kinds(hint: Any) -> tuple[type, ...] | None:
    """The scalar types a field annotation allows (None for annotations this check leaves to
    the class's own validators)."""
    import types
    import typing

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


def _check_types(cls: type[Any], data: Mapping[str, Any], section: str) -> None:
    """Name the key and the expected type, in words, for a value of the wrong type (before the
    class's validators, whose messages name neither plainly)."""
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation not resolvable at runtime: the validators still run
        return
    for key, value in data.items():
        kinds = _plain_kinds(hints.get(key))
        if kinds is None or (value is None and type(None) in typing.get_args(hints[key])):
            continue
        if not _fits(value, kinds):
            expected = " or ".join(_TYPE_WORDS[k] for k in kinds)
            raise ConfigError(f"[{section}] {key} = {value!r} is invalid; expected {expected}, "
                              f"got {_TYPE_NAMES.get(type(value), type(value).__name__)}")


_TYPE_NAMES = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "a table"}


def _build(cls: type[Any], data: Mapping[str, Any], section: str) -> Any:
    """Construct attrs class ``cls`` from ``data``, turning every failure into a ConfigError."""
    allowed = [a.name for a in attrs.fields(cls)]
    _reject_unknown(section, data, allowed)
    try:
        return cls(**data)
    except ConfigError as exc:
        raise ConfigError(f"[{section}] {exc}") from None
    except (TypeError, ValueError) as exc:
        _check_types(cls, data, section)  # names the key when a value has the wrong type
        # attrs validators raise TypeError(message, attribute, expected, value): say it plainly.
        if len(exc.args) == 4 and isinstance(exc.args[1], attrs.Attribute):
            _, attribute, _, value = exc.args
            raise ConfigError(f"[{section}] {attribute.name} = {value!r} is invalid; expected "
                              f"{getattr(attribute, 'type', None) or 'another type'}") from None
        raise ConfigError(f"[{section}] {exc}") from None


def build_section(cls: type[Any], data: Mapping[str, Any], section: str, base: Any | None = None) -> Any:
    """Apply ``data`` overrides onto ``base`` (an instance of ``cls``) with full validation."""
    merged = attrs.asdict(base, recurse=False) if base is not None else {}
    allowed = [a.name for a in attrs.fields(cls)]
    _reject_unknown(section, data, allowed)
    merged.update(data)
    return _build(cls, merged, section)


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a ConfigError naming it."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ConfigError(f"config file {str(path)!r} is nested too deeply to be a configuration") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: Mapping[str, Mapping[str, Any]], prefix: str = "") -> str:
    """Write nested tables of scalars and lists as TOML (sub-tables as ``[a.b]``)."""
    lines: list[str] = []
    for table, values in data.items():
        name = f"{prefix}{table}"
        lines.append(f"[{name}]")
        subtables = {}
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, Mapping):
                subtables[key] = value
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
        if subtables:
            lines.append(dump_toml(subtables, prefix=f"{name}."))
    return "\n".join(lines)


def parse_key_values(pairs: tuple[str, ...] | list[str], *, flag: str = "--task-option") -> dict[str, Any]:
    """``KEY=VALUE`` strings (from ``flag``) to a dict; values are read as TOML, falling back to
    plain strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r} is invalid; expected KEY=VALUE")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
        except RecursionError:
            raise ConfigError(f"{flag} {key}: the value is nested too deeply") from None
    return out
