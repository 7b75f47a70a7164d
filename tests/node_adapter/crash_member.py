"""A member that sends and commits until it is killed: `python -m tests.node_adapter.crash_member DATA_DIR
PEER GROUP_ID SEED_HEX`. Prints `sent N` after a message is acknowledged (stored by its client and
published to its node) and `rotated EPOCH` after a commit; numbering resumes after a restart from the
member's own messages, so every text is sent once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from node_adapter import Client, EmbeddedNode
from p2panda.identity import KeyPair


async def main(data_dir: Path, peer: str, group_id: str, seed: str) -> None:
    key_pair = KeyPair.from_private_key_hex(seed)
    async with EmbeddedNode(data_dir, replication_port=0, peers=(peer,)) as node, Client(node, key_pair) as client:
        print(f"ready {client.me}", flush=True)
        while group_id not in {g.id for g in await client.groups()}:
            await asyncio.sleep(0.05)
        group = await client.group(group_id)
        own = [int(m.text.split()[1]) for m in await group.messages() if m.author == key_pair.public_key]
        n = max(own, default=-1) + 1
        while True:
            await group.send(f"bob {n}")
            print(f"sent {n}", flush=True)
            if n % 3 == 2:
                await group.rotate()
                print(f"rotated {group.epoch}", flush=True)
            n += 1
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))
