"""`Chat`: the chat features of an application over a `Client`, for any front end (`panda chat` is one).

What it adds to the client's groups and messages:

- display names: a `chat_profile` document per member and group (encrypted like messages); `set_name`
  writes it into every group, and into every group joined later;
- a local index of decrypted messages (`ChatStore`, SQLite FTS5): full-text `search`, unread counts
  after a read mark, mentions (`@name` or the first 8 hex digits of the key);
- verification: `safety_number` to compare out of band, `verify` to mark a key verified;
- per-chat drafts, mutes and settings that survive restarts;
- a timeline with what cannot be read: placeholders for refused envelopes with their reason, and the
  count of envelopes from before this member joined a ratchet chat;
- files: `send_file` cuts a file into `chat_file_piece` documents inside envelopes, `save_file` puts it
  together and checks its digest;
- the network state: connected peers and the time data last arrived;
- "delivered" for own messages a peer node has (embedded node only): the replication sessions' view of
  our logs' heights at connected peers, kept in the chat store so the mark survives restarts. It means
  the entry was written to a peer node's session or reported by it; the protocol has no receipt, and
  whether the peer's member could decrypt it is not known.

Checks (named in the tests):
- CH1 a display name is 1-64 printable characters;
- CH2 a search is plain text: FTS5 syntax in it is searched for, never interpreted;
- CH3 a file to send exists, is a regular file, and is at most `MAX_FILE_SIZE` bytes;
- CH4 a saved file's pieces are all there and its digest matches, or nothing is written;
- CH5 a public key given by the user is 64 hex digits of a valid key (`InvalidPublicKey` otherwise);
- CH6 leaving: a member asks to be removed with an encrypted `chat_leave` document; the manager that
  commits membership changes (the lowest key among the other managers that are MLS members) removes the
  author of a new `chat_leave`, and only its author, from the key group and the MLS group. A member that
  is the chat's only manager cannot leave (`CannotLeave`): nobody could commit it.
- CH7 a chat we left is read-only here from the moment we leave, not from when the removal commit
  arrives: `check_writable` refuses it (`LeftChat`), our profile is no longer written into it, and only a
  welcome after the removal (added again) ends that.

The index follows the client's decrypted operations with a durable cursor (`ClientStore.inner_after`:
a counter that only grows): on every message event, and once at start, the documents of the operations
stored after the cursor are built again and indexed (edits replace the text, deletes remove it), then
the cursor moves. A restart only reads what arrived since the last one, and the timeline is rendered
from the index (the newest `limit` messages), so 10 000 messages of history cost nothing at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import blake3

from keygroups import Level
from node_adapter.chat_store import ChatStore, IndexedMessage, SearchHit
from node_adapter.client import Client, ClientEvent
from node_adapter.embedded import EmbeddedNode
from node_adapter.errors import NodeAdapterError
from node_adapter.group import Group, Message
from node_adapter.safety import fingerprint, safety_number
from p2panda.document import Document
from p2panda.errors import P2PandaError
from p2panda.identity import PublicKey
from p2panda.operation.value import OperationValue
from p2panda.varu64 import decode_varu64
from secret_group.errors import NotMember
from secret_group.schemas import (
    CHAT_FILE_PIECE_SCHEMA,
    CHAT_FILE_SCHEMA,
    CHAT_LEAVE_SCHEMA,
    CHAT_MESSAGE_SCHEMA,
    CHAT_PROFILE_SCHEMA,
)

__all__ = [
    "Chat",
    "ChatError",
    "ChatEvent",
    "FileInfo",
    "FileIncomplete",
    "FileRefused",
    "CannotLeave",
    "LeftChat",
    "InvalidName",
    "MAX_FILE_SIZE",
    "MemberInfo",
    "NetworkStatus",
    "Timeline",
    "parse_public_key",
]

log = logging.getLogger("node_adapter.chat")

MAX_FILE_SIZE = 8 * 1024 * 1024
PIECE_SIZE = 32 * 1024  # well under an entry's payload limit once sealed and CBOR-encoded
MAX_NAME = 64
_BULK = 64  # documents of one group to index at once from which all of the group's are built in one pass


class ChatError(NodeAdapterError):
    """Root of the chat's errors."""


