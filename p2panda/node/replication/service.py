"""The replication service: listens for peers, dials static peers (with backoff), and runs one session per
connection.

A session (both sides the same, the dialling side speaks first): SyncRequest (dialler only) and Have
(our log heights, split over several Have messages to fit frames and ended by an empty one) go out; when
the peer's Have is complete, every entry it lacks goes out in log order, schema definitions' logs first
(field definitions, then schema definitions, then the rest), then SyncDone with live mode on. From then on every entry this node accepts (published locally or ingested from any peer) is
sent to the peer as it is accepted, so a chain A-B-C relays in milliseconds.

Incoming entries go through `Node.ingest`, the same validation as a local publish, in batches: whatever
arrived while the previous batch was being stored becomes the next batch, one transaction each (a burst
of a sync becomes batches of up to 1 000, a live message a batch of one). Entries whose schema is not
known yet, or whose log predecessor or previous operation has not arrived, wait in the session and are
retried after every batch that accepted something. Entries that fail validation otherwise (forged, mutated,
forks) are rejected: kept in `Replication.rejected` and logged; a fork also leaves the node's fork proof.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass

from p2panda.hash import Hash
from p2panda.identity import KeyPair, PublicKey
from p2panda.node.discovery import Discovery
from p2panda.node.errors import AlreadyStored, PreviousNotFound, SchemaNotAllowed, SchemaNotFound, SeqNumMismatch
from p2panda.node.node import Node
from p2panda.node.peer import Peer
from p2panda.node.publish import Published
from p2panda.node.replication.messages import (
    MAX_MESSAGE,
    EntryMessage,
    Have,
    InvalidMessage,
    Message,
    SyncDone,
    SyncRequest,
    decode_message,
    encode_message,
    sort_target,
)
from p2panda.node.store import Store
from p2panda.node.transport import (
    DEFAULT_NETWORK_KEY,
    Admit,
    BoxStream,
    HandshakeFailed,
    StreamClosed,
    accept,
    connect,
)
from p2panda.schema import SchemaId, SystemSchema

__all__ = ["Rejected", "Replication", "ReplicationConfig"]

log = logging.getLogger(__name__)

_FIELD_DEFINITION = str(SchemaId.system_schema(SystemSchema.SCHEMA_FIELD_DEFINITION_V1))
_SCHEMA_DEFINITION = str(SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1))
_LOGS_PER_HAVE = 2000
# Entries are up to MAX_MESSAGE bytes: what a session holds is bounded in bytes as well as in entries.
_MAX_WAITING = 10_000
_MAX_WAITING_BYTES = 64 * 1024 * 1024
_MAX_INBOX = 5_000
_MAX_INBOX_BYTES = 32 * 1024 * 1024
_BATCH = 1_000
_BATCH_BYTES = 16 * 1024 * 1024
_BACKOFF = (0.2, 30.0)


@dataclass(frozen=True, slots=True)
class ReplicationConfig:
    key_pair: KeyPair
    host: str = "127.0.0.1"  # reachable from other machines only when asked for
    port: int = 2022
    network_key: bytes = DEFAULT_NETWORK_KEY
    peers: tuple[Peer, ...] = ()
    allow: frozenset[str] | None = None  # node keys (hex) allowed to connect; None: any
    block: frozenset[str] = frozenset()
    mdns: bool = False  # announce this node and dial the peers found on the local network


@dataclass(frozen=True, slots=True)
class Rejected:
    peer: str
    entry_hash: str
    reason: str


def _rank(schema_id: str) -> int:
    return 0 if schema_id == _FIELD_DEFINITION else 1 if schema_id == _SCHEMA_DEFINITION else 2


class Replication:
    """Replication of one node with its peers. `await start()`, `await stop()`."""

    def __init__(self, node: Node, config: ReplicationConfig) -> None:
        self.node = node
        self.config = config
        self.admit = Admit(config.allow, config.block)
        self.rejected: collections.deque[Rejected] = collections.deque(maxlen=1000)
        self.connected: set[str] = set()  # node keys with a running session
        self._sessions: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._discovery: Discovery | None = None
        self._discovered: dict[str, tuple[Peer, asyncio.Task[None]]] = {}

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("replication is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> Peer:
        """This node's peer address, `<node key>@host:port`, what other nodes dial (a wildcard host such as
        0.0.0.0 stands for this machine's address on the network the peer is on)."""
        return Peer(self.config.host, self.port, self.config.key_pair.public_key)

    def peer_heights(self, public_key: str) -> dict[int, int]:
        """Per log of `public_key`, the highest seq num a connected peer node has: reported by it, sent
        by it, or written to its session by us (in log order). Read-only; for "delivered" marks."""
        out: dict[int, int] = {}
        for session in self._sessions:
            for (author, log_id), seq_num in session.peer_heights.items():
                if author == public_key and seq_num > out.get(log_id, 0):
                    out[log_id] = seq_num
        return out

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, self.config.host, self.config.port)
        for peer in self.config.peers:
            self.dial(peer)
        if self.config.mdns:
            self._discovery = Discovery(
                self.config.key_pair.public_key,
                self.config.host,
                self.port,
                self.config.network_key,
                self._found,
                self._lost,
            )
            await self._discovery.start()

    def dial(self, peer: Peer) -> asyncio.Task[None]:
        """Keep a session with `peer`, reconnecting with backoff."""
        return self._spawn(self._dial_loop(peer))

    def _found(self, key: PublicKey, host: str, port: int) -> None:
        peer = Peer(host, port, key)
        known = self._discovered.get(key.hex())
        if known is not None and known[0] == peer:
            return
        if known is not None:
            known[1].cancel()
        if self.admit(key):
            self._discovered[key.hex()] = (peer, self.dial(peer))

    def _lost(self, key: PublicKey) -> None:
        known = self._discovered.pop(key.hex(), None)
        if known is not None:
            known[1].cancel()

    async def stop(self) -> None:
        if self._discovery is not None:
            await self._discovery.stop()
            self._discovery = None
        self._stopping = True
        if self._server is not None:
            self._server.close()
        # Until no task is left running: a connection accepted just before the server closed starts its
        # task after the first round of cancellations. Loop on tasks not done, not on `_tasks`: a task that
        # just finished leaves `_tasks` only when its done callback runs, and awaiting a finished task does
        # not yield to the loop, so `while self._tasks` could spin forever without letting it run.
        while running := [task for task in self._tasks if not task.done()]:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._stopping = False

    def _spawn(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            # Accepted just before `stop()` closed the server, started after it cancelled the tasks: left
            # open, this connection would keep `wait_closed()` waiting forever.
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            stream = await accept(reader, writer, self.config.key_pair, self.config.network_key, self.admit)
        except (HandshakeFailed, ConnectionError) as exc:
            log.info("refused a connection from %s: %s", writer.get_extra_info("peername"), exc)
            writer.close()
            return
        except asyncio.CancelledError:  # stopped during the handshake
            writer.close()
            return
        try:
            await self._session(stream, initiator=False)
        except asyncio.CancelledError:
            # Stopping cancels this task; asyncio's server callback would log a cancelled handler as an
            # error, so it ends here normally instead.
            return

    async def _dial_loop(self, peer: Peer) -> None:
        delay = _BACKOFF[0]
        while True:
            try:
                reader, writer = await asyncio.open_connection(peer.host, peer.port)
            except OSError as exc:
                log.debug("cannot reach %s: %s", peer, exc)
            else:
                try:
                    stream = await connect(
                        reader, writer, self.config.key_pair, peer.public_key, self.config.network_key
                    )
                except (HandshakeFailed, ConnectionError) as exc:
                    log.warning("handshake with %s failed: %s", peer, exc)
                    writer.close()
                else:
                    if self.admit(stream.peer):
                        delay = _BACKOFF[0]
                        await self._session(stream, initiator=True)
                    else:
                        log.warning("%s is node %s, which is not admitted", peer, stream.peer.hex())
                        await stream.close()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, _BACKOFF[1])

    async def _session(self, stream: BoxStream, *, initiator: bool) -> None:
        peer = stream.peer.hex()
        if stream.peer == self.config.key_pair.public_key:
            await stream.close()
            return
        log.info("replicating with %s", peer)
        self.connected.add(peer)
        session = _Session(self, stream, initiator)
        self._sessions.add(session)
        try:
            await session.run()
        except (StreamClosed, ConnectionError) as exc:
            log.info("session with %s ended: %s", peer, exc)
        except InvalidMessage as exc:
            log.warning("%s sent an invalid message: %s", peer, exc)
        finally:
            self.connected.discard(peer)
            self._sessions.discard(session)
            self.node.unwatch_entries(session.watch)
            await stream.close()


