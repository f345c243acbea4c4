"""Read runs back from run databases and run directories for ``esper runs``.

A *source* is one SQLite connection: a shared ``runs.sqlite``, a run directory's
``run.sqlite``, or an in-memory database rebuilt from a run directory's ``events.jsonl`` and
``summary.json`` when it has no database. Files are opened read-only, so querying a database
that a run is writing to is safe.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrs import field, frozen

from esper_core.errors import EsperError
from esper_telemetry.database import RunDatabase, present_columns
from esper_telemetry.records import (
    DATABASE_FILE,
    EVENTS_FILE,
    SUMMARY_FILE,
    iter_event_records,
    read_summary,
    summary_and_problem,
)

SHARED_DATABASE_FILE = "runs.sqlite"
DEFAULT_RUNS_DIR = Path("runs")


class UnknownRunError(EsperError):
    """A run id that no source holds; the message lists the ids that exist."""

    def __init__(self, run_id: str, known: Sequence[str]) -> None:
        more = f" … and {len(known) - 20} more" if len(known) > 20 else ""
        shown = ", ".join(known[:20]) + more
        super().__init__(f"unknown run {run_id!r}; known runs: {shown or 'none'}")
        self.run_id = run_id
        self.known = list(known)


@frozen
class RunSource:
    label: str
    connection: sqlite3.Connection = field(eq=False)


@frozen(kw_only=True)
class SeedRecord:
    slot: str
    blueprint: str | None
    episode: int
    germinated_epoch: int | None
    ended_epoch: int | None
    outcome: str
    #: Dependence: accuracy lost when the seed is removed from the model that trained with it.
    contribution: float | None
    #: Gain over the no-seed path, measured in TRAINING (before the host adapted to the seed).
    seed_gain: float | None = None


@frozen(kw_only=True)
class EpochRecord:
    episode: int
    epoch: int
    train_loss: float | None
    val_loss: float | None
    val_accuracy: float | None
    host_params: int | None
    seed_params: int | None
    seconds: float | None
    #: The epoch's gradient-health score (``gradient_health`` observer), if recorded.
    grad_score: float | None = None


@frozen(kw_only=True)
class RunRecord:
    run_id: str
    source: str
    task: str | None = None
    policy: str | None = None
    seed: int | None = None
    status: str = "running"
    started_at: float | None = None
    epochs: int = 0
    final_accuracy: float | None = None
    best_accuracy: float | None = None
    host_params: int | None = None
    seed_params: int | None = None
    wall_seconds: float | None = None
    rollbacks: int = 0
    baseline_accuracy: float | None = None
    truncated: bool = False
    seeds: tuple[SeedRecord, ...] = ()
    #: Accuracy on the held-out test split no controller or gate saw (None: the task has none).
    #: ``final_accuracy``/``best_accuracy``/``baseline_accuracy`` are validation figures.
    test_accuracy: float | None = None
    baseline_test_accuracy: float | None = None
    #: A policy-training run (``esper run --policy ppo``): its rounds. Its ``final_accuracy`` is
    #: then the mean final validation accuracy of the last round's episodes, not one model's.
    training_rounds: int | None = None

    @property
    def test_gain(self) -> float | None:
        """Test accuracy over the no-seed baseline's, in points (None without both)."""
        if self.test_accuracy is None or self.baseline_test_accuracy is None:
            return None
        return self.test_accuracy - self.baseline_test_accuracy

    @property
    def total_params(self) -> int | None:
        if self.host_params is None:
            return None
        return self.host_params + (self.seed_params or 0)

    @property
    def outcomes(self) -> Counter[str]:
        """Seed count per outcome (fossilized, culled, live)."""
        return Counter(s.outcome for s in self.seeds)

    @property
    def by_blueprint(self) -> dict[str, Counter[str]]:
        """Seed outcomes per blueprint, blueprints in name order."""
        result: dict[str, Counter[str]] = {}
        for seed in self.seeds:
            result.setdefault(seed.blueprint or "?", Counter())[seed.outcome] += 1
        return dict(sorted(result.items()))


def _open_readonly(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise EsperError(f"{path} is not an esper run database ({exc})") from exc
    return connection


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).is_file() for name in (DATABASE_FILE, EVENTS_FILE, SUMMARY_FILE)
    )


def not_a_run_dir(path: Path) -> str:
    """Why ``path``, named as a run directory, is none (it does not exist, or it is a file)."""
    if path.exists() and not path.is_dir():
        return f"{str(path)!r} is a file, not a run directory"
    return f"run directory {str(path)!r} does not exist"


