"""A simulated network of real OpenMLS members following `secret_group.convergence`: documents travel as
Python objects, with partitions, reordering and duplicates chosen by a seeded random generator.

Each `SimMember` does what a `Client` does, minus the I/O: it keeps every commit document it has seen,
follows the winning path (K1) by applying, rolling back (R2) or asking to be re-added (R3), opens
envelopes before the commit that ends their epoch (C1), re-sends its own messages that were sent on a
losing branch, and queues messages while the key group says someone is removed and MLS does not yet.

The key group is modelled as a last-writer-wins map of intent changes (key -> wanted) that replicates
like any document; a commit names the changes it knew (its causal point). Managers are fixed.
Key packages are visible everywhere at once (their distribution is not what is under test).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from keygroups import Level
from p2panda.identity import KeyPair
from secret_group.convergence import CommitInfo, RejoinRequest, keep, open_rejoins, plan, winning_path
from secret_group.documents import CommitDoc, EnvelopeDoc, GroupDoc, KeyPackageDoc, Mode
from secret_group.engine import Engine, GroupRecord
from secret_group.errors import NotAuthorised, SecretGroupError
from secret_group.mls import DEFAULT_MAX_PAST_EPOCHS, MlsError, MlsMember, RemovedSender

GROUP_ID = "0020" + "ab" * 32
OWNER = "0020" + "cd" * 32


@dataclass(frozen=True, slots=True)
class Intent:
    id: str
    key: str
    wanted: bool
    lamport: int


@dataclass(frozen=True, slots=True)
class Sent:
    """One copy of a message on the wire: which message, and the sender's tip when it was sealed."""

    message: str
    sender: str
    envelope: str
    tip: str


Doc = CommitDoc | EnvelopeDoc | Intent | RejoinRequest


class World:
    def __init__(self, rng: random.Random, n: int, managers: int) -> None:
        self.rng = rng
        self.counter = 0
        self.members = [SimMember(self, i < managers) for i in range(n)]
        self.key_packages: dict[str, list[KeyPackageDoc]] = {m.key: [] for m in self.members}
        self.docs: dict[str, Doc] = {}
        self.holders: dict[str, set[str]] = {}
        self.sent: list[Sent] = []
        self.members_at: dict[str, frozenset[str]] = {}  # commit id -> MLS members after it (as applied)
        self.readers: dict[str, set[str]] = {}  # envelope id -> keys that decrypted it
        self.side: dict[str, int] = {m.key: 0 for m in self.members}
        self.group = GroupDoc(GROUP_ID, self.members[0].key, OWNER, Mode.RATCHET)
        for m in self.members:
            for _ in range(2):
                self.publish_key_package(m)

    def new_id(self) -> str:
        self.counter += 1
        return "0020" + f"{self.counter:064x}"

    def publish_key_package(self, m: SimMember) -> KeyPackageDoc:
        kp = KeyPackageDoc(self.new_id(), m.key, m.mls.key_package(), False)
        m.mls.take_changes()
        self.key_packages[m.key].append(kp)
        return kp

    def publish(self, author: SimMember, doc: Doc) -> None:
        self.docs[doc.id] = doc
        self.holders[doc.id] = {author.key}
        author.receive(doc)

    def deliverable(self) -> list[tuple[str, SimMember]]:
        """(doc, member) pairs a member on the same side as a holder could receive now."""
        out = []
        for doc_id, holders in self.holders.items():
            sides = {self.side[h] for h in holders}
            for m in self.members:
                if m.key not in holders and self.side[m.key] in sides:
                    out.append((doc_id, m))
        return out

    def deliver(self, doc_id: str, m: SimMember) -> None:
        self.holders[doc_id].add(m.key)
        m.receive(self.docs[doc_id])
        m.settle()

    def deliver_all(self) -> None:
        while True:
            pairs = self.deliverable()
            if not pairs:
                return
            self.rng.shuffle(pairs)
            for doc_id, m in pairs:
                if m.key not in self.holders[doc_id]:
                    self.deliver(doc_id, m)

    def members_of(self, key: str) -> SimMember:
        return next(m for m in self.members if m.key == key)


