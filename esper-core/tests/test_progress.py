"""Progress of long work: one compact line per unit with counts and ETA on a terminal, nothing
when stderr is not a terminal or the logs are JSON lines."""

from __future__ import annotations

import io

import pytest
import structlog

from esper_core.log_config import configure_logging, format_duration
from esper_core.presentation.progress import Progress, console_logging, progress_callback


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    structlog.reset_defaults()


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (42, "42s"), (185, "3m05s"), (3725, "1h02m"),
                                               (-3, "0s")])
def test_durations_are_short(seconds, text):
    assert format_duration(seconds) == text


def test_on_a_terminal_each_unit_prints_its_counts_note_and_eta():
    stream, clock = Terminal(), Clock()
    progress = Progress("evaluate", 4, "episodes", stream=stream, enabled=True, clock=clock)
    clock.now = 10.0
    progress.step("heuristic 61.25%")  # 10 s for one: 30 s for the three left
    clock.now = 20.0
    progress.step()
    clock.now = 30.0
    progress.step(n=2)
    assert stream.getvalue().splitlines() == [
        "evaluate  1/4 episodes  heuristic 61.25%  10s elapsed, ETA 30s",
        "evaluate  2/4 episodes  20s elapsed, ETA 20s",
        "evaluate  4/4 episodes  30s elapsed",
    ]


def test_units_done_before_a_resume_count_but_do_not_set_the_pace():
    clock = Clock()
    progress = Progress("PPO", 10, "rounds", done=6, stream=Terminal(), enabled=True, clock=clock)
    assert progress.eta() is None  # nothing measured yet
    clock.now = 5.0
    progress.advance()
    assert progress.status() == "7/10 rounds  5s elapsed, ETA 15s"


def test_nothing_is_printed_off_a_terminal_or_with_json_logs():
    configure_logging("info", "console")
    assert console_logging()
    piped = io.StringIO()
    Progress("collect", 2, "episodes", stream=piped).step("x")
    assert piped.getvalue() == ""
    configure_logging("info", "json")
    assert not console_logging()
    terminal = Terminal()
    progress = Progress("collect", 2, "episodes", stream=terminal)
    progress.step("x")
    assert not progress.enabled and terminal.getvalue() == "" and progress.status() == ""
    configure_logging("info", "console")
    assert Progress("collect", 2, "episodes", stream=terminal).enabled


def test_a_callback_for_lower_layers_starts_on_its_first_call():
    stream, clock = Terminal(), Clock()
    report = progress_callback("evaluate", "episodes", stream=stream, enabled=True, clock=clock)
    clock.now = 100.0  # before the work starts: not counted
    report(0, 3, "")
    clock.now = 110.0
    report(1, 3, "ppo episode 1/3: 50.00%")
    clock.now = 120.0
    report(3, 3, "noop episode 2/2: 40.00%")
    assert stream.getvalue().splitlines() == [
        "evaluate  1/3 episodes  ppo episode 1/3: 50.00%  10s elapsed, ETA 20s",
        "evaluate  3/3 episodes  noop episode 2/2: 40.00%  20s elapsed",
    ]