def load_run_dir(path: Path) -> RunSource:
    """A source for one run directory: its database, else its recorded events and summary."""
    if not path.is_dir():
        raise EsperError(not_a_run_dir(path))
    if (path / DATABASE_FILE).is_file():
        return RunSource(str(path / DATABASE_FILE), _open_readonly(path / DATABASE_FILE))
    events = path / EVENTS_FILE
    if events.is_file():
        summary = read_summary(path)  # a damaged summary beside the events is a warning
    else:
        summary, problem = summary_and_problem(path)
        if problem is not None:  # the run's one record is there, but unusable: say which and why
            raise EsperError(f"cannot read run {path}: {str(path / SUMMARY_FILE)!r}: {problem}, and the run has "
                             f"no {DATABASE_FILE} or {EVENTS_FILE}")
        if summary is None:
            raise EsperError(f"{path} is not a run directory: it has none of {DATABASE_FILE}, "
                             f"{EVENTS_FILE}, {SUMMARY_FILE}")
    connection = sqlite3.connect(":memory:")
    database = RunDatabase(connection)
    database.create_schema()
    # SQLite holds integers of 64 bits: a larger one is no value a run writes (a damaged file)
    if events.is_file():
        try:
            database.apply_all(iter_event_records(events))
        except OverflowError:
            raise EsperError(f"cannot read run {path}: {str(events)!r} holds an integer too large for any "
                             "field of a run (the file is damaged)") from None
    if summary is not None:
        run_id = str(summary.get("run_id") or path.name)
        try:
            database.apply_summary(run_id, summary)
        except OverflowError:
            raise EsperError(f"cannot read run {path}: {str(path / SUMMARY_FILE)!r} holds an integer too large "
                             "for any field of a run (the file is damaged)") from None
    connection.commit()
    return RunSource(str(path), connection)


def open_sources(db: Path | None = None) -> list[RunSource]:
    """Sources for ``--db``: a database file, a run directory, or a directory of runs.

    Without ``db``, ``./runs`` is used: its shared ``runs.sqlite`` (if any) and every run
    directory inside it.
    """
    target = DEFAULT_RUNS_DIR if db is None else db
    if target.is_file():
        return [RunSource(str(target), _open_readonly(target))]
    if not target.is_dir():
        hint = "" if db is not None else "; pass --db PATH (a run database or runs directory)"
        raise EsperError(f"no run database or runs directory at {target}{hint}")
    if is_run_dir(target):
        return [load_run_dir(target)]
    sources: list[RunSource] = []
    if (target / SHARED_DATABASE_FILE).is_file():
        sources.append(RunSource(str(target / SHARED_DATABASE_FILE),
                                 _open_readonly(target / SHARED_DATABASE_FILE)))
    for child in sorted(target.iterdir()):
        if is_run_dir(child):
            sources.append(load_run_dir(child))
    return sources


def close_sources(sources: Sequence[RunSource]) -> None:
    for source in sources:
        source.connection.close()


_RUN_COLUMNS = ("run_id", "task", "policy", "seed", "status", "started_at", "epochs",
                "final_accuracy", "best_accuracy", "host_params", "seed_params", "wall_seconds",
                "rollbacks", "baseline_accuracy", "truncated", "test_accuracy",
                "baseline_test_accuracy")
_SEED_COLUMNS = ("slot", "blueprint", "episode", "germinated_epoch", "ended_epoch", "outcome",
                 "contribution", "seed_gain")


def _select(connection: sqlite3.Connection, table: str, columns: Sequence[str]) -> str:
    """A select list for ``columns``, NULL for those an older database file lacks.

    Sources are opened read-only, so a file made before a column was added cannot gain it here.
    """
    present = present_columns(connection, table)
    return ", ".join(name if name in present else f"NULL AS {name}" for name in columns)


def _seeds(connection: sqlite3.Connection, run_id: str) -> tuple[SeedRecord, ...]:
    rows = connection.execute(
        f"SELECT {_select(connection, 'seeds', _SEED_COLUMNS)} FROM seeds WHERE run_id = ? "
        "ORDER BY episode, germinated_epoch, seed_id", (run_id,)
    ).fetchall()
    return tuple(SeedRecord(**dict(zip(_SEED_COLUMNS, r, strict=True))) for r in rows)


