"""StatusStore and EventSink in one SQLite file: the local runtime's memory that survives a crash.

sqlite3 is called synchronously: each statement is a local file write of well under a millisecond with WAL, so a
thread hop would cost more than it saves. Every write is its own transaction; a killed process loses at most
the tick it was in, which the next tick redoes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from canaryflow.api.status import CanaryStatus
from canaryflow.engine.effects import EventType
from canaryflow.engine.machine import Operation
from canaryflow.store.base import Conflict, Event, Stored

_SCHEMA = """
CREATE TABLE IF NOT EXISTS canary_status (key TEXT PRIMARY KEY, status TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS operations (key TEXT PRIMARY KEY, operation TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, canary TEXT NOT NULL,
    type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_canary ON events (canary, id);
"""


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


class SqliteStatusStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    async def load(self, key: str) -> Stored | None:
        row = self.db.execute("SELECT status, version FROM canary_status WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return Stored(CanaryStatus.from_json(json.loads(row[0])), str(row[1]))

    async def save(self, key: str, status: CanaryStatus, version: str | None) -> str:
        text = json.dumps(status.to_json())
        if version is None:
            try:
                self.db.execute("INSERT INTO canary_status VALUES (?, ?, 1)", (key, text))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"status of {key} was created by another writer") from exc
            return "1"
        cursor = self.db.execute(
            "UPDATE canary_status SET status = ?, version = version + 1 WHERE key = ? AND version = ?",
            (text, key, int(version)),
        )
        if cursor.rowcount != 1:
            raise Conflict(f"status of {key} changed since version {version}")
        return str(int(version) + 1)

    async def request(self, key: str, operation: Operation) -> None:
        self.db.execute("INSERT OR REPLACE INTO operations VALUES (?, ?)", (key, operation.value))

    async def pending(self, key: str) -> Operation | None:
        row = self.db.execute("SELECT operation FROM operations WHERE key = ?", (key,)).fetchone()
        return Operation(row[0]) if row else None

    async def clear(self, key: str, operation: Operation) -> None:
        self.db.execute("DELETE FROM operations WHERE key = ? AND operation = ?", (key, operation.value))

    async def delete(self, key: str) -> None:
        self.db.execute("DELETE FROM canary_status WHERE key = ?", (key,))
        self.db.execute("DELETE FROM operations WHERE key = ?", (key,))


class SqliteEventSink:
    def __init__(self, db: sqlite3.Connection, keep: int = 10_000) -> None:
        self.db = db
        self.keep = keep

    async def record(self, event: Event) -> None:
        cursor = self.db.execute(
            "INSERT INTO events (time, canary, type, reason, message) VALUES (?, ?, ?, ?, ?)",
            (event.time, event.canary, event.type.value, event.reason, event.message),
        )
        if cursor.lastrowid and cursor.lastrowid % 1000 == 0:
            self.db.execute("DELETE FROM events WHERE id <= ?", (cursor.lastrowid - self.keep,))

    async def recent(self, canary: str | None = None, limit: int = 50) -> list[Event]:
        if canary is None:
            query, args = (
                "SELECT time, canary, type, reason, message FROM events ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        else:
            query = "SELECT time, canary, type, reason, message FROM events WHERE canary = ? ORDER BY id DESC LIMIT ?"
            args = (canary, limit)  # type: ignore[assignment]
        rows = self.db.execute(query, args).fetchall()
        return [Event(r[0], r[1], EventType(r[2]), r[4], r[3]) for r in reversed(rows)]
