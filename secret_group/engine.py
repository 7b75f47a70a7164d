"""Secret groups over MLS, sans-IO: documents and an `MlsMember` in, a new `GroupRecord` (and the fields of
documents to publish) out. The caller persists the member's state changes (`MlsMember.take_changes`)
together with the record in one transaction, or discards them (`discard_changes`) when a check fails.

Checks, in the order they run (each raises its own `SecretGroupError` or an `MlsError`):

- G1 a commit or envelope names this group.
- G2 a commit applies to the group's tip: its `parent` is the last applied commit (or the group id for
  the first) and its `epoch` is the current MLS epoch. The caller parks commits whose parent is not yet
  applied and reports a second child of an applied parent as `RivalCommit`.
- G3 a commit's author manages the owner key group (flattened, N1-N3: managing needs direct membership).
- G4 an MLS message's sender is the Bamboo author of its entry (the MLS credential identity is the
  author's Ed25519 key).
- G5 an envelope's author may send: write level or more in the owner key group, or, for a member removed
  since, an envelope from an epoch before the commit that removed it.
- G6 ratchet envelopes from before this member joined cannot be read (`HistoryUnavailable`); envelopes
  for an epoch not reached yet wait for their commit (`opens_later`).
- G7 a welcome is for a group not joined yet (`ReplayedWelcome`), names the commit's group, and its
  handover opens with the key exported from the new epoch.
- G8 a key package's MLS identity is its document's author (`ForeignKeyPackage`).

Modes: *ratchet* envelopes are MLS application messages (forward secrecy, post-compromise security;
joiners read nothing from before). *history* envelopes are sealed (`sealing.py`) with a history secret
exported from MLS when the group is created and again by every commit that removes someone; a commit
that adds members hands all history secrets to them, sealed with a key exported from the new epoch, so
joiners read the past and removed members read nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

import cbor2

from keygroups import Level
from secret_group.documents import CommitDoc, EnvelopeDoc, GroupDoc, KeyPackageDoc, Mode
from secret_group.errors import (
    ForeignKeyPackage,
    HistoryUnavailable,
    MalformedDocument,
    MixedCommit,
    NotAuthorised,
    NotMember,
    ReplayedWelcome,
    SenderMismatch,
    UnknownParent,
)
from secret_group.mls import GroupExists, MlsGroup, MlsMember
from secret_group.sealing import KEY_BYTES, associated_data, open_sealed, seal

__all__ = ["GroupRecord", "PlannedCommit", "Applied", "Opened", "Engine"]

_HISTORY_LABEL = "p2panda secret group history v1"
_HANDOVER_LABEL = "p2panda secret group handover v1"


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What a client knows of one group beyond its MLS state. `tip` is the last applied commit (the group
    id before any); `removed` maps a removed member's key to the epoch its removal started."""

    id: str
    owner: str
    mode: Mode
    name: str
    tip: str
    joined_epoch: int
    active: bool = True
    secrets: Mapping[int, bytes] = field(default_factory=dict)
    removed: Mapping[str, int] = field(default_factory=dict)

    @property
    def mls_id(self) -> bytes:
        return bytes.fromhex(self.id)

    def latest_secret(self) -> tuple[int, bytes]:
        epoch = max(self.secrets)
        return epoch, self.secrets[epoch]


@dataclass(frozen=True, slots=True)
class PlannedCommit:
    """A commit merged locally: the fields of its `mls_commit` document (all but none are bytes/str/int),
    and the record to store once the document's id (the new tip) is known."""

    fields: Mapping[str, object]
    record: GroupRecord
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Applied:
    record: GroupRecord
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Opened:
    plaintext: bytes
    epoch: int


def _export(group: MlsGroup, label: str, context: bytes) -> bytes:
    return group.export_secret(label, context, KEY_BYTES)


def _handover_aad(group_id: str, parent: str) -> bytes:
    return associated_data("handover", group_id, parent)


