"""Initial node store: logs, entries, operations and their fields, documents, views, fork proofs, tasks.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("public_key", sa.String(64), primary_key=True),
        sa.Column("log_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("document_id", sa.String(68), nullable=False),
        sa.Column("schema_id", sa.Text, nullable=False),
    )
    op.create_index("ix_logs_document", "logs", ["public_key", "document_id"])
    op.create_table(
        "entries",
        sa.Column("hash", sa.String(68), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("log_id", sa.BigInteger, nullable=False),
        sa.Column("seq_num", sa.BigInteger, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("public_key", "log_id", "seq_num", name="uq_entries_log_seq"),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.String(68), sa.ForeignKey("entries.hash"), primary_key=True),
        sa.Column("document_id", sa.String(68), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("action", sa.SmallInteger, nullable=False),
        sa.Column("schema_id", sa.Text, nullable=False),
        sa.Column("previous", sa.Text, nullable=True),
    )
    op.create_index("ix_operations_document_id", "operations", ["document_id"])
    op.create_index("ix_operations_schema_id", "operations", ["schema_id"])
    op.create_table(
        "operation_fields",
        sa.Column("operation_id", sa.String(68), sa.ForeignKey("operations.id"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("field_type", sa.Text, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(68), primary_key=True),
        sa.Column("schema_id", sa.Text, nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("view_id", sa.Text, nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False),
        sa.Column("is_edited", sa.Boolean, nullable=False),
    )
    op.create_index("ix_documents_schema_id", "documents", ["schema_id"])
    op.create_table(
        "document_views",
        sa.Column("view_id", sa.Text, primary_key=True),
        sa.Column("document_id", sa.String(68), nullable=False),
        sa.Column("schema_id", sa.Text, nullable=False),
        sa.Column("is_deleted", sa.Boolean, nullable=False),
        sa.Column("fields", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_document_views_document_id", "document_views", ["document_id"])
    op.create_table(
        "fork_proofs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("log_id", sa.BigInteger, nullable=False),
        sa.Column("seq_num", sa.BigInteger, nullable=False),
        sa.Column("kept_hash", sa.String(68), nullable=False),
        sa.Column("rejected_raw", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("public_key", "log_id", "seq_num", "rejected_raw", name="uq_fork_proof"),
    )
    op.create_table("materialiser_tasks", sa.Column("document_id", sa.String(68), primary_key=True))


def downgrade() -> None:
    for table in (
        "materialiser_tasks",
        "fork_proofs",
        "document_views",
        "documents",
        "operation_fields",
        "operations",
        "entries",
        "logs",
    ):
        op.drop_table(table)
