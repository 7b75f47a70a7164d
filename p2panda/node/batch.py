"""A write-behind store for ingesting a batch of entries in one transaction.

Replication delivers entries by the thousand; through `Store` each one costs about fifteen statements
(seq num, links, previous operations, log ids, inserts, then the materialiser reads and rewrites the
document), and at ~0.06 ms of SQLAlchemy per statement that alone caps ingest near 1 000 entries/s.
`BatchStore` answers the publish pipeline's point lookups from what the batch itself wrote, keeps the
batch's rows in memory, and writes them with one `executemany` per table when the batch ends. A document
updated a hundred times in a batch is written once; its hundred views are inserted together.

The contract is `Store`'s, unchanged:
- B1 a point lookup (by primary key or unique key) looks at the batch's rows first, then the database;
  a row is in exactly one of the two, so the answer is the one `Store` would give after a flush.
- B2 every other read (lists, joins, aggregates) flushes first, then asks the database.
- B3 writes are counted (`writes`), so a caller can tell whether a failed step wrote anything: the
  publish pipeline checks everything before its first write, so a refused entry leaves no trace here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert

from p2panda.node import tables as t
from p2panda.node.store import (
    UPDATE_DOCUMENT,
    Store,
    StoredDocument,
    StoredEntry,
    StoredOperation,
    document_values,
    entry_row,
    field_rows,
    log_row,
    operation_row,
    view_row,
)

__all__ = ["BatchStore"]


class BatchStore(Store):
    """`Store` with the batch's writes held back until `flush()`; see the module doc (B1-B3)."""

    __slots__ = (
        "_documents",
        "_entries",
        "_entry_hashes",
        "_fields",
        "_latest",
        "_log_of_document",
        "_logs",
        "_operations",
        "_pending_entries",
        "_pending_logs",
        "_views",
        "writes",
    )

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.writes = 0
        self._latest: dict[tuple[str, int], StoredEntry | None] = {}
        self._entries: dict[tuple[str, int, int], StoredEntry] = {}
        self._entry_hashes: dict[str, tuple[str, int, int]] = {}
        self._logs: dict[tuple[str, int], str] = {}
        self._log_of_document: dict[tuple[str, str], int] = {}
        self._operations: dict[str, tuple[StoredOperation, dict[str, Any]]] = {}
        self._fields: list[dict[str, Any]] = []
        # document id -> (current view, whether the database already holds the document)
        self._documents: dict[str, tuple[StoredDocument, bool]] = {}
        self._views: dict[str, tuple[str, str, bool, bytes | None]] = {}
        self._pending_entries: list[dict[str, Any]] = []
        self._pending_logs: list[dict[str, Any]] = []

    # --- B1: point lookups ------------------------------------------------------------------------

    def latest_entry(self, public_key: str, log_id: int) -> StoredEntry | None:
        key = (public_key, log_id)
        if key not in self._latest:
            self._latest[key] = super().latest_entry(public_key, log_id)
        return self._latest[key]

    def entry_at(self, public_key: str, log_id: int, seq_num: int) -> StoredEntry | None:
        held = self._entries.get((public_key, log_id, seq_num))
        return held if held is not None else super().entry_at(public_key, log_id, seq_num)

    def has_entry(self, entry_hash: str) -> bool:
        return entry_hash in self._entry_hashes or super().has_entry(entry_hash)

    def log_document(self, public_key: str, log_id: int) -> str | None:
        held = self._logs.get((public_key, log_id))
        return held if held is not None else super().log_document(public_key, log_id)

    def log_for_document(self, public_key: str, document_id: str) -> int | None:
        held = self._log_of_document.get((public_key, document_id))
        return held if held is not None else super().log_for_document(public_key, document_id)

    def operation(self, operation_id: str) -> StoredOperation | None:
        held = self._operations.get(operation_id)
        return held[0] if held is not None else super().operation(operation_id)

    def document(self, document_id: str) -> StoredDocument | None:
        held = self._documents.get(document_id)
        return held[0] if held is not None else super().document(document_id)

    def view(self, view_id: str) -> tuple[str, str, bool, bytes | None] | None:
        held = self._views.get(view_id)
        return held if held is not None else super().view(view_id)

    # --- B3: writes held back ---------------------------------------------------------------------

    def insert_entry(
        self, entry_hash: str, public_key: str, log_id: int, seq_num: int, raw: bytes, payload: bytes
    ) -> None:
        self.writes += 1
        stored = StoredEntry(entry_hash, seq_num, raw, payload)
        self._entries[(public_key, log_id, seq_num)] = stored
        self._entry_hashes[entry_hash] = (public_key, log_id, seq_num)
        latest = self.latest_entry(public_key, log_id)
        if latest is None or latest.seq_num < seq_num:
            self._latest[(public_key, log_id)] = stored
        self._pending_entries.append(entry_row(entry_hash, public_key, log_id, seq_num, raw, payload))

    def insert_log(self, public_key: str, log_id: int, document_id: str, schema_id: str) -> None:
        self.writes += 1
        self._logs[(public_key, log_id)] = document_id
        self._log_of_document[(public_key, document_id)] = log_id
        self._pending_logs.append(log_row(public_key, log_id, document_id, schema_id))

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
        self.writes += 1
        where = self._entry_hashes.get(operation_id)
        if where is None:
            raise RuntimeError(f"operation {operation_id} inserted before its entry")  # a caller's bug
        entry = self._entries[where]
        stored = StoredOperation(operation_id, document_id, public_key, schema_id, entry.payload, where[1], where[2])
        row = operation_row(operation_id, document_id, public_key, action, schema_id, previous)
        self._operations[operation_id] = (stored, row)
        self._fields += field_rows(operation_id, fields)

    def save_document(
        self, doc: StoredDocument, fields: bytes | None, *, new_document: bool = False, new_view: bool = False
    ) -> None:
        self.writes += 1
        held = self._documents.get(doc.id)
        # Whether the flush updates or inserts: as held, else as the database has it.
        in_database = held[1] if held is not None else not new_document and super().document(doc.id) is not None
        self._documents[doc.id] = (doc, in_database)
        if new_view or self.view(doc.view_id) is None:
            self._views[doc.view_id] = (doc.id, doc.schema_id, doc.is_deleted, fields)

    def insert_fork_proof(
        self, public_key: str, log_id: int, seq_num: int, kept_hash: str, rejected_raw: bytes
    ) -> None:
        self.flush()
        self.writes += 1
        super().insert_fork_proof(public_key, log_id, seq_num, kept_hash, rejected_raw)

    def flush(self) -> None:
        """Write the held rows, in an order the foreign keys accept."""
        conn = self.conn
        if self._pending_entries:
            conn.execute(insert(t.entries), self._pending_entries)
        if self._pending_logs:
            conn.execute(insert(t.logs), self._pending_logs)
        if self._operations:
            conn.execute(insert(t.operations), [row for _, row in self._operations.values()])
        if self._fields:
            conn.execute(insert(t.operation_fields), self._fields)
        inserts, updates = [], []
        for doc, in_database in self._documents.values():
            values = document_values(doc)
            if in_database:
                updates.append({"doc_id": doc.id, **values})
            else:
                inserts.append({"id": doc.id, **values})
        if inserts:
            conn.execute(insert(t.documents), inserts)
        if updates:
            conn.execute(UPDATE_DOCUMENT, updates)
        if self._views:
            conn.execute(
                insert(t.document_views),
                [view_row(v, *held) for v, held in self._views.items()],
            )
        self._entries.clear()
        self._entry_hashes.clear()
        self._logs.clear()
        self._log_of_document.clear()
        self._operations.clear()
        self._fields = []
        self._documents.clear()
        self._views.clear()
        self._pending_entries = []
        self._pending_logs = []
        # `_latest` stays: it is the database's answer now.


def _flushing(name: str) -> Callable[..., Any]:
    method = getattr(Store, name)

    def flushed(self: BatchStore, *args: Any, **kwargs: Any) -> Any:
        self.flush()
        return method(self, *args, **kwargs)

    flushed.__name__ = name
    flushed.__doc__ = method.__doc__
    return flushed


# B2: every other public method of `Store` reads (or writes) the database directly, after a flush.
for _name, _member in list(vars(Store).items()):
    if callable(_member) and not _name.startswith("_") and _name not in vars(BatchStore):
        setattr(BatchStore, _name, _flushing(_name))
