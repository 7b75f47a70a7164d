"""`Group`: one secret group as an application sees it, a thin facade over its `Client`.

Chat verbs (`send`, `edit`, `delete_message`, `messages`) use the bundled `chat_message` schema; the
document verbs (`create`, `update`, `delete`, `document`, `documents`) take any schema the client knows
(`Client(..., schemas=[...])`). Everything is encrypted for the group's members before it leaves the
client; nodes only ever hold envelopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keygroups import Level, Member
from p2panda.document import Document
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation import Operation
from p2panda.operation.value import OperationValue
from p2panda.schema import Schema
from secret_group.documents import Mode
from secret_group.errors import NotMember, UnknownSchema
from secret_group.schemas import CHAT_MESSAGE_SCHEMA

if TYPE_CHECKING:
    from node_adapter.client import Client

__all__ = ["Group", "Message"]


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message as this client sees it. `state` is "received" for others' messages and, for our
    own, the outbox state: "pending" (stored, not yet on the node), "sent" or "failed" (`error` says why)."""

    id: str
    author: PublicKey
    text: str
    reply_to: str | None
    lamport: int
    edited: bool
    state: str
    error: str | None = None


class Group:
    __slots__ = ("_client", "id")

    def __init__(self, client: Client, group_id: str) -> None:
        self._client = client
        self.id = group_id

    def __repr__(self) -> str:
        return f"Group({self.id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Group) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # --- what the group is -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._client.record(self.id).name

    @property
    def history(self) -> bool:
        """True for a history group (joiners read the past), False for a ratchet group."""
        return self._client.record(self.id).mode is Mode.HISTORY

    @property
    def owner(self) -> str:
        """The id of the key group that decides who reads, sends and commits."""
        return self._client.record(self.id).owner

    @property
    def is_member(self) -> bool:
        return self._client.record(self.id).active

    @property
    def epoch(self) -> int:
        record = self._client.record(self.id)
        return self._client.engine.mls(record).epoch if record.active else -1

    @property
    def joined_epoch(self) -> int:
        return self._client.record(self.id).joined_epoch

    def unavailable(self) -> int:
        """How many envelopes from before this member joined cannot be read (ratchet groups)."""
        return sum(1 for _, status, _ in self._client.store.statuses(self.id, "envelope") if status == "unavailable")

    def refused(self) -> list[tuple[str, str]]:
        """(document id, reason) of every commit and envelope of this group that was refused."""
        out: list[tuple[str, str]] = []
        for kind in ("commit", "envelope"):
            out.extend((i, r or "") for i, s, r in self._client.store.statuses(self.id, kind) if s == "refused")
        return out

    # --- membership --------------------------------------------------------------------------------

    async def add(self, public_key: PublicKey, level: Level = Level.WRITE) -> None:
        """Give a key a level in the owner key group and add it to the MLS group (read level or more)."""
        self._check_member()
        await self._client.change_member(self.id, Member.key(public_key.hex()), level)

    async def remove(self, public_key: PublicKey) -> None:
        """Remove a key from the owner key group and from the MLS group, at once."""
        self._check_member()
        await self._client.change_member(self.id, Member.key(public_key.hex()), None)

    async def rotate(self) -> None:
        """Commit fresh keys for this manager (a self-update), with any pending membership change."""
        self._check_member()
        await self._client.rotate(self.id)

    async def members(self) -> dict[PublicKey, Level]:
        """The MLS members (who can read what is sent now) with their key-group levels."""
        record = self._client.record(self.id)
        if not record.active:
            return {}
        _, levels = await self._client.access(record.owner)
        keys = [k.hex() for k in self._client.engine.mls(record).members()]
        return {PublicKey.from_hex(k): levels.get(k, Level.PULL) for k in keys}

    async def pending_members(self) -> dict[PublicKey, Level]:
        """Keys the key group gives read level or more but that are not MLS members yet (no key package
        published, or the commit is still to come)."""
        record = self._client.record(self.id)
        _, levels = await self._client.access(record.owner)
        current = {k.hex() for k in self._client.engine.mls(record).members()} if record.active else set()
        return {PublicKey.from_hex(k): v for k, v in levels.items() if v >= Level.READ and k not in current}

    def _check_member(self) -> None:
        if not self.is_member:
            raise NotMember(f"{self._client.me} is no longer a member of group {self.id}")

    # --- chat --------------------------------------------------------------------------------------

    async def send(self, text: str, *, reply_to: str | None = None) -> str:
        """Send a chat message; returns its id."""
        fields: dict[str, OperationValue] = {
            "text": text,
            "reply_to": reply_to or "",
            "lamport": self._client.next_lamport(),
        }
        return await self._client.send_operation(self.id, Operation.create(CHAT_MESSAGE_SCHEMA.id, fields))

    async def edit(self, message_id: str, text: str) -> None:
        await self.update(DocumentId.from_hex(message_id), {"text": text}, schema=CHAT_MESSAGE_SCHEMA)

    async def delete_message(self, message_id: str) -> None:
        await self.delete(DocumentId.from_hex(message_id), schema=CHAT_MESSAGE_SCHEMA)

    async def messages(self) -> list[Message]:
        """Chat messages in causal order ((lamport, author, id)), own messages included, deleted left out."""
        out = []
        store = self._client.store
        for doc in self._client.documents_of(self.id, CHAT_MESSAGE_SCHEMA):
            fields = doc.fields or {}
            doc_id = doc.id.hex()
            outbox = store.outbox_state(doc_id) if doc.owner.hex() == self._client.me else None
            reply_to = fields.get("reply_to")
            lamport = fields.get("lamport")
            out.append(
                Message(
                    doc_id,
                    doc.owner,
                    str(fields.get("text", "")),
                    reply_to if isinstance(reply_to, str) and reply_to else None,
                    lamport if isinstance(lamport, int) else 0,
                    doc.is_edited,
                    outbox[0] if outbox else "received",
                    outbox[1] if outbox else None,
                )
            )
        out.sort(key=lambda m: (m.lamport, m.author.hex(), m.id))
        return out

    # --- encrypted documents -----------------------------------------------------------------------

    async def create(self, schema: Schema, fields: Mapping[str, OperationValue]) -> DocumentId:
        self._client.schemas.setdefault(str(schema.id), schema)
        return DocumentId.from_hex(await self._client.send_operation(self.id, Operation.create(schema.id, fields)))

    async def update(
        self, document_id: DocumentId, fields: Mapping[str, OperationValue], *, schema: Schema | None = None
    ) -> DocumentViewId:
        view_id, schema = self._current(document_id, schema)
        operation = Operation.update(schema.id, view_id, fields)
        return DocumentViewId([Hash.from_hex(await self._client.send_operation(self.id, operation))])

    async def delete(self, document_id: DocumentId, *, schema: Schema | None = None) -> DocumentViewId:
        view_id, schema = self._current(document_id, schema)
        operation = Operation.delete(schema.id, view_id)
        return DocumentViewId([Hash.from_hex(await self._client.send_operation(self.id, operation))])

    def _current(self, document_id: DocumentId, schema: Schema | None) -> tuple[DocumentViewId, Schema]:
        doc = self._client.document_of(self.id, document_id.hex(), schema)
        if doc is None or doc.is_deleted:
            raise UnknownSchema(f"document {document_id.hex()} is not a live document of group {self.id}")
        known = schema or self._client.schemas.get(str(doc.schema_id))
        if known is None:
            raise UnknownSchema(f"schema {doc.schema_id} is not known to this client")
        return doc.view_id, known

    async def document(self, document_id: DocumentId, schema: Schema | None = None) -> Document | None:
        """The decrypted document, None when unknown or deleted."""
        doc = self._client.document_of(self.id, document_id.hex(), schema)
        return None if doc is None or doc.is_deleted else doc

    async def documents(self, schema: Schema) -> list[Document]:
        return self._client.documents_of(self.id, schema)
