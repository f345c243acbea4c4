"""The README's option tables must list exactly the config classes' fields, with their defaults.

A default changed in code, an option added or removed, or a README row edited by hand without
the code makes these tests fail, naming the difference.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from esper_policies.heuristic_config import HeuristicConfig
from esper_policies.tracker import TrackerConfig

README = Path(__file__).resolve().parents[1] / "README.md"

_HEADING = re.compile(r"^#{1,6}\s")
_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def options_table(text: str, marker: str) -> dict[str, str]:
    """``{option: default cell}`` of the first ``option | default | meaning`` table after the
    heading that contains ``marker`` (and before the next heading)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADING.match(line) and marker in line]
    assert len(starts) == 1, f"expected one README heading containing {marker!r}, found {len(starts)}"
    rows: dict[str, str] = {}
    in_table = False
    for line in lines[starts[0] + 1:]:
        if _HEADING.match(line):
            break
        if not line.startswith("|"):
            if in_table:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not in_table:
            assert [c.lower() for c in cells[:3]] == ["option", "default", "meaning"], (
                f"the table under the {marker!r} heading must have columns option | default | meaning, "
                f"got {cells}")
            in_table = True
            continue
        if _SEPARATOR.match(line.strip()):
            continue
        assert len(cells) >= 3, f"malformed row under {marker!r}: {line!r}"
        name = cells[0].strip("`")
        assert name not in rows, f"option {name!r} is listed twice under {marker!r}"
        rows[name] = cells[1].strip("`").strip()
    assert rows, f"no option table found under the README heading containing {marker!r}"
    return rows


def render_default(value: Any) -> str:
    """A default as the README writes it: true/false, "quoted" strings, plain numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no README rendering for a default of type {type(value).__name__}: {value!r}")


def default_matches(cell: str, value: Any) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            written = float(cell)
        except ValueError:
            return False
        return math.isclose(written, float(value), rel_tol=0.0, abs_tol=1e-12)
    return cell == render_default(value)


def drift(cls: type, rows: dict[str, str]) -> list[str]:
    """Every difference between ``rows`` and the fields of attrs class ``cls``."""
    fields = {f.name: f for f in attrs.fields(cls)}
    problems = [f"{cls.__name__}.{name} (default {render_default(f.default)}) is missing from the README"
                for name, f in fields.items() if name not in rows]
    problems += [f"README lists {name!r}, which is not a field of {cls.__name__}"
                 for name in rows if name not in fields]
    for name, f in fields.items():
        if name not in rows:
            continue
        assert f.default is not attrs.NOTHING, f"{cls.__name__}.{name} has no default to document"
        default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default
        if not default_matches(rows[name], default):
            problems.append(f"README gives {name} = {rows[name]}, {cls.__name__} says {render_default(default)}")
    return problems


TABLES = [pytest.param(HeuristicConfig, "`HeuristicConfig`", id="HeuristicConfig"),
          pytest.param(TrackerConfig, "`TrackerConfig`", id="TrackerConfig")]


@pytest.mark.parametrize(("cls", "marker"), TABLES)
def test_readme_options_table_matches_config_fields_and_defaults(cls: type, marker: str) -> None:
    rows = options_table(README.read_text(encoding="utf-8"), marker)
    assert set(rows) == {f.name for f in attrs.fields(cls)}, drift(cls, rows)
    assert drift(cls, rows) == []


def test_the_check_catches_a_changed_default_an_unknown_row_and_a_missing_row() -> None:
    rows = options_table(README.read_text(encoding="utf-8"), "`HeuristicConfig`")
    real = HeuristicConfig().confidence_z
    changed = {**rows, "confidence_z": repr(real + 1.0), "no_such_option": "1"}
    del changed["slot_choice"]
    problems = drift(HeuristicConfig, changed)
    assert f"README gives confidence_z = {real + 1.0!r}, HeuristicConfig says {real!r}" in problems
    assert "README lists 'no_such_option', which is not a field of HeuristicConfig" in problems
    assert (f"HeuristicConfig.slot_choice (default {render_default(HeuristicConfig().slot_choice)}) "
            "is missing from the README") in problems


def test_defaults_are_rendered_as_the_readme_writes_them() -> None:
    assert [render_default(v) for v in (True, False, "cheapest", 5, 0.5)] == [
        "true", "false", '"cheapest"', "5", "0.5"]
    assert default_matches("5", 5.0) and default_matches("1.0", 1)
    assert not default_matches("true", 1) and not default_matches("cheapest", "cheapest")
