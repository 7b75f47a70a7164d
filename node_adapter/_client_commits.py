"""The commit tree of a group as the `Client` walks it: one step towards the winning path at a time
(C2, `secret_group.convergence`): apply the next commit, roll back to a snapshot and replay, or rejoin.

- C2 rival commits are ranked by `secret_group.convergence` (K1): the client applies (R1), rolls back to a
  snapshot and replays (R2, R5), or rejoins (R3, J1 and J3 below) towards the winning path;
- C3 a commit waits until the key-group changes it names (its causal point) are known here;
- R4 a snapshot is written in the transaction of the merge that makes it.

Rejoin (issue 17 rule 3 beyond R, R3 of `secret_group.convergence`), the member's side:
- J1 a member whose branch lost deeper than its snapshots stops sending and committing on it, and publishes
  a rejoin request: an `mls_commit` document with an empty MLS commit, naming the winning tip it saw as
  `parent` and a fresh key package of its own in `key_packages` (once per winning tip). Requests are never
  ranked or applied.
- J3 the requester joins by the welcome of the commit that re-adds it (its lost state dropped) and re-sends
  its own operations sealed on the losing branch.
- J4 a member whose branch lost while the key group no longer gives it read level (removed meanwhile) asks
  for nothing: its state of the lost branch is dropped and the group shows as left, as for a removed member.

Whether a group's branch lost (and the tip a request named) is kept in the client store (`lost`), written
by the step that decides it, so a restart neither commits nor sends on the lost branch before its first
sweep, nor asks again at a tip it asked at.
"""

from __future__ import annotations

from dataclasses import replace

from keygroups import Level
from node_adapter._client_core import _decode_commit, _encode_doc, _keys, _path, _readers, _refusal, log
from node_adapter._client_members import _Membership
from node_adapter.client_store import Transaction
from node_adapter.key_groups import KeyGroup
from p2panda.ids import DocumentId
from p2panda.operation import Operation
from p2panda.operation.value import OperationValue, Relation
from secret_group.convergence import CommitInfo, R, keep, plan, winning_path
from secret_group.documents import CommitDoc, GroupDoc
from secret_group.engine import GroupRecord
from secret_group.errors import SecretGroupError
from secret_group.mls import MlsError
from secret_group.schemas import COMMIT_SCHEMA, KEY_PACKAGE_SCHEMA, SECRET_GROUP_SCHEMA

__all__ = []


