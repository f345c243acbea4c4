"""Turning expected failures into one-line messages and exit code 2."""

from __future__ import annotations

from typing import Any

import click

from esper_core.errors import EsperError
from esper_core.memory import is_allocation_failure, out_of_memory


class UsageFailure(click.ClickException):
    """A user-facing error: printed as ``Error: <message>``, exit code 2."""

    exit_code = 2


class EsperGroup(click.Group):
    """A click group whose commands report :class:`EsperError` as a clean message, and whose
    path parameters refuse an empty or blank path (:mod:`esper_core.cli.params`)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        from esper_core.cli.params import checked_paths  # it imports this module

        super().add_command(checked_paths(cmd), name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EsperError as exc:
            raise UsageFailure(str(exc)) from None
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own, already one line
        except Exception as exc:
            if is_allocation_failure(exc):
                raise UsageFailure(str(out_of_memory(exc, doing=""))) from None
            # Plugin code that raised where no call site names it (a PPO environment's seed,
            # a plugin command): name its function and distribution. With no plugin frame in
            # the traceback the failure is Esper's own bug and keeps its traceback.
            from esper_core.plugins.blame import from_traceback

            blamed = from_traceback(exc, during="")
            if blamed is None:
                raise
            raise UsageFailure(str(blamed)) from None