def _training_rounds(summary_json: Any) -> int | None:
    """The rounds of a policy-training run's summary (``training = true``), else None."""
    try:
        summary = json.loads(summary_json) if isinstance(summary_json, str) else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(summary, dict) or summary.get("training") is not True:
        return None
    rounds = summary.get("rounds")
    return rounds if type(rounds) is int else 0


def _records(source: RunSource, run_id: str | None = None) -> list[RunRecord]:
    query = f"SELECT {_select(source.connection, 'runs', (*_RUN_COLUMNS, 'summary_json'))} FROM runs"
    params: tuple[Any, ...] = ()
    if run_id is not None:
        query += " WHERE run_id = ?"
        params = (run_id,)
    records = []
    for row in source.connection.execute(query, params).fetchall():
        values = dict(zip(_RUN_COLUMNS, row[:-1], strict=True))  # row[-1]: summary_json
        values["training_rounds"] = _training_rounds(row[-1])
        values["truncated"] = bool(values["truncated"])
        values["epochs"] = values["epochs"] or 0
        values["rollbacks"] = values["rollbacks"] or 0
        records.append(RunRecord(source=source.label, seeds=_seeds(source.connection,
                                                                     values["run_id"]), **values))
    return records


def list_runs(sources: Sequence[RunSource]) -> list[RunRecord]:
    """Every run, oldest first; a run found in several sources is listed once (first wins)."""
    seen: dict[str, RunRecord] = {}
    for source in sources:
        for record in _records(source):
            seen.setdefault(record.run_id, record)
    return sorted(seen.values(), key=lambda r: (r.started_at is None, r.started_at or 0.0,
                                                 r.run_id))


def find_run(sources: Sequence[RunSource], run_id: str) -> tuple[RunRecord, RunSource]:
    for source in sources:
        records = _records(source, run_id)
        if records:
            return records[0], source
    raise UnknownRunError(run_id, [r.run_id for r in list_runs(sources)])


def run_epochs(source: RunSource, run_id: str) -> list[EpochRecord]:
    """The epochs of the run's last episode (a learned-policy run has many episodes)."""
    rows = source.connection.execute(
        "SELECT e.episode, e.epoch, e.train_loss, e.val_loss, e.val_accuracy, e.host_params, "
        "e.seed_params, e.seconds, (SELECT json_extract(g.record_json, '$.score') FROM events g "
        "WHERE g.run_id = e.run_id AND g.kind = 'gradient_health' AND g.episode = e.episode "
        "AND g.epoch = e.epoch ORDER BY g.event_id DESC LIMIT 1) "
        "FROM epochs e WHERE e.run_id = ? AND e.episode = "
        "(SELECT MAX(episode) FROM epochs WHERE run_id = ?) ORDER BY e.epoch",
        (run_id, run_id),
    ).fetchall()
    return [EpochRecord(episode=r[0], epoch=r[1], train_loss=r[2], val_loss=r[3],
                        val_accuracy=r[4], host_params=r[5], seed_params=r[6], seconds=r[7],
                        grad_score=r[8])
            for r in rows]


def resolve_run(ref: str, db: Path | None) -> tuple[RunRecord, RunSource, list[RunSource]]:
    """A run named by id (looked up in ``db``) or by the path of its run directory.

    Returns the record, the source holding it, and every opened source (close them after).
    A ``db`` that does not exist is refused even where ``ref`` is a directory; a ``ref`` that
    is a file, or a path (it has a separator) that does not exist, is refused by its name.
    """
    if db is not None and not db.exists():
        raise EsperError(f"--db {str(db)!r} does not exist (a run database or a directory of runs)")
    path = Path(ref)
    if (path.exists() and not path.is_dir()) or (not path.exists() and len(path.parts) > 1):
        raise EsperError(f"{not_a_run_dir(path)}; name a run directory or the id of a recorded run")
    if path.is_dir():
        sources = [load_run_dir(path)]
        records = list_runs(sources)
        if not records:
            close_sources(sources)
            raise EsperError(f"run directory {path} holds no run")
        # A shared database may hold several runs; prefer the one named like the directory.
        chosen = next((r for r in records if r.run_id == path.name), records[-1])
        return chosen, sources[0], sources
    try:
        sources = open_sources(db)
    except EsperError as exc:
        # Name what was asked for: the run, then why there was nowhere to look its id up.
        raise EsperError(f"no run {ref!r}: it is no run directory here, and {exc}") from None
    try:
        record, source = find_run(sources, ref)
    except EsperError:
        close_sources(sources)
        raise
    return record, source, sources
