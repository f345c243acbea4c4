"""A benchmark's ``--work`` folder reuses kept steps only under the settings that made them."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def benchmarks(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import learned_controllers
    import work_folder

    return work_folder, learned_controllers


def test_the_first_use_records_the_settings_and_the_same_ones_reuse(
    tmp_path: Path, benchmarks: tuple[ModuleType, ModuleType]
) -> None:
    work_folder, _ = benchmarks
    work = tmp_path / "work"
    work_folder.claim_work(work, {"task": "shapes", "good": ("a", "b"), "budget": None})
    assert json.loads((work / "settings.json").read_text()) == {"task": "shapes", "good": ["a", "b"], "budget": None}
    (work / "seed0").mkdir()
    work_folder.claim_work(work, {"task": "shapes", "good": ("a", "b"), "budget": None})


def test_other_settings_are_refused_naming_each_difference(
    tmp_path: Path, benchmarks: tuple[ModuleType, ModuleType]
) -> None:
    work_folder, _ = benchmarks
    work_folder.claim_work(tmp_path, {"task": "shapes", "lr": 0.001})
    with pytest.raises(SystemExit, match=r"keeps steps made with other settings \(extra: None there, 1 now; "
                                         r"lr: 0\.001 there, 0\.0005 now\)"):
        work_folder.claim_work(tmp_path, {"task": "shapes", "lr": 0.0005, "extra": 1})
    assert json.loads((tmp_path / "settings.json").read_text()) == {"task": "shapes", "lr": 0.001}


def test_a_folder_with_unrecorded_steps_is_refused(tmp_path: Path, benchmarks: tuple[ModuleType, ModuleType]) -> None:
    work_folder, _ = benchmarks
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit, match="holds files but no settings.json"):
        work_folder.claim_work(tmp_path, {"task": "shapes"})
    assert not (tmp_path / "settings.json").exists()


def test_a_kept_evaluation_of_other_episodes_is_refused(
    tmp_path: Path, benchmarks: tuple[ModuleType, ModuleType]
) -> None:
    _, learned = benchmarks
    made_by = {"checkpoint": "p.pt", "against": "heuristic", "episodes": 20, "jobs": 1, "seed": 7000, "options": []}
    kept = {"policies": [], "made_by": made_by}
    (tmp_path / "eval-x.json").write_text(json.dumps(kept))
    assert learned.evaluate(tmp_path, "x", Path("p.pt"), "heuristic", 20, 1, 7000) == kept
    with pytest.raises(SystemExit, match="was made by another evaluation"):
        learned.evaluate(tmp_path, "x", Path("p.pt"), "heuristic", 20, 1, 9000)
    (tmp_path / "eval-x.json").write_text(json.dumps({"policies": []}))  # kept before the record existed
    with pytest.raises(SystemExit, match="was made by another evaluation"):
        learned.evaluate(tmp_path, "x", Path("p.pt"), "heuristic", 20, 1, 7000)
