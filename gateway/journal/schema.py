"""Journal schema: SQL scripts migrated by PRAGMA user_version in one transaction.

Entry i upgrades a file from version i to i + 1. Never edit an entry that has shipped; append
one. One statement per line end (a trigger's body may span lines); `split_statements` cuts a
script where SQLite says a statement is complete.
"""

from __future__ import annotations

import sqlite3

# v1: jobs, their history, the outbox and a key-value table.
_V1 = """
    CREATE TABLE jobs (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid         TEXT NOT NULL UNIQUE,
        source       TEXT NOT NULL,
        tasks_json   TEXT NOT NULL,
        tasks_count  INTEGER NOT NULL,
        state        TEXT NOT NULL,
        results_json TEXT NOT NULL,
        current_task INTEGER NOT NULL DEFAULT 0,
        attempts     INTEGER NOT NULL DEFAULT 0,
        n0           INTEGER,
        fiscal_step  TEXT,
        error_code   INTEGER,
        error_text   TEXT,
        reply_to     TEXT,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        started_at   TEXT,
        finished_at  TEXT
    );
    CREATE INDEX jobs_state ON jobs (state, seq);
    CREATE TABLE history (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        job_seq    INTEGER NOT NULL REFERENCES jobs (seq) ON DELETE CASCADE,
        at         TEXT NOT NULL,
        state      TEXT NOT NULL,
        task_index INTEGER,
        note       TEXT
    );
    CREATE INDEX history_job ON history (job_seq);
    CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        kind       TEXT NOT NULL,
        key        TEXT,
        payload    TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """

# v2: outbox delivery marks (kept until retention), the MQTT reply address with each row,
# queue-depth samples for the status page, and guards against impossible state changes.
_V2 = """
    ALTER TABLE outbox ADD COLUMN reply_to TEXT;
    ALTER TABLE outbox ADD COLUMN last_attempt_at TEXT;
    ALTER TABLE outbox ADD COLUMN delivered_at TEXT;
    UPDATE outbox SET key = NULL WHERE kind = 'event';
    CREATE INDEX outbox_kind ON outbox (kind, id);
    CREATE INDEX outbox_undelivered ON outbox (id) WHERE delivered_at IS NULL;
    CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE TABLE queue_depth_samples (
        id    INTEGER PRIMARY KEY,
        at    TEXT NOT NULL,
        depth INTEGER NOT NULL
    );
    CREATE INDEX queue_depth_samples_at ON queue_depth_samples (at);
    CREATE TRIGGER jobs_state_known BEFORE UPDATE OF state ON jobs
    WHEN NEW.state NOT IN ('queued', 'in_progress', 'done', 'failed', 'canceled', 'blocked')
    BEGIN
        SELECT RAISE(ABORT, 'unknown job state');
    END;
    CREATE TRIGGER jobs_state_known_insert BEFORE INSERT ON jobs
    WHEN NEW.state NOT IN ('queued', 'in_progress', 'done', 'failed', 'canceled', 'blocked')
    BEGIN
        SELECT RAISE(ABORT, 'unknown job state');
    END;
    CREATE TRIGGER jobs_finished_final BEFORE UPDATE ON jobs
    WHEN OLD.state IN ('done', 'failed', 'canceled')
    BEGIN
        SELECT RAISE(ABORT, 'a finished job never changes');
    END;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)

SCHEMA_VERSION = len(MIGRATIONS)


def split_statements(script: str) -> list[str]:
    """Cut a migration script into statements, one per `execute`."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"migration ends inside a statement: {pending.strip()[:60]!r}")
    return statements
