"""A task's recommended run settings (``TaskSpec.defaults``) and the optimiser settings of a run.

One record says what a run trains with when the user sets nothing: a task declares
``defaults=RunDefaults(epochs=30, training=TrainingSettings(lr=2e-3, seed_lr=2e-3))``; what it
leaves out takes the record's own defaults below. ``esper run`` then resolves each setting in one
place (:meth:`RunDefaults.with_overrides`): the run config's value if given, else the task's.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from esper_core.errors import ConfigError
from esper_core.options import (
    InvalidValue,
    int_at_least,
    name_list,
    non_negative_number,
    one_of,
    parse_options,
    positive_number,
    unknown_message,
)

OPTIMIZERS = ("adamw", "sgd")
LR_SCHEDULES = ("constant", "step", "cosine")


@frozen(kw_only=True)
class TrainingSettings:
    """How the host and its seeds are optimised (the ``[training]`` table of a run)."""

    batch_size: int = field(default=128, validator=int_at_least(1))
    lr: float = field(default=1e-3, validator=positive_number())
    seed_lr: float = field(default=1e-3, validator=positive_number())
    weight_decay: float = field(default=0.0, validator=non_negative_number())
    optimizer: str = field(default="adamw", validator=one_of(*OPTIMIZERS))
    #: host learning-rate schedule over an episode (seeds keep ``seed_lr``)
    lr_schedule: str = field(default="constant", validator=one_of(*LR_SCHEDULES))
    #: ``step``: the epoch from which the host lr is multiplied by ``lr_step_factor``
    lr_step_epoch: int = field(default=10, validator=int_at_least(1))
    lr_step_factor: float = field(default=0.1, validator=positive_number())

    def host_lr(self, epoch: int, epochs: int) -> float:
        """Host learning rate for 1-based ``epoch`` of ``epochs``.

        Seeds keep ``seed_lr``: a step or cosine decay makes the host settle on a plateau —
        the situation growth is for — while a freshly germinated seed still learns at full rate.
        """
        if self.lr_schedule == "step":
            return self.lr * (self.lr_step_factor if epoch >= self.lr_step_epoch else 1.0)
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(1, epochs)))
        return self.lr


def _blueprint_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # a declaration, not a command line: no comma-separated form
        raise InvalidValue(None, value, "a list of names")
    return name_list(value, noun="blueprint name", allow_empty=True)


def _slot_names(value: Any) -> tuple[str, ...] | None:
    """``None`` (every slot) or one or more slot names: a task with no slot is no task to grow."""
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidValue(None, value, "a list of names")
    return name_list(value, noun="slot name")


def _training(value: Any) -> TrainingSettings:
    if not isinstance(value, TrainingSettings):
        raise InvalidValue("training", value, "a TrainingSettings record")
    return value


#: The keys of the flat mapping form (``TaskSpec(defaults={...})``): the run's own and the
#: training settings'.
RUN_KEYS = ("epochs", "max_seeds", "slots", "blueprints")
TRAINING_KEYS = tuple(a.name for a in attrs.fields(TrainingSettings))


@frozen(kw_only=True)
class RunDefaults:
    """A task's recommended run settings, applied where the user set nothing."""

    epochs: int = field(default=25, validator=int_at_least(1))
    #: most live seeds at once
    max_seeds: int = field(default=1, validator=int_at_least(1))
    #: injection points offered to the policy (``None``: every slot of the host)
    slots: tuple[str, ...] | None = field(default=None, converter=_slot_names)
    #: blueprints offered, in order of preference (empty: every one of the task's topology)
    blueprints: tuple[str, ...] = field(default=(), converter=_blueprint_names)
    training: TrainingSettings = field(factory=TrainingSettings, converter=_training)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, owner: str = "task defaults") -> RunDefaults:
        """The record from the flat mapping of older plugins (``{"epochs": 6, "lr": 1e-2}``);
        an unknown key or a bad value is a :class:`ConfigError` naming ``owner``."""
        if isinstance(values, RunDefaults):
            return values
        if not isinstance(values, Mapping):
            raise ConfigError(f"{owner}: expected RunDefaults(...) or a table of key = value, got {values!r}")
        return cls().with_overrides(values, owner=owner)

    def with_overrides(self, given: Mapping[str, Any], *, owner: str = "[run]") -> RunDefaults:
        """These defaults with every value of ``given`` that is not ``None`` in its place (flat
        keys: ``epochs``, ``lr`` ...); the one place a run's settings are resolved."""
        for key in given:
            if key not in RUN_KEYS and key not in TRAINING_KEYS:
                raise ConfigError(unknown_message(owner, key, (*RUN_KEYS, *TRAINING_KEYS), "key"))
        chosen = {k: v for k, v in given.items() if v is not None}
        training = parse_options(TrainingSettings, {k: v for k, v in chosen.items() if k in TRAINING_KEYS},
                                 owner=owner, base=self.training, noun="key")
        run = {k: v for k, v in chosen.items() if k in RUN_KEYS}
        return parse_options(RunDefaults, {**run, "training": training}, owner=owner, base=self, noun="key")


def as_run_defaults(value: Any, owner: str) -> RunDefaults:
    """``TaskSpec.defaults``: a :class:`RunDefaults`, or (deprecated) a flat mapping of its keys."""
    if isinstance(value, RunDefaults):
        return value
    warnings.warn(f"{owner}: a mapping of run defaults is deprecated; declare "
                  "defaults=RunDefaults(...) (esper_core.contracts.run_defaults)", DeprecationWarning, stacklevel=4)
    return RunDefaults.from_mapping(value, owner=owner)

