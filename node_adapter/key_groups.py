"""Key-group verbs for applications, built once on the `Node` primitives (embedded or remote alike).

Membership is read by resolving the group's key_group_membership documents here, with the same
`keygroups.resolve` the node's policy uses: every node serves all of them (they are not governed), so a
client of any node, ours or a stock one, gets the same state. A new change follows the group's current
tips; a removal records as cuts how far this node holds each log of the removed key (KG6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from keygroups import Action, Change, GroupState, Level, Member, Resolver
from keygroups.changes import change_fields, change_of, genesis_of
from keygroups.errors import MalformedChange
from keygroups.schemas import KEY_GROUP_SCHEMA, MEMBERSHIP, MEMBERSHIP_SCHEMA
from node_adapter.errors import PublishRefused, QueryRefused
from node_adapter.types import DocumentView, Page
from p2panda.hash import Hash
from p2panda.identity import KeyPair, PublicKey
from p2panda.ids import DocumentId
from p2panda.node.policy import OperationStatus
from p2panda.operation.value import OperationValue
from p2panda.schema import Schema


class _Primitives(Protocol):
    """What the verbs need of a `Node`."""

    async def create(self, key_pair: KeyPair, schema: Schema, fields: Mapping[str, OperationValue]) -> DocumentId: ...

    async def document(self, schema: Schema, document_id: DocumentId) -> DocumentView | None: ...

    async def query(
        self,
        schema: Schema,
        *,
        filter: Mapping[str, Mapping[str, Any]] | None = None,
        meta: Mapping[str, Mapping[str, Any]] | None = None,
        order_by: str = "DOCUMENT_ID",
        direction: str = "ASC",
        first: int = 25,
        after: str | None = None,
    ) -> Page: ...

    async def operation_status(self, operation_id: Hash) -> OperationStatus | None: ...

    async def log_heights(self, public_key: PublicKey) -> dict[int, int]: ...

    async def key_group(self, group_id: str) -> KeyGroup: ...

    async def _change(
        self,
        key_pair: KeyPair,
        group_id: str,
        action: Action,
        member: Member,
        level: Level | None,
        cuts: Mapping[int, int] | None,
    ) -> str: ...


__all__ = ["KeyGroup", "KeyGroupVerbs"]

_PAGE = 100


@dataclass(frozen=True, slots=True)
class KeyGroup:
    """A resolved key group: its name, its direct members with levels, and the full resolution."""

    id: str
    name: str
    state: GroupState
    malformed: Mapping[str, str]  # membership documents that do not parse -> why
    changes: tuple[Change, ...] = ()  # every parsed change, the genesis first

    def state_at(self, tips: Iterable[str]) -> GroupState | None:
        """The group resolved from the causal past of `tips` (tips included): what a change naming them
        as its key-group state acted on; None while one of them is not known here."""
        by_id = {c.id: c for c in self.changes}
        seen: set[str] = set()
        stack = list(tips)
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            change = by_id.get(current)
            if change is None:
                return None
            seen.add(current)
            stack.extend(change.previous)
        return Resolver(by_id[c] for c in seen).state

    @property
    def members(self) -> Mapping[Member, Level]:
        return self.state.members


class KeyGroupVerbs:
    """Mixed into `Node`; built on its primitives."""

    async def create_key_group(self: _Primitives, key_pair: KeyPair, name: str) -> str:
        """A new key group managed by `key_pair`; returns its id."""
        return (await self.create(key_pair, KEY_GROUP_SCHEMA, {"name": name})).hex()

    async def key_group(self: _Primitives, group_id: str) -> KeyGroup:
        genesis = await self.document(KEY_GROUP_SCHEMA, DocumentId.from_hex(group_id))
        if genesis is None:
            raise QueryRefused(f"key group {group_id} is not known to this node")
        changes: list[Change] = [genesis_of(group_id, genesis.owner.hex())]
        malformed: dict[str, str] = {}
        after: str | None = None
        while True:
            page = await self.query(MEMBERSHIP_SCHEMA, filter={"group": {"eq": group_id}}, first=_PAGE, after=after)
            for doc in page.documents:
                try:
                    _, change = change_of(doc.id.hex(), doc.owner.hex(), doc.fields or {})
                except MalformedChange as exc:
                    malformed[doc.id.hex()] = str(exc)
                    continue
                changes.append(change)
            if not page.has_next:
                break
            after = page.end_cursor
        name = (genesis.fields or {}).get("name")
        name_text = name if isinstance(name, str) else ""
        return KeyGroup(group_id, name_text, Resolver(changes).state, malformed, tuple(changes))

    async def members(self: _Primitives, group_id: str) -> Mapping[Member, Level]:
        return (await self.key_group(group_id)).members

    async def set_member(self: _Primitives, key_pair: KeyPair, group_id: str, member: Member, level: Level) -> str:
        """Add a member, or change an existing member's level; returns the change's id. A key lowered below
        write keeps the writes this node holds from it (its cuts)."""
        cuts = None
        if member.kind == "key" and level < Level.WRITE:
            cuts = await self.log_heights(PublicKey.from_hex(member.id))
        return await self._change(key_pair, group_id, Action.ADD, member, level, cuts)

    async def remove_member(self: _Primitives, key_pair: KeyPair, group_id: str, member: Member) -> str:
        """Remove a member; its writes this node holds (up to each log's height now) keep counting."""
        cuts = await self.log_heights(PublicKey.from_hex(member.id)) if member.kind == "key" else None
        return await self._change(key_pair, group_id, Action.REMOVE, member, None, cuts)

    async def _change(
        self: _Primitives,
        key_pair: KeyPair,
        group_id: str,
        action: Action,
        member: Member,
        level: Level | None,
        cuts: Mapping[int, int] | None,
    ) -> str:
        group = await self.key_group(group_id)
        author = Member.key(key_pair.public_key.hex())
        if group.members.get(author) != Level.MANAGE:
            raise PublishRefused(f"{author.id} does not manage key group {group_id}")
        if member.kind == "group" and member.id == group_id:
            raise PublishRefused(f"key group {group_id} cannot be a member of itself")
        fields = change_fields(group_id, action, member, level, group.state.tips, cuts)
        return (await self.create(key_pair, MEMBERSHIP_SCHEMA, fields)).hex()

    async def why_not_counted(self: _Primitives, operation_id: Hash) -> str | None:
        """None when the operation counts; else why not (a P/M check of the node's policy, or for a
        membership change the KG check of its resolution)."""
        status = await self.operation_status(operation_id)
        if status is None:
            raise QueryRefused(f"operation {operation_id.hex()} is not held by this node")
        if status.schema_id != MEMBERSHIP or status.reason is not None:
            return status.reason
        document = await self.document(MEMBERSHIP_SCHEMA, DocumentId.from_hex(status.document_id))
        if document is None:
            return "membership document is deleted"
        try:
            group_id, _ = change_of(status.document_id, document.owner.hex(), document.fields or {})
        except MalformedChange as exc:
            return f"malformed: {exc}"
        if operation_id.hex() != status.document_id:
            return "membership documents are never updated: only their create is a change"
        return (await self.key_group(group_id)).state.status(status.document_id)