class _Session:
    def __init__(self, replication: Replication, stream: BoxStream, initiator: bool) -> None:
        self.replication = replication
        self.node = replication.node
        self.stream = stream
        self.initiator = initiator
        self.peer_heights: dict[tuple[str, int], int] = {}
        self.have_done = asyncio.Event()
        self.watch = self.node.watch_entries()  # before our Have: nothing accepted after it is missed
        self.waiting: collections.OrderedDict[str, tuple[bytes, bytes]] = collections.OrderedDict()
        self.waiting_bytes = 0
        self.inbox: collections.deque[tuple[bytes, bytes]] = collections.deque()
        self.inbox_bytes = 0
        self.arrived = asyncio.Event()
        self.drained = asyncio.Event()

    async def run(self) -> None:
        # Either side ending ends the session: in live mode the sender waits for new entries, so a peer
        # that went away is noticed by the receiver (its stream closed), not only at our next write.
        receiving = asyncio.ensure_future(self._receive())
        sending = asyncio.ensure_future(self._send())
        try:
            done, _ = await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in (sending, receiving):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _send(self) -> None:
        heights = await self.node.db.read(lambda conn: Store(conn).all_log_heights())
        if self.initiator:
            target = sort_target({str(s.id) for s in self.node.registry.all()})
            await self._message(SyncRequest(0, 0, target))
        by_author: dict[str, list[tuple[int, int]]] = {}
        for public_key, log_id, seq_num, _ in heights:
            by_author.setdefault(public_key, []).append((log_id, seq_num))
        chunk: list[tuple[bytes, tuple[tuple[int, int], ...]]] = []
        count = 0
        for public_key, logs in sorted(by_author.items()):
            chunk.append((bytes.fromhex(public_key), tuple(sorted(logs))))
            count += len(logs)
            if count >= _LOGS_PER_HAVE:
                await self._message(Have(0, tuple(chunk)))
                chunk, count = [], 0
        if chunk:
            await self._message(Have(0, tuple(chunk)))
        await self._message(Have(0, ()))  # an empty Have ends ours (a Have is split to fit frames)
        await self.have_done.wait()
        for public_key, log_id, _, _ in sorted(heights, key=lambda h: (_rank(h[3]), h[0], h[1])):
            await self._send_log(public_key, log_id)
        await self._message(SyncDone(0, True))
        # Live mode.
        while True:
            # Everything accepted since the last round, as the newest seq num per log; logs the peer has
            # up to there (its own entries coming back, or sent already) cost no database read.
            newest: dict[tuple[str, int], int] = {}
            public_key, log_id, seq_num = await self.watch.get()
            while True:
                newest[(public_key, log_id)] = max(seq_num, newest.get((public_key, log_id), 0))
                if self.watch.empty():
                    break
                public_key, log_id, seq_num = self.watch.get_nowait()
            for (public_key, log_id), seq_num in newest.items():
                if seq_num > self.peer_heights.get((public_key, log_id), 0):
                    await self._send_log(public_key, log_id)

    async def _send_log(self, public_key: str, log_id: int) -> None:
        have = self.peer_heights.get((public_key, log_id), 0)
        entries = await self.node.db.read(lambda conn: Store(conn).entries_after(public_key, log_id, have))
        for raw, payload in entries:
            await self._message(EntryMessage(0, raw, payload))
            have += 1
            self.peer_heights[(public_key, log_id)] = have

    async def _message(self, message: Message) -> None:
        await self.stream.send_message(encode_message(message))

    async def _receive(self) -> None:
        ingesting = asyncio.ensure_future(self._ingester())
        try:
            while True:
                message = decode_message(await self.stream.receive_message(MAX_MESSAGE))
                if isinstance(message, Have):
                    if not message.heights:
                        self.have_done.set()
                    for public_key, logs in message.heights:
                        for log_id, seq_num in logs:
                            key = (public_key.hex(), log_id)
                            self.peer_heights[key] = max(seq_num, self.peer_heights.get(key, 0))
                elif isinstance(message, EntryMessage):
                    self.inbox.append((message.entry, message.operation))
                    self.inbox_bytes += len(message.entry) + len(message.operation)
                    self.arrived.set()
                    if len(self.inbox) >= _MAX_INBOX or self.inbox_bytes >= _MAX_INBOX_BYTES:
                        # Back-pressure: stop reading (TCP then slows the peer) until the ingester catches up.
                        self.drained.clear()
                        await self.drained.wait()
                elif isinstance(message, SyncRequest) and self.initiator:
                    raise InvalidMessage("a sync request from the side that was dialled")
                if ingesting.done():
                    ingesting.result()  # the ingester failed: end the session with its error
        finally:
            ingesting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ingesting

    async def _ingester(self) -> None:
        """Ingests what arrived since the last batch, in one transaction: a burst becomes a few large
        batches, a live message a batch of one."""
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            while self.inbox:
                batch: list[tuple[bytes, bytes]] = []
                size = 0
                while self.inbox and len(batch) < _BATCH and (not batch or size < _BATCH_BYTES):
                    entry, operation = self.inbox.popleft()
                    batch.append((entry, operation))
                    size += len(entry) + len(operation)
                self.inbox_bytes -= size
                self.drained.set()
                if await self._ingest(batch):
                    await self._retry_waiting()

    async def _ingest(self, batch: list[tuple[bytes, bytes]]) -> bool:
        """Ingest a batch; entries that cannot be validated yet wait, the others that fail are rejected.
        True when any entry was accepted."""
        outcomes = await self.node.ingest(batch)
        accepted = False
        for (raw, payload), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Published):
                entry = outcome.entry
                key = (entry.public_key.hex(), entry.log_id)
                self.peer_heights[key] = max(entry.seq_num, self.peer_heights.get(key, 0))
                accepted = True
            elif isinstance(outcome, AlreadyStored):
                continue
            elif isinstance(outcome, (SchemaNotFound, PreviousNotFound, SeqNumMismatch)):
                # Its schema, log predecessor or previous operation has not arrived yet.
                self.waiting[Hash.of(raw).hex()] = (raw, payload)
                self.waiting_bytes += len(raw) + len(payload)
                while len(self.waiting) > _MAX_WAITING or self.waiting_bytes > _MAX_WAITING_BYTES:
                    _, (old_raw, old_payload) = self.waiting.popitem(last=False)  # sent again on the next sync
                    self.waiting_bytes -= len(old_raw) + len(old_payload)
            elif not isinstance(outcome, SchemaNotAllowed):
                self._reject(Hash.of(raw).hex(), str(outcome))
        return accepted

    async def _retry_waiting(self) -> None:
        while self.waiting:
            batch = list(self.waiting.values())
            self.waiting.clear()
            self.waiting_bytes = 0
            if not await self._ingest(batch):
                return

    def _reject(self, entry_hash: str, reason: str) -> None:
        peer = self.stream.peer.hex()
        log.warning("rejected entry %s from %s: %s", entry_hash, peer, reason)
        self.replication.rejected.append(Rejected(peer, entry_hash, reason))
