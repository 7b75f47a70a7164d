"""Errors of the `secret_group` package: one root, one class per failing check.

MLS errors of the binding (`secret_group.mls.MlsError` and its subclasses) are raised as they are; the
classes here are the checks of this package (see `documents.py` D-checks and `engine.py` G-checks).
"""

from __future__ import annotations

from p2panda.errors import P2PandaError

__all__ = [
    "MixedCommit",
    "SecretGroupError",
    "MalformedDocument",
    "TamperedCiphertext",
    "SenderMismatch",
    "NotAuthorised",
    "UnknownParent",
    "RivalCommit",
    "ForeignKeyPackage",
    "ReplayedWelcome",
    "UnknownSchema",
    "NotMember",
    "HistoryUnavailable",
]


class SecretGroupError(P2PandaError):
    """Root exception of the `secret_group` package."""


class MalformedDocument(SecretGroupError):
    """A key package, commit or envelope document whose fields do not have the expected form."""


class TamperedCiphertext(SecretGroupError):
    """A ciphertext that does not decrypt (tampered, wrong key, wrong associated data)."""


class SenderMismatch(SecretGroupError):
    """An MLS sender that is not the Bamboo author of the entry that carries its message."""


class NotAuthorised(SecretGroupError):
    """An author without the key-group level the action needs (write to send, manage to commit)."""


class UnknownParent(SecretGroupError):
    """A commit whose parent is not a commit (or the genesis) of this group."""


class RivalCommit(SecretGroupError):
    """A commit whose parent already has another applied commit (concurrent commits do not converge yet)."""


class ForeignKeyPackage(SecretGroupError):
    """A key package whose MLS identity is not its document's author, or not the member to add."""


class ReplayedWelcome(SecretGroupError):
    """A welcome for a group this member has already joined."""


class UnknownSchema(SecretGroupError):
    """An inner operation of a schema this client does not know."""


class NotMember(SecretGroupError):
    """An action on a group this identity is not (or no longer) a member of."""


class HistoryUnavailable(SecretGroupError):
    """An envelope from before this member joined a ratchet group: by design it cannot be read."""


class MixedCommit(SecretGroupError):
    """One commit both adds and removes members (receivers could not process it: commit them apart)."""
