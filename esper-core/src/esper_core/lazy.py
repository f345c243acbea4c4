"""Import-on-first-call references, so plugins can register torch-backed factories cheaply.

A register hook runs whenever the catalog is built, including for ``esper plugins`` and
``esper --help``, which must not import torch. ``lazy("pkg.module:attr")`` returns a callable
that imports the module only when it is called.
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyCallable:
    """A callable standing in for ``module:attr`` until it is first called."""

    __slots__ = ("_target", "path")

    def __init__(self, path: str) -> None:
        module, sep, attr = path.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"lazy reference must look like 'package.module:attr', got {path!r}")
        self.path = path
        self._target: Any = None

    def resolve(self) -> Any:
        if self._target is None:
            module, _, attr = self.path.partition(":")
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._target = obj
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.path!r})"


def lazy(path: str) -> LazyCallable:
    """Reference ``package.module:attr`` without importing it yet."""
    return LazyCallable(path)
