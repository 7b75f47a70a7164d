"""The receive path of the `Client`: documents from the node, in the right order, into the engine and the
store.

    node --(subscription or sweep)--> parse (D1-D4) --> pending table
    pending --(drain: envelopes of reached epochs first, then the commit on the tip)--> engine (G1-G8)
    engine --> one transaction: MLS journal + group record + processed mark + decrypted operation

Ordering rules of the drain (why they hold):
- C1 the envelopes of an epoch are opened before the commit that ends the epoch is applied, so a member
  catching up across many commits reads every message it was entitled to;
- C2 rival commits are ranked and the client moves towards the winning path (`_client_commits`);
- C3 a commit waits until the key-group changes it names (its causal point) are known here;
- C4 an own envelope or commit is never processed again: it was stored as processed before it was sent;
- C5 within an epoch, a sender's envelopes are opened in the order it sealed them (the log ids of their
  documents, which an author allocates in increasing order), not by document id (a hash): OpenMLS opens
  a sender's messages at most 100 generations out of order, so a reader catching up on more than that in
  id order lost most of them ("Generation is too old"). It costs one `next_args` read per new envelope.

A subscriber the node cut off (it fell behind) or a node that went away: subscribe again and sweep, so
nothing is missed; a node without subscriptions is polled.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from keygroups import Level
from keygroups.schemas import MEMBERSHIP
from node_adapter._client_commits import _Commits
from node_adapter._client_core import _EMBEDDED_PAGE, _PAGE, _decode_envelope, _encode_doc, _refusal, log
from node_adapter.client_store import InnerRow, Transaction
from node_adapter.embedded import EmbeddedNode
from node_adapter.key_groups import KeyGroup
from node_adapter.types import DocumentView
from p2panda.errors import P2PandaError
from p2panda.ids import DocumentId
from p2panda.operation import Operation, OperationAction, decode_operation
from p2panda.operation.value import Relation
from p2panda.schema import Schema, validate_operation
from secret_group.documents import CommitDoc, EnvelopeDoc, GroupDoc
from secret_group.engine import GroupRecord
from secret_group.errors import HistoryUnavailable, MalformedDocument, ReplayedWelcome, SecretGroupError
from secret_group.mls import MlsError
from secret_group.schemas import COMMIT, COMMIT_SCHEMA, ENVELOPE, ENVELOPE_SCHEMA, KEY_PACKAGE, SECRET_GROUP_SCHEMA

__all__ = []


class _Receiving(_Commits):
    """Follow the node (subscription, sweep), park what arrives, drain it in order (C1-C4)."""

    async def _follow(self) -> None:
        """Live changes one by one; when the stream ends (a subscriber that fell behind is cut off by
        the node, or the node went away) subscribe again and sweep, so nothing is missed."""
        live = self._changes is not None
        while True:
            try:
                if not self.synced.is_set():
                    await self.sync()
                    continue
                if self._changes is None:
                    await asyncio.sleep(self._poll_interval)
                    if live:
                        await self._subscribe()
                    await self.sync()
                    continue
                async for change in self._changes:
                    await self._on_change(change.schema_id, change.document_id.hex())
                log.info("change stream ended: subscribing again")
                await self._changes.close()
                self._changes = None
            except asyncio.CancelledError:
                raise
            except (P2PandaError, OSError) as exc:  # the node went away or refused: retry, never crash
                self.last_error = _refusal(exc)
                log.warning("following the node: %s", self.last_error)
                if self._changes is not None:
                    await self._changes.close()
                    self._changes = None

    async def _subscribe(self) -> None:
        self._changes = await self.node.subscribe(frozenset({COMMIT, ENVELOPE, MEMBERSHIP, KEY_PACKAGE}))

    async def _on_change(self, schema_id: str, document_id: str) -> None:
        if schema_id == COMMIT:
            view = await self.node.document(COMMIT_SCHEMA, DocumentId.from_hex(document_id))
            if view is not None:
                async with self._lock:
                    group_id = await self._ingest_commit(view)
                    if group_id is not None:
                        await self._drain(group_id)
        elif schema_id == ENVELOPE:
            view = await self.node.document(ENVELOPE_SCHEMA, DocumentId.from_hex(document_id))
            if view is not None:
                async with self._lock:
                    group_id = await self._ingest_envelope(view)
                    if group_id is not None:
                        await self._drain(group_id)
        elif schema_id in (MEMBERSHIP, KEY_PACKAGE):
            if schema_id == MEMBERSHIP:
                self.forget_access()
            for record in self.store.groups():
                if record.active:
                    self._emit("membership", record.id)
                    await self._schedule_reconcile(record)
                    if schema_id == MEMBERSHIP:
                        async with self._lock:
                            await self._send_queued(record.id)  # Q1: the removal may have been undone

    async def sync(self) -> None:
        """A full sweep: welcomes for this identity, then every commit and envelope of every group."""
        async with self._lock:
            await self._flush()
            welcomed = False
            async for view in self._all(COMMIT_SCHEMA, {"added": {"contains": self.me}}):
                if self.store.status(view.id.hex()) is None:
                    welcomed = await self._ingest_commit(view) is not None or welcomed
            for record in self.store.groups():
                if record.active:
                    await self._sweep(record.id)
        self.synced.set()
        if welcomed:
            await self.ensure_key_packages()

    async def _sweep(self, group_id: str) -> None:
        """Every commit and envelope of a group the node holds, then the drain (under the lock)."""
        known = self.store.known(group_id)  # one read, not two per document of a long history
        async for view in self._all(COMMIT_SCHEMA, {"group": {"eq": group_id}}):
            if view.id.hex() not in known:
                await self._ingest_commit(view)
        async for view in self._all(ENVELOPE_SCHEMA, {"group": {"eq": group_id}}):
            if view.id.hex() not in known:
                await self._ingest_envelope(view)
        await self._drain(group_id)

    async def _all(self, schema: Schema, filter: Mapping[str, Mapping[str, Any]]) -> AsyncIterator[DocumentView]:
        after: str | None = None
        while True:
            first = _EMBEDDED_PAGE if isinstance(self.node, EmbeddedNode) else _PAGE
            page = await self.node.query(schema, filter=filter, first=first, after=after)
            for view in page.documents:
                yield view
            if not page.has_next:
                return
            after = page.end_cursor

    def _refuse_malformed(self, view: DocumentView, kind: str, exc: MalformedDocument) -> None:
        """D1-D4 failed: recorded as refused when it names a group of ours, ignored otherwise."""
        group = (view.fields or {}).get("group")
        if isinstance(group, Relation) and self.store.group(group.document_id.hex()) is not None:
            with self.store.write() as tx:
                tx.processed(view.id.hex(), group.document_id.hex(), kind, "refused", _refusal(exc))
            self._emit("refused", group.document_id.hex(), view.id.hex())

    def _known(self, doc_id: str) -> bool:
        return self.store.status(doc_id) is not None or self.store.is_pending(doc_id)

    async def _ingest_commit(self, view: DocumentView) -> str | None:
        """Park a commit of a known group, or join by its welcome; returns the group to drain."""
        doc_id = view.id.hex()
        if self._known(doc_id):
            return None
        try:
            doc = CommitDoc.parse(doc_id, view.owner.hex(), view.fields)
        except MalformedDocument as exc:
            self._refuse_malformed(view, "commit", exc)
            return None
        record = self.store.group(doc.group)
        if record is None:
            if self.me in doc.added and await self._join(doc):
                await self._sweep(doc.group)  # what arrived before we could read it
                return doc.group
            return None
        with self.store.write() as tx:
            if doc.commit:
                tx.pending(doc.id, doc.group, "commit", doc.epoch, doc.parent, _encode_doc(doc))
            else:  # J1: a rejoin request, kept for J2, never ranked or applied
                tx.processed(doc.id, doc.group, "commit", "request")
            tx.commit_doc(doc.id, doc.group, _encode_doc(doc))
        return doc.group

    async def _ingest_envelope(self, view: DocumentView) -> str | None:
        doc_id = view.id.hex()
        if self._known(doc_id):
            return None
        try:
            doc = EnvelopeDoc.parse(doc_id, view.owner.hex(), view.fields)
        except MalformedDocument as exc:
            self._refuse_malformed(view, "envelope", exc)
            return None
        if self.store.group(doc.group) is None:
            return None
        # C5: OpenMLS opens a sender's messages at most 100 generations out of order, and document ids are
        # hashes: envelopes are opened in their sender's order, the order of the logs it made them in.
        sender_log = (await self.node.next_args(view.owner, view.view_id)).log_id
        with self.store.write() as tx:
            tx.pending(doc.id, doc.group, "envelope", doc.epoch, None, _encode_doc(doc), sender_log)
        return doc.group

    async def _join(self, doc: CommitDoc) -> bool:
        view = await self.node.document(SECRET_GROUP_SCHEMA, DocumentId.from_hex(doc.group))
        if view is None:
            return False  # the group document has not arrived yet; the next sweep tries again
        try:
            group = GroupDoc.parse(doc.group, view.owner.hex(), view.fields)
            record = self.engine.join(group, doc)
        except (MlsError, SecretGroupError) as exc:
            self._discard()
            log.info("welcome of commit %s refused: %s", doc.id, exc)
            if not isinstance(exc, ReplayedWelcome):
                self.last_error = _refusal(exc)
            return False

        items = self.member.group_items(record.mls_id)

        def writes(tx: Transaction) -> None:
            tx.group(record)
            tx.processed(doc.id, doc.group, "commit", "applied")
            tx.commit_doc(doc.id, doc.group, _encode_doc(doc))
            tx.snapshot(record, self._depth(doc.group, doc.id), items, set())

        self._persist(writes)
        await self._retire_key_packages(doc.key_packages)
        self._emit("joined", doc.group, doc.id)
        return True

    async def _drain(self, group_id: str) -> None:
        """Process what is pending for a group in order (C1-C3) until nothing more can be done."""
        levels: dict[str, Level] | None = None
        owner: KeyGroup | None = None
        while True:
            record = self.record(group_id)
            if levels is None or owner is None:
                owner, levels = await self.access(record.owner)
            progressed = False
            for _, _, _, data in self.store.pending(group_id, "envelope"):  # C1
                envelope = _decode_envelope(data)
                if record.active and self.engine.opens_later(record, envelope):
                    continue
                self._open(record, envelope, levels)
                progressed = True
            if await self._converge(self.record(group_id), owner):  # C2
                progressed = True
            if not progressed:
                self._link(group_id)
                await self._resend(group_id)
                await self._send_queued(group_id)  # Q1
                record = self.record(group_id)
                manages = levels.get(self.me) == Level.MANAGE
                if (
                    manages
                    and record.active
                    and self.store.lost(group_id) is None
                    and any(await self._difference(record))
                ):
                    await self._schedule_reconcile(record)  # S3, rule 4: what lost a race happens anyway
                return

    def _document_of_previous(self, operation: Operation) -> str | None:
        """A2: the document of the first `previous` id held here."""
        assert operation.previous is not None
        for op_id in operation.previous:
            document_id = self.store.document_of(op_id.hex())
            if document_id:
                return document_id
        return None

    def _link(self, group_id: str) -> None:
        """Give updates and deletes that arrived before the operation they follow their document."""
        while True:
            linked = 0
            for row in self.store.inner_rows(group_id, document_id=""):
                document_id = self._document_of_previous(decode_operation(row.operation))
                if document_id:
                    with self.store.write() as tx:
                        tx.link(row.id, document_id)
                    linked += 1
            if not linked:
                return

    def _open(self, record: GroupRecord, doc: EnvelopeDoc, levels: Mapping[str, Level]) -> None:
        """Open one envelope and store its inner operation, or record why not."""
        try:
            if doc.author == self.me:
                raise MalformedDocument(f"envelope {doc.id} is our own but was not stored as sent")
            opened = self.engine.open(record, doc, levels)
            row = self._inner_row(record, doc, opened.plaintext)
        except HistoryUnavailable as exc:
            self._discard()
            with self.store.write() as tx:
                tx.processed(doc.id, record.id, "envelope", "unavailable", str(exc))
            return
        except (MlsError, P2PandaError) as exc:
            self._discard()
            with self.store.write() as tx:
                tx.processed(doc.id, record.id, "envelope", "refused", _refusal(exc))
                if isinstance(exc, MlsError):  # maybe sealed on another branch: tried again after a rollback
                    tx.park(doc.id, record.id, doc.epoch, _encode_doc(doc))
            self._emit("refused", record.id, doc.id)
            return
        digest = hashlib.sha256(opened.plaintext).digest()
        if self.store.digest_of(record.id, doc.author, digest) is not None:  # a re-sent copy: shown once

            def duplicate(tx: Transaction) -> None:
                tx.processed(doc.id, record.id, "envelope", "duplicate")

            self._persist(duplicate)
            return

        def writes(tx: Transaction) -> None:
            tx.inner(row)
            tx.digest(record.id, doc.author, digest, doc.id)
            tx.processed(doc.id, record.id, "envelope", "opened")

        self._persist(writes)
        self._emit("message", record.id, doc.id)

    def _inner_row(self, record: GroupRecord, doc: EnvelopeDoc, plaintext: bytes) -> InnerRow:
        operation = decode_operation(plaintext)  # OP1-OP10
        schema = self.schemas.get(str(operation.schema_id))
        if schema is not None:
            validate_operation(operation, schema)  # S1-S4
        document_id = doc.id
        if operation.action is not OperationAction.CREATE:
            # "" until the operation it follows is known here (it may arrive later): see `_link`.
            document_id = self._document_of_previous(operation) or ""
        return InnerRow(
            doc.id,
            record.id,
            document_id,
            doc.author,
            str(operation.schema_id),
            plaintext,
            self._lamport_of(operation),
            doc.epoch,
        )
