"""The run database: an SQLite schema for runs, epochs, seeds, decisions, rewards and events.

One database may hold many runs (keyed by ``run_id``), so a whole sweep can share one
``runs.sqlite``. :class:`RunDatabase` turns telemetry events into rows; the SQLite sink calls it
in one short transaction per epoch, and the run queries use it to load a run directory that
has only ``events.jsonl`` / ``summary.json`` into an in-memory database.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from esper_core.contracts.events import (
    DecisionMade,
    EpochEnded,
    GovernorRollback,
    RewardComputed,
    RunEnded,
    RunStarted,
    SeedLifecycle,
    TelemetryEvent,
)
from esper_core.errors import EsperError

DATABASE_SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    task TEXT,
    policy TEXT,
    seed INTEGER,
    status TEXT NOT NULL DEFAULT 'running',
    started_at REAL,
    ended_at REAL,
    epochs INTEGER NOT NULL DEFAULT 0,
    final_accuracy REAL,
    best_accuracy REAL,
    host_params INTEGER,
    seed_params INTEGER,
    wall_seconds REAL,
    rollbacks INTEGER NOT NULL DEFAULT 0,
    baseline_accuracy REAL,
    truncated INTEGER NOT NULL DEFAULT 0,
    config_json TEXT,
    summary_json TEXT,
    test_accuracy REAL,
    baseline_test_accuracy REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    val_loss REAL,
    val_accuracy REAL,
    host_params INTEGER,
    seed_params INTEGER,
    seconds REAL,
    timestamp REAL,
    PRIMARY KEY (run_id, episode, epoch)
);
CREATE TABLE IF NOT EXISTS slot_epochs (
    run_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    slot TEXT NOT NULL,
    stage TEXT,
    blueprint TEXT,
    alpha REAL,
    contribution REAL,
    seed_params INTEGER,
    PRIMARY KEY (run_id, episode, epoch, slot)
);
CREATE TABLE IF NOT EXISTS seeds (
    seed_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    slot TEXT NOT NULL,
    blueprint TEXT,
    germinated_epoch INTEGER,
    ended_epoch INTEGER,
    outcome TEXT NOT NULL DEFAULT 'live',
    last_stage TEXT,
    contribution REAL,
    seed_gain REAL
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    policy TEXT,
    op TEXT NOT NULL,
    slot TEXT,
    blueprint TEXT,
    reason TEXT,
    confidence REAL,
    applied INTEGER,
    outcome TEXT,
    timestamp REAL
);
CREATE TABLE IF NOT EXISTS rewards (
    reward_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    total REAL,
    terms_json TEXT
);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    episode INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    kind TEXT NOT NULL,
    timestamp REAL,
    record_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS seeds_by_run ON seeds (run_id, episode, slot);
CREATE INDEX IF NOT EXISTS decisions_by_run ON decisions (run_id, episode, epoch);
CREATE INDEX IF NOT EXISTS rewards_by_run ON rewards (run_id, episode, epoch);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, kind);
"""

#: Columns added after schema version 1 was first released, per table. A database file made
#: before them gains them on open (:meth:`RunDatabase.create_schema`); read-only readers see
#: NULL for them (:func:`present_columns`). Adding a nullable column keeps older
#: esper-telemetry versions able to read the file, so the schema version stays 1.
ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "runs": (("test_accuracy", "REAL"), ("baseline_test_accuracy", "REAL")),
    "seeds": (("seed_gain", "REAL"),),
}

#: Terminal lifecycle stages and the seed outcome they record.
_OUTCOMES = {"FOSSILIZED": "fossilized", "CULLED": "culled"}

