"""The node's storage contract, written once: reads return None for absent things and raise only on
I/O failure; writes happen inside the caller's transaction (an `AsyncConnection` from `engine.begin()`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from p2panda.node import tables as t

__all__ = ["Store", "StoredEntry", "StoredOperation", "StoredDocument"]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    hash: str
    seq_num: int
    raw: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredOperation:
    id: str
    document_id: str
    public_key: str
    schema_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: str
    schema_id: str
    owner: str
    view_id: str
    is_deleted: bool
    is_edited: bool


class Store:
    """Queries and writes on one connection (and so within its transaction)."""

    __slots__ = ("conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    # --- entries and logs -------------------------------------------------------------------------

    async def latest_entry(self, public_key: str, log_id: int) -> StoredEntry | None:
        return await self._entry(t.entries.c.public_key == public_key, t.entries.c.log_id == log_id, latest=True)

    async def entry_at(self, public_key: str, log_id: int, seq_num: int) -> StoredEntry | None:
        return await self._entry(
            t.entries.c.public_key == public_key, t.entries.c.log_id == log_id, t.entries.c.seq_num == seq_num
        )

    async def _entry(self, *conditions: ColumnElement[bool], latest: bool = False) -> StoredEntry | None:
        query = select(t.entries.c.hash, t.entries.c.seq_num, t.entries.c.raw, t.entries.c.payload).where(*conditions)
        if latest:
            query = query.order_by(t.entries.c.seq_num.desc()).limit(1)
        row = (await self.conn.execute(query)).first()
        return None if row is None else StoredEntry(row.hash, row.seq_num, row.raw, row.payload)

    async def log_document(self, public_key: str, log_id: int) -> str | None:
        row = (
            await self.conn.execute(
                select(t.logs.c.document_id).where(t.logs.c.public_key == public_key, t.logs.c.log_id == log_id)
            )
        ).first()
        return None if row is None else str(row.document_id)

    async def log_for_document(self, public_key: str, document_id: str) -> int | None:
        row = (
            await self.conn.execute(
                select(t.logs.c.log_id).where(t.logs.c.public_key == public_key, t.logs.c.document_id == document_id)
            )
        ).first()
        return None if row is None else int(row.log_id)

    async def max_log_id(self, public_key: str) -> int | None:
        value = await self.conn.scalar(select(func.max(t.logs.c.log_id)).where(t.logs.c.public_key == public_key))
        return None if value is None else int(value)

    async def insert_entry(
        self, entry_hash: str, public_key: str, log_id: int, seq_num: int, raw: bytes, payload: bytes
    ) -> None:
        await self.conn.execute(
            insert(t.entries).values(
                hash=entry_hash, public_key=public_key, log_id=log_id, seq_num=seq_num, raw=raw, payload=payload
            )
        )

    async def insert_log(self, public_key: str, log_id: int, document_id: str, schema_id: str) -> None:
        await self.conn.execute(
            insert(t.logs).values(public_key=public_key, log_id=log_id, document_id=document_id, schema_id=schema_id)
        )

    async def insert_fork_proof(
        self, public_key: str, log_id: int, seq_num: int, kept_hash: str, rejected_raw: bytes
    ) -> None:
        exists = (
            await self.conn.execute(
                select(t.fork_proofs.c.id).where(
                    t.fork_proofs.c.public_key == public_key,
                    t.fork_proofs.c.log_id == log_id,
                    t.fork_proofs.c.seq_num == seq_num,
                    t.fork_proofs.c.rejected_raw == rejected_raw,
                )
            )
        ).first()
        if exists is None:
            await self.conn.execute(
                insert(t.fork_proofs).values(
                    public_key=public_key,
                    log_id=log_id,
                    seq_num=seq_num,
                    kept_hash=kept_hash,
                    rejected_raw=rejected_raw,
                )
            )

    async def fork_proofs(self) -> list[tuple[str, int, int, str, bytes]]:
        rows = await self.conn.execute(
            select(
                t.fork_proofs.c.public_key,
                t.fork_proofs.c.log_id,
                t.fork_proofs.c.seq_num,
                t.fork_proofs.c.kept_hash,
                t.fork_proofs.c.rejected_raw,
            ).order_by(t.fork_proofs.c.id)
        )
        return [(r.public_key, int(r.log_id), int(r.seq_num), r.kept_hash, r.rejected_raw) for r in rows]

    # --- operations -------------------------------------------------------------------------------

    async def operation(self, operation_id: str) -> StoredOperation | None:
        rows = await self._operations(t.operations.c.id == operation_id)
        return rows[0] if rows else None

    async def operations_of_document(self, document_id: str) -> list[StoredOperation]:
        return await self._operations(t.operations.c.document_id == document_id)

    async def _operations(self, condition: ColumnElement[bool]) -> list[StoredOperation]:
        rows = await self.conn.execute(
            select(
                t.operations.c.id,
                t.operations.c.document_id,
                t.operations.c.public_key,
                t.operations.c.schema_id,
                t.entries.c.payload,
            )
            .join(t.entries, t.entries.c.hash == t.operations.c.id)
            .where(condition)
        )
        return [StoredOperation(r.id, r.document_id, r.public_key, r.schema_id, r.payload) for r in rows]

    async def insert_operation(
        self,
        operation_id: str,
        document_id: str,
        public_key: str,
        action: int,
        schema_id: str,
        previous: str | None,
        fields: list[tuple[str, str, bytes]],
    ) -> None:
        await self.conn.execute(
            insert(t.operations).values(
                id=operation_id,
                document_id=document_id,
                public_key=public_key,
                action=action,
                schema_id=schema_id,
                previous=previous,
            )
        )
        if fields:
            await self.conn.execute(
                insert(t.operation_fields),
                [{"operation_id": operation_id, "name": n, "field_type": ft, "value": v} for n, ft, v in fields],
            )

    # --- documents and views ----------------------------------------------------------------------

    async def document(self, document_id: str) -> StoredDocument | None:
        row = (await self.conn.execute(select(t.documents).where(t.documents.c.id == document_id))).first()
        return (
            None
            if row is None
            else StoredDocument(row.id, row.schema_id, row.owner, row.view_id, row.is_deleted, row.is_edited)
        )

    async def documents_of_schema(self, schema_id: str) -> list[StoredDocument]:
        rows = await self.conn.execute(select(t.documents).where(t.documents.c.schema_id == schema_id))
        return [StoredDocument(r.id, r.schema_id, r.owner, r.view_id, r.is_deleted, r.is_edited) for r in rows]

    async def current_views(self, schema_id: str) -> list[tuple[StoredDocument, bytes | None]]:
        """Every document of a schema with the stored fields (canonical CBOR) of its current view."""
        rows = await self.conn.execute(
            select(t.documents, t.document_views.c.fields)
            .join(t.document_views, t.document_views.c.view_id == t.documents.c.view_id)
            .where(t.documents.c.schema_id == schema_id)
        )
        return [
            (StoredDocument(r.id, r.schema_id, r.owner, r.view_id, r.is_deleted, r.is_edited), r.fields) for r in rows
        ]

    async def view(self, view_id: str) -> tuple[str, str, bool, bytes | None] | None:
        """(document id, schema id, deleted, canonical CBOR fields) of a stored view."""
        row = (
            await self.conn.execute(
                select(
                    t.document_views.c.document_id,
                    t.document_views.c.schema_id,
                    t.document_views.c.is_deleted,
                    t.document_views.c.fields,
                ).where(t.document_views.c.view_id == view_id)
            )
        ).first()
        return None if row is None else (row.document_id, row.schema_id, row.is_deleted, row.fields)

    async def save_document(self, doc: StoredDocument, fields: bytes | None) -> None:
        values = {
            "schema_id": doc.schema_id,
            "owner": doc.owner,
            "view_id": doc.view_id,
            "is_deleted": doc.is_deleted,
            "is_edited": doc.is_edited,
        }
        result = await self.conn.execute(update(t.documents).where(t.documents.c.id == doc.id).values(**values))
        if result.rowcount == 0:
            await self.conn.execute(insert(t.documents).values(id=doc.id, **values))
        if await self.view(doc.view_id) is None:
            await self.conn.execute(
                insert(t.document_views).values(
                    view_id=doc.view_id,
                    document_id=doc.id,
                    schema_id=doc.schema_id,
                    is_deleted=doc.is_deleted,
                    fields=fields,
                )
            )

    # --- materialiser tasks -----------------------------------------------------------------------

    async def add_task(self, document_id: str) -> None:
        exists = (
            await self.conn.execute(
                select(t.materialiser_tasks.c.document_id).where(t.materialiser_tasks.c.document_id == document_id)
            )
        ).first()
        if exists is None:
            await self.conn.execute(insert(t.materialiser_tasks).values(document_id=document_id))

    async def tasks(self) -> list[str]:
        rows = await self.conn.execute(select(t.materialiser_tasks.c.document_id))
        return [str(r.document_id) for r in rows]

    async def finish_task(self, document_id: str) -> None:
        await self.conn.execute(delete(t.materialiser_tasks).where(t.materialiser_tasks.c.document_id == document_id))
