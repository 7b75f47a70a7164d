"""The client's local state in one SQLite file: its MLS state, its groups, what it has processed, the
operations it decrypted, and its outbox.

Every change a step makes is written by `Transaction` in one SQLite transaction (WAL, synchronous=FULL):
the MLS journal (`MlsMember.take_changes`), the group record, the processed marks, decrypted operations
and outbox rows together, so a crash (kill -9) at any point leaves the state of before or after the step,
never a mix. The file is created 0600; with a passphrase it is encrypted (`node_adapter.state_db`).

Convergence (see `secret_group.convergence`): every commit document of a group is kept (`commit_docs`) for
the ranking; `snapshots` holds the group's MLS rows and record after each merge for the last R epochs
(R4), written in the merge's transaction; `parked` keeps envelopes that did not open on this branch, to be
tried again after a rollback; `inner_digest` recognises a re-sent copy of an inner operation; `lost` holds
the groups whose branch lost deeper than R (client J1) and the winning tip a rejoin request named.

Outbox states: `pending` (signed and stored, not yet accepted by the node) -> `sent` (the node accepted
it) or `failed` (the node refused it; `error` says why). Pending rows are published in order at start and
before every new write, so a restart after a crash re-publishes what was stored but not acknowledged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cbor2

from node_adapter import state_db
from secret_group.documents import Mode
from secret_group.engine import GroupRecord

__all__ = ["ClientStore", "Transaction", "InnerRow", "OutboxRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mls (key BLOB PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups (id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS processed (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, reason TEXT
);
CREATE INDEX IF NOT EXISTS processed_status ON processed (group_id, status);
CREATE TABLE IF NOT EXISTS pending (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, kind TEXT NOT NULL, epoch INTEGER NOT NULL,
    parent TEXT, doc BLOB NOT NULL, sender_log INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pending_group ON pending (group_id, kind, epoch);
CREATE TABLE IF NOT EXISTS inner (
    id TEXT PRIMARY KEY, group_id TEXT NOT NULL, document_id TEXT NOT NULL, author TEXT NOT NULL,
    schema_id TEXT NOT NULL, operation BLOB NOT NULL, lamport INTEGER NOT NULL, epoch INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inner_document ON inner (group_id, document_id);
CREATE INDEX IF NOT EXISTS inner_schema ON inner (group_id, schema_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, entry BLOB NOT NULL,
    operation BLOB NOT NULL, state TEXT NOT NULL, error TEXT
);
CREATE TABLE IF NOT EXISTS key_packages (id TEXT PRIMARY KEY, last_resort INTEGER NOT NULL, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS commit_docs (id TEXT PRIMARY KEY, group_id TEXT NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS commit_docs_group ON commit_docs (group_id);
CREATE TABLE IF NOT EXISTS snapshots (
    group_id TEXT NOT NULL, commit_id TEXT NOT NULL, depth INTEGER NOT NULL, items BLOB NOT NULL,
    record BLOB NOT NULL, PRIMARY KEY (group_id, commit_id)
);
CREATE TABLE IF NOT EXISTS parked (id TEXT PRIMARY KEY, group_id TEXT NOT NULL, epoch INTEGER NOT NULL, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lost (group_id TEXT PRIMARY KEY, asked TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inner_digest (
    group_id TEXT NOT NULL, author TEXT NOT NULL, digest BLOB NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (group_id, author, digest)
);
"""


@dataclass(frozen=True, slots=True)
class InnerRow:
    """A decrypted (or own) inner operation; `id` is its envelope's id."""

    id: str
    group_id: str
    document_id: str
    author: str
    schema_id: str
    operation: bytes
    lamport: int
    epoch: int


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    id: str
    entry: bytes
    operation: bytes
    state: str
    error: str | None


def _inner_row(r: tuple[object, ...] | sqlite3.Row) -> InnerRow:
    """An `inner` table row, selected in the column order of `InnerRow`."""
    return InnerRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), bytes(r[5]), int(r[6]), int(r[7]))  # type: ignore[arg-type]


def _encode_record(record: GroupRecord) -> bytes:
    return cbor2.dumps(
        {
            "id": record.id,
            "owner": record.owner,
            "mode": record.mode.value,
            "name": record.name,
            "tip": record.tip,
            "joined_epoch": record.joined_epoch,
            "active": record.active,
            "secrets": sorted(record.secrets.items()),
            "removed": sorted(record.removed.items()),
        },
        canonical=True,
    )


