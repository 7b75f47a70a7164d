"""SQL tables of the node store (SQLAlchemy Core). Migrations in `p2panda/node/migrations` create them.

Ids are lowercase hex text; raw entries and payloads are stored exactly as received.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

__all__ = [
    "metadata",
    "logs",
    "entries",
    "operations",
    "operation_fields",
    "documents",
    "document_views",
    "fork_proofs",
    "materialiser_tasks",
]

metadata = MetaData()

logs = Table(
    "logs",
    metadata,
    Column("public_key", String(64), primary_key=True),
    Column("log_id", BigInteger, primary_key=True, autoincrement=False),
    Column("document_id", String(68), nullable=False),
    Column("schema_id", Text, nullable=False),
    Index("ix_logs_document", "public_key", "document_id"),
)

entries = Table(
    "entries",
    metadata,
    Column("hash", String(68), primary_key=True),
    Column("public_key", String(64), nullable=False),
    Column("log_id", BigInteger, nullable=False),
    Column("seq_num", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    UniqueConstraint("public_key", "log_id", "seq_num", name="uq_entries_log_seq"),
)

operations = Table(
    "operations",
    metadata,
    Column("id", String(68), ForeignKey("entries.hash"), primary_key=True),
    Column("document_id", String(68), nullable=False, index=True),
    Column("public_key", String(64), nullable=False),
    Column("action", SmallInteger, nullable=False),
    Column("schema_id", Text, nullable=False, index=True),
    Column("previous", Text, nullable=True),
)

operation_fields = Table(
    "operation_fields",
    metadata,
    Column("operation_id", String(68), ForeignKey("operations.id"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("field_type", Text, nullable=False),
    Column("value", LargeBinary, nullable=False),  # canonical CBOR of the value
    Index("ix_operation_fields_value", "name", "value"),
)

documents = Table(
    "documents",
    metadata,
    Column("id", String(68), primary_key=True),
    Column("schema_id", Text, nullable=False, index=True),
    Column("owner", String(64), nullable=False),
    Column("view_id", Text, nullable=False),
    Column("is_deleted", Boolean, nullable=False),
    Column("is_edited", Boolean, nullable=False),
    # the walk order of the current view ends at one of its tips (see materialiser._extend)
    Column("walk_ends_at_tip", Boolean, nullable=False, server_default=false()),
)

document_views = Table(
    "document_views",
    metadata,
    Column("view_id", Text, primary_key=True),
    Column("document_id", String(68), nullable=False, index=True),
    Column("schema_id", Text, nullable=False),
    Column("is_deleted", Boolean, nullable=False),
    Column("fields", LargeBinary, nullable=True),  # canonical CBOR map; NULL when deleted
)

fork_proofs = Table(
    "fork_proofs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("public_key", String(64), nullable=False),
    Column("log_id", BigInteger, nullable=False),
    Column("seq_num", BigInteger, nullable=False),
    Column("kept_hash", String(68), nullable=False),
    Column("rejected_raw", LargeBinary, nullable=False),
    UniqueConstraint("public_key", "log_id", "seq_num", "rejected_raw", name="uq_fork_proof"),
)

materialiser_tasks = Table(
    "materialiser_tasks",
    metadata,
    Column("document_id", String(68), primary_key=True),
)