class Engine:
    """One identity's secret-group logic over its `MlsMember`."""

    def __init__(self, member: MlsMember) -> None:
        self.member = member
        self.me = member.public_key.hex()

    def mls(self, record: GroupRecord) -> MlsGroup:
        group = self.member.load_group(record.mls_id)
        if group is None:
            raise NotMember(f"no MLS state for group {record.id}")
        return group

    # --- creating and committing ------------------------------------------------------------------

    def create(self, group: GroupDoc, name: str) -> GroupRecord:
        mls = self.member.create_group(bytes.fromhex(group.id))
        secrets = {0: _export(mls, _HISTORY_LABEL, b"")} if group.mode is Mode.HISTORY else {}
        return GroupRecord(group.id, group.owner, group.mode, name, group.id, 0, True, secrets)

    def check_key_package(self, doc: KeyPackageDoc, member: str) -> None:  # G8
        """The package's author is the member to add; the binding checks that the MLS identity is it."""
        if doc.author != member:
            raise ForeignKeyPackage(f"key package {doc.id} is published by {doc.author}, not by {member}")

    def commit(
        self,
        record: GroupRecord,
        adds: list[KeyPackageDoc],
        removes: list[str],
        key_group_tips: tuple[str, ...],
    ) -> PlannedCommit:
        """Add or remove members (not both: `MixedCommit`; neither: a self-update), merged at once (the caller stores the state before it
        publishes, so a crash after publishing never leaves an own commit it cannot apply)."""
        if not record.active:
            raise NotMember(f"{self.me} is no longer a member of group {record.id}")
        mls = self.mls(record)
        before = set(mls.members())
        epoch = mls.epoch
        if not adds and not removes:  # a self-update: fresh keys for the committer (post-compromise security)
            out = mls.self_update()
        elif adds and not removes:
            out = mls.add([kp.key_package for kp in adds])
        elif removes and not adds:
            out = mls.remove([bytes.fromhex(k) for k in removes])
        else:  # proposals would travel by reference, and receivers never see them: two commits instead
            raise MixedCommit(f"commit of group {record.id} both adds and removes: commit the removals first")
        mls.merge_pending_commit()
        after = set(mls.members())
        added = tuple(sorted(k.hex() for k in after - before))
        removed = tuple(sorted(k.hex() for k in before - after))
        for kp in adds:  # G8: the binding bound identity to signature key; the identity is the author
            if kp.author not in added:
                raise ForeignKeyPackage(f"key package {kp.id} of {kp.author} added someone else")
        record = self._after_commit(record, mls, removed, added)
        handover = b""
        if added:
            handover_key = _export(mls, _HANDOVER_LABEL, b"")
            handover = seal(handover_key, self._handover(record), _handover_aad(record.id, record.tip))
        fields: dict[str, object] = {
            "parent": record.tip,
            "epoch": epoch,
            "commit": out.commit,
            "welcome": out.welcome or b"",
            "added": " ".join(added),
            "key_packages": " ".join(kp.id for kp in adds),
            "key_group_tips": " ".join(key_group_tips),
            "handover": handover,
        }
        return PlannedCommit(fields, record, added, removed)

    def _after_commit(
        self, record: GroupRecord, mls: MlsGroup, removed: tuple[str, ...], added: tuple[str, ...] = ()
    ) -> GroupRecord:
        epoch = mls.epoch
        secrets = dict(record.secrets)
        if record.mode is Mode.HISTORY and removed and mls.is_active:
            secrets[epoch] = _export(mls, _HISTORY_LABEL, b"")
        gone = dict(record.removed)
        for key in removed:
            gone[key] = epoch
        for key in added:  # re-added after a removal (or after its branch lost): it may send again
            gone.pop(key, None)
        return replace(record, secrets=secrets, removed=gone, active=mls.is_active)

    def _handover(self, record: GroupRecord) -> bytes:
        return cbor2.dumps(
            {
                "name": record.name,
                "secrets": sorted(record.secrets.items()),
                "removed": sorted(record.removed.items()),
            },
            canonical=True,
        )

    # --- receiving ---------------------------------------------------------------------------------

    def apply(self, record: GroupRecord, doc: CommitDoc, levels: Mapping[str, Level]) -> Applied:
        """G1-G4 for a commit of someone else (or our own, echoed back after a crash)."""
        if doc.group != record.id:  # G1
            raise MalformedDocument(f"commit {doc.id} is for group {doc.group}, not {record.id}")
        if doc.parent != record.tip:  # G2
            raise UnknownParent(f"commit {doc.id} applies to {doc.parent}, the group's tip is {record.tip}")
        if not record.active:
            raise NotMember(f"{self.me} is no longer a member of group {record.id}")
        mls = self.mls(record)
        if doc.epoch != mls.epoch:  # G2
            raise UnknownParent(f"commit {doc.id} is for epoch {doc.epoch}, the group is in epoch {mls.epoch}")
        if levels.get(doc.author) != Level.MANAGE:  # G3
            raise NotAuthorised(f"commit {doc.id} by {doc.author}, who does not manage key group {record.owner}")
        before = set(mls.members())
        processed = mls.process(doc.commit)
        if processed.sender.hex() != doc.author:  # G4
            raise SenderMismatch(f"commit {doc.id} is signed in MLS by {processed.sender.hex()}, not {doc.author}")
        if processed.kind == "own_commit":
            mls.merge_pending_commit()
        elif processed.kind != "commit":
            raise MalformedDocument(f"commit {doc.id} carries an MLS {processed.kind}, not a commit")
        if mls.is_active:
            after = set(mls.members())
            added = tuple(sorted(k.hex() for k in after - before))
            removed = tuple(sorted(k.hex() for k in before - after))
        else:  # removed ourselves: what else the commit did is not ours to know any more
            added, removed = (), (self.me,)
        record = replace(self._after_commit(record, mls, removed, added), tip=doc.id)
        return Applied(record, added, removed)

    def join(self, group: GroupDoc, doc: CommitDoc) -> GroupRecord:
        """G7: join by the commit's welcome and open its handover."""
        if doc.welcome is None or doc.handover is None or self.me not in doc.added:
            raise MalformedDocument(f"commit {doc.id} welcomes nobody here")
        if doc.group != group.id:
            raise MalformedDocument(f"commit {doc.id} is for group {doc.group}, not {group.id}")
        if self.member.load_group(bytes.fromhex(group.id)) is not None:
            raise ReplayedWelcome(f"group {group.id} is already joined (welcome of commit {doc.id})")
        try:
            mls = self.member.join(doc.welcome)
        except GroupExists as exc:
            raise ReplayedWelcome(f"welcome of commit {doc.id} is for a group already joined") from exc
        if mls.group_id != bytes.fromhex(group.id):
            raise MalformedDocument(f"welcome of commit {doc.id} is for MLS group {mls.group_id.hex()}")
        if mls.epoch != doc.epoch + 1:
            raise MalformedDocument(f"welcome of commit {doc.id} is for epoch {mls.epoch}, not {doc.epoch + 1}")
        key = _export(mls, _HANDOVER_LABEL, b"")
        content = open_sealed(key, doc.handover, _handover_aad(group.id, doc.parent), f"handover of commit {doc.id}")
        name, secrets, removed = _parse_handover(doc.id, content)
        if group.mode is Mode.HISTORY and not secrets:
            raise MalformedDocument(f"handover of commit {doc.id} carries no history secret")
        return GroupRecord(group.id, group.owner, group.mode, name, doc.id, mls.epoch, True, secrets, removed)

    def seal(self, record: GroupRecord, plaintext: bytes) -> tuple[int, bytes]:
        """(epoch, ciphertext) of an envelope carrying `plaintext`."""
        if not record.active:
            raise NotMember(f"{self.me} is no longer a member of group {record.id}")
        mls = self.mls(record)
        if record.mode is Mode.RATCHET:
            return mls.epoch, mls.encrypt(plaintext)
        epoch, secret = record.latest_secret()
        return epoch, seal(secret, plaintext, associated_data("envelope", record.id, epoch, self.me))

    def opens_later(self, record: GroupRecord, doc: EnvelopeDoc) -> bool:
        """G6: the envelope is for an epoch (or history secret) this member has not reached yet."""
        if record.mode is Mode.HISTORY:
            return doc.epoch not in record.secrets and (not record.secrets or doc.epoch > max(record.secrets))
        return record.active and doc.epoch > self.mls(record).epoch

    def open(self, record: GroupRecord, doc: EnvelopeDoc, levels: Mapping[str, Level]) -> Opened:
        """G1, G4-G6: the plaintext of someone else's envelope."""
        if doc.group != record.id:  # G1
            raise MalformedDocument(f"envelope {doc.id} is for group {doc.group}, not {record.id}")
        gone = record.removed.get(doc.author)
        if gone is not None:  # G5
            if doc.epoch >= gone:
                raise NotAuthorised(f"envelope {doc.id} of epoch {doc.epoch} by {doc.author}, removed in {gone}")
        elif (levels.get(doc.author) or 0) < Level.WRITE:
            raise NotAuthorised(f"envelope {doc.id} by {doc.author}, who may not write in {record.owner}")
        if record.mode is Mode.HISTORY:
            secret = record.secrets.get(doc.epoch)
            if secret is None:
                raise HistoryUnavailable(f"envelope {doc.id} uses history secret {doc.epoch}, not held here")
            aad = associated_data("envelope", record.id, doc.epoch, doc.author)
            return Opened(open_sealed(secret, doc.ciphertext, aad, f"envelope {doc.id}"), doc.epoch)
        if doc.epoch < record.joined_epoch:  # G6
            raise HistoryUnavailable(
                f"envelope {doc.id} is from epoch {doc.epoch}, before this member joined in {record.joined_epoch}"
            )
        processed = self.mls(record).process(doc.ciphertext)
        if processed.sender.hex() != doc.author:  # G4
            raise SenderMismatch(f"envelope {doc.id} is sent in MLS by {processed.sender.hex()}, not {doc.author}")
        if processed.kind != "application" or processed.plaintext is None:
            raise MalformedDocument(f"envelope {doc.id} carries an MLS {processed.kind}, not an application message")
        return Opened(processed.plaintext, processed.epoch)


