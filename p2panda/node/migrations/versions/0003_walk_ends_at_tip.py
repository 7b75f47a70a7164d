"""Remember whether a document's walk order ends at one of its tips: only then does an UPDATE on all
the tips come last in the walk (p2panda's walk is not always topological), so the materialiser may
extend the stored view instead of rebuilding. Existing rows start false: their next update rebuilds.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("walk_ends_at_tip", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("documents", "walk_ends_at_tip")
