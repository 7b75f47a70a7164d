"""The node's storage contract, written once: reads return None for absent things and raise only on
I/O failure; writes happen inside the caller's transaction (a `Connection` handed out by `Database`).

Statements are built once, with bound parameters: SQLAlchemy then compiles each once and reuses it,
where building a statement per call cost about as much as running it (measured: ~0.19 ms per
statement built per call, ~0.10 ms prebuilt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from p2panda.node import tables as t

__all__ = [
    "Store",
    "StoredEntry",
    "StoredOperation",
    "StoredDocument",
    "UPDATE_DOCUMENT",
    "document_values",
    "entry_row",
    "field_rows",
    "log_row",
    "operation_row",
    "view_row",
]


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
    log_id: int
    seq_num: int


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: str
    schema_id: str
    owner: str
    view_id: str
    is_deleted: bool
    is_edited: bool
    walk_ends_at_tip: bool = False


_e, _l, _o, _d, _v = t.entries.c, t.logs.c, t.operations.c, t.documents.c, t.document_views.c
_ENTRY_COLUMNS = (_e.hash, _e.seq_num, _e.raw, _e.payload)
_LATEST_ENTRY = (
    select(*_ENTRY_COLUMNS)
    .where(_e.public_key == bindparam("pk"), _e.log_id == bindparam("log"))
    .order_by(_e.seq_num.desc())
    .limit(1)
)
_ENTRY_AT = select(*_ENTRY_COLUMNS).where(
    _e.public_key == bindparam("pk"), _e.log_id == bindparam("log"), _e.seq_num == bindparam("seq")
)
_HAS_ENTRY = select(_e.hash).where(_e.hash == bindparam("hash"))
_LOG_DOCUMENT = select(_l.document_id).where(_l.public_key == bindparam("pk"), _l.log_id == bindparam("log"))
_LOG_FOR_DOCUMENT = select(_l.log_id).where(_l.public_key == bindparam("pk"), _l.document_id == bindparam("doc"))
_LOG_HEIGHTS = (
    select(_e.log_id, func.max(_e.seq_num).label("seq_num")).where(_e.public_key == bindparam("pk")).group_by(_e.log_id)
)
_ALL_LOG_HEIGHTS = (
    select(_e.public_key, _e.log_id, func.max(_e.seq_num).label("seq_num"), _l.schema_id)
    .join(t.logs, (_l.public_key == _e.public_key) & (_l.log_id == _e.log_id))
    .group_by(_e.public_key, _e.log_id, _l.schema_id)
)
_ENTRIES_AFTER = (
    select(_e.raw, _e.payload)
    .where(_e.public_key == bindparam("pk"), _e.log_id == bindparam("log"), _e.seq_num > bindparam("seq"))
    .order_by(_e.seq_num)
)
_MAX_LOG_ID = select(func.max(_l.log_id)).where(_l.public_key == bindparam("pk"))
_OPERATIONS = select(_o.id, _o.document_id, _o.public_key, _o.schema_id, _e.payload, _e.log_id, _e.seq_num).join(
    t.entries, _e.hash == _o.id
)
_f = t.operation_fields.c
_OPERATIONS_WITH_FIELD = _OPERATIONS.join(t.operation_fields, _f.operation_id == _o.id).where(
    _f.name == bindparam("name"), _f.value == bindparam("value")
)
_OPERATIONS_OF_SCHEMA_WITH_FIELD = _OPERATIONS_WITH_FIELD.where(_o.schema_id == bindparam("schema"))
_OPERATION = _OPERATIONS.where(_o.id == bindparam("id"))
_OPERATIONS_OF_DOCUMENT = _OPERATIONS.where(_o.document_id == bindparam("doc"))
_DOCUMENT = select(t.documents).where(_d.id == bindparam("id"))
_DOCUMENTS_OF_SCHEMA = select(t.documents).where(_d.schema_id == bindparam("schema"))
_CURRENT_VIEWS = (
    select(t.documents, _v.fields)
    .join(t.document_views, _v.view_id == _d.view_id)
    .where(_d.schema_id == bindparam("schema"))
)
_VIEW = select(_v.document_id, _v.schema_id, _v.is_deleted, _v.fields).where(_v.view_id == bindparam("view"))
UPDATE_DOCUMENT = update(t.documents).where(_d.id == bindparam("doc_id"))
_FORK_PROOF_EXISTS = select(t.fork_proofs.c.id).where(
    t.fork_proofs.c.public_key == bindparam("public_key"),
    t.fork_proofs.c.log_id == bindparam("log_id"),
    t.fork_proofs.c.seq_num == bindparam("seq_num"),
    t.fork_proofs.c.rejected_raw == bindparam("rejected_raw"),
)
_FORK_PROOFS = select(
    t.fork_proofs.c.public_key,
    t.fork_proofs.c.log_id,
    t.fork_proofs.c.seq_num,
    t.fork_proofs.c.kept_hash,
    t.fork_proofs.c.rejected_raw,
).order_by(t.fork_proofs.c.id)
_TASK = select(t.materialiser_tasks.c.document_id).where(t.materialiser_tasks.c.document_id == bindparam("doc"))


def _operation(row: Any) -> StoredOperation:
    return StoredOperation(row.id, row.document_id, row.public_key, row.schema_id, row.payload, row.log_id, row.seq_num)


def _document(row: Any) -> StoredDocument:
    return StoredDocument(
        row.id, row.schema_id, row.owner, row.view_id, row.is_deleted, row.is_edited, row.walk_ends_at_tip
    )


# Rows as the tables take them (shared with `batch.py`, which writes them later, many at a time).


def entry_row(
    entry_hash: str, public_key: str, log_id: int, seq_num: int, raw: bytes, payload: bytes
) -> dict[str, Any]:
    return {
        "hash": entry_hash,
        "public_key": public_key,
        "log_id": log_id,
        "seq_num": seq_num,
        "raw": raw,
        "payload": payload,
    }


def log_row(public_key: str, log_id: int, document_id: str, schema_id: str) -> dict[str, Any]:
    return {"public_key": public_key, "log_id": log_id, "document_id": document_id, "schema_id": schema_id}


def operation_row(
    operation_id: str, document_id: str, public_key: str, action: int, schema_id: str, previous: str | None
) -> dict[str, Any]:
    return {
        "id": operation_id,
        "document_id": document_id,
        "public_key": public_key,
        "action": action,
        "schema_id": schema_id,
        "previous": previous,
    }


def field_rows(operation_id: str, fields: list[tuple[str, str, bytes]]) -> list[dict[str, Any]]:
    return [{"operation_id": operation_id, "name": n, "field_type": ft, "value": v} for n, ft, v in fields]


def document_values(doc: StoredDocument) -> dict[str, Any]:
    return {
        "schema_id": doc.schema_id,
        "owner": doc.owner,
        "view_id": doc.view_id,
        "is_deleted": doc.is_deleted,
        "is_edited": doc.is_edited,
        "walk_ends_at_tip": doc.walk_ends_at_tip,
    }


def view_row(view_id: str, document_id: str, schema_id: str, is_deleted: bool, fields: bytes | None) -> dict[str, Any]:
    return {
        "view_id": view_id,
        "document_id": document_id,
        "schema_id": schema_id,
        "is_deleted": is_deleted,
        "fields": fields,
    }


class Store:
    """Queries and writes on one connection (and so within its transaction)."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- entries and logs -------------------------------------------------------------------------

    def latest_entry(self, public_key: str, log_id: int) -> StoredEntry | None:
        row = self.conn.execute(_LATEST_ENTRY, {"pk": public_key, "log": log_id}).first()
        return None if row is None else StoredEntry(row.hash, row.seq_num, row.raw, row.payload)

    def entry_at(self, public_key: str, log_id: int, seq_num: int) -> StoredEntry | None:
        row = self.conn.execute(_ENTRY_AT, {"pk": public_key, "log": log_id, "seq": seq_num}).first()
        return None if row is None else StoredEntry(row.hash, row.seq_num, row.raw, row.payload)

    def has_entry(self, entry_hash: str) -> bool:
        return self.conn.execute(_HAS_ENTRY, {"hash": entry_hash}).first() is not None

    def log_document(self, public_key: str, log_id: int) -> str | None:
        value = self.conn.execute(_LOG_DOCUMENT, {"pk": public_key, "log": log_id}).scalar()
        return None if value is None else str(value)

    def log_for_document(self, public_key: str, document_id: str) -> int | None:
        value = self.conn.execute(_LOG_FOR_DOCUMENT, {"pk": public_key, "doc": document_id}).scalar()
        return None if value is None else int(value)

    def max_log_id(self, public_key: str) -> int | None:
        value = self.conn.execute(_MAX_LOG_ID, {"pk": public_key}).scalar()
        return None if value is None else int(value)

    def log_heights(self, public_key: str) -> dict[int, int]:
        """Log id -> highest stored seq num, for every log of an author."""
        return {int(r.log_id): int(r.seq_num) for r in self.conn.execute(_LOG_HEIGHTS, {"pk": public_key})}

    def all_log_heights(self) -> list[tuple[str, int, int, str]]:
        """(public key, log id, highest seq num, schema id) of every log this store holds."""
        return [(r.public_key, int(r.log_id), int(r.seq_num), r.schema_id) for r in self.conn.execute(_ALL_LOG_HEIGHTS)]

    def entries_after(self, public_key: str, log_id: int, seq_num: int) -> list[tuple[bytes, bytes]]:
        """(entry, payload) of a log past `seq_num`, in log order."""
        rows = self.conn.execute(_ENTRIES_AFTER, {"pk": public_key, "log": log_id, "seq": seq_num})
        return [(r.raw, r.payload) for r in rows]

    def insert_entry(
        self, entry_hash: str, public_key: str, log_id: int, seq_num: int, raw: bytes, payload: bytes
    ) -> None:
        self.conn.execute(insert(t.entries), entry_row(entry_hash, public_key, log_id, seq_num, raw, payload))

    def insert_log(self, public_key: str, log_id: int, document_id: str, schema_id: str) -> None:
        self.conn.execute(insert(t.logs), log_row(public_key, log_id, document_id, schema_id))

    def insert_fork_proof(
        self, public_key: str, log_id: int, seq_num: int, kept_hash: str, rejected_raw: bytes
    ) -> None:
        proof = {"public_key": public_key, "log_id": log_id, "seq_num": seq_num, "rejected_raw": rejected_raw}
        if self.conn.execute(_FORK_PROOF_EXISTS, proof).first() is None:
            self.conn.execute(insert(t.fork_proofs), {**proof, "kept_hash": kept_hash})

    def fork_proofs(self) -> list[tuple[str, int, int, str, bytes]]:
        rows = self.conn.execute(_FORK_PROOFS)
        return [(r.public_key, int(r.log_id), int(r.seq_num), r.kept_hash, r.rejected_raw) for r in rows]

    # --- operations -------------------------------------------------------------------------------

    def operation(self, operation_id: str) -> StoredOperation | None:
        row = self.conn.execute(_OPERATION, {"id": operation_id}).first()
        return None if row is None else _operation(row)

    def operations_of_document(self, document_id: str) -> list[StoredOperation]:
        return [_operation(r) for r in self.conn.execute(_OPERATIONS_OF_DOCUMENT, {"doc": document_id})]

    def operations_with_field(self, name: str, value: bytes, schema_id: str | None = None) -> list[StoredOperation]:
        """Operations with a field `name` whose canonical CBOR value is `value` (of one schema, if given)."""
        if schema_id is None:
            rows = self.conn.execute(_OPERATIONS_WITH_FIELD, {"name": name, "value": value})
        else:
            rows = self.conn.execute(
                _OPERATIONS_OF_SCHEMA_WITH_FIELD, {"name": name, "value": value, "schema": schema_id}
            )
        return [_operation(r) for r in rows]

    def insert_operation(
        self,
        operation_id: str,
        document_id: str,
        public_key: str,
        action: int,
        schema_id: str,
        previous: str | None,
        fields: list[tuple[str, str, bytes]],
    ) -> None:
        self.conn.execute(
            insert(t.operations), operation_row(operation_id, document_id, public_key, action, schema_id, previous)
        )
        if fields:
            self.conn.execute(insert(t.operation_fields), field_rows(operation_id, fields))

    # --- documents and views ----------------------------------------------------------------------

    def document(self, document_id: str) -> StoredDocument | None:
        row = self.conn.execute(_DOCUMENT, {"id": document_id}).first()
        return None if row is None else _document(row)

    def documents_of_schema(self, schema_id: str) -> list[StoredDocument]:
        return [_document(r) for r in self.conn.execute(_DOCUMENTS_OF_SCHEMA, {"schema": schema_id})]

    def current_views(self, schema_id: str) -> list[tuple[StoredDocument, bytes | None]]:
        """Every document of a schema with the stored fields (canonical CBOR) of its current view."""
        return [(_document(r), r.fields) for r in self.conn.execute(_CURRENT_VIEWS, {"schema": schema_id})]

    def view(self, view_id: str) -> tuple[str, str, bool, bytes | None] | None:
        """(document id, schema id, deleted, canonical CBOR fields) of a stored view."""
        row = self.conn.execute(_VIEW, {"view": view_id}).first()
        return None if row is None else (row.document_id, row.schema_id, row.is_deleted, row.fields)

    def save_document(
        self, doc: StoredDocument, fields: bytes | None, *, new_document: bool = False, new_view: bool = False
    ) -> None:
        """Store a document's current view; the flags skip lookups when the caller knows."""
        values = document_values(doc)
        if new_document or self.conn.execute(UPDATE_DOCUMENT, {"doc_id": doc.id, **values}).rowcount == 0:
            self.conn.execute(insert(t.documents), {"id": doc.id, **values})
        if new_view or self.view(doc.view_id) is None:
            self.conn.execute(
                insert(t.document_views), view_row(doc.view_id, doc.id, doc.schema_id, doc.is_deleted, fields)
            )

    def remove_document(self, document_id: str) -> None:
        """Drop a document's current view (its operations and older views stay): none of its operations
        counts any more."""
        self.conn.execute(delete(t.documents).where(_d.id == bindparam("doc")), {"doc": document_id})

    # --- materialiser tasks -----------------------------------------------------------------------

    def add_task(self, document_id: str) -> None:
        if self.conn.execute(_TASK, {"doc": document_id}).first() is None:
            self.conn.execute(insert(t.materialiser_tasks), {"document_id": document_id})

    def tasks(self) -> list[str]:
        return [str(r.document_id) for r in self.conn.execute(select(t.materialiser_tasks.c.document_id))]

    def finish_task(self, document_id: str) -> None:
        self.conn.execute(
            delete(t.materialiser_tasks).where(t.materialiser_tasks.c.document_id == bindparam("doc")),
            {"doc": document_id},
        )
