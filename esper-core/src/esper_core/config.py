"""Run configuration: a TOML file plus command-line overrides, validated into attrs classes.

Every error names the key, the value and what is allowed, as a :class:`ConfigError`; the CLI
turns that into a one-line message and exit code 2. The resolved configuration (with task
defaults filled in) is written back to the run directory with :func:`dump_toml`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from esper_core.contracts.run_defaults import LR_SCHEDULES, OPTIMIZERS
from esper_core.errors import ConfigError
from esper_core.files import parse_text, read_input_file, too_long_integer
from esper_core.options import (
    MAX_EPISODES,
    MAX_EPOCHS,
    check,
    got_word,
    int_at_least,
    invalid_message,
    is_number,
    name_list,
    non_negative_number,
    one_of,
    parse_options,
    positive_number,
    shown,
    unknown_message,
    usable_path,
)

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
#: Most CPU threads a run may ask torch for (far beyond any CPU; torch crashes on a huge count).
MAX_THREADS = 1024
#: Largest magnitude of a ``[rewards]`` weight: the terms are O(1)–O(100), so this leaves every
#: sensible scaling while a reward summed over epochs and episodes stays far from overflowing to
#: infinity (which made the summary's ``total_reward`` NaN).
MAX_REWARD_WEIGHT = 1e6


def _wrong_number(value: Any) -> str | None:
    return None if isinstance(value, int | float) and not isinstance(value, bool) else got_word(value)


# Every list of names goes through options.name_list: a blank name is refused, never dropped.
# One named converter per field: mypy's attrs plugin takes no converter made by a factory.
def _slot_names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else name_list(value, noun="slot name")


def _blueprint_names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else name_list(value, noun="blueprint name")


def _sink_names(value: Any) -> tuple[str, ...]:
    return name_list(value, noun="telemetry sink", allow_empty=True)


def _observer_names(value: Any) -> tuple[str, ...] | None:
    return None if value is None else name_list(value, noun="observer", allow_empty=True)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_non_empty_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


@frozen(kw_only=True)
class TrainingConfig:
    """The ``[training]`` table: :class:`~esper_core.contracts.run_defaults.TrainingSettings`
    with every key optional (``None`` takes the task's default)."""

    batch_size: int | None = field(default=None, validator=int_at_least(1, optional=True))
    lr: float | None = field(default=None, validator=positive_number(optional=True))
    seed_lr: float | None = field(default=None, validator=positive_number(optional=True))
    weight_decay: float | None = field(default=None, validator=non_negative_number(optional=True))
    optimizer: str | None = field(default=None, validator=one_of(*OPTIMIZERS, optional=True))
    #: host learning-rate schedule over an episode (seeds keep ``seed_lr``)
    lr_schedule: str | None = field(default=None, validator=one_of(*LR_SCHEDULES, optional=True))
    #: ``step``: the epoch from which the host lr is multiplied by ``lr_step_factor``
    lr_step_epoch: int | None = field(default=None, validator=int_at_least(1, high=MAX_EPOCHS, optional=True))
    lr_step_factor: float | None = field(default=None, validator=positive_number(optional=True))


@frozen(kw_only=True)
class RunConfig:
    """Everything ``esper run`` needs, before task defaults are applied (``None`` = default)."""

    #: None: the task an installed plugin declares the default (esper_core.setup.defaults)
    task: str | None = field(default=None, validator=check(_is_non_empty_str, "a task name", optional=True))
    #: None: the policy an installed plugin declares the default
    policy: str | None = field(default=None, validator=check(_is_non_empty_str, "a policy name", optional=True))
    epochs: int | None = field(default=None, validator=int_at_least(1, high=MAX_EPOCHS, optional=True))
    episodes: int = field(default=1, validator=int_at_least(1, high=MAX_EPISODES))
    seed: int = field(default=0, validator=int_at_least(0))
    device: str = field(default="auto", validator=check(
        lambda v: isinstance(v, str) and bool(DEVICE_PATTERN.match(v)), "'auto', 'cpu', 'cuda' or 'cuda:N'"))
    #: None: every injection point of the host (the task's default). A run always has a slot:
    #: an empty list is refused, not read as "none" or "the default" (a run with no seeds at
    #: all is the baseline, ``--policy noop`` or compare_baseline).
    slots: tuple[str, ...] | None = field(default=None, converter=_slot_names)
    #: None: the task's default (every blueprint of its topology); an empty list is refused.
    blueprints: tuple[str, ...] | None = field(default=None, converter=_blueprint_names)
    #: most live seeds at once; None = the task's default (1 unless the task says otherwise)
    max_seeds: int | None = field(default=None, validator=int_at_least(1, optional=True))
    param_budget: int | None = field(default=None, validator=int_at_least(0, optional=True))
    compare_baseline: bool = field(default=True, validator=check(_is_bool, "true or false"))
    #: reuse a finished baseline whose numbers cannot differ (esper_core.tolaria.baseline)
    baseline_cache: bool = field(default=True, validator=check(_is_bool, "true or false"))
    deterministic: bool = field(default=False, validator=check(_is_bool, "true or false"))
    #: torch intra-op threads on CPU; 0 = automatic (see esper_core.setup.seeding.choose_threads)
    threads: int = field(default=0, validator=int_at_least(0, high=MAX_THREADS))
    reward_preset: str = field(default="shaped", validator=check(_is_non_empty_str, "a preset name"))
    #: telemetry sinks; [] (or '') = none
    telemetry: tuple[str, ...] = field(default=("jsonl",), converter=_sink_names)
    #: training observers to run; None = every installed one, [] (or '') = none
    observers: tuple[str, ...] | None = field(default=None, converter=_observer_names)
    out: str | None = field(default=None, validator=usable_path(optional=True))
    #: a blueprint library file (from ``esper discover``): its blueprints join the task's catalog
    blueprint_library: str | None = field(default=None, validator=usable_path(optional=True))
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
        if path is not None and overrides:
            # The file on its own first: a bad value in it is refused even where a flag overrides it.
            cls.from_dict(data)
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
        for key in run:
            if key not in scalar_fields:
                raise ConfigError(unknown_message("[run]", key, scalar_fields, "key"))
        training = _build(TrainingConfig, _table(data, "training"), "training")
        sink_options = _options_tables(data, "telemetry")
        observer_options = _options_tables(data, "observers")
        weights = dict(_table(data, "rewards"))
        for key, value in weights.items():
            if not (is_number(value) and abs(value) <= MAX_REWARD_WEIGHT):
                raise ConfigError(invalid_message(
                    "[rewards]", key, value, f"a weight from -{MAX_REWARD_WEIGHT:.0f} to {MAX_REWARD_WEIGHT:.0f} "
                    "(a larger one would overflow the reward sums)", _wrong_number(value)))
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
        raise ConfigError(f"config key {name!r} must be a table ([{name}]), got {shown(value)}")
    return value


def _options_tables(data: Mapping[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """``[section.<name>]`` sub-tables: each component's own options."""
    out = {}
    for name, options in _table(data, section).items():
        if not isinstance(options, Mapping):
            raise ConfigError(f"[{section}] {name} = {shown(options)} is invalid; expected a table "
                              f"[{section}.{name}] of that component's options")
        out[name] = dict(options)
    return out


def _build(cls: type[Any], data: Mapping[str, Any], section: str) -> Any:
    """Construct attrs class ``cls`` from table ``[section]``; every failure is a ConfigError."""
    return parse_options(cls, data, owner=f"[{section}]", noun="key")


def build_section(cls: type[Any], data: Mapping[str, Any], section: str, base: Any | None = None) -> Any:
    """Apply ``data`` overrides onto ``base`` (an instance of ``cls``) with full validation."""
    return parse_options(cls, data, owner=f"[{section}]", base=base, noun="key")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing, special (a named pipe, a device), oversized
    (:data:`~esper_core.files.MAX_TEXT_INPUT_BYTES`) or malformed file (one holding an integer
    longer than Python reads too) is a ConfigError naming it (:func:`~esper_core.files.parse_text`)."""
    text = read_input_file(path, label="config file")
    return parse_text(text, tomllib.loads, where=f"config file {str(path)!r}", kind="TOML")


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string: every character TOML does not take literally escaped,
    so what Esper writes (``config.toml``) always reads back as the same value."""
    out = []
    for char in text:
        if "\ud800" <= char <= "\udfff":  # a byte of a non-UTF-8 file name (surrogateescape)
            raise ConfigError(f"{text!r} is not valid Unicode text (a non-UTF-8 file name?); "
                              "it cannot be written to config.toml")
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return _toml_string(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: Mapping[str, Mapping[str, Any]], prefix: str = "") -> str:
    """Write nested tables of scalars and lists as TOML (sub-tables as ``[a.b]``)."""
    lines: list[str] = []
    for table, values in data.items():
        name = f"{prefix}{_toml_key(table)}"
        lines.append(f"[{name}]")
        subtables = {}
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(value, Mapping):
                subtables[key] = value
            else:
                lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        lines.append("")
        if subtables:
            lines.append(dump_toml(subtables, prefix=f"{name}."))
    return "\n".join(lines)


def parse_key_values(pairs: tuple[str, ...] | list[str], *, flag: str = "--task-option") -> dict[str, Any]:
    """``KEY=VALUE`` strings (from ``flag``) to a dict; values are read as TOML, falling back to
    plain strings."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r} is invalid; expected KEY=VALUE")
        if key in given:  # the last would win silently
            raise ConfigError(f"{flag} {key!r} is given twice ({given[key]!r} and {pair!r}); give it once")
        given[key] = pair
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
        except RecursionError:
            raise ConfigError(f"{flag} {key}: the value is nested too deeply") from None
        except ValueError as exc:  # an integer of more digits than Python reads: no TOMLDecodeError
            why = too_long_integer(exc)
            if why is None:
                raise
            raise ConfigError(f"{flag} {key}: the value {why}") from None
    return out
