"""The tables of the fleet state and the alerts, beside the hub's own in the same database.

Kept in their own metadata and created by `ensure_tables`, so the hub's schema version is
untouched; times are integer milliseconds (UTC) and JSON is text, as in the hub's tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from gateway.hub.store.database import Database

metadata = MetaData()

# The newest of what each box said: status changes, its telemetry, its last shift mismatch.
fleet_boxes = Table(
    "fleet_boxes",
    metadata,
    Column("box_id", String(128), primary_key=True),
    Column("online", Boolean),
    Column("since_ms", BigInteger),
    Column("status_json", Text),
    Column("telemetry_json", Text),
    Column("telemetry_ms", BigInteger),
    Column("mismatch_json", Text),
    Column("mismatch_ms", BigInteger),
)

# Events as the boxes sent them, newest kept (`FleetRecords.keep_events`).
fleet_events = Table(
    "fleet_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("box_id", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("body_json", Text, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
)
Index("fleet_events_box", fleet_events.c.box_id, fleet_events.c.id)

# One row per incident; `open_key` is set while it is open and unique, so one condition is
# never opened twice, whichever process evaluates.
incidents = Table(
    "alert_incidents",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("rule", String(32), nullable=False),
    Column("box_id", String(128), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("open_key", String(600), unique=True),  # rule|box (128)|subject (256)
    Column("text", Text, nullable=False),
    Column("details_json", Text, nullable=False),
    Column("opened_ms", BigInteger, nullable=False),
    Column("cleared_ms", BigInteger),
)

# One message to one recipient per incident phase, leased to one process while it is sent.
deliveries = Table(
    "alert_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("incident_id", BigInteger, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | sent
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_ms", BigInteger, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_until_ms", BigInteger),
    Column("last_error", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("sent_ms", BigInteger),
)
Index("alert_deliveries_due", deliveries.c.state, deliveries.c.next_ms)


async def ensure_tables(db: Database) -> None:
    """Create the missing tables (several processes may start at once)."""
    async with db.tx() as conn:
        if not db.sqlite:
            await conn.execute(text("SELECT pg_advisory_xact_lock(7150022)"))
        await conn.run_sync(metadata.create_all)
