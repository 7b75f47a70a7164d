"""Membership commits of the `Client`: the difference between the owner key group and the MLS members,
committed by a manager (`_reconcile`), staggered between managers (S1-S3), with the rejoin requests to
honour (J2).

Commit staggering (issue 17 rule 5: in a connected group one commit per epoch is the normal case):
- S1 a manager that changes the key group itself (`add`, `remove`, `change_member`) commits at once. A
  membership difference it did not make (a key-group change or a key package arriving) is committed by the
  managers that are MLS members in turn: ranked by sha256(tip, key), the k-th (from 0) waits (k+1)*STAGGER
  seconds (the wait before the first leaves the changing manager's own commit time to arrive);
- S2 a waiting manager cancels if a commit naming the tip it waited on arrived meanwhile, or its tip moved;
- S3 one waiting reconcile per group at a time; it commits the difference as the key group is when it fires.
  A drain that leaves a difference (a commit lost a race, a rejoin request arrived) schedules one too (rule 4).

Rejoin, the manager's side:
- J2 a manager on the winning path commits open requests (`open_rejoins`) of keys with read level: the
  requester's stale leaf is removed first if it has one, then it is added with the requested key package.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

from keygroups import Level
from node_adapter._client_core import _PAGE, _decode_commit, _encode_doc, _keys, _path, _refusal, log
from node_adapter._client_send import _Sending
from node_adapter.client_store import Transaction
from p2panda.errors import P2PandaError
from p2panda.ids import DocumentId
from p2panda.operation import Operation
from p2panda.operation.value import Relation
from secret_group.convergence import RejoinRequest, keep, open_rejoins
from secret_group.documents import CommitDoc, KeyPackageDoc
from secret_group.engine import GroupRecord
from secret_group.errors import MalformedDocument, NotAuthorised, NotMember, SecretGroupError
from secret_group.mls import MlsError
from secret_group.schemas import COMMIT_SCHEMA, KEY_PACKAGE_SCHEMA

__all__ = ["STAGGER"]

STAGGER = 0.5  # seconds between the managers' background reconciles (S1)


class _Membership(_Sending):
    """Reconcile the key group into MLS, staggered between managers (S1-S3); honour rejoin requests (J2)."""

    async def _reconcile(self, group_id: str, *, rotate: bool = False) -> bool:
        self.forget_access()  # act on the key group as the node has it now
        record = self.record(group_id)
        if not record.active:
            if rotate:
                raise NotMember(f"{self.me} is no longer a member of group {group_id}")
            return False
        if self.store.lost(group_id) is not None:  # J1: never commit on a branch that lost
            if rotate:
                raise NotMember(f"{self.me} waits to be re-added to group {group_id}: its branch lost")
            return False
        owner, _levels = await self.access(record.owner)
        if _keys(owner.state.members).get(self.me) != Level.MANAGE:
            if rotate:
                raise NotAuthorised(f"{self.me} does not manage key group {record.owner}")
            return False
        removes, adds = await self._difference(record)
        if not adds and not removes and not rotate:
            return False
        await self._flush()
        args = await self._next_args(None)
        try:
            planned = self.engine.commit(record, adds, removes, tuple(sorted(owner.state.tips)))
        except (MlsError, SecretGroupError):
            self._discard()
            raise
        fields = dict(planned.fields)
        fields["group"] = Relation(DocumentId.from_hex(group_id))
        commit_id, entry, payload = self._sign(args, Operation.create(COMMIT_SCHEMA.id, fields))  # type: ignore[arg-type]
        new_record = replace(planned.record, tip=commit_id)
        own = CommitDoc(
            commit_id,
            self.me,
            group_id,
            record.tip,
            int(planned.fields["epoch"]),  # type: ignore[call-overload]
            bytes(planned.fields["commit"]),  # type: ignore[call-overload]
            bytes(planned.fields["welcome"]) or None,  # type: ignore[call-overload]
            planned.added,
            tuple(kp.id for kp in adds),
            tuple(sorted(owner.state.tips)),
            bytes(planned.fields["handover"]) or None,  # type: ignore[call-overload]
        )
        items = self.member.group_items(new_record.mls_id)
        depth = self._depth(group_id, record.tip) + 1
        kept = keep(self.store.snapshot_depths(group_id) | {commit_id: depth}, depth)

        def writes(tx: Transaction) -> None:
            tx.group(new_record)
            tx.processed(commit_id, group_id, "commit", "applied")
            tx.commit_doc(commit_id, group_id, _encode_doc(own))
            tx.snapshot(new_record, depth, items, kept)

        self._persist(writes, (commit_id, entry, payload))
        await self._flush()
        self._emit("commit", group_id, commit_id)
        if removes and (await self._difference(self.record(group_id)))[1]:  # the additions, in a commit of their own
            await self._reconcile(group_id)
        await self._send_queued(group_id)  # Q1: the removal is committed
        return True

    async def _difference(self, record: GroupRecord) -> tuple[list[str], list[KeyPackageDoc]]:
        """What a commit would change: the MLS members to remove, else the key packages of those to add
        (members without a published key package stay pending; removals first, alone: MixedCommit)."""
        _owner, levels = await self.access(record.owner)
        current = {k.hex() for k in self.engine.mls(record).members()}
        wanted = {k for k, level in levels.items() if level >= Level.READ} | {self.me}
        rejoins = {r.author: r.key_package for r in self._open_rejoins(record) if r.author in wanted}  # J2
        removes = sorted((current - wanted) | (current & set(rejoins)))
        adds: list[KeyPackageDoc] = []
        for key in sorted(wanted - current) if not removes else ():
            package = await self._requested_package(key, rejoins[key]) if key in rejoins else None
            package = package or await self._key_package_of(key)
            if package is not None:
                adds.append(package)
        return removes, adds

    def _open_rejoins(self, record: GroupRecord) -> list[RejoinRequest]:
        """J2: rejoin requests naming a commit on our path that no commit below it honoured."""
        docs = [_decode_commit(b) for b in self.store.commit_docs(record.id)]
        requests = [
            RejoinRequest(d.id, d.author, d.parent, d.key_packages[0])
            for d in docs
            if not d.commit and len(d.key_packages) == 1
        ]
        if not requests:
            return []
        path = _path(record.id, record.tip, {d.id: d for d in docs if d.commit})
        if path is None:
            return []
        by_id = {d.id: d for d in docs}
        return open_rejoins(requests, path, {c: by_id[c].added for c in path[1:]})

    async def _requested_package(self, key: str, package_id: str) -> KeyPackageDoc | None:
        view = await self.node.document(KEY_PACKAGE_SCHEMA, DocumentId.from_hex(package_id))
        if view is None:
            return None  # not here yet (or deleted: used by a welcome): another package of the key serves
        try:
            package = KeyPackageDoc.parse(view.id.hex(), view.owner.hex(), view.fields)
        except MalformedDocument as exc:
            log.info("skipping requested key package: %s", exc)
            return None
        self.engine.check_key_package(package, key)
        return package

    async def _key_package_of(self, key: str) -> KeyPackageDoc | None:
        """A key package `key` published: the lowest-id single-use one, else its last-resort one."""
        page = await self.node.query(KEY_PACKAGE_SCHEMA, meta={"owner": {"eq": key}}, first=_PAGE)
        packages = []
        for view in page.documents:
            try:
                packages.append(KeyPackageDoc.parse(view.id.hex(), view.owner.hex(), view.fields))
            except MalformedDocument as exc:
                log.info("skipping key package: %s", exc)
        packages.sort(key=lambda p: (p.last_resort, p.id))
        for package in packages:
            self.engine.check_key_package(package, key)
            return package
        return None

    async def _schedule_reconcile(self, record: GroupRecord) -> None:
        """S1-S3: a membership difference this client did not make is committed by one manager, staggered."""
        if record.id in self._staggered or self.store.lost(record.id) is not None:
            return  # S3: one waiting reconcile per group; it looks at the key group as it is when it fires
        rank = await self._stagger_rank(record)
        if rank is None:
            return
        task = asyncio.create_task(self._staggered_reconcile(record.id, record.tip, (rank + 1) * self._stagger))
        self._staggered[record.id] = task
        task.add_done_callback(lambda _task: self._staggered.pop(record.id, None))

    async def _staggered_reconcile(self, group_id: str, parent: str, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            async with self._lock:
                record = self.record(group_id)
                if record.tip == parent and not self._has_child(group_id, parent):
                    try:
                        await self._reconcile(group_id)
                    except (P2PandaError, MlsError, OSError) as exc:  # a background step: recorded, retried later
                        self.last_error = _refusal(exc)
                        log.warning("staggered reconcile of %s: %s", group_id, self.last_error)
                    return
                # S2: a commit on that parent arrived; wait again on the new tip while a difference remains.
                rank = await self._stagger_rank(record) if record.active else None
                if rank is None or not any(await self._difference(record)):
                    return
                parent, delay = record.tip, (rank + 1) * self._stagger

    def _has_child(self, group_id: str, parent: str) -> bool:
        docs = (_decode_commit(b) for b in self.store.commit_docs(group_id))
        return any(d.parent == parent and d.commit for d in docs)  # a rejoin request is no commit (J1)

    async def _stagger_rank(self, record: GroupRecord) -> int | None:
        """S1: this client's place among the managers that are MLS members, ordered by a hash of the tip
        and their key (so the first to act changes from epoch to epoch), or None if it does not manage."""
        owner, _ = await self.access(record.owner)
        managers = {k for k, level in _keys(owner.state.members).items() if level == Level.MANAGE}
        current = {k.hex() for k in self.engine.mls(record).members()}
        current -= {r.author for r in self._open_rejoins(record)}  # J2: they have no state to commit with
        order = sorted(managers & current, key=lambda k: hashlib.sha256(f"{record.tip}:{k}".encode()).digest())
        return order.index(self.me) if self.me in order else None
