"""Index operation fields by name and value: policies look up operations by a field (e.g. every
membership change of one key group, every document owned by it).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_operation_fields_value", "operation_fields", ["name", "value"])


def downgrade() -> None:
    op.drop_index("ix_operation_fields_value", "operation_fields")