#: summary.json keys copied into the runs table, with the JSON types each column takes (a
#: value of another type — a damaged or hand-edited summary — is left out, not stored).
_SUMMARY_COLUMNS: dict[str, tuple[type, ...]] = {
    "task": (str,),
    "policy": (str,),
    "seed": (int,),
    "epochs": (int,),
    "final_accuracy": (int, float),
    "best_accuracy": (int, float),
    "test_accuracy": (int, float),
    "host_params": (int,),
    "seed_params": (int,),
    "wall_seconds": (int, float),
}
_SEED_FIELDS: dict[str, tuple[type, ...]] = {"slot": (str,), "blueprint": (str,), "germinated_epoch": (int,),
                                             "ended_epoch": (int,), "outcome": (str,),
                                             "contribution": (int, float),
                                             "seed_gain": (int, float)}


def _typed(value: Any, kinds: tuple[type, ...]) -> Any:
    """``value`` if it is one of ``kinds`` (never a bool posing as a number), else None."""
    return value if isinstance(value, kinds) and not isinstance(value, bool) else None


def present_columns(connection: sqlite3.Connection, table: str) -> set[str]:
    """The columns ``table`` has in this database file (older files lack the added ones)."""
    return {row[1] for row in connection.execute(f"PRAGMA table_info({table})").fetchall()}


def _json(value: Any) -> str:
    # default=str: configs may hold paths or enums; the database stores them readably.
    return json.dumps(value, sort_keys=True, default=str)


def _stage_name(value: Any) -> str:
    """Stage names arrive as strings ("BLENDING"), enum members or ints; store the name."""
    name = getattr(value, "name", None)
    return str(name if isinstance(name, str) else value).upper()


