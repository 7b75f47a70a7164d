"""The send path of the `Client`: sealing own operations into envelopes, sending them again, queueing
them while a removal is not committed (Q1), and the identity's key packages.

A sent operation: next args from the node -> encrypt (engine) -> sign -> one transaction (MLS journal,
own plaintext, outbox row) -> publish. A crash between the transaction and the publish re-publishes the
stored entry at the next start: an MLS ratchet key is never used twice, and nothing acknowledged is lost.

- rule 4 (issue 17): own operations sealed on a branch that lost (their status "resend", set by a rollback
  or a rejoin) are sealed again in the current epoch (`_resend`); readers show a re-sent copy once.

A removed member is cut off (issue 17 rule 6):
- Q1 while the key group says someone is removed whom MLS still has (or this member's branch lost, J1), new
  operations are not sealed: `send_operation` stores them as "queued" (an own inner row under a local id,
  its outbox state "queued"), and they are sealed and published in the current epoch once the removal is
  committed (or the member re-added), in the order they were sent; the local id then shows its envelope's
  outbox state. Readers know the operation by its envelope id, as for a re-sent one (rule 4).

Edits and deletes link on every side (rule 4): an own operation sent again is known to its readers by the
envelope they opened first, the first one or the newer one (a reader who joined in between cannot open
the other; a queued operation's first envelope is its only one):
- A1 when an own operation is sealed (sent, queued or re-sent), every id in its `previous` that names an own
  operation sent again under a newer envelope is joined by that envelope's id, so each reader finds one it
  holds. The stored plaintext keeps the local ids (the sender's own documents stay whole); the sealed one is
  the same at every sealing while nothing is re-sent in between, so a re-sent copy is still recognised as
  one (`inner_digest`).
- A2 a reader links an operation to the document of the first of its `previous` ids it holds, and builds
  the document from the `previous` ids that are operations of the document, the others (copies it could
  not open, or dropped as re-sent) left out while one remains (`Client._build`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from dataclasses import replace

from keygroups import Level
from node_adapter._client_core import _ClientCore
from node_adapter.client_store import InnerRow, Transaction
from node_adapter.errors import PublishRefused
from p2panda.hash import Hash
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.publish import NextArgs
from p2panda.operation import Operation, decode_operation, encode_operation
from p2panda.operation.value import OperationValue, Relation
from secret_group.engine import GroupRecord
from secret_group.errors import SecretGroupError
from secret_group.mls import MlsError
from secret_group.schemas import ENVELOPE_SCHEMA, KEY_PACKAGE_SCHEMA

__all__ = ["KEY_PACKAGE_TARGET"]

KEY_PACKAGE_TARGET = 3  # single-use key packages kept published, besides the last-resort one


class _Sending(_ClientCore):
    """Sealing, re-sending and queueing own operations; key packages."""

    async def ensure_key_packages(self) -> None:
        """Keep KEY_PACKAGE_TARGET unused key packages and one last-resort package published."""
        async with self._lock:
            await self._flush()
            mine = self.store.key_packages()
            unused = [kp for kp in mine if not kp[2] and not kp[1]]
            has_last_resort = any(kp[1] for kp in mine)
            wanted = [False] * max(0, KEY_PACKAGE_TARGET - len(unused)) + ([] if has_last_resort else [True])
            for last_resort in wanted:
                fields: dict[str, OperationValue] = {
                    "key_package": self.member.key_package(),
                    "last_resort": last_resort,
                }
                args = await self._next_args(None)
                doc_id, entry, payload = self._sign(args, Operation.create(KEY_PACKAGE_SCHEMA.id, fields))
                self._persist(lambda tx, d=doc_id, lr=last_resort: tx.key_package(d, lr), (doc_id, entry, payload))
                await self._flush()

    async def _retire_key_packages(self, ids: Iterable[str]) -> None:
        """Delete the single-use key packages a welcome consumed (under the lock)."""
        mine = {kp[0]: kp for kp in self.store.key_packages()}
        for kp_id in ids:
            kp = mine.get(kp_id)
            if kp is None or kp[2]:
                continue
            with self.store.write() as tx:
                tx.key_package_used(kp_id)
            if not kp[1]:
                view = DocumentViewId([Hash.from_hex(kp_id)])
                with contextlib.suppress(PublishRefused):  # already deleted elsewhere
                    await self._publish_plain(Operation.delete(KEY_PACKAGE_SCHEMA.id, view), view)

    async def _held(self, record: GroupRecord) -> bool:
        """Q1: new operations wait while MLS has someone the key group removed, or our branch lost (J1)."""
        if self.store.lost(record.id) is not None:
            return True
        _owner, levels = await self.access(record.owner)
        readers = {k for k, level in levels.items() if level >= Level.READ} | {self.me}
        return bool({k.hex() for k in self.engine.mls(record).members()} - readers)

    def _queue(self, record: GroupRecord, document_id: str | None, operation: Operation, plaintext: bytes) -> str:
        """Q1: keep an operation to seal later, under a local id (there is no envelope yet to name it)."""
        queued_id = Hash.of(b"queued " + record.id.encode() + plaintext + os.urandom(16)).hex()
        row = InnerRow(
            queued_id,
            record.id,
            document_id or queued_id,
            self.me,
            str(operation.schema_id),
            plaintext,
            self._lamport_of(operation),
            -1,  # not sealed in any epoch: a rollback has nothing of it to send again
        )

        def writes(tx: Transaction) -> None:
            tx.inner(row)
            tx.digest(record.id, self.me, hashlib.sha256(plaintext).digest(), queued_id)
            tx.processed(queued_id, record.id, "envelope", "queued")  # its outbox state reads "queued"

        self._persist(writes)
        return queued_id

    async def _send_queued(self, group_id: str) -> None:
        """Q1: seal and publish what was queued, in order, once nothing holds it any more (under the lock)."""
        record = self.record(group_id)
        queued = self.store.own_envelopes(group_id, "queued")
        if not queued or not record.active or await self._held(record):
            return
        for row in queued:
            args = await self._next_args(None)
            epoch, envelope_id, entry, payload = self._seal_envelope(record, args, row.operation)

            def writes(
                tx: Transaction, row: InnerRow = row, envelope_id: str = envelope_id, epoch: int = epoch
            ) -> None:
                tx.processed(envelope_id, group_id, "envelope", "own")
                tx.processed(row.id, group_id, "envelope", "resent", envelope_id)
                tx.inner_epoch(row.id, epoch)  # its outbox state is now its envelope's

            self._persist(writes, (envelope_id, entry, payload))
            await self._flush()
            record = self.record(group_id)

    def _seal_envelope(self, record: GroupRecord, args: NextArgs, plaintext: bytes) -> tuple[int, str, bytes, bytes]:
        """Encrypt an inner operation for the group's current epoch and sign its envelope: (epoch, envelope
        id, entry, operation). The MLS change stays in memory until the caller persists or discards it."""
        plaintext = self._for_readers(plaintext)
        try:
            epoch, ciphertext = self.engine.seal(record, plaintext)
        except (MlsError, SecretGroupError):
            self._discard()
            raise
        fields: dict[str, OperationValue] = {
            "group": Relation(DocumentId.from_hex(record.id)),
            "epoch": epoch,
            "ciphertext": ciphertext,
        }
        envelope_id, entry, payload = self._sign(args, Operation.create(ENVELOPE_SCHEMA.id, fields))
        return epoch, envelope_id, entry, payload

    def _for_readers(self, plaintext: bytes) -> bytes:
        """A1: `previous` ids of own operations that were sent again, joined by their newest envelope id."""
        operation = decode_operation(plaintext)
        if operation.previous is None:
            return plaintext
        newer: dict[str, str] = {}
        for op_id in operation.previous:
            status = self.store.status(op_id.hex())
            if status is not None and status[0] == "resent" and status[1]:
                newer[op_id.hex()] = status[1]
        if not newer:
            return plaintext
        ids = [*operation.previous, *(Hash.from_hex(i) for i in newer.values())]
        return encode_operation(replace(operation, previous=DocumentViewId(ids)))

    async def _resend(self, group_id: str) -> None:
        """Rule 4: own operations sealed on a branch that lost, sealed again in the current epoch."""
        record = self.record(group_id)
        if not record.active:
            return
        for row in self.store.own_envelopes(group_id, "resend"):
            args = await self._next_args(None)
            _, envelope_id, entry, payload = self._seal_envelope(record, args, row.operation)

            def writes(tx: Transaction, row: InnerRow = row, envelope_id: str = envelope_id) -> None:
                tx.processed(envelope_id, group_id, "envelope", "own")
                tx.processed(row.id, group_id, "envelope", "resent", envelope_id)

            self._persist(writes, (envelope_id, entry, payload))
            await self._flush()
