"""Declaring a distribution's blueprints: the one helper every blueprint plugin uses.

A blueprint plugin lists its blueprints as :class:`BlueprintEntry` records and hands them to
:func:`declare_blueprints` in its ``esper_register_blueprints`` hook. Listing the catalog must not
import torch (``esper blueprints``, ``esper --help``), so an entry names its factory as a
``"module:attr"`` path, imported only when a seed is built, while its parameter estimate is a
plain pure-Python function: it is called whenever the catalog is priced, and naming the real
function lets a failing estimate be blamed on the plugin that wrote it.

This module imports no torch; neither may the estimate functions a plugin passes here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from attrs import field, frozen

from esper_core.contracts.specs import BlueprintSpec
from esper_core.contracts.validators import is_callable
from esper_core.lazy import lazy


def check_width(width: int) -> int:
    """Reject slot widths no blueprint can build (bools, non-integers, < 1) and return ``width``.

    Shared by every blueprint factory and parameter estimate, so a module and its estimate
    refuse the same widths with the same message.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    return width


_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_PACKAGE = re.compile(rf"^{_DOTTED}$")
_MODULE_ATTR = re.compile(rf"^{_DOTTED}:{_DOTTED}$")


def _module_attr(instance: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not isinstance(value, str) or not _MODULE_ATTR.match(value):
        raise ValueError(f"{type(instance).__name__}.{attribute.name} must look like 'module:attr', got {value!r}")


@frozen(kw_only=True)
class BlueprintEntry:
    """One blueprint as its distribution declares it: a :class:`BlueprintSpec` without the
    topology, whose factory is a ``"module:attr"`` path inside the declaration's package."""

    name: str
    #: The catalog's action index (0..33 are the built-in catalog's, DESIGN §8), or None.
    index: int | None = None
    #: ``"module:attr"`` relative to ``declare_blueprints(factories=...)``, e.g. ``"basic:conv_light"``.
    factory: str = field(validator=_module_attr)
    #: ``estimate(width)``: the exact parameter count of ``factory(width=width)``, without torch.
    estimate: Callable[[int], int] = field(validator=is_callable)
    description: str
    identity_at_init: bool = False
    is_antipattern: bool = False
    tokens: tuple[str, ...] | None = None
    paper: str | None = None
    metadata: Mapping[str, Any] = field(factory=dict)


def declare_blueprints(*, topology: str, factories: str, entries: Iterable[BlueprintEntry]) -> list[BlueprintSpec]:
    """The :class:`BlueprintSpec` of every entry, for ``topology``, with each factory a lazy
    reference into the package ``factories`` (e.g. ``"esper_blueprints_cnn.blueprints"``)."""
    if not isinstance(factories, str) or not _PACKAGE.match(factories):
        raise ValueError(f"factories must be a dotted package name, got {factories!r}")
    return [
        BlueprintSpec(
            name=entry.name,
            topology=topology,
            factory=lazy(f"{factories}.{entry.factory}"),
            param_estimate=entry.estimate,
            description=entry.description,
            action_index=entry.index,
            is_antipattern=entry.is_antipattern,
            identity_at_init=entry.identity_at_init,
            tokens=entry.tokens,
            paper=entry.paper,
            metadata=dict(entry.metadata),
        )
        for entry in entries
    ]
