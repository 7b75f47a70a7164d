"""MLS members and groups for Python, over our OpenMLS binding (`secret_group._openmls`).

Our own small types only: bytes in, bytes out, typed exceptions under `MlsError`.

Persistence contract: a member's whole MLS state is a key-value map. Build a member from the stored
items; after each operation call `take_changes()` and write the returned (key, value | None) pairs in
one transaction of your own (None deletes). An operation that raises leaves no changes and no changed
state; a crash before the write loses the operation, and restoring from the stored items returns the
member to the state before it, from which the operation can be redone.

Snapshots: `group_items(group_id)` returns every stored row of one group and `restore_group(group_id,
items)` puts them back (deleting the group's rows that are not in the snapshot, such as key pairs of
later epoch numbers); the restore is journalled like any operation. Global rows (key packages, key pairs
of own leaf updates not merged yet) belong to no group: snapshot a group while it has no pending commit.

Threads: a member may be called from any thread (e.g. a database worker or `asyncio.to_thread`); the
binding releases the GIL while OpenMLS works and runs the calls on one member one at a time.

Stored format: rows are written by our own storage provider in a compact binary codec (format 2); rows
written by earlier versions of this package (serde_json, format 1) do not load.

Late messages: members keep the secrets of `max_past_epochs` past epochs (default 5) so that
application messages delayed by gossip across commits still decrypt. Commits in a chat group are rare
(membership changes and periodic self-updates), so five epochs cover minutes to hours of delay while
bounding how long old keys live (forward secrecy). Within an epoch, 100 out-of-order generations per
sender are tolerated (replication does not preserve order across authors' logs).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from secret_group import _openmls
from secret_group._openmls import (
    CIPHERSUITE,
    GroupExists,
    GroupStateError,
    IdentityMismatch,
    InternalError,
    InvalidKeyPackage,
    InvalidMessage,
    InvalidSnapshot,
    MalformedMessage,
    MlsError,
    NoMatchingKeyPackage,
    NotAMember,
    RemovedSender,
    UnknownGroup,
    WrongEpoch,
)

__all__ = [
    "CIPHERSUITE",
    "DEFAULT_MAX_PAST_EPOCHS",
    "Commit",
    "Processed",
    "MessageKind",
    "MlsMember",
    "MlsGroup",
    "MlsError",
    "MalformedMessage",
    "InvalidMessage",
    "WrongEpoch",
    "UnknownGroup",
    "GroupExists",
    "InvalidKeyPackage",
    "NoMatchingKeyPackage",
    "NotAMember",
    "RemovedSender",
    "GroupStateError",
    "IdentityMismatch",
    "InvalidSnapshot",
    "InternalError",
]

DEFAULT_MAX_PAST_EPOCHS = 5

MessageKind = Literal["application", "commit", "proposal", "own_commit", "own_application"]


@dataclass(frozen=True, slots=True)
class Commit:
    """A commit to publish to the group, and a welcome for added members (None if nobody was added)."""

    commit: bytes
    welcome: bytes | None


@dataclass(frozen=True, slots=True)
class Processed:
    """What processing a group message did.

    `sender` is the 32-byte public key of the MLS sender (= its p2panda author key); `plaintext` is set for
    application messages; `epoch` is the epoch the message belonged to; `still_member` is False after a
    commit that removed us.
    """

    kind: MessageKind
    sender: bytes
    plaintext: bytes | None
    epoch: int
    still_member: bool


class MlsMember:
    """One identity's MLS state: its key packages and all its groups."""

    __slots__ = ("_inner",)

    def __init__(
        self,
        private_key: bytes,
        items: Iterable[tuple[bytes, bytes]] | None = None,
        *,
        max_past_epochs: int = DEFAULT_MAX_PAST_EPOCHS,
        out_of_order_tolerance: int = 100,
        maximum_forward_distance: int = 1000,
    ) -> None:
        self._inner = _openmls.Member(
            bytes(private_key),
            None if items is None else [(bytes(k), bytes(v)) for k, v in items],
            max_past_epochs,
            out_of_order_tolerance,
            maximum_forward_distance,
        )

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key()

    def take_changes(self) -> list[tuple[bytes, bytes | None]]:
        """State changes since the last call (None = delete); clears the journal."""
        return self._inner.take_changes()

    def discard_changes(self) -> None:
        """Drop every change since the last `take_changes`, as if the process had crashed before writing."""
        self._inner.discard_changes()

    def group_items(self, group_id: bytes) -> list[tuple[bytes, bytes]]:
        """Every stored (key, value) of one group: a snapshot for `restore_group` (UnknownGroup if none)."""
        return self._inner.group_items(bytes(group_id))

    def restore_group(self, group_id: bytes, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Replace the group's stored rows with `items` from `group_items` (empty items delete the group).

        Journalled like any operation; items that are not rows of this group or do not load as it raise
        InvalidSnapshot and change nothing.
        """
        self._inner.restore_group(bytes(group_id), [(bytes(k), bytes(v)) for k, v in items])

    def key_package(self) -> bytes:
        """A fresh key package; each is single use (its private part is consumed by a welcome)."""
        return self._inner.key_package()

    def create_group(self, group_id: bytes) -> MlsGroup:
        self._inner.create_group(bytes(group_id))
        return MlsGroup(self, bytes(group_id))

    def join(self, welcome: bytes) -> MlsGroup:
        return MlsGroup(self, self._inner.join(bytes(welcome)))

    def load_group(self, group_id: bytes) -> MlsGroup | None:
        if not self._inner.has_group(bytes(group_id)):
            return None
        return MlsGroup(self, bytes(group_id))


class MlsGroup:
    """A group as seen by one member. All state lives in the member's storage."""

    __slots__ = ("_id", "_member")

    def __init__(self, member: MlsMember, group_id: bytes) -> None:
        self._member = member
        self._id = group_id

    @property
    def group_id(self) -> bytes:
        return self._id

    @property
    def _inner(self) -> _openmls.Member:
        return self._member._inner

    @property
    def epoch(self) -> int:
        return self._inner.epoch(self._id)

    @property
    def is_active(self) -> bool:
        """False once we were removed from the group."""
        return self._inner.is_active(self._id)

    @property
    def has_pending_commit(self) -> bool:
        return self._inner.has_pending_commit(self._id)

    @property
    def has_pending_proposals(self) -> bool:
        return self._inner.has_pending_proposals(self._id)

    def members(self) -> list[bytes]:
        return self._inner.members(self._id)

    def add(self, key_packages: list[bytes]) -> Commit:
        return Commit(*self._inner.add(self._id, [bytes(k) for k in key_packages]))

    def remove(self, public_keys: list[bytes]) -> Commit:
        return Commit(*self._inner.remove(self._id, [bytes(k) for k in public_keys]))

    def self_update(self) -> Commit:
        return Commit(*self._inner.self_update(self._id))

    def commit_pending_proposals(self) -> Commit:
        return Commit(*self._inner.commit_pending_proposals(self._id))

    def propose_add(self, key_package: bytes) -> bytes:
        return self._inner.propose_add(self._id, bytes(key_package))

    def propose_remove(self, public_key: bytes) -> bytes:
        return self._inner.propose_remove(self._id, bytes(public_key))

    def propose_self_update(self) -> bytes:
        return self._inner.propose_self_update(self._id)

    def merge_pending_commit(self) -> None:
        self._inner.merge_pending_commit(self._id)

    def clear_pending_commit(self) -> None:
        self._inner.clear_pending_commit(self._id)

    def process(self, message: bytes) -> Processed:
        kind, sender, plaintext, epoch, active = self._inner.process(self._id, bytes(message))
        return Processed(kind, sender, plaintext, epoch, active)

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._inner.encrypt(self._id, bytes(plaintext))

    def export_secret(self, label: str, context: bytes, length: int) -> bytes:
        return self._inner.export_secret(self._id, label, bytes(context), length)

    def epoch_authenticator(self) -> bytes:
        return self._inner.epoch_authenticator(self._id)