class _Commits(_Membership):
    """Converge on the winning path: apply, roll back and replay, or rejoin (C2, C3, J1, J3)."""

    async def _converge(self, record: GroupRecord, owner: KeyGroup) -> bool:
        """C2 (`secret_group.convergence`): one step towards the winning path; False when there is none."""
        group_id = record.id
        docs = {d.id: d for d in (_decode_commit(b) for b in self.store.commit_docs(group_id)) if d.commit}  # J1
        infos = []
        for doc in docs.values():
            state = owner.state_at(doc.key_group_tips)
            if state is None:
                continue  # C3
            parent = docs.get(doc.parent)
            before = owner.state_at(parent.key_group_tips) if parent is not None else None
            removes = before is not None and bool(_readers(before) - _readers(state))
            status = self.store.status(doc.id)
            invalid = status is not None and status[0] == "refused"
            manages = _keys(state.members).get(doc.author) == Level.MANAGE
            infos.append(CommitInfo(doc.id, doc.parent, doc.author, removes, manages, invalid))
        winner = winning_path(group_id, infos)
        applied = _path(group_id, record.tip, docs)
        if applied is None:
            return False
        depths = self.store.snapshot_depths(group_id)
        decision = plan(applied, winner, depths)
        if decision.kind == "rollback":
            assert decision.restore is not None
            self._rollback(record, decision.restore, len(applied) - 1)
            return True
        if decision.kind == "lost":  # R3: joined on (or left by) a branch that lost: join the winner's welcome
            if self.store.lost(group_id) is None:  # J1, kept in the store: a restart knows it before any sweep
                with self.store.write() as tx:
                    tx.lost(group_id)
            welcomes = [c for c in winner[1:] if c not in applied and self.me in docs[c].added]
            if welcomes and await self._rejoin(record, docs[welcomes[-1]], winner, applied):
                return True
            _owner, levels = await self.access(record.owner)
            if levels.get(self.me, 0) < Level.READ:  # J4: removed meanwhile, nothing to ask for
                if record.active:
                    self._leave_lost(record)
                return False
            await self._ask_rejoin(record, winner, owner)
            self.last_error = f"group {group_id}: our branch lost deeper than {R} commits; waiting to be re-added"
            return False
        if decision.kind == "idle" or not record.active:
            return False
        next_id = decision.replay[0]
        if next_id in depths:  # R5: applied before, or our own: restore it
            self._restore(group_id, next_id)
            return True
        return self._apply(record, docs[next_id], owner, len(applied))

    def _restore(self, group_id: str, commit_id: str, resend_after: bool = False) -> None:
        _depth, items, snapshot = self.store.snapshots(group_id)[commit_id]
        self.member.restore_group(snapshot.mls_id, items)
        epoch = self.engine.mls(snapshot).epoch if snapshot.active else -1
        own = [r for r in self.store.inner_rows(group_id) if r.author == self.me and r.epoch > epoch]

        def writes(tx: Transaction) -> None:
            tx.group(snapshot)
            tx.processed(commit_id, group_id, "commit", "applied")
            if resend_after:
                tx.unpark(group_id)
                for row in own:  # sealed on the branch left: sent again on the winner (rule 4)
                    if self.store.status(row.id) == ("own", None):
                        tx.set_status(row.id, "resend")

        self._persist(writes)

    def _rollback(self, record: GroupRecord, fork: str, tip_depth: int) -> None:
        """R2: the tip's snapshot again (its ratchets as far as they got, R5), then the fork's state."""
        if record.active:
            items = self.member.group_items(record.mls_id)
            kept = set(self.store.snapshot_depths(record.id))
            self._persist(lambda tx: tx.snapshot(record, tip_depth, items, kept))
        self._restore(record.id, fork, resend_after=True)
        self._emit("rollback", record.id, fork)

    def _leave_lost(self, record: GroupRecord) -> None:
        """J4: the state of the lost branch goes (as on a rejoin, R3) and the group shows as left."""
        self.member.restore_group(record.mls_id, [])
        self._persist(lambda tx: tx.group(replace(record, active=False)))
        self._emit("removed", record.id)
        log.info("group %s: our branch lost and the key group removed us meanwhile", record.id)

    async def _ask_rejoin(self, record: GroupRecord, winner: list[str], owner: KeyGroup) -> None:
        """J1: a fresh key package and a rejoin request naming the winning tip, once per tip (the tip asked at
        is stored in the request's transaction, so a restart does not ask again), while the key group still
        gives us read level (J4)."""
        tip = winner[-1]
        if self.store.lost(record.id) == tip:
            return
        package: dict[str, OperationValue] = {"key_package": self.member.key_package(), "last_resort": False}
        args = await self._next_args(None)
        package_id, entry, payload = self._sign(args, Operation.create(KEY_PACKAGE_SCHEMA.id, package))
        self._persist(lambda tx: tx.key_package(package_id, False), (package_id, entry, payload))
        await self._flush()
        tips = tuple(sorted(owner.state.tips))
        fields: dict[str, OperationValue] = {
            "group": Relation(DocumentId.from_hex(record.id)),
            "parent": tip,
            "epoch": len(winner) - 1,
            "commit": b"",
            "welcome": b"",
            "added": "",
            "key_packages": package_id,
            "key_group_tips": " ".join(tips),
            "handover": b"",
        }
        args = await self._next_args(None)
        request_id, entry, payload = self._sign(args, Operation.create(COMMIT_SCHEMA.id, fields))
        doc = CommitDoc(request_id, self.me, record.id, tip, len(winner) - 1, b"", None, (), (package_id,), tips, None)

        def writes(tx: Transaction) -> None:
            tx.processed(request_id, record.id, "commit", "request")
            tx.commit_doc(request_id, record.id, _encode_doc(doc))
            tx.lost(record.id, tip)

        self._persist(writes, (request_id, entry, payload))
        await self._flush()
        log.info("group %s: our branch lost; asked to be re-added at %s", record.id, tip)

    async def _rejoin(self, record: GroupRecord, doc: CommitDoc, winner: list[str], applied: list[str]) -> bool:
        view = await self.node.document(SECRET_GROUP_SCHEMA, DocumentId.from_hex(record.id))
        if view is None:
            return False
        self.member.restore_group(record.mls_id, [])  # our state of the lost branch goes (R3)
        try:
            new = self.engine.join(GroupDoc.parse(record.id, view.owner.hex(), view.fields), doc)
        except (MlsError, SecretGroupError) as exc:
            self._discard()
            self.last_error = _refusal(exc)
            return False
        items = self.member.group_items(new.mls_id)
        depth = winner.index(doc.id)
        fork = next((i for i, (a, b) in enumerate(zip(applied, winner, strict=False)) if a != b), len(applied)) - 1
        # J3: own operations sealed on the branch that lost (epochs after the fork) are sent again.
        own = [r for r in self.store.inner_rows(record.id) if r.author == self.me and r.epoch > fork]

        def writes(tx: Transaction) -> None:
            tx.group(new)
            tx.processed(doc.id, record.id, "commit", "applied")
            tx.snapshot(new, depth, items, {doc.id})
            tx.found(record.id)
            for row in own:
                if self.store.status(row.id) == ("own", None):
                    tx.set_status(row.id, "resend")

        self._persist(writes)
        await self._retire_key_packages(doc.key_packages)
        self._emit("joined", record.id, doc.id)
        return True

    def _apply(self, record: GroupRecord, doc: CommitDoc, owner: KeyGroup, depth: int) -> bool:
        """Apply one commit on the tip; False while it waits for its key-group changes (C3)."""
        state = owner.state_at(doc.key_group_tips)
        if state is None:
            return False
        try:
            applied = self.engine.apply(record, doc, _keys(state.members))
        except (MlsError, SecretGroupError) as exc:
            self._discard()
            with self.store.write() as tx:
                tx.processed(doc.id, record.id, "commit", "refused", _refusal(exc))
            self._emit("refused", record.id, doc.id)
            return True

        items = self.member.group_items(record.mls_id) if applied.record.active else []
        kept = keep(self.store.snapshot_depths(record.id) | {doc.id: depth}, depth)

        def writes(tx: Transaction) -> None:
            tx.group(applied.record)
            tx.processed(doc.id, record.id, "commit", "applied")
            if applied.record.active:  # R4, in the merge's transaction
                tx.snapshot(applied.record, depth, items, kept)

        self._persist(writes)
        self._emit("commit" if applied.record.active else "removed", record.id, doc.id)
        return True
