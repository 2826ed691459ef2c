"""The job queue: one row per study in SQLite, moved through its states by conditional updates.

States, in order: ``received`` (instances arriving; the quiet window runs), ``complete`` (quiet
for the whole window), ``routed`` (a glioma protocol with the series the model needs), ``running``
(the pipeline is working on a snapshot), ``sending`` (results on disk, going to the PACS),
``done``. Two more end a study with a reason: ``skipped`` (routing found no glioma protocol or a
missing series; not processed) and ``failed`` (attempts used up).

A new instance for a study past ``received`` starts it again (``generation`` + 1): a late series
re-triggers processing. Every update that ends a step names the generation it worked on, so
a job that finishes after its study was re-triggered cannot overwrite the newer state.

The database runs in WAL mode with ``synchronous=FULL``: a committed update survives
``kill -9`` and power loss (https://www.sqlite.org/wal.html). Each thread has its own connection.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

RECEIVED, COMPLETE, ROUTED, RUNNING, SENDING, DONE, SKIPPED, FAILED = STATES = (
    'received',
    'complete',
    'routed',
    'running',
    'sending',
    'done',
    'skipped',
    'failed',
)
FINISHED = (DONE, SKIPPED, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    study_uid TEXT PRIMARY KEY,
    accession TEXT NOT NULL DEFAULT '',
    calling_ae TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 1,
    instances INTEGER NOT NULL DEFAULT 0,
    first_received REAL NOT NULL,
    last_received REAL NOT NULL,
    completed_at REAL,
    processed_instances INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    send_attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    job_dir TEXT NOT NULL DEFAULT '',
    results INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    inputs TEXT NOT NULL DEFAULT '',
    done_inputs TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    done_at REAL,
    purged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS studies_state ON studies (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    study_uid TEXT NOT NULL,
    generation INTEGER NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS node (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS own_series (series_uid TEXT PRIMARY KEY, study_uid TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Study:
    study_uid: str
    accession: str
    calling_ae: str
    state: str
    generation: int
    instances: int
    first_received: float
    last_received: float
    completed_at: float | None
    processed_instances: int
    attempts: int
    send_attempts: int
    next_attempt_at: float
    job_dir: str
    results: int
    reason: str
    inputs: str
    done_inputs: str
    updated_at: float
    done_at: float | None
    purged: int

    @property
    def label(self) -> str:
        """How logs name the study: identifiers only, never patient data."""
        accession = f' (accession {self.accession})' if self.accession else ''
        return f'study {self.study_uid}{accession}'


_COLUMNS = ', '.join(f.name for f in fields(Study))


class JobQueue:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, 'db', None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute('PRAGMA journal_mode=WAL')
            db.execute('PRAGMA synchronous=FULL')
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute('BEGIN IMMEDIATE')
        try:
            yield db
        except BaseException:
            db.execute('ROLLBACK')
            raise
        db.execute('COMMIT')

    def close(self) -> None:
        db = getattr(self._local, 'db', None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- reading ----------------------------------------------------------------------------

    def _rows(self, sql: str, *parameters: object) -> list[sqlite3.Row]:
        return self._connection().execute(sql, parameters).fetchall()

    def _study(self, sql: str, *parameters: object) -> Study | None:
        rows = self._rows(f'SELECT {_COLUMNS} FROM studies {sql} LIMIT 1', *parameters)
        return Study(**rows[0]) if rows else None

    def get(self, study_uid: str) -> Study | None:
        return self._study('WHERE study_uid = ?', study_uid)

    def all(self) -> list[Study]:
        rows = self._rows(f'SELECT {_COLUMNS} FROM studies ORDER BY first_received')
        return [Study(**row) for row in rows]

    def counts(self) -> dict[str, int]:
        found = dict(self._rows('SELECT state, COUNT(*) FROM studies GROUP BY state'))
        return {state: found.get(state, 0) for state in STATES}

    def next_due(self, state: str, now: float) -> Study | None:
        """The oldest study in ``state`` whose next attempt is due."""
        return self._study(
            'WHERE state = ? AND next_attempt_at <= ? ORDER BY last_received', state, now
        )

    def next_quiet_deadline(self, window: float) -> float | None:
        (row,) = self._rows('SELECT MIN(last_received) FROM studies WHERE state = ?', RECEIVED)
        return None if row[0] is None else row[0] + window

    def last_success(self) -> Study | None:
        return self._study('WHERE state = ? AND done_at IS NOT NULL ORDER BY done_at DESC', DONE)

    def events(self, study_uid: str) -> list[tuple[float, int, str, str]]:
        """The study's history: (time, generation, state, detail), oldest first."""
        sql = 'SELECT at, generation, state, detail FROM events WHERE study_uid = ? ORDER BY id'
        return [tuple(row) for row in self._rows(sql, study_uid)]

    def needing_attention(self, limit: int) -> list[Study]:
        """Failed studies and studies whose results could not be sent yet, newest first."""
        rows = self._rows(
            f'SELECT {_COLUMNS} FROM studies WHERE state = ? OR (state = ? AND send_attempts > 0) '
            'ORDER BY updated_at DESC LIMIT ?',
            FAILED,
            SENDING,
            limit,
        )
        return [Study(**row) for row in rows]

    def is_own_series(self, series_uid: str) -> bool:
        return bool(self._rows('SELECT 1 FROM own_series WHERE series_uid = ?', series_uid))

    def heartbeat(self) -> float | None:
        rows = self._rows("SELECT value FROM node WHERE key = 'heartbeat'")
        return rows[0][0] if rows else None

    # -- writing ----------------------------------------------------------------------------

    def add_own_series(self, study_uid: str, series_uids: list[str]) -> None:
        """Remember the node's result series, so that a PACS echoing them back is not a trigger."""
        with self._transaction() as db:
            db.executemany(
                'INSERT OR IGNORE INTO own_series (series_uid, study_uid) VALUES (?, ?)',
                [(uid, study_uid) for uid in series_uids],
            )

    def beat(self, now: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO node (key, value) VALUES ('heartbeat', ?)", (now,))

    def note_instance(
        self, study_uid: str, *, new: bool, accession: str = '', calling_ae: str = '', now: float
    ) -> Study:
        """Record one received instance; start the study (again) if it is new or past received.

        A repeat of an instance already held keeps a ``received`` study's window open but does not
        re-trigger a study that was already complete: re-sending a finished study is a no-op.
        """
        with self._transaction() as db:
            row = db.execute(
                'SELECT state, generation FROM studies WHERE study_uid = ?', (study_uid,)
            ).fetchone()
            if row is None:
                db.execute(
                    'INSERT INTO studies (study_uid, accession, calling_ae, state, instances, '
                    'first_received, last_received, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    (study_uid, accession, calling_ae, RECEIVED, int(new), now, now, now),
                )
                _event(db, study_uid, 1, RECEIVED, f'first instance from {calling_ae}', now)
            elif row['state'] == RECEIVED:
                db.execute(
                    'UPDATE studies SET instances = instances + ?, last_received = ?, '
                    'updated_at = ? WHERE study_uid = ?',
                    (int(new), now, now, study_uid),
                )
            elif new:
                generation = row['generation'] + 1
                db.execute(
                    'UPDATE studies SET state = ?, generation = ?, instances = instances + 1, '
                    'last_received = ?, completed_at = NULL, attempts = 0, send_attempts = 0, '
                    "next_attempt_at = 0, reason = '', done_at = NULL, purged = 0, "
                    'updated_at = ? WHERE study_uid = ?',
                    (RECEIVED, generation, now, now, study_uid),
                )
                detail = f'new instance while {row["state"]}: processing again'
                _event(db, study_uid, generation, RECEIVED, detail, now)
        study = self.get(study_uid)
        assert study is not None
        return study

    def promote_quiet(self, window: float, now: float) -> list[Study]:
        """Mark ``complete`` every received study without a new instance for ``window`` s."""
        with self._transaction() as db:
            rows = db.execute(
                'UPDATE studies SET state = ?, completed_at = ?, updated_at = ? '
                'WHERE state = ? AND last_received <= ? RETURNING study_uid, generation',
                (COMPLETE, now, now, RECEIVED, now - window),
            ).fetchall()
            for uid, generation in rows:
                _event(db, uid, generation, COMPLETE, f'quiet for {window:g} s', now)
        return [s for uid, _ in rows if (s := self.get(uid)) is not None]

    def move(
        self,
        study: Study,
        to: str,
        *,
        detail: str = '',
        now: float | None = None,
        **values: object,
    ) -> bool:
        """Move ``study`` from its state to ``to``, only if neither state nor generation changed.

        ``values`` sets other columns in the same update. Returns False when the study moved on in
        the meantime (a new instance arrived): the caller's result is then stale and dropped.
        """
        now = time.time() if now is None else now
        unknown = set(values) - {f.name for f in fields(Study)}
        if unknown or to not in STATES:
            raise ValueError(f'bad update of {study.study_uid}: {to} {sorted(unknown)}')
        assignments = ''.join(f', {name} = ?' for name in values)
        with self._transaction() as db:
            updated = db.execute(
                f'UPDATE studies SET state = ?, updated_at = ?{assignments} '
                'WHERE study_uid = ? AND state = ? AND generation = ?',
                (to, now, *values.values(), study.study_uid, study.state, study.generation),
            ).rowcount
            if updated:
                _event(db, study.study_uid, study.generation, to, detail, now)
        return bool(updated)

    def recover(self, spool_counts: dict[str, int], max_attempts: int, now: float) -> list[str]:
        """Bring the queue in line with the spool after a restart; return what was changed.

        - A study still ``running`` lost its job with the previous process: back to ``routed``
          (its attempt stays counted, so a study that kills the node cannot loop forever).
        - A study in the spool without a row, or with more instances on disk than recorded,
          received instances whose database update a crash cut off: it starts (again) as
          ``received`` with a fresh quiet window.
        - Every ``received`` study gets a fresh quiet window: while the node was down, senders
          could not send, so the silence says nothing about the study being complete.
        """
        notes = []
        with self._transaction() as db:
            db.execute(
                'UPDATE studies SET last_received = ? WHERE state = ? AND last_received < ?',
                (now, RECEIVED, now),
            )
            for uid, generation, attempts in db.execute(
                'SELECT study_uid, generation, attempts FROM studies WHERE state = ?', (RUNNING,)
            ).fetchall():
                if attempts >= max_attempts:
                    to, detail = FAILED, f'interrupted during attempt {attempts} of {max_attempts}'
                    db.execute(
                        'UPDATE studies SET state = ?, reason = ?, updated_at = ? '
                        'WHERE study_uid = ?',
                        (FAILED, detail, now, uid),
                    )
                else:
                    to, detail = ROUTED, f'job interrupted (attempt {attempts}); will run again'
                    db.execute(
                        'UPDATE studies SET state = ?, updated_at = ? WHERE study_uid = ?',
                        (ROUTED, now, uid),
                    )
                _event(db, uid, generation, to, detail, now)
                notes.append(f'{uid}: {detail}')
            known = dict(db.execute('SELECT study_uid, instances FROM studies').fetchall())
            for uid, count in spool_counts.items():
                if uid not in known:
                    db.execute(
                        'INSERT INTO studies (study_uid, state, instances, first_received, '
                        'last_received, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
                        (uid, RECEIVED, count, now, now, now),
                    )
                    _event(db, uid, 1, RECEIVED, 'found in the spool at start', now)
                    notes.append(f'{uid}: found in the spool, {count} instance(s)')
                elif count > known[uid]:
                    row = db.execute(
                        'SELECT state, generation FROM studies WHERE study_uid = ?', (uid,)
                    ).fetchone()
                    generation = row['generation'] + (row['state'] != RECEIVED)
                    db.execute(
                        'UPDATE studies SET state = ?, generation = ?, instances = ?, '
                        'last_received = ?, attempts = 0, send_attempts = 0, '
                        "next_attempt_at = 0, reason = '', done_at = NULL, updated_at = ? "
                        'WHERE study_uid = ?',
                        (RECEIVED, generation, count, now, now, uid),
                    )
                    detail = f'{count - known[uid]} instance(s) in the spool not yet recorded'
                    _event(db, uid, generation, RECEIVED, detail, now)
                    notes.append(f'{uid}: {detail}')
        return notes

    def requeue(self, study_uid: str, now: float) -> Study | None:
        """Process a study again from routing (an operator's decision, e.g. after a fix)."""
        with self._transaction() as db:
            updated = db.execute(
                'UPDATE studies SET state = ?, generation = generation + 1, attempts = 0, '
                "send_attempts = 0, next_attempt_at = 0, reason = '', done_at = NULL, "
                "done_inputs = '', "
                'updated_at = ? WHERE study_uid = ? AND state IN (?, ?, ?) AND purged = 0 '
                'RETURNING generation',
                (COMPLETE, now, study_uid, *FINISHED),
            ).fetchone()
            if updated:
                _event(db, study_uid, updated[0], COMPLETE, 'requeued by an operator', now)
        return self.get(study_uid) if updated else None

    def mark_purged(self, study_uid: str, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                'UPDATE studies SET purged = 1, updated_at = ? WHERE study_uid = ?',
                (now, study_uid),
            )

    def purgeable(self, before: float) -> list[Study]:
        rows = self._rows(
            f'SELECT {_COLUMNS} FROM studies WHERE state IN (?, ?) AND purged = 0 AND done_at < ?',
            DONE,
            SKIPPED,
            before,
        )
        return [Study(**row) for row in rows]


def _event(
    db: sqlite3.Connection, study_uid: str, generation: int, state: str, detail: str, now: float
) -> None:
    db.execute(
        'INSERT INTO events (at, study_uid, generation, state, detail) VALUES (?, ?, ?, ?, ?)',
        (now, study_uid, generation, state, detail),
    )
