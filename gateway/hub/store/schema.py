"""The hub's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Times are integer milliseconds since the epoch (UTC) and JSON is stored as text, so both
databases hold identical values and no driver converts types on the way.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 1

metadata = MetaData()

# Key/value facts about the database itself (the schema version).
meta = Table(
    "hub_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Connector-specific key -> box id (config and `hub route` keep it).
routes = Table(
    "routes",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("box_id", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

# One row per box: its command sequence, its last status, and the dispatch lease.
boxes = Table(
    "boxes",
    metadata,
    Column("box_id", String(128), primary_key=True),
    Column("seq", BigInteger, nullable=False, default=0),  # the last sequence number allocated
    Column("online", Boolean, nullable=False, default=False),
    Column("status_json", Text),
    Column("seen_ms", BigInteger),
    Column("lease_owner", String(128)),
    Column("lease_until_ms", BigInteger),
)

orders = Table(
    "orders",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("connector", String(64), nullable=False),
    Column("account", String(256), nullable=False),
    Column("crm_key", String(256), nullable=False),
    Column("box_id", String(128), nullable=False),
    Column("job_uuid", String(64), nullable=False, unique=True),
    Column("request_json", Text, nullable=False),
    Column("meta_json", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("result_json", Text),
    Column("writeback", String(16), nullable=False),
    Column("sends", Integer, nullable=False, default=0),
    Column("next_send_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger),
    UniqueConstraint("connector", "account", "crm_key", name="orders_crm_key"),
)
Index("orders_box_pending", orders.c.box_id, orders.c.state, orders.c.id)
Index("orders_finished", orders.c.finished_ms)

# The write-back outbox: one call back to a CRM per row, leased to one process at a time.
writebacks = Table(
    "writebacks",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("order_id", BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("connector", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("body_json", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_ms", BigInteger, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_until_ms", BigInteger),
    Column("last_error", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("delivered_ms", BigInteger),
    Column("alerted_ms", BigInteger),
)
Index("writebacks_due", writebacks.c.state, writebacks.c.next_ms)

# Named leases for periodic work (expiry, alert rules): whoever holds one runs that job.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("until_ms", BigInteger, nullable=False),
)

# CRM access tokens: only a SHA-256 of each token is stored.
tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("connector", String(64), nullable=False),
    Column("account", String(256), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
Index("tokens_expiry", tokens.c.expires_ms)

# Connectors' own records (a Bitrix24 install), versioned for compare-and-set.
connector_records = Table(
    "connector_records",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value_json", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)