class InvalidName(ChatError):
    """A display name that is empty, too long or has control characters (CH1)."""


class FileRefused(ChatError):
    """A file that cannot be sent: missing, not a regular file, or too large (CH3)."""


class FileIncomplete(ChatError):
    """A file whose pieces are not all here yet, or whose digest does not match (CH4)."""


class CannotLeave(ChatError):
    """Leaving would leave the chat without a manager that can commit (CH6)."""


class LeftChat(ChatError):
    """A write to a chat this member left (CH7)."""


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """Something changed: the client's event, plus `mention` when it is a new message from someone
    else that mentions us, and kind "network" when peers came or went."""

    kind: str
    group_id: str
    document_id: str | None = None
    mention: bool = False


@dataclass(frozen=True, slots=True)
class MemberInfo:
    key: PublicKey
    name: str
    level: Level
    fingerprint: str
    verified: bool
    pending: bool  # given access in the key group, not yet in the MLS group


@dataclass(frozen=True, slots=True)
class FileInfo:
    id: str
    author: PublicKey
    name: str
    size: int
    pieces: int
    received: int  # pieces here so far
    lamport: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """What a chat shows: the newest messages and files in causal order, and what cannot be read."""

    messages: list[Message]
    files: list[FileInfo]
    undecryptable: list[tuple[str, str]]  # (envelope id, reason)
    unavailable: int  # envelopes from before we joined (ratchet chats)
    removed: bool  # we were removed: nothing sent afterwards reaches us
    left: list[tuple[PublicKey, int]] = dataclasses.field(default_factory=list)  # (who asked to leave, lamport)
    older: int = 0  # messages and files before these, not read (`timeline(limit=...)`)
    quoted: dict[str, Message] = dataclasses.field(default_factory=dict)  # replied-to messages not in `messages`


@dataclass(frozen=True, slots=True)
class NetworkStatus:
    kind: str  # "embedded", "embedded (no replication)" or "remote"
    peers: int
    last_sync: float | None  # time.time() when data last arrived from the node


def parse_public_key(text: str) -> PublicKey:
    """CH5: a public key typed by the user; raises `InvalidPublicKey` naming the text."""
    return PublicKey.from_hex(text.strip().lower())


def check_name(name: str) -> str:
    """CH1"""
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidName(f"display name {name!r} must be 1-{MAX_NAME} printable characters")
    return name


