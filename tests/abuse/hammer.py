"""An abusive HTTP client, run as its own process (as another local user, for F1 in
p2panda/node/api/fairness.py): `python hammer.py URL CONNECTIONS SECONDS UID < query`. It starts as root
(the test's Python may sit where other users cannot run it) and becomes user UID before its first socket.

Each of CONNECTIONS connections posts the query again as soon as it has an answer, without waiting for
`Retry-After`, for SECONDS seconds. Prints one JSON object: how many answers of each status, and the
distinct (status, Retry-After, first error message) of the answers that were not 200.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import aiohttp


async def hammer(url: str, connections: int, seconds: float, query: str) -> dict[str, object]:
    statuses: Counter[int] = Counter()
    refusals: set[tuple[int, str | None, str]] = set()
    deadline = time.monotonic() + seconds

    async def one() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            while time.monotonic() < deadline:
                async with session.post(url, json={"query": query}) as response:
                    body = await response.json()
                    statuses[response.status] += 1
                    if response.status != 200:
                        message = str(body["errors"][0]["message"])
                        refusals.add((response.status, response.headers.get("Retry-After"), message))

    await asyncio.gather(*(one() for _ in range(connections)))
    return {"statuses": dict(statuses), "refusals": sorted(refusals, key=str)}


if __name__ == "__main__":
    url, connections, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    os.setgid(int(sys.argv[4]))
    os.setuid(int(sys.argv[4]))
    print(json.dumps(asyncio.run(hammer(url, connections, seconds, sys.stdin.read()))))