class SimMember:
    def __init__(self, world: World, manager: bool) -> None:
        self.world = world
        self.manager = manager
        self.key_pair = KeyPair.from_private_key(world.rng.randbytes(32))  # the seed decides the keys too
        self.key = self.key_pair.public_key.hex()
        self.mls = MlsMember(self.key_pair.private_key())
        self.engine = Engine(self.mls)
        self.record: GroupRecord | None = None
        self.applied: list[str] = []
        self.snapshots: dict[str, tuple[list[tuple[bytes, bytes]], GroupRecord]] = {}
        self.depths: dict[str, int] = {}
        self.commits: dict[str, CommitDoc] = {}
        self.requests: dict[str, RejoinRequest] = {}
        self.intents: dict[str, Intent] = {}
        self.envelopes: dict[str, EnvelopeDoc] = {}  # pending
        self.withdrawn: dict[str, EnvelopeDoc] = {}  # did not open on this branch; retried after a rollback
        self.invalid: set[str] = set()
        self.seen_envelopes: set[str] = set()
        self.late: set[str] = set()  # envelopes that arrived after their epoch's keys or their sender went
        self.shown: dict[str, str] = {}  # message -> envelope it was first read from
        self.duplicates = 0
        self.mine: dict[str, Sent] = {}  # own messages, by message, latest copy
        self.queue: list[str] = []
        self.asked: str | None = None  # the winning tip named by our last rejoin request
        self.joined_at = GROUP_ID  # the commit whose welcome we last joined by: we hold no state before it

    # --- the key group -------------------------------------------------------------------------------

    def wanted_at(self, tips: tuple[str, ...]) -> set[str] | None:
        latest: dict[str, Intent] = {}
        for tip in tips:
            intent = self.intents.get(tip)
            if intent is None:
                return None
            current = latest.get(intent.key)
            if current is None or (intent.lamport, intent.id) > (current.lamport, current.id):
                latest[intent.key] = intent
        return {k for k, i in latest.items() if i.wanted}

    def tips(self) -> tuple[str, ...]:
        return tuple(sorted(self.intents))

    def managers(self) -> set[str]:
        return {m.key for m in self.world.members if m.manager}

    def levels(self) -> dict[str, Level]:
        return {m.key: Level.MANAGE if m.manager else Level.WRITE for m in self.world.members}

    # --- receiving ------------------------------------------------------------------------------------

    def receive(self, doc: Doc) -> None:
        if isinstance(doc, CommitDoc):
            self.commits.setdefault(doc.id, doc)
        elif isinstance(doc, RejoinRequest):
            self.requests.setdefault(doc.id, doc)
        elif isinstance(doc, Intent):
            self.intents.setdefault(doc.id, doc)
        elif doc.author != self.key and doc.id not in self.seen_envelopes:
            self.seen_envelopes.add(doc.id)
            self.envelopes[doc.id] = doc

    def infos(self) -> list[CommitInfo]:
        out = []
        for c in self.commits.values():
            wanted = self.wanted_at(c.key_group_tips)
            if wanted is None:
                continue  # C3: waits for the key-group changes it names
            parent = self.commits.get(c.parent)
            before = self.wanted_at(parent.key_group_tips) if parent is not None else set()
            removes = bool(before and before - wanted)
            out.append(CommitInfo(c.id, c.parent, c.author, removes, c.author in self.managers(), c.id in self.invalid))
        return out

    def winner(self) -> list[str]:
        return winning_path(GROUP_ID, self.infos())

    def path_to(self, commit_id: str) -> list[str]:
        path = [commit_id]
        while path[-1] != GROUP_ID:
            path.append(self.commits[path[-1]].parent)
        return path[::-1]

    def settle(self) -> None:
        for _ in range(200):
            if not self._step():
                break
        else:
            raise AssertionError(f"{self.key[:8]} does not settle")
        self._flush()

    def _step(self) -> bool:
        """One thing to do; False when there is nothing."""
        winner = self.winner()
        if self.record is None or not self.record.active:
            if self._join(winner):
                return True
            if self.record is None or not self.applied:
                return False
        decision = plan(self.applied, winner, self.snapshots)
        if decision.kind == "rollback":
            assert decision.restore is not None
            if self.record.active:  # R4: the tip's snapshot again, with the ratchets as far as they got (R5)
                self._snapshot()
            self._restore(decision.restore)
            self.applied = self.applied[: self.applied.index(decision.restore) + 1]
            for doc_id in list(self.withdrawn):  # they may open on the branch we move to
                self.envelopes[doc_id] = self.withdrawn.pop(doc_id)
            return True
        if decision.kind == "lost":
            self._lose(winner)
            return True
        self._open_all()
        if decision.kind == "idle" or not self.record.active:
            return False
        if decision.replay[0] in self.snapshots:  # R5
            self._restore(decision.replay[0])
            self.applied.append(decision.replay[0])
            return True
        return self._apply(self.commits[decision.replay[0]])

    def _restore(self, commit_id: str) -> None:
        items, record = self.snapshots[commit_id]
        self.mls.restore_group(record.mls_id, items)
        self.mls.take_changes()
        self.record = record

    def _lose(self, winner: list[str]) -> None:
        """R3: drop the group's state and ask to be re-added on the winning path."""
        self.mls.restore_group(bytes.fromhex(GROUP_ID), [])
        self.mls.take_changes()
        self.record, self.applied, self.snapshots, self.depths, self.joined_at = None, [], {}, {}, ""

        for doc_id in list(self.withdrawn):
            self.envelopes[doc_id] = self.withdrawn.pop(doc_id)
        self._ask(winner[-1])

    def _ask(self, tip: str) -> None:
        wanted = self.wanted_at(self.tips()) or set()
        if self.key not in wanted or self.asked == tip:
            return
        kp = self.world.publish_key_package(self)
        self.asked = tip
        self.world.publish(self, RejoinRequest(self.world.new_id(), self.key, tip, kp.id))

    def _join(self, winner: list[str]) -> bool:
        """Join by the last welcome for us on the winning path below what we applied."""
        start = len(self.applied) if self.applied and self.applied == winner[: len(self.applied)] else 0
        welcomes = [c for c in winner[max(start, 1) :] if self.key in self.commits[c].added]
        if not welcomes:
            return False
        doc = self.commits[welcomes[-1]]
        self.mls.restore_group(bytes.fromhex(GROUP_ID), [])
        try:
            record = self.engine.join(self.world.group, doc)
        except (MlsError, SecretGroupError):
            self.mls.discard_changes()
            self._ask(winner[-1])  # its key package was used on a branch that lost: ask for a new welcome
            return False
        self.mls.take_changes()
        self.record = record
        self.applied = self.path_to(doc.id)
        self.joined_at = doc.id
        self.snapshots, self.depths = {}, {}
        self._snapshot()
        self.asked = None
        self.world.publish_key_package(self)  # the welcome used one: keep packages published
        return True

    def _snapshot(self) -> None:
        assert self.record is not None
        self.snapshots[self.record.tip] = (self.mls.group_items(self.record.mls_id), self.record)
        self.depths[self.record.tip] = len(self.applied) - 1
        kept = keep(self.depths, len(self.applied) - 1)
        self.snapshots = {k: v for k, v in self.snapshots.items() if k in kept}
        self.depths = {k: v for k, v in self.depths.items() if k in kept}

    def _apply(self, doc: CommitDoc) -> bool:
        assert self.record is not None
        self._open_all()
        try:
            applied = self.engine.apply(self.record, doc, self.levels())
        except (MlsError, SecretGroupError):
            self.mls.discard_changes()
            self.invalid.add(doc.id)  # V3

            return True
        self.mls.take_changes()
        self.record = applied.record
        self.applied.append(doc.id)
        if self.record.active:
            members = frozenset(k.hex() for k in self.engine.mls(self.record).members())
            seen = self.world.members_at.setdefault(doc.id, members)
            assert seen == members, f"{doc.id} gave two member lists"
            self._snapshot()
        return True

    def _open_all(self) -> None:
        assert self.record is not None
        if not self.record.active:
            return
        epoch = self.engine.mls(self.record).epoch
        for doc in sorted(self.envelopes.values(), key=lambda d: (d.epoch, d.id)):
            if doc.epoch > epoch:
                continue
            del self.envelopes[doc.id]
            try:
                opened = self.engine.open(self.record, doc, self.levels())
            except (MlsError, SecretGroupError) as exc:
                self.mls.discard_changes()
                self.withdrawn[doc.id] = doc  # another branch's, or too late: retried after a rollback
                removed = isinstance(exc, RemovedSender | NotAuthorised) and doc.author in self.record.removed
                if removed or epoch - doc.epoch > DEFAULT_MAX_PAST_EPOCHS:
                    self.late.add(doc.id)  # its epoch's keys, or its sender, were gone when it arrived
                continue
            self.mls.take_changes()
            self.world.readers.setdefault(doc.id, set()).add(self.key)
            message = opened.plaintext.decode()
            if message in self.shown:
                self.duplicates += 1  # a re-sent copy: shown once
            else:
                self.shown[message] = doc.id

    # --- acting ---------------------------------------------------------------------------------------

    def can_send(self) -> bool:
        """Rule 6: nothing new while the key group says someone is removed whom MLS still has."""
        if self.record is None or not self.record.active:
            return False
        wanted = self.wanted_at(self.tips()) or set()
        return set(k.hex() for k in self.engine.mls(self.record).members()) <= wanted | {self.key}

    def send(self, message: str) -> None:
        self.queue.append(message)
        self._flush()

    def _flush(self) -> None:
        if self.record is None or not self.record.active:
            return
        for message, sent in list(self.mine.items()):  # sent on a branch that lost: send again
            if sent.tip not in self.applied and message not in self.queue:
                self.queue.append(message)
        if not self.can_send():
            return
        while self.queue:
            message = self.queue.pop(0)
            epoch, ciphertext = self.engine.seal(self.record, message.encode())
            self.mls.take_changes()
            doc = EnvelopeDoc(self.world.new_id(), self.key, GROUP_ID, epoch, ciphertext)
            sent = Sent(message, self.key, doc.id, self.record.tip)
            self.mine[message] = sent
            self.world.sent.append(sent)
            self.world.publish(self, doc)

    def change_intent(self, key: str, wanted: bool) -> None:
        lamport = 1 + max((i.lamport for i in self.intents.values()), default=0)
        self.world.publish(self, Intent(self.world.new_id(), key, wanted, lamport))

    def designated(self) -> bool:
        """Rule 5 (simplified): the lowest manager key among the MLS members commits what it did not make."""
        if self.record is None or not self.record.active:
            return False
        current = {k.hex() for k in self.engine.mls(self.record).members()}
        added = {c: self.commits[c].added for c in self.applied[1:]}
        lost = {r.author for r in open_rejoins(self.requests.values(), self.applied, added)}  # R3: cannot commit
        return min(self.managers() & current - lost, default=None) == self.key

    def reconcile(self, rotate: bool = False) -> bool:
        """Commit the difference between the key group and MLS: removals first (rule 6), then additions."""
        if not self.manager or self.record is None or not self.record.active:
            return False
        self.settle()
        if self.record is None or not self.record.active:
            return False
        mls = self.engine.mls(self.record)
        current = {k.hex() for k in mls.members()}
        wanted = (self.wanted_at(self.tips()) or set()) | {self.key}
        added = {c: self.commits[c].added for c in self.applied[1:]}
        rejoins = [r for r in open_rejoins(self.requests.values(), self.applied, added) if r.author in wanted]
        removes = sorted((current - wanted) | {r.author for r in rejoins if r.author in current})
        adds: list[KeyPackageDoc] = []
        if not removes:
            used = {kp for c in self.commits.values() for kp in c.key_packages}
            by_request = {r.author: r.key_package for r in rejoins}
            for key in sorted(wanted - current):
                packages = self.world.key_packages[key]
                chosen = [p for p in packages if p.id == by_request.get(key)] or [
                    p for p in packages if p.id not in used
                ]
                if chosen:
                    adds.append(chosen[0])
        if not adds and not removes and not rotate:
            return False
        planned = self.engine.commit(self.record, adds, removes, self.tips())
        self.mls.take_changes()
        f = planned.fields
        doc = CommitDoc(
            self.world.new_id(),
            self.key,
            GROUP_ID,
            str(f["parent"]),
            int(f["epoch"]),  # type: ignore[call-overload]
            bytes(f["commit"]),  # type: ignore[call-overload]
            bytes(f["welcome"]) or None,  # type: ignore[call-overload]
            tuple(str(f["added"]).split()),
            tuple(kp.id for kp in adds),
            self.tips(),
            bytes(f["handover"]) or None,  # type: ignore[call-overload]
        )
        self.record = replace(planned.record, tip=doc.id)
        self.commits[doc.id] = doc
        self.applied.append(doc.id)
        self.world.members_at.setdefault(doc.id, frozenset(k.hex() for k in self.engine.mls(self.record).members()))
        self._snapshot()
        self.world.publish(self, doc)
        self._flush()
        return True

    def create(self, initial: list[SimMember]) -> None:
        self.record = self.engine.create(self.world.group, "sim")
        self.mls.take_changes()
        self.applied = [GROUP_ID]
        self._snapshot()
        for m in initial:
            self.change_intent(m.key, True)


@dataclass
class Outcome:
    winner: list[str]
    rollbacks: int = 0
    commits: int = 0
    resent: int = 0
    notes: list[str] = field(default_factory=list)
