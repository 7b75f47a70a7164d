"""Secret groups through nodes that are not members: a `panda node` process relays between Alice and Bob
(and serves a Client over GraphQL), and never holds or serves a plaintext."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from keygroups import Level
from node_adapter import Client, RemoteNode
from p2panda.identity import KeyPair
from secret_group.schemas import COMMIT, ENVELOPE, KEY_PACKAGE_SCHEMA
from tests.node_adapter.clients import Person, eventually, key_packages_visible
from tests.p2panda.node.process import PandaNode


def _all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def _graphql(url: str, query: str) -> bytes:
    request = urllib.request.Request(
        url, data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
        return body


async def test_alice_and_bob_talk_through_a_relay_that_learns_no_plaintext(tmp_path: Path) -> None:
    relay = PandaNode(tmp_path / "relay")
    relay.start()
    alice = bob = None
    try:
        address = relay.address
        alice = await Person(tmp_path, "alice", peers=(address,)).start()
        bob = await Person(tmp_path, "bob", peers=(address,)).start()
        secrets = [f"the launch code is {i}-{'x' * i}" for i in range(1, 4)]
        for history in (False, True):
            group = await alice.c().create_group(f"plans-{history}", history=history)
            assert alice.node is not None
            await key_packages_visible(alice.node, bob.key)
            await group.add(bob.key, Level.WRITE)
            await group.send(secrets[0])
            bobs = await bob.group(group.id)
            assert await bob.texts(bobs, 1) == [secrets[0]]
            await bobs.send(secrets[1])
            assert await alice.texts(group, 2) == secrets[:2]  # seen before answering: causal order
            await group.send(secrets[2])
            assert await alice.texts(group, 3) == secrets
            assert await bob.texts(bobs, 3) == secrets
            assert bobs.name == f"plans-{history}"

        # What the relay stores: every file of its data directory (SQLite, WAL, keys).
        stored = _all_bytes(tmp_path / "relay")
        served = b""
        for schema_id in (ENVELOPE, COMMIT):
            fields = "ciphertext epoch" if schema_id == ENVELOPE else "commit welcome handover added"
            served += _graphql(
                relay.url, f"{{ all_{schema_id}(first: 100) {{ documents {{ fields {{ {fields} }} }} }} }}"
            )
        assert b"ciphertext" in served and len(served) > 2000  # the positive control: envelopes are served
        for text in [*secrets, "plans-False", "plans-True"]:
            assert text.encode() not in stored, f"{text!r} is in the relay's files"
            assert text.encode() not in served, f"{text!r} is served by the relay"
            assert text.encode().hex().encode() not in served
        # The members' own nodes hold only envelopes too: the plaintext is only in the clients' state files.
        assert alice.node is not None
        node_files = b"".join(p.read_bytes() for p in (tmp_path / "alice").glob("node.sqlite3*"))
        assert node_files and secrets[0].encode() not in node_files
    finally:
        for person in (bob, alice):
            if person is not None and person.client is not None:
                await person.stop()
        relay.kill()


async def test_a_client_of_a_remote_panda_node_keeps_its_state_in_a_file(tmp_path: Path) -> None:
    process = PandaNode(tmp_path / "remote")
    process.start()
    bob = None
    try:
        bob = await Person(tmp_path, "bob", peers=(process.address,)).start()
        alice_key = KeyPair.generate()
        state = tmp_path / "alice-state.sqlite3"
        async with RemoteNode(process.url) as remote:
            async with Client(remote, alice_key, state_path=state) as alice:
                group = await alice.create_group("remote")

                async def bob_package() -> bool:
                    return (await remote.query(KEY_PACKAGE_SCHEMA, meta={"owner": {"eq": bob.key.hex()}})).total > 0

                await eventually(bob_package, what="bob's key package on the remote node")
                await group.add(bob.key)
                await group.send("from a remote client")
                bobs = await bob.group(group.id)
                assert await bob.texts(bobs, 1) == ["from a remote client"]
                await bobs.send("back to you")

                async def two() -> list[str] | None:
                    texts = [m.text for m in await group.messages()]
                    return texts if len(texts) == 2 else None

                assert await eventually(two) == ["from a remote client", "back to you"]
            # A new client on the same state file knows the group and its messages.
            async with Client(remote, alice_key, state_path=state) as again:
                [restored] = await again.groups()
                assert [m.text for m in await restored.messages()] == ["from a remote client", "back to you"]
    finally:
        if bob is not None and bob.client is not None:
            await bob.stop()
        process.kill()