class RunDatabase:
    """Writes telemetry events as rows of the run schema on one SQLite connection.

    The caller owns transactions: :meth:`apply` only executes statements, so that a sink can
    group one epoch's events into one ``BEGIN … COMMIT``.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def create_schema(self) -> None:
        """Create the tables (idempotent) and check an existing file's schema version. A
        database that holds tables but is no run database (another program's) is refused
        before anything is added to it."""
        self._refuse_foreign()
        # Statement by statement: executescript() would commit the caller's transaction.
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.connection.execute(statement)
        row = self.connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        if row is None:
            self.connection.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(DATABASE_SCHEMA_VERSION),),
            )
        elif row[0] != str(DATABASE_SCHEMA_VERSION):
            raise EsperError(
                f"run database has schema version {row[0]}, this esper-telemetry writes "
                f"version {DATABASE_SCHEMA_VERSION}; use a new database file"
            )
        for table, columns in ADDED_COLUMNS.items():
            present = present_columns(self.connection, table)
            for name, kind in columns:
                if name not in present:
                    self.connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    def _refuse_foreign(self) -> None:
        tables = sorted(name for (name,) in self.connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
        if not tables:
            return
        version = None
        if "meta" in tables:
            with contextlib.suppress(sqlite3.Error):  # another program's table named meta
                version = self.connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None:
            shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
            raise EsperError(f"the database holds tables that are not Esper's ({shown}); Esper adds its "
                             "tables only to a run database it created: use a new database file")

    def apply_all(self, events: Iterable[TelemetryEvent]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: TelemetryEvent, *, record_event: bool = True) -> None:
        """Insert/update the rows that ``event`` implies (and its raw record in ``events``)."""
        self._ensure_run(event.run_id)
        if record_event:
            self.connection.execute(
                "INSERT INTO events (run_id, episode, epoch, kind, timestamp, record_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (event.run_id, event.episode, event.epoch, event.kind, event.timestamp,
                 _json(event.to_record())),
            )
        if isinstance(event, RunStarted):
            self._run_started(event)
        elif isinstance(event, EpochEnded):
            self._epoch_ended(event)
        elif isinstance(event, SeedLifecycle):
            self._seed_lifecycle(event)
        elif isinstance(event, DecisionMade):
            self._decision(event)
        elif isinstance(event, RewardComputed):
            self.connection.execute(
                "INSERT INTO rewards (run_id, episode, epoch, total, terms_json) "
                "VALUES (?, ?, ?, ?, ?)",
                (event.run_id, event.episode, event.epoch, event.total, _json(dict(event.terms))),
            )
        elif isinstance(event, GovernorRollback):
            self.connection.execute(
                "UPDATE runs SET rollbacks = rollbacks + 1 WHERE run_id = ?", (event.run_id,)
            )
        elif isinstance(event, RunEnded):
            self.apply_summary(event.run_id, event.summary, ended_at=event.timestamp,
                               episode=event.episode)

    def mark_truncated(self, run_id: str) -> None:
        self._ensure_run(run_id)
        self.connection.execute("UPDATE runs SET truncated = 1 WHERE run_id = ?", (run_id,))

    def apply_summary(
        self,
        run_id: str,
        summary: Mapping[str, Any],
        *,
        ended_at: float | None = None,
        episode: int = 0,
    ) -> None:
        """Fold a final summary (``RunEnded.summary`` or ``summary.json``) into the run row."""
        self._ensure_run(run_id)
        values = {key: _typed(summary.get(key), kinds) for key, kinds in _SUMMARY_COLUMNS.items()}
        values = {key: value for key, value in values.items() if value is not None}
        baseline = summary.get("baseline")
        if isinstance(baseline, Mapping):
            for key, column in (("final_accuracy", "baseline_accuracy"),
                                ("test_accuracy", "baseline_test_accuracy")):
                if _typed(baseline.get(key), (int, float)) is not None:
                    values[column] = baseline[key]
        values["status"] = "finished"
        values["summary_json"] = _json(dict(summary))
        if ended_at is not None:
            values["ended_at"] = ended_at
        assignments = ", ".join(f"{key} = ?" for key in values)
        self.connection.execute(
            f"UPDATE runs SET {assignments} WHERE run_id = ?", (*values.values(), run_id)
        )
        seeds = summary.get("seeds")
        if isinstance(seeds, list):
            self._summary_seeds(run_id, episode, [{k: _typed(s.get(k), kinds) for k, kinds in _SEED_FIELDS.items()}
                                                  for s in seeds if isinstance(s, Mapping)])

    def _ensure_run(self, run_id: str) -> None:
        # Not cached in Python: a rolled-back transaction would leave such a cache wrong.
        self.connection.execute("INSERT OR IGNORE INTO runs (run_id) VALUES (?)", (run_id,))

    def _run_started(self, event: RunStarted) -> None:
        self.connection.execute(
            "UPDATE runs SET task = ?, policy = ?, seed = ?, started_at = ?, config_json = ? "
            "WHERE run_id = ?",
            (event.task, event.policy, event.seed, event.timestamp, _json(dict(event.config)),
             event.run_id),
        )

    def _epoch_ended(self, event: EpochEnded) -> None:
        key = (event.run_id, event.episode, event.epoch)
        # REPLACE: a resumed run re-emits the epochs after its last checkpoint.
        self.connection.execute(
            "INSERT OR REPLACE INTO epochs (run_id, episode, epoch, train_loss, val_loss, "
            "val_accuracy, host_params, seed_params, seconds, timestamp) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, event.train_loss, event.val_loss, event.val_accuracy, event.host_params,
             event.seed_params, event.seconds, event.timestamp),
        )
        for slot in event.slots:
            name = str(slot.get("slot", ""))
            self.connection.execute(
                "INSERT OR REPLACE INTO slot_epochs (run_id, episode, epoch, slot, stage, "
                "blueprint, alpha, contribution, seed_params) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, name, _stage_name(slot.get("stage", "UNKNOWN")), slot.get("blueprint"),
                 slot.get("alpha"), slot.get("contribution"), slot.get("seed_params")),
            )
            # The seed's two measures, kept as the run ledger keeps them: dependence (accuracy
            # lost on removal) whenever measured, the gain over the no-seed path only while
            # TRAINING, before the host has adapted to the seed.
            measures = {"contribution": slot.get("contribution")}
            if _stage_name(slot.get("stage", "UNKNOWN")) == "TRAINING":
                measures["seed_gain"] = slot.get("seed_gain")
            for column, value in measures.items():
                if _typed(value, (int, float)) is None:
                    continue
                self.connection.execute(
                    f"UPDATE seeds SET {column} = ? WHERE seed_id = ("
                    "SELECT seed_id FROM seeds WHERE run_id = ? AND episode = ? AND slot = ? "
                    "AND outcome = 'live' ORDER BY seed_id DESC LIMIT 1)",
                    (value, event.run_id, event.episode, name),
                )
        # Progress of a run that is still training; the final summary overrides these.
        self.connection.execute(
            "UPDATE runs SET epochs = MAX(epochs, ?), final_accuracy = ?, "
            "best_accuracy = MAX(COALESCE(best_accuracy, ?), ?), host_params = ?, "
            "seed_params = ? WHERE run_id = ?",
            (event.epoch, event.val_accuracy, event.val_accuracy, event.val_accuracy,
             event.host_params, event.seed_params, event.run_id),
        )

    def _seed_lifecycle(self, event: SeedLifecycle) -> None:
        to_stage = _stage_name(event.to_stage)
        if to_stage == "GERMINATED":
            self.connection.execute(
                "INSERT INTO seeds (run_id, episode, slot, blueprint, germinated_epoch, "
                "last_stage) VALUES (?, ?, ?, ?, ?, ?)",
                (event.run_id, event.episode, event.slot, event.blueprint, event.epoch, to_stage),
            )
            return
        live = self.connection.execute(
            "SELECT seed_id FROM seeds WHERE run_id = ? AND episode = ? AND slot = ? "
            "AND outcome = 'live' ORDER BY seed_id DESC LIMIT 1",
            (event.run_id, event.episode, event.slot),
        ).fetchone()
        if live is None:
            return  # embargo/reset moves of an already-ended seed, or a sink attached late
        outcome = _OUTCOMES.get(to_stage)
        if outcome is None:
            self.connection.execute(
                "UPDATE seeds SET last_stage = ? WHERE seed_id = ?", (to_stage, live[0])
            )
        else:
            self.connection.execute(
                "UPDATE seeds SET last_stage = ?, outcome = ?, ended_epoch = ? WHERE seed_id = ?",
                (to_stage, outcome, event.epoch, live[0]),
            )

    def _decision(self, event: DecisionMade) -> None:
        self.connection.execute(
            "INSERT INTO decisions (run_id, episode, epoch, policy, op, slot, blueprint, reason, "
            "confidence, applied, outcome, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event.run_id, event.episode, event.epoch, event.policy, event.op, event.slot,
             event.blueprint, event.reason, event.confidence, int(event.applied), event.outcome,
             event.timestamp),
        )

    def _summary_seeds(self, run_id: str, episode: int, seeds: list[Mapping[str, Any]]) -> None:
        """Reconcile the summary's seed list with the rows lifecycle events produced."""
        for seed in seeds:
            slot = str(seed.get("slot") or "")
            outcome = str(seed.get("outcome") or "live")
            match = self.connection.execute(
                "SELECT seed_id FROM seeds WHERE run_id = ? AND slot = ? AND germinated_epoch IS ? "
                "ORDER BY episode DESC, seed_id DESC LIMIT 1",
                (run_id, slot, seed.get("germinated_epoch")),
            ).fetchone()
            if match is None:
                self.connection.execute(
                    "INSERT INTO seeds (run_id, episode, slot, blueprint, germinated_epoch, "
                    "ended_epoch, outcome, contribution, seed_gain) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, episode, slot, seed.get("blueprint"), seed.get("germinated_epoch"),
                     seed.get("ended_epoch"), outcome, seed.get("contribution"),
                     seed.get("seed_gain")),
                )
            else:
                self.connection.execute(
                    "UPDATE seeds SET outcome = ?, ended_epoch = COALESCE(?, ended_epoch), "
                    "contribution = COALESCE(?, contribution), "
                    "seed_gain = COALESCE(?, seed_gain) WHERE seed_id = ?",
                    (outcome, seed.get("ended_epoch"), seed.get("contribution"),
                     seed.get("seed_gain"), match[0]),
                )
