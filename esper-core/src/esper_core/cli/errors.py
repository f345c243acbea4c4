"""Turning expected failures into one-line messages and exit code 2."""

from __future__ import annotations

from typing import Any

import click

from esper_core.errors import EsperError


class UsageFailure(click.ClickException):
    """A user-facing error: printed as ``Error: <message>``, exit code 2."""

    exit_code = 2


class EsperGroup(click.Group):
    """A click group whose commands report :class:`EsperError` as a clean message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EsperError as exc:
            raise UsageFailure(str(exc)) from None
