"""
The routilux tables in PostgreSQL, their versioned migrations, and procrastinate's schema.
"""

from __future__ import annotations

from typing import Any

import psycopg
from procrastinate.schema import SchemaManager

from routilux.exceptions import JobStoreError


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE routilux_flows (
            flow_id     text NOT NULL,
            fingerprint text NOT NULL,
            flow_json   jsonb NOT NULL,
            saved_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (flow_id, fingerprint)
        );
        CREATE TABLE routilux_jobs (
            job_id           text PRIMARY KEY,
            flow_id          text NOT NULL,
            fingerprint      text NOT NULL,
            status           text NOT NULL,
            entry_routine_id text NOT NULL,
            entry_params     jsonb NOT NULL,
            options          jsonb NOT NULL,
            state_json       jsonb,
            requested        text,
            attempt          integer NOT NULL DEFAULT 0,
            retries          integer NOT NULL DEFAULT 0,
            worker           text,
            heartbeat_at     timestamptz,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (flow_id, fingerprint) REFERENCES routilux_flows (flow_id, fingerprint)
        );
        CREATE INDEX routilux_jobs_status ON routilux_jobs (status, created_at);
        CREATE INDEX routilux_jobs_flow ON routilux_jobs (flow_id, created_at);
        """,
    ),
    (
        2,
        """
        ALTER TABLE routilux_jobs ADD COLUMN checkpoint_seq bigint NOT NULL DEFAULT 0;
        """,
    ),
    (
        3,
        # The checkpoint log: each job's state becomes its first (whole) checkpoint.
        """
        ALTER TABLE routilux_jobs
            ADD COLUMN full_seq bigint,
            ADD COLUMN full_bytes bigint NOT NULL DEFAULT 0,
            ADD COLUMN delta_bytes bigint NOT NULL DEFAULT 0,
            ADD COLUMN last_crc bigint NOT NULL DEFAULT 0,
            ADD COLUMN forked_from jsonb;
        CREATE TABLE routilux_checkpoints (
            job_id     text NOT NULL REFERENCES routilux_jobs (job_id) ON DELETE CASCADE,
            seq        bigint NOT NULL,
            kind       text NOT NULL,
            status     text NOT NULL,
            codec      text NOT NULL,
            body       bytea NOT NULL,
            crc        bigint NOT NULL,
            raw_size   bigint NOT NULL,
            created_at double precision NOT NULL,
            PRIMARY KEY (job_id, seq)
        );
        INSERT INTO routilux_checkpoints
            (job_id, seq, kind, status, codec, body, crc, raw_size, created_at)
            SELECT job_id, checkpoint_seq, 'full', status, 'json',
                   convert_to(state_json::text, 'UTF8'), 0,
                   octet_length(convert_to(state_json::text, 'UTF8')),
                   extract(epoch FROM updated_at)
            FROM routilux_jobs WHERE state_json IS NOT NULL;
        UPDATE routilux_jobs SET full_seq = checkpoint_seq,
            full_bytes = octet_length(convert_to(state_json::text, 'UTF8'))
            WHERE state_json IS NOT NULL;
        ALTER TABLE routilux_jobs DROP COLUMN state_json;
        """,
    ),
)
"""The routilux schema, as ``(version, SQL)`` steps applied in order (never edit a released one)."""

SCHEMA_VERSION = MIGRATIONS[-1][0]
"""The schema version this routilux reads and writes."""

_LOCK_KEY = 0x526F75746C7578  # "Routlux": serializes concurrent `routilux db init` runs


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """
    Return the routilux schema version of the database, or ``None`` when it has none.
    """
    row = conn.execute("SELECT to_regclass('routilux_schema') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute("SELECT max(version) FROM routilux_schema").fetchone()
    return int(found[0]) if found is not None and found[0] is not None else None


def migrate(dsn: str) -> list[str]:
    """
    Create or upgrade the schema of a database: procrastinate's tables and functions when
    they are missing, then every routilux migration newer than the database's version. Safe
    to run from several machines at once (an advisory lock serializes the runs) and to run
    again (it does nothing then). Return what was done, one line per step.

    procrastinate's own schema is created, not upgraded: after upgrading procrastinate,
    apply the migrations it ships (``procrastinate schema --migrations-path``) first.

    Raises:
        JobStoreError: The database is unreachable, or has a newer routilux schema.
    """
    done: list[str] = []
    try:
        with psycopg.connect(dsn) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if row is None or not row[0]:
                conn.execute(SchemaManager.get_schema())
                done.append("created the procrastinate schema")
            conn.execute("CREATE TABLE IF NOT EXISTS routilux_schema (version integer NOT NULL)")
            current = schema_version(conn) or 0
            if current > SCHEMA_VERSION:
                msg = (
                    f"the database has routilux schema version {current}; this routilux "
                    f"understands up to {SCHEMA_VERSION}: upgrade routilux-postgres"
                )
                raise JobStoreError(msg)
            for version, sql in MIGRATIONS:
                if version > current:
                    conn.execute(sql)
                    conn.execute("INSERT INTO routilux_schema (version) VALUES (%s)", (version,))
                    done.append(f"applied routilux schema version {version}")
    except psycopg.Error as exc:
        msg = f"cannot migrate the job store database: {exc}"
        raise JobStoreError(msg) from exc
    return done
