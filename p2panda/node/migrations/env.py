"""Alembic environment: migrations run on the connection the node hands over (sync, inside run_sync)."""

from __future__ import annotations

from alembic import context

from p2panda.node.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("p2panda node migrations run through p2panda.node.store.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
