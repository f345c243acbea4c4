"""Naming the plugin behind a failure: which component, from which distribution.

Plugin code runs deep inside the engine (a seed's ``forward`` inside a training step, an
observer's hook inside an epoch), where wrapping each call would mean threading names through
every layer. Two tools instead:

* :func:`blame` wraps a call whose component is known (a blueprint's factory or
  ``param_estimate``, a task factory) and turns any exception into a :class:`PluginError`
  naming the component and its distribution;
* :func:`from_traceback` finds, in an exception raised anywhere below, the innermost frame of
  plugin code — code that is neither Esper's core, the standard library, nor a library such as
  torch — and names its function and distribution. A failure with no plugin frame is a bug in
  Esper itself and keeps its traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from esper_core.errors import EsperError, PluginError
from esper_core.lazy import LazyCallable
from esper_core.memory import is_allocation_failure, out_of_memory

if sys.version_info >= (3, 12):  # pragma: no cover
    from importlib import metadata as importlib_metadata
else:  # pragma: no cover
    import importlib_metadata

_CORE_PACKAGE = "esper_core"


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@functools.lru_cache(maxsize=1)
def _package_distributions() -> dict[str, tuple[str, ...]]:
    found = {k: tuple(v) for k, v in importlib_metadata.packages_distributions().items()}
    # A distribution without a file list (some editable or path installs) is still known by
    # the module its esper entry point names.
    from esper_core.plugins.manager import esper_entry_points

    for ep, dist, _ in esper_entry_points():
        found.setdefault(ep.value.partition(":")[0].partition(".")[0], (dist,))
    return found


@functools.lru_cache(maxsize=1)
def _plugin_distributions() -> frozenset[str]:
    from esper_core.plugins.manager import CORE_DISTRIBUTION, esper_entry_points

    return frozenset(dist for _, dist, _ in esper_entry_points()) - {CORE_DISTRIBUTION}


def origin(module: str) -> str:
    """The distribution that installed ``module`` (``module X`` for code no distribution
    installed, such as a plugin registered in-process)."""
    dists = _package_distributions().get(module.partition(".")[0])
    return dists[0] if dists else f"module {module}"


def _is_plugin_module(module: str) -> bool:
    top = module.partition(".")[0]
    if top == _CORE_PACKAGE or top in sys.stdlib_module_names or top in {"__main__", "_pytest", "pytest"}:
        return False
    dists = _package_distributions().get(top)
    if dists is None:  # no distribution installed it: in-process plugin code
        return True
    return any(d in _plugin_distributions() for d in dists)


def _frames(tb: TracebackType | None) -> Iterator[TracebackType]:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def from_traceback(exc: BaseException, *, during: str) -> PluginError | None:
    """A PluginError naming the innermost plugin function in ``exc``'s traceback (following
    ``__cause__``/``__context__`` chains), or None when no plugin code was running."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for tb in reversed(list(_frames(current.__traceback__))):
            code = tb.tb_frame.f_code
            module = tb.tb_frame.f_globals.get("__name__", "")
            if isinstance(module, str) and _is_plugin_module(module):
                where = f"{module}.{getattr(code, 'co_qualname', code.co_name)}"
                during = f" {during}" if during else ""
                return PluginError(f"plugin code {where} (from {origin(module)}) raised{during}: {one_line(exc)}")
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def blame(kind: str, name: str, module: str, doing: str) -> Iterator[None]:
    """Turn an exception from the block into a PluginError naming ``kind`` ``name`` (defined in
    ``module``) and what it was doing; Esper's own errors pass through unchanged."""
    try:
        yield
    except EsperError:
        raise
    except Exception as exc:
        if is_allocation_failure(exc):  # the machine's limit, not the plugin's fault
            raise out_of_memory(exc, doing=f"in {kind} {name!r} ({doing})") from exc
        raise PluginError(f"{kind} {name!r} (from {origin(module)}) raised in {doing}: {one_line(exc)}") from exc


@contextmanager
def blame_plugin_code(during: str, *, keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Name the plugin behind any exception from the block (see :func:`from_traceback`);
    Esper's own errors and the ``keep`` types pass through unchanged."""
    passed: tuple[type[BaseException], ...] = (EsperError, *keep)
    try:
        yield
    except passed:
        raise
    except Exception as exc:
        if is_allocation_failure(exc):
            raise out_of_memory(exc, doing=during) from exc
        blamed = from_traceback(exc, during=during)
        if blamed is None:
            raise
        raise blamed from exc


def module_of(obj: object) -> str:
    """The module that defined ``obj`` (a function, a class, a ``functools.partial``, or the
    module a ``lazy("module:attr")`` reference names — not ``esper_core.lazy``, which only
    forwards the call)."""
    if isinstance(obj, LazyCallable):
        return obj.path.partition(":")[0]
    target = getattr(obj, "func", obj)
    module = getattr(target, "__module__", None)
    return module if isinstance(module, str) else type(target).__module__
