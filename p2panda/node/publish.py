"""The publish pipeline and next arguments (p2panda 0.8 node rules, data-format.md section 7).

Checks, in the spec's order, all inside the caller's transaction (each raises its own error; nothing is
written unless every check passes):

- P0 the operation is at most `MAX_OPERATION_SIZE` bytes, the one size limit of every node of ours (it
     fits a whole blob piece); replication carries any entry that passes it (`replication/messages.py`).
     The entry decodes and its signature verifies (E1-E12); log id and seq num fit this node's storage.
- P1 seq num: 1 for a new log, else the log's latest + 1. A different entry at a stored position is a
     fork: the first entry stays, the new one is refused and recorded as proof by the caller.
- P2 links: the backlink is the hash of entry seq-1 and the skiplink the hash of entry lipmaa(seq) of the
     same log.
- P3 payload: its size and hash are the ones the entry claims (E13).
- P4 operation: it decodes (OP1-OP10), its schema is known, its fields fit the schema (S1-S4).
- P5 document: a CREATE starts the document named by its own id; otherwise every previous operation is
     stored, all in one document whose schema is the operation's.
- P6 the document has no DELETE.
- P7 log id: a CREATE opens a new log; an UPDATE or DELETE goes into the key's log for the document, or
     opens a new log the first time the key touches it. A new log's id is not yet used by the key.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2panda.entry import Entry, decode_entry, lipmaa, verify_payload
from p2panda.entry.lipmaa import is_skiplink_required
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.errors import (
    AlreadyStored,
    DocumentDeleted,
    DocumentNotFound,
    ForkDetected,
    LinkMismatch,
    LogIdMismatch,
    OperationTooLarge,
    OutOfRange,
    PreviousFromOtherDocument,
    PreviousNotFound,
    SchemaNotAllowed,
    SchemaNotFound,
    SeqNumMismatch,
)
from p2panda.node.materialiser import SchemaRegistry
from p2panda.node.store import Store
from p2panda.operation import Operation, OperationAction, decode_operation
from p2panda.operation.cbor import encode_canonical
from p2panda.operation.value import to_cbor
from p2panda.schema import validate_operation

__all__ = ["NextArgs", "Published", "next_args", "publish", "MAX_OPERATION_SIZE", "MAX_STORABLE"]

MAX_STORABLE = 2**63 - 1
# A blob piece (MAX_BLOB_PIECE_SIZE, 256 000 bytes) with its CBOR framing and schema id, and room to spare.
MAX_OPERATION_SIZE = 300_000


@dataclass(frozen=True, slots=True)
class NextArgs:
    log_id: int
    seq_num: int
    backlink: Hash | None
    skiplink: Hash | None


@dataclass(frozen=True, slots=True)
class Published:
    entry: Entry
    operation: Operation
    document_id: DocumentId
    next_args: NextArgs


def _args_for_log(store: Store, public_key: str, log_id: int) -> NextArgs:
    latest = store.latest_entry(public_key, log_id)
    if latest is None:
        return NextArgs(log_id, 1, None, None)
    return _args_after(store, public_key, log_id, latest.seq_num, Hash.from_hex(latest.hash))


def _args_after(store: Store, public_key: str, log_id: int, seq_num: int, entry_hash: Hash) -> NextArgs:
    """Next args for a log whose latest entry is `entry_hash` at `seq_num`."""
    seq = seq_num + 1
    skiplink = None
    if is_skiplink_required(seq):
        target = store.entry_at(public_key, log_id, lipmaa(seq))
        if target is None:
            raise DocumentNotFound(f"log {log_id} of {public_key} lacks entry {lipmaa(seq)}")
        skiplink = Hash.from_hex(target.hash)
    return NextArgs(log_id, seq, entry_hash, skiplink)


def _new_log_id(store: Store, public_key: str) -> int:
    highest = store.max_log_id(public_key)
    return 0 if highest is None else highest + 1


def document_of_view(store: Store, view_id: DocumentViewId) -> str:
    """The document all operations of `view_id` belong to."""
    documents: set[str] = set()
    for op_id in view_id:
        stored = store.operation(op_id.hex())
        if stored is None:
            raise DocumentNotFound(f"operation {op_id.hex()} of view {view_id} is not stored")
        documents.add(stored.document_id)
    if len(documents) != 1:
        raise PreviousFromOtherDocument(f"view {view_id} spans {len(documents)} documents")
    return documents.pop()


def next_args(store: Store, public_key: PublicKey, view_id: DocumentViewId | None = None) -> NextArgs:
    key = public_key.hex()
    if view_id is None:
        return NextArgs(_new_log_id(store, key), 1, None, None)
    document_id = document_of_view(store, view_id)
    doc = store.document(document_id)
    if doc is not None and doc.is_deleted:
        raise DocumentDeleted(f"document {document_id} is deleted")
    log_id = store.log_for_document(key, document_id)
    if log_id is None:
        return NextArgs(_new_log_id(store, key), 1, None, None)
    return _args_for_log(store, key, log_id)


def check_seq_num(store: Store, entry: Entry) -> None:  # P1
    key = entry.public_key.hex()
    latest = store.latest_entry(key, entry.log_id)
    expected = 1 if latest is None else latest.seq_num + 1
    if entry.seq_num == expected:
        return
    if latest is not None and entry.seq_num <= latest.seq_num:
        stored = store.entry_at(key, entry.log_id, entry.seq_num)
        if stored is not None and stored.hash == entry.hash.hex():
            raise AlreadyStored(f"entry {entry.hash.hex()} is already stored")
        if stored is not None:
            raise ForkDetected(
                f"fork: {key} log {entry.log_id} seq num {entry.seq_num} already holds {stored.hash}, "
                f"refusing {entry.hash.hex()}",
                kept_hash=stored.hash,
                entry=entry,
            )
    raise SeqNumMismatch(
        f"entry's claimed seq num of {entry.seq_num} does not match expected seq num of {expected} "
        f"for log {entry.log_id} of {key}"
    )


def check_links(store: Store, entry: Entry) -> None:  # P2
    key = entry.public_key.hex()
    if entry.backlink is not None:
        back = store.entry_at(key, entry.log_id, entry.seq_num - 1)
        if back is None or back.hash != entry.backlink.hex():
            raise LinkMismatch(
                f"backlink {entry.backlink.hex()} of seq num {entry.seq_num} is not the stored entry "
                f"{back.hash if back else 'none'} at seq num {entry.seq_num - 1}"
            )
    if entry.skiplink is not None:
        target = lipmaa(entry.seq_num)
        skip = store.entry_at(key, entry.log_id, target)
        if skip is None or skip.hash != entry.skiplink.hex():
            raise LinkMismatch(
                f"skiplink {entry.skiplink.hex()} of seq num {entry.seq_num} is not the stored entry "
                f"{skip.hash if skip else 'none'} at seq num {target}"
            )


def resolve_document(store: Store, entry: Entry, operation: Operation) -> str:  # P5, P6
    if operation.action is OperationAction.CREATE:
        return entry.hash.hex()
    assert operation.previous is not None
    documents: set[str] = set()
    for op_id in operation.previous:
        stored = store.operation(op_id.hex())
        if stored is None:
            raise PreviousNotFound(f"previous operation {op_id.hex()} is not stored")
        if stored.schema_id != str(operation.schema_id):
            raise PreviousFromOtherDocument(
                f"previous operation {op_id.hex()} is of schema {stored.schema_id}, not {operation.schema_id}"
            )
        documents.add(stored.document_id)
    if len(documents) != 1:
        raise PreviousFromOtherDocument(
            f"previous operations belong to {len(documents)} documents: {sorted(documents)}"
        )
    document_id = documents.pop()
    doc = store.document(document_id)
    if doc is not None and doc.is_deleted:
        raise DocumentDeleted(f"document {document_id} is deleted and accepts no further operations")
    return document_id


def check_log_id(store: Store, entry: Entry, operation: Operation, document_id: str) -> bool:  # P7
    """Returns True when the entry opens a new log."""
    key = entry.public_key.hex()
    log_document = store.log_document(key, entry.log_id)
    if operation.action is OperationAction.CREATE:
        if log_document is not None or entry.seq_num != 1:
            raise LogIdMismatch(f"a create opens a new log, but log {entry.log_id} of {key} is in use")
        return True
    own_log = store.log_for_document(key, document_id)
    if own_log is not None:
        if own_log != entry.log_id:
            raise LogIdMismatch(f"{key} writes document {document_id} in log {own_log}, not log {entry.log_id}")
        return False
    if log_document is not None:
        raise LogIdMismatch(f"log {entry.log_id} of {key} belongs to document {log_document}")
    return True


def publish(store: Store, registry: SchemaRegistry, entry_bytes: bytes, operation_bytes: bytes) -> Published:
    if len(operation_bytes) > MAX_OPERATION_SIZE:  # P0
        raise OperationTooLarge(f"operation is {len(operation_bytes)} bytes, at most {MAX_OPERATION_SIZE} are accepted")
    entry = decode_entry(entry_bytes)  # P0
    if entry.log_id > MAX_STORABLE or entry.seq_num > MAX_STORABLE:
        raise OutOfRange(f"log id {entry.log_id} or seq num {entry.seq_num} exceeds {MAX_STORABLE}")
    check_seq_num(store, entry)
    check_links(store, entry)
    verify_payload(entry, operation_bytes)  # P3
    operation = decode_operation(operation_bytes)  # P4
    if not registry.is_allowed(str(operation.schema_id)):
        raise SchemaNotAllowed(f"schema {operation.schema_id} is not on this node's allow list")
    schema = registry.get(str(operation.schema_id))
    if schema is None:
        raise SchemaNotFound(f"schema not found: {operation.schema_id}")
    typed = validate_operation(operation, schema)
    document_id = resolve_document(store, entry, operation)
    new_log = check_log_id(store, entry, operation, document_id)

    key = entry.public_key.hex()
    store.insert_entry(entry.hash.hex(), key, entry.log_id, entry.seq_num, entry.raw, operation_bytes)
    if new_log:
        store.insert_log(key, entry.log_id, document_id, str(operation.schema_id))
    fields = [
        (name, str(schema.fields[name]), encode_canonical(to_cbor(value))) for name, value in (typed or {}).items()
    ]
    store.insert_operation(
        entry.hash.hex(),
        document_id,
        key,
        operation.action.code,
        str(operation.schema_id),
        None if operation.previous is None else str(operation.previous),
        fields,
    )
    following = _args_after(store, key, entry.log_id, entry.seq_num, entry.hash)
    return Published(entry, operation, DocumentId.from_hex(document_id), following)