def _decode_record(data: bytes) -> GroupRecord:
    v = cbor2.loads(data)
    return GroupRecord(
        v["id"],
        v["owner"],
        Mode(v["mode"]),
        v["name"],
        v["tip"],
        v["joined_epoch"],
        v["active"],
        {int(e): bytes(s) for e, s in v["secrets"]},
        {str(k): int(e) for k, e in v["removed"]},
    )


class Transaction:
    """The writes of one step; applied together by `ClientStore.write`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def mls(self, changes: Iterable[tuple[bytes, bytes | None]]) -> None:
        for key, value in changes:
            if value is None:
                self._conn.execute("DELETE FROM mls WHERE key = ?", (key,))
            else:
                self._conn.execute("INSERT OR REPLACE INTO mls (key, value) VALUES (?, ?)", (key, value))

    def group(self, record: GroupRecord) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO groups (id, record) VALUES (?, ?)", (record.id, _encode_record(record))
        )

    def processed(self, doc_id: str, group_id: str, kind: str, status: str, reason: str | None = None) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO processed (id, group_id, kind, status, reason) VALUES (?, ?, ?, ?, ?)",
            (doc_id, group_id, kind, status, reason),
        )
        self._conn.execute("DELETE FROM pending WHERE id = ?", (doc_id,))

    def pending(
        self, doc_id: str, group_id: str, kind: str, epoch: int, parent: str | None, doc: bytes, sender_log: int = 0
    ) -> None:
        """`sender_log`: the log id of the document in its author's logs; an author's later documents have
        higher ones, so within an epoch it is the order in which the sender sealed its envelopes."""
        self._conn.execute(
            "INSERT OR IGNORE INTO pending (id, group_id, kind, epoch, parent, doc, sender_log)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (doc_id, group_id, kind, epoch, parent, doc, sender_log),
        )

    def inner(self, row: InnerRow) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO inner (id, group_id, document_id, author, schema_id, operation, lamport, epoch)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row.id, row.group_id, row.document_id, row.author, row.schema_id, row.operation, row.lamport, row.epoch),
        )
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('lamport', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            (row.lamport,),
        )

    def inner_epoch(self, operation_id: str, epoch: int) -> None:
        self._conn.execute("UPDATE inner SET epoch = ? WHERE id = ?", (epoch, operation_id))

    def link(self, operation_id: str, document_id: str) -> None:
        self._conn.execute("UPDATE inner SET document_id = ? WHERE id = ?", (document_id, operation_id))

    def outbox(self, doc_id: str, entry: bytes, operation: bytes) -> None:
        self._conn.execute(
            "INSERT INTO outbox (id, entry, operation, state) VALUES (?, ?, ?, 'pending')", (doc_id, entry, operation)
        )

    def key_package(self, doc_id: str, last_resort: bool) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO key_packages (id, last_resort, used) VALUES (?, ?, 0)", (doc_id, int(last_resort))
        )

    def commit_doc(self, doc_id: str, group_id: str, doc: bytes) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO commit_docs (id, group_id, doc) VALUES (?, ?, ?)", (doc_id, group_id, doc)
        )

    def snapshot(self, record: GroupRecord, depth: int, items: list[tuple[bytes, bytes]], kept: set[str]) -> None:
        """R4: the snapshot of `record.tip`, and only the `kept` ones of the group besides."""
        self._conn.execute(
            "INSERT OR REPLACE INTO snapshots (group_id, commit_id, depth, items, record) VALUES (?, ?, ?, ?, ?)",
            (record.id, record.tip, depth, cbor2.dumps(items), _encode_record(record)),
        )
        for (commit_id,) in list(
            self._conn.execute("SELECT commit_id FROM snapshots WHERE group_id = ?", (record.id,))
        ):
            if commit_id not in kept and commit_id != record.tip:
                self._conn.execute("DELETE FROM snapshots WHERE group_id = ? AND commit_id = ?", (record.id, commit_id))

    def park(self, doc_id: str, group_id: str, epoch: int, doc: bytes) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO parked (id, group_id, epoch, doc) VALUES (?, ?, ?, ?)",
            (doc_id, group_id, epoch, doc),
        )

    def unpark(self, group_id: str) -> None:
        """After a rollback: parked envelopes wait again (they may open on the branch moved to)."""
        rows = list(self._conn.execute("SELECT id, epoch, doc FROM parked WHERE group_id = ?", (group_id,)))
        for doc_id, epoch, doc in rows:
            self._conn.execute("DELETE FROM processed WHERE id = ?", (doc_id,))
            self.pending(str(doc_id), group_id, "envelope", int(epoch), None, bytes(doc))
        self._conn.execute("DELETE FROM parked WHERE group_id = ?", (group_id,))

    def digest(self, group_id: str, author: str, digest: bytes, doc_id: str) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO inner_digest (group_id, author, digest, id) VALUES (?, ?, ?, ?)",
            (group_id, author, digest, doc_id),
        )

    def set_status(self, doc_id: str, status: str, reason: str | None = None) -> None:
        self._conn.execute("UPDATE processed SET status = ?, reason = ? WHERE id = ?", (status, reason, doc_id))

    def lost(self, group_id: str, asked: str = "") -> None:
        """J1: the group's branch lost deeper than R; `asked` is the winning tip a rejoin request named."""
        self._conn.execute("INSERT OR REPLACE INTO lost (group_id, asked) VALUES (?, ?)", (group_id, asked))

    def found(self, group_id: str) -> None:
        """J3: re-added (or the group left): the group is no longer lost."""
        self._conn.execute("DELETE FROM lost WHERE group_id = ?", (group_id,))

    def key_package_used(self, doc_id: str) -> None:
        self._conn.execute("UPDATE key_packages SET used = 1 WHERE id = ?", (doc_id,))