class Chat:
    """`async with Chat(client) as chat:` (the client started); its state file sits beside the client's."""

    def __init__(self, client: Client, path: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self._clock = clock  # the time of the last sync; tests give a fixed one (snapshots show it)
        self.path = path or client.state_path.with_name(f"chat-{client.me[:16]}.sqlite3")
        self._store: ChatStore | None = None
        self._task: asyncio.Task[None] | None = None
        self._network_task: asyncio.Task[None] | None = None
        self._listeners: set[asyncio.Queue[ChatEvent]] = set()
        self._names: dict[str, tuple[int, str]] = {}
        self._members: dict[str, set[str]] = {}
        # Every write of this identity goes through `lock`: `Group.add`/`remove` publish key-group changes
        # outside the client's own lock, and a profile written at the same moment would take the same
        # log id (a fork the node refuses). Front ends hold it around their writes too.
        self.lock = asyncio.Lock()  # MLS members per group when we last wrote our profile
        self.last_sync: float | None = None
        self._positions: dict[str, tuple[int, int]] = {}  # own envelope id -> (log id, seq num)
        self._leaves: set[tuple[str, str]] = set()  # (group id, chat_leave id) to act on (CH6)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._store = ChatStore(self.path, self.client.state_key)  # encrypted when the client's state is
        events = self.client.events()
        # Subscribe before the backfill so nothing that arrives in between is missed.
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)  # lets `first` register its queue before the catch-up reads the cursor
        self._catch_up()
        for group in await self.client.groups():
            self._members[group.id] = {k.hex() for k in await group.members()}
        self._refresh_names()
        self._task = asyncio.create_task(self._follow(events, first))
        self._network_task = asyncio.create_task(self._watch_network())

    async def stop(self) -> None:
        for task in (self._task, self._network_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._network_task = None
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self) -> ChatStore:
        if self._store is None:
            raise ChatError("the chat is not started")
        return self._store

    @property
    def me(self) -> PublicKey:
        return self.client.key_pair.public_key

    # --- events -----------------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[ChatEvent]:
        queue: asyncio.Queue[ChatEvent] = asyncio.Queue()
        self._listeners.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.discard(queue)

    def _emit(self, event: ChatEvent) -> None:
        for queue in self._listeners:
            queue.put_nowait(event)

    async def _follow(self, events: AsyncIterator[ClientEvent], first: asyncio.Future[ClientEvent]) -> None:
        await self._act_on_leaves()  # requests that arrived while this chat was not running
        event = await first
        while True:
            try:
                await self._on_event(event)
                await self._act_on_leaves()
            except (P2PandaError, OSError) as exc:  # one bad document never stops the chat
                log.warning("handling %s: %s", event, exc)
            event = await anext(events)

    async def _act_on_leaves(self) -> None:
        """CH6: remove the authors of new leave requests, when we are the manager that commits."""
        requests, self._leaves = sorted(self._leaves), set()
        for group_id, document_id in requests:  # only new requests: an old one never removes a re-added member
            group = Group(self.client, group_id)
            doc = self.client.document_of(group_id, document_id, CHAT_LEAVE_SCHEMA)
            if doc is None or not group.is_member or doc.owner == self.me:
                continue
            members = await group.members()
            managers = sorted(k.hex() for k, level in members.items() if level == Level.MANAGE and k != doc.owner)
            if doc.owner in members and managers and managers[0] == self.client.me:
                async with self.lock:
                    await group.remove(doc.owner)

    async def _on_event(self, event: ClientEvent) -> None:
        self.last_sync = self._clock()
        mention = False
        if event.kind == "message" and event.document_id is not None:
            if self._catch_up():
                self._refresh_names()
            indexed = self.store.message(event.document_id)  # a new message (its id is its envelope's)
            mention = indexed is not None and indexed.mention
        elif event.kind == "joined":
            if self.setting(f"left:{event.group_id}", "") == "removed":  # CH7: a welcome after the removal
                self.set_left(event.group_id, False)  # is a new membership (a rejoin after a fork is not)
            self._catch_up()
            async with self.lock:
                await self._announce(Group(self.client, event.group_id))
        elif event.kind == "removed" and self.has_left(event.group_id):
            self.set_setting(f"left:{event.group_id}", "removed")  # CH7: still left, now also removed
        elif event.kind == "commit":
            async with self.lock:
                await self._announce(Group(self.client, event.group_id))
        self._emit(ChatEvent(event.kind, event.group_id, event.document_id, mention))

    async def _watch_network(self) -> None:
        """Peers come and go, and take our entries, without a client event: poll both (cheap) and say
        when they changed."""
        last = -1
        while True:
            peers = self.network().peers
            if peers != last:
                last = peers
                self._emit(ChatEvent("network", ""))
            node = self.client.node
            replication = node.replication if isinstance(node, EmbeddedNode) else None
            if replication is not None and self.store.raise_delivered(replication.peer_heights(self.client.me)):
                self._emit(ChatEvent("delivered", ""))
            await asyncio.sleep(0.5)

    def _position(self, message_id: str) -> tuple[int, int] | None:
        if message_id not in self._positions:
            for row in self.client.store.outbox():
                if row.id not in self._positions:
                    # Our own signed entries, checked when signed: only the log id and seq num are read
                    # (varu64s after the tag and the 32-byte author), no signature is verified again.
                    log_id, offset = decode_varu64(row.entry, 33)
                    self._positions[row.id] = (log_id, decode_varu64(row.entry, offset)[0])
        return self._positions.get(message_id)

    def _with_delivery(self, messages: list[Message]) -> list[Message]:
        """Own sent messages a peer node has are marked "delivered"."""
        delivered = self.store.delivered()
        out = []
        for m in messages:
            if m.state == "sent":
                position = self._position(m.id)
                if position is not None and delivered.get(position[0], 0) >= position[1]:
                    m = dataclasses.replace(m, state="delivered")
            out.append(m)
        return out

    # --- the index ----------------------------------------------------------------------------------

    def _mentions(self, text: str) -> bool:
        lowered = text.lower()
        name = self.name()
        return (name is not None and f"@{name.lower()}" in lowered) or self.client.me[:8] in lowered

    def _indexed(self, group_id: str, m: Message) -> IndexedMessage:
        mention = m.author != self.me and self._mentions(m.text)
        return IndexedMessage(m.id, group_id, m.author.hex(), m.lamport, m.text, mention, m.reply_to or "", m.edited)

    def _catch_up(self) -> bool:
        """Index the chat messages of every inner operation stored after the cursor, then move it; True
        when a display name may have changed. One transaction per call (the cursor moves with it only
        after the index is written: a crash in between indexes the same documents again, harmlessly)."""
        changes = self.client.store.inner_after(self.store.indexed_up_to())
        if not changes:
            return False
        documents: dict[tuple[str, str], None] = {}  # in order, once each
        names = False
        for _, group_id, document_id, schema_id in changes:
            if schema_id == str(CHAT_MESSAGE_SCHEMA.id) and document_id:  # "": linked (and indexed) later
                documents[(group_id, document_id)] = None
            names = names or schema_id == str(CHAT_PROFILE_SCHEMA.id)
            if schema_id == str(CHAT_LEAVE_SCHEMA.id) and document_id:
                self._leaves.add((group_id, document_id))
        index, unindex = [], []
        groups = {g for g, _ in documents}
        built = {g: self._built(g) for g in groups if sum(1 for d in documents if d[0] == g) > _BULK}
        for group_id, document_id in documents:
            if group_id in built:  # many at once (a first start, a long catch-up): built in one pass
                message = built[group_id].get(document_id)
            else:
                message = self._build_message(group_id, document_id)
            if message is None:
                unindex.append(document_id)
            else:
                index.append(self._indexed(group_id, message))
        self.store.index(index)
        self.store.unindex(unindex)
        self.store.set_indexed_up_to(changes[-1][0])
        return names

    def _built(self, group_id: str) -> dict[str, Message]:
        """Every live chat message of a group, built from the client's operations in one read."""
        docs = self.client.documents_of(group_id, CHAT_MESSAGE_SCHEMA)
        return {m.id: m for m in (_message_of(d) for d in docs)}

    def _build_message(self, group_id: str, document_id: str) -> Message | None:
        """A chat message built from the client's operations; None when deleted or not buildable."""
        doc = self.client.document_of(group_id, document_id, CHAT_MESSAGE_SCHEMA)
        if doc is None or doc.is_deleted:
            return None
        return _message_of(doc)

    def search(self, text: str, group_id: str | None = None) -> list[SearchHit]:
        """CH2: full-text search of decrypted messages kept locally (words ANDed, the last one a prefix)."""
        return self.store.search(text, group_id)

    # --- unread, drafts, mutes -----------------------------------------------------------------------

    def unread(self, group_id: str) -> tuple[int, int]:
        """(messages, mentions) not read yet."""
        return self.store.unread(group_id, self.client.me)

    def mark_read(self, group_id: str) -> None:
        self.store.mark_read(group_id)

    def draft(self, group_id: str) -> str:
        return self.store.draft(group_id)

    def set_draft(self, group_id: str, text: str) -> None:
        self.store.set_draft(group_id, text)

    def is_muted(self, group_id: str) -> bool:
        return self.store.is_muted(group_id)

    def set_muted(self, group_id: str, muted: bool) -> None:
        self.store.set_muted(group_id, muted)

    def setting(self, key: str, default: str) -> str:
        value = self.store.setting(key)
        return default if value is None else value

    def set_setting(self, key: str, value: str) -> None:
        self.store.set_setting(key, value)

    # --- names ----------------------------------------------------------------------------------------

    def name(self) -> str | None:
        """Our own display name, None before the first `set_name`."""
        return self.store.setting("name")

    def _refresh_names(self) -> None:
        names: dict[str, tuple[int, str]] = {}
        for record in self.client.store.groups():
            for doc in self.client.documents_of(record.id, CHAT_PROFILE_SCHEMA):
                fields = doc.fields or {}
                lamport, name = fields.get("lamport"), fields.get("name")
                if isinstance(lamport, int) and isinstance(name, str):
                    try:
                        name = check_name(name)
                    except InvalidName:
                        continue  # a peer's bad name is shown as its fingerprint instead
                    key = doc.owner.hex()
                    if key not in names or names[key][0] < lamport:
                        names[key] = (lamport, name)
        self._names = names

    def name_of(self, key: PublicKey) -> str:
        """The display name a key gave itself, or its key's first 8 hex digits."""
        if key == self.me:
            return self.name() or key.hex()[:8]
        known = self._names.get(key.hex())
        return known[1] if known else key.hex()[:8]

    async def set_name(self, name: str) -> None:
        """CH1; writes our profile into every group we are a member of (takes `lock`)."""
        name = check_name(name)
        async with self.lock:
            await self.set_name_unlocked(name)

    async def set_name_unlocked(self, name: str) -> None:
        """`set_name` for a caller that holds `lock` already."""
        name = check_name(name)
        self.store.set_setting("name", name)
        for group in await self.client.groups():
            if not self.has_left(group.id):  # CH7
                await self._write_profile(group, name)

    async def _announce(self, group: Group) -> None:
        """Write our profile again when members joined: in a ratchet chat they cannot read the earlier one."""
        if not group.is_member or self.has_left(group.id):
            return
        members = {k.hex() for k in await group.members()}
        known = self._members.get(group.id)
        self._members[group.id] = members
        name = self.name()
        if name is not None and (known is None or members - known):
            await self._write_profile(group, name, again=known is not None)

    async def _write_profile(self, group: Group, name: str, *, again: bool = False) -> None:
        mine = [d for d in self.client.documents_of(group.id, CHAT_PROFILE_SCHEMA) if d.owner == self.me]
        mine.sort(key=lambda d: -_lamport(d))
        fields: dict[str, OperationValue] = {"name": name, "lamport": self.client.next_lamport()}
        # A joiner of a ratchet chat cannot read the CREATE of our profile, so an UPDATE would not build
        # for them: after a join a new profile document is written (the newest lamport wins).
        if not mine or again:
            await group.create(CHAT_PROFILE_SCHEMA, fields)
        elif (mine[0].fields or {}).get("name") != name:
            await group.update(mine[0].id, fields, schema=CHAT_PROFILE_SCHEMA)

    # --- groups, members, verification --------------------------------------------------------------

    async def group_named(self, name: str) -> Group | None:
        """The first chat with this name (ours first, then those we were removed from)."""
        groups = await self.client.all_groups()
        groups.sort(key=lambda g: not g.is_member)
        return next((g for g in groups if g.name == name), None)

    async def members(self, group: Group) -> list[MemberInfo]:
        """Members (who can read what is sent now) first, then pending ones, each by name."""
        out = []
        for pending, members in ((False, await group.members()), (True, await group.pending_members())):
            for key, level in members.items():
                out.append(MemberInfo(key, self.name_of(key), level, fingerprint(key), self.is_verified(key), pending))
        out.sort(key=lambda m: (m.pending, m.name.lower(), m.key.hex()))
        return out

    def safety_number(self, key: PublicKey) -> str:
        return safety_number(self.me, key)

    def is_verified(self, key: PublicKey) -> bool:
        return key == self.me or self.store.verified(key.hex()) == self.safety_number(key)

    def verify(self, key: PublicKey) -> str:
        """Mark a key verified (after comparing the safety number out of band); returns the number."""
        number = self.safety_number(key)
        self.store.set_verified(key.hex(), number)
        return number

    # --- messages -------------------------------------------------------------------------------------

    async def timeline(self, group: Group, limit: int = 500) -> Timeline:
        """The newest `limit` messages (from the index, not built again) with the files among them."""
        hidden = self.store.hidden()
        total = self.store.count(group.id)
        rows = self.store.newest(group.id, limit)
        messages = self._with_delivery([self._message(r) for r in rows if r.id not in hidden])
        older = total - len(rows)
        files = self.files(group)
        if older and rows:  # files before the oldest message shown are counted as older, not read
            first = (rows[0].lamport, rows[0].id)
            older += sum(1 for f in files if (f.lamport, f.id) < first)
            files = [f for f in files if (f.lamport, f.id) >= first]
        shown = {m.id for m in messages}
        quoted = {}
        for m in messages:
            if m.reply_to is not None and m.reply_to not in shown:
                row = self.store.message(m.reply_to)
                if row is not None:
                    quoted[row.id] = self._message(row)
        undecryptable = [(i, r or "") for i, s, r in self.client.store.statuses(group.id, "envelope") if s == "refused"]
        left = [(d.owner, _lamport(d)) for d in self.client.documents_of(group.id, CHAT_LEAVE_SCHEMA)]
        removed = not group.is_member
        return Timeline(messages, files, undecryptable, group.unavailable(), removed, left, older, quoted)

    def _message(self, row: IndexedMessage) -> Message:
        """An indexed message with its outbox state when it is our own."""
        outbox = self.client.store.outbox_state(row.id) if row.author == self.client.me else None
        return Message(
            row.id,
            PublicKey.from_hex(row.author),
            row.text,
            row.reply_to or None,
            row.lamport,
            row.edited,
            outbox[0] if outbox else "received",
            outbox[1] if outbox else None,
        )

    def message(self, message_id: str) -> Message | None:
        """One message (from the index), None when unknown or deleted."""
        row = self.store.message(message_id)
        return None if row is None else self._message(row)

    async def messages(self, group: Group) -> list[Message]:
        """Every message of a group from the index, in causal order, with outbox states."""
        return [self._message(r) for r in self.store.newest(group.id, self.store.count(group.id))]

    async def leave(self, group: Group) -> None:
        """CH6: ask to be removed (a manager commits it); the app stops showing the chat. The caller
        holds `lock`."""
        if not group.is_member:
            raise NotMember(f"{self.client.me} is no longer a member of chat {group.name!r}")
        members = await group.members()
        if not [k for k, level in members.items() if level == Level.MANAGE and k != self.me]:
            raise CannotLeave(
                f"you are the only manager of {group.name!r}: give another member manage level first (/add KEY manage)"
            )
        await group.create(CHAT_LEAVE_SCHEMA, {"lamport": self.client.next_lamport()})
        self.set_left(group.id, True)

    def has_left(self, group_id: str) -> bool:
        """CH7: we left this chat on this machine (asked to be removed, or hid a chat we were removed from)."""
        return self.setting(f"left:{group_id}", "") in ("1", "removed")

    def set_left(self, group_id: str, left: bool) -> None:
        self.set_setting(f"left:{group_id}", "1" if left else "")

    def check_writable(self, group: Group) -> None:
        """CH7: raises `LeftChat` for a chat we left, whether or not the removal commit arrived yet."""
        if self.has_left(group.id):
            raise LeftChat(
                f"you left chat {group.name!r}: it is read-only here and nothing is sent to it "
                "(a manager removes you; only being added again reopens it)"
            )

    async def retry(self, group: Group, message: Message) -> str:
        """Send a failed message again (a new message with the same text); the failed copy is hidden."""
        new_id = await group.send(message.text, reply_to=message.reply_to)
        self.store.hide(message.id)
        return new_id

    # --- files ------------------------------------------------------------------------------------------

    async def send_file(self, group: Group, path: Path) -> str:
        """CH3; returns the chat_file document id."""
        if not path.is_file():
            raise FileRefused(f"{path} is not a regular file")
        size = path.stat().st_size
        if size > MAX_FILE_SIZE:
            raise FileRefused(f"{path} has {size} bytes, more than {MAX_FILE_SIZE}")
        data = path.read_bytes()
        pieces = [data[i : i + PIECE_SIZE] for i in range(0, len(data), PIECE_SIZE)] or [b""]
        fields: dict[str, OperationValue] = {
            "name": path.name,
            "size": len(data),
            "pieces": len(pieces),
            "digest": blake3.blake3(data).hexdigest(),
            "lamport": self.client.next_lamport(),
        }
        file_id = (await group.create(CHAT_FILE_SCHEMA, fields)).hex()
        for index, piece in enumerate(pieces):
            await group.create(CHAT_FILE_PIECE_SCHEMA, {"file": file_id, "index": index, "data": piece})
        return file_id

    def _pieces(self, group: Group) -> dict[str, dict[int, bytes]]:
        out: dict[str, dict[int, bytes]] = {}
        for doc in self.client.documents_of(group.id, CHAT_FILE_PIECE_SCHEMA):
            fields = doc.fields or {}
            file_id, index, data = fields.get("file"), fields.get("index"), fields.get("data")
            if isinstance(file_id, str) and isinstance(index, int) and isinstance(data, bytes):
                out.setdefault(file_id, {})[index] = data
        return out

    def files(self, group: Group) -> list[FileInfo]:
        pieces = self._pieces(group)
        out = []
        for doc in self.client.documents_of(group.id, CHAT_FILE_SCHEMA):
            info = _file_info(doc, len(pieces.get(doc.id.hex(), {})))
            if info is not None:
                out.append(info)
        out.sort(key=lambda f: (f.lamport, f.id))
        return out

    def save_file(self, group: Group, file_id: str, destination: Path) -> Path:
        """CH4: writes the file into `destination` (a directory: under the file's own name); returns the path."""
        doc = self.client.document_of(group.id, file_id, CHAT_FILE_SCHEMA)
        info = _file_info(doc, 0) if doc is not None and not doc.is_deleted else None
        if doc is None or info is None:
            raise FileIncomplete(f"file {file_id} is not known in chat {group.name!r}")
        pieces = self._pieces(group).get(file_id, {})
        missing = [i for i in range(info.pieces) if i not in pieces]
        if missing:
            raise FileIncomplete(f"file {info.name!r} misses {len(missing)} of {info.pieces} pieces so far")
        data = b"".join(pieces[i] for i in range(info.pieces))
        if blake3.blake3(data).hexdigest() != (doc.fields or {}).get("digest") or len(data) != info.size:
            raise FileIncomplete(f"file {info.name!r} does not match its digest")
        target = destination / Path(info.name).name if destination.is_dir() else destination
        target.write_bytes(data)
        return target

    # --- network ----------------------------------------------------------------------------------------

    def network(self) -> NetworkStatus:
        node = self.client.node
        if isinstance(node, EmbeddedNode):
            if node.replication is None:
                return NetworkStatus("embedded (no replication)", 0, self.last_sync)
            return NetworkStatus("embedded", len(node.replication.connected), self.last_sync)
        return NetworkStatus("remote", 0, self.last_sync)


def _message_of(doc: Document) -> Message:
    fields = doc.fields or {}
    lamport, reply_to = fields.get("lamport"), fields.get("reply_to")
    return Message(
        doc.id.hex(),
        doc.owner,
        str(fields.get("text", "")),
        reply_to if isinstance(reply_to, str) and reply_to else None,
        lamport if isinstance(lamport, int) else 0,
        doc.is_edited,
        "received",
    )


def _lamport(doc: Document) -> int:
    value = (doc.fields or {}).get("lamport")
    return value if isinstance(value, int) else 0


def _file_info(doc: Document, received: int) -> FileInfo | None:
    fields = doc.fields or {}
    name, size, pieces, lamport = fields.get("name"), fields.get("size"), fields.get("pieces"), fields.get("lamport")
    if not (isinstance(name, str) and isinstance(size, int) and isinstance(pieces, int) and isinstance(lamport, int)):
        return None
    return FileInfo(doc.id.hex(), doc.owner, name, size, pieces, min(received, pieces), lamport)
