"""kill -9 of a member's process (its embedded node and its client) at 20 random points while it sends
messages and commits and Alice sends too: after every restart its group state matches the documents,
and in the end nothing acknowledged is lost and nothing is shown twice, on either side."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from keygroups import Level
from tests.node_adapter.clients import Person, eventually, key_packages_visible
from tests.p2panda.node.process import ROOT

KILLS = 20


class Member:
    def __init__(self, data_dir: Path, peer: str, group_id: str, seed: str) -> None:
        self.args = [sys.executable, "-m", "tests.node_adapter.crash_member", str(data_dir), peer, group_id, seed]
        self.proc: subprocess.Popen[str] | None = None
        self.acknowledged: set[int] = set()
        self.lines: list[str] = []

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def read_for(self, seconds: float) -> None:
        """Collect what the member acknowledges: up to its first message after (re)starting, then for
        `seconds` more (the kill lands at a random point of the flow, not during start-up)."""
        assert self.proc is not None and self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = None
        while deadline is None or loop.time() < deadline:
            line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stdout.readline), timeout=60)
            if not line:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"member exited: {err}")
            self.lines.append(line)
            if line.startswith("sent "):
                self.acknowledged.add(int(line.split()[1]))
                if deadline is None:
                    deadline = loop.time() + seconds

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None


async def test_kill_9_at_random_points_loses_nothing_acknowledged_and_shows_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(20261129)
    alice = await Person(tmp_path, "alice").start()
    bob = await Person(tmp_path, "bob", peers=(alice.address,)).start()
    member: Member | None = None
    alice_sent: list[str] = []
    try:
        group = await alice.c().create_group("crash")
        assert alice.node is not None
        await key_packages_visible(alice.node, bob.key)
        await group.add(bob.key, Level.MANAGE)
        await bob.group(group.id)
        await bob.stop()  # from here on Bob runs in a process that gets killed
        member = Member(bob.data_dir, alice.address, group.id, bob.key_pair.private_key().hex())
        for kill in range(KILLS):
            member.start()
            await member.read_for(rng.uniform(0.3, 1.5))
            text = f"alice {kill}"
            await group.send(text)
            alice_sent.append(text)
            member.kill()
        member.start()
        await member.read_for(1.0)
        member.kill()
        assert len(member.acknowledged) >= KILLS, member.lines[-5:]

        # Bob's state after the last kill, opened by a client in this process.
        await bob.start()
        bobs = await bob.c().group(group.id)

        def bob_numbers(texts: set[str]) -> set[int]:
            return {int(t.split()[1]) for t in texts if t.startswith("bob ")}

        async def converged() -> bool:
            # On what was acknowledged, not on a count: a message published just before a kill and never
            # acknowledged also arrives, so a count could be reached while an acknowledged one is in flight.
            alice_has = {m.text for m in await group.messages()}
            bob_has = {m.text for m in await bobs.messages()}
            return (
                bobs.epoch == group.epoch
                and member.acknowledged <= bob_numbers(alice_has)
                and set(alice_sent) <= bob_has
            )

        try:
            await eventually(converged, timeout=60, what="alice and bob converge")
        except AssertionError:
            texts = {m.text for m in await group.messages()}
            raise AssertionError(
                f"epochs {bobs.epoch} (bob) vs {group.epoch} (alice); alice lacks "
                f"{sorted({m.text for m in await bobs.messages()} - texts)}; refused {group.refused()} / {bobs.refused()}"
            ) from None
        for person, g in ((alice, group), (bob, bobs)):
            texts = [m.text for m in await g.messages()]
            counts = Counter(texts)
            assert [t for t, n in counts.items() if n > 1] == [], f"{person.name} shows messages twice"
            numbers = bob_numbers(set(texts))
            assert member.acknowledged <= numbers, f"{person.name} lost {member.acknowledged - numbers}"
            assert set(alice_sent) <= set(texts)
            assert g.refused() == [], g.refused()
        assert bobs.epoch > 1 + KILLS // 2  # Bob committed along the way
    finally:
        if member is not None and member.proc is not None:
            member.kill()
        for person in (bob, alice):
            if person.client is not None:
                await person.stop()
