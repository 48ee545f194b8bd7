"""Journal schema, migrated by PRAGMA user_version in one transaction."""

from __future__ import annotations

# Each entry upgrades from version i to i+1. Never edit a released entry; append.
MIGRATIONS: tuple[str, ...] = (
    """
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
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