class ClientStore:
    """One client's state file. Reads return None for absent rows; only I/O failures raise."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        # Encrypted at rest (SQLCipher) when a key is given: see `node_adapter.state_db`.
        self._conn = state_db.connect(path, key)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.executescript(_SCHEMA)
        columns = {str(r[1]) for r in self._conn.execute("PRAGMA table_info(pending)")}
        if "sender_log" not in columns:  # a state file of an earlier build
            self._conn.execute("ALTER TABLE pending ADD COLUMN sender_log INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """One transaction: all of the step's writes or none."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield Transaction(self._conn)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- reads ------------------------------------------------------------------------------------

    def mls_items(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(k), bytes(v)) for k, v in self._conn.execute("SELECT key, value FROM mls")]

    def lamport(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'lamport'").fetchone()
        return int(row[0]) if row else 0

    def groups(self) -> list[GroupRecord]:
        return [_decode_record(bytes(r[0])) for r in self._conn.execute("SELECT record FROM groups ORDER BY id")]

    def group(self, group_id: str) -> GroupRecord | None:
        row = self._conn.execute("SELECT record FROM groups WHERE id = ?", (group_id,)).fetchone()
        return _decode_record(bytes(row[0])) if row else None

    def status(self, doc_id: str) -> tuple[str, str | None] | None:
        row = self._conn.execute("SELECT status, reason FROM processed WHERE id = ?", (doc_id,)).fetchone()
        return (str(row[0]), row[1]) if row else None

    def known(self, group_id: str) -> set[str]:
        """Ids of the group's documents processed or pending here."""
        rows = self._conn.execute(
            "SELECT id FROM processed WHERE group_id = ? UNION SELECT id FROM pending WHERE group_id = ?",
            (group_id, group_id),
        )
        return {str(r[0]) for r in rows}

    def is_pending(self, doc_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM pending WHERE id = ?", (doc_id,)).fetchone() is not None

    def pending(self, group_id: str, kind: str) -> list[tuple[str, int, str | None, bytes]]:
        return [
            (str(r[0]), int(r[1]), r[2], bytes(r[3]))
            for r in self._conn.execute(
                "SELECT id, epoch, parent, doc FROM pending WHERE group_id = ? AND kind = ?"
                " ORDER BY epoch, sender_log, id",
                (group_id, kind),
            )
        ]

    def statuses(self, group_id: str, kind: str) -> list[tuple[str, str, str | None]]:
        return [
            (str(r[0]), str(r[1]), r[2])
            for r in self._conn.execute(
                "SELECT id, status, reason FROM processed WHERE group_id = ? AND kind = ? ORDER BY id",
                (group_id, kind),
            )
        ]

    def applied_commits(self, group_id: str) -> set[str]:
        return {
            str(r[0])
            for r in self._conn.execute(
                "SELECT id FROM processed WHERE group_id = ? AND kind = 'commit' AND status = 'applied'",
                (group_id,),
            )
        }

    def inner_rows(
        self, group_id: str, *, document_id: str | None = None, schema_id: str | None = None
    ) -> list[InnerRow]:
        sql = "SELECT id, group_id, document_id, author, schema_id, operation, lamport, epoch FROM inner WHERE group_id = ?"
        args: list[str] = [group_id]
        if document_id is not None:
            sql += " AND document_id = ?"
            args.append(document_id)
        if schema_id is not None:
            sql += " AND schema_id = ?"
            args.append(schema_id)
        return [_inner_row(r) for r in self._conn.execute(sql, args)]

    def inner_after(self, counter: int) -> list[tuple[int, str, str, str]]:
        """(counter, group id, document id, schema id) of the inner operations stored after `counter`, in
        order. The counter is the row's rowid: rows are never deleted, so it only grows (a durable cursor
        for indexes built from the decrypted operations, such as the chat's)."""
        rows = self._conn.execute(
            "SELECT rowid, group_id, document_id, schema_id FROM inner WHERE rowid > ? ORDER BY rowid", (counter,)
        )
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def document_of(self, operation_id: str) -> str | None:
        """The document an inner operation belongs to; None when unknown or not linked yet."""
        row = self._conn.execute("SELECT document_id FROM inner WHERE id = ?", (operation_id,)).fetchone()
        return str(row[0]) if row and row[0] else None

    def lost(self, group_id: str) -> str | None:
        """J1: None unless the group's branch lost; else the winning tip its rejoin request named ("": none yet)."""
        row = self._conn.execute("SELECT asked FROM lost WHERE group_id = ?", (group_id,)).fetchone()
        return str(row[0]) if row else None

    def outbox(self, state: str | None = None) -> list[OutboxRow]:
        sql = "SELECT seq, id, entry, operation, state, error FROM outbox"
        rows = self._conn.execute(
            sql + " WHERE state = ? ORDER BY seq" if state else sql + " ORDER BY seq", (state,) if state else ()
        )
        return [OutboxRow(int(r[0]), str(r[1]), bytes(r[2]), bytes(r[3]), str(r[4]), r[5]) for r in rows]

    def outbox_state(self, doc_id: str) -> tuple[str, str | None] | None:
        """An own operation's outbox state; a queued one (client Q1) is "queued", then its envelope's."""
        row = self._conn.execute("SELECT state, error FROM outbox WHERE id = ?", (doc_id,)).fetchone()
        if row:
            return str(row[0]), row[1]
        status = self.status(doc_id)
        if status == ("queued", None):
            return "queued", None
        if status is not None and status[0] == "resent" and status[1]:
            row = self._conn.execute("SELECT state, error FROM outbox WHERE id = ?", (status[1],)).fetchone()
            return (str(row[0]), row[1]) if row else None
        return None

    def set_outbox_state(self, doc_id: str, state: str, error: str | None = None) -> None:
        self._conn.execute("UPDATE outbox SET state = ?, error = ? WHERE id = ?", (state, error, doc_id))

    def commit_docs(self, group_id: str) -> list[bytes]:
        return [bytes(r[0]) for r in self._conn.execute("SELECT doc FROM commit_docs WHERE group_id = ?", (group_id,))]

    def snapshots(self, group_id: str) -> dict[str, tuple[int, list[tuple[bytes, bytes]], GroupRecord]]:
        out = {}
        for commit_id, depth, items, record in self._conn.execute(
            "SELECT commit_id, depth, items, record FROM snapshots WHERE group_id = ?", (group_id,)
        ):
            rows = [(bytes(k), bytes(v)) for k, v in cbor2.loads(items)]
            out[str(commit_id)] = (int(depth), rows, _decode_record(bytes(record)))
        return out

    def snapshot_depths(self, group_id: str) -> dict[str, int]:
        rows = self._conn.execute("SELECT commit_id, depth FROM snapshots WHERE group_id = ?", (group_id,))
        return {str(r[0]): int(r[1]) for r in rows}

    def digest_of(self, group_id: str, author: str, digest: bytes) -> str | None:
        row = self._conn.execute(
            "SELECT id FROM inner_digest WHERE group_id = ? AND author = ? AND digest = ?", (group_id, author, digest)
        ).fetchone()
        return str(row[0]) if row else None

    def own_envelopes(self, group_id: str, status: str) -> list[InnerRow]:
        """Inner rows whose envelope has `status` (e.g. "resend"), by one indexed join: this runs on every
        drain, so it must not cost a query per message of the history."""
        rows = self._conn.execute(
            "SELECT i.id, i.group_id, i.document_id, i.author, i.schema_id, i.operation, i.lamport, i.epoch"
            " FROM processed p JOIN inner i ON i.id = p.id"
            " WHERE p.group_id = ? AND p.status = ? ORDER BY i.rowid",
            (group_id, status),
        )
        return [_inner_row(r) for r in rows]

    def key_packages(self) -> list[tuple[str, bool, bool]]:
        return [
            (str(r[0]), bool(r[1]), bool(r[2]))
            for r in self._conn.execute("SELECT id, last_resort, used FROM key_packages ORDER BY id")
        ]