def _parse_handover(commit_id: str, content: bytes) -> tuple[str, dict[int, bytes], dict[str, int]]:
    # Exact types, never conversions: `bytes(n)` of a big integer allocates n bytes, `int` of a float fails.
    try:
        value = cbor2.loads(content)
    except (ValueError, TypeError, OverflowError, RecursionError, cbor2.CBORDecodeError) as exc:
        raise MalformedDocument(f"handover of commit {commit_id} does not decode: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedDocument(f"handover of commit {commit_id} is not a map: {value!r:.80}")
    name, secret_items, removed_items = value.get("name"), value.get("secrets"), value.get("removed")
    if not isinstance(name, str):
        raise MalformedDocument(f"handover of commit {commit_id} has name {name!r:.80}, not text")
    if not _pairs(secret_items, int, bytes) or any(len(s) != KEY_BYTES for _, s in secret_items):
        raise MalformedDocument(f"handover of commit {commit_id} has secrets {secret_items!r:.80}")
    if not _pairs(removed_items, str, int):
        raise MalformedDocument(f"handover of commit {commit_id} has removed {removed_items!r:.80}")
    return name, dict(secret_items), dict(removed_items)


def _pairs(value: object, key: type, item: type) -> TypeGuard[list[list[Any]]]:
    """A list of [key, item] pairs of exactly these types (no bools for ints)."""
    return isinstance(value, list) and all(
        isinstance(p, list)
        and len(p) == 2
        and isinstance(p[0], key)
        and isinstance(p[1], item)
        and not isinstance(p[0], bool)
        and not isinstance(p[1], bool)
        for p in value
    )
