"""A local user with many subscriptions, run as its own process (as another local user, for F1 and F6 in
p2panda/node/api/fairness.py): `python subscriber.py URL SOCKETS SUBSCRIPTIONS SECONDS UID < query`. It
starts as root and becomes user UID before its first socket.

Opens SOCKETS WebSockets with SUBSCRIPTIONS subscriptions of the query each; prints `ready` once every
subscription is live (a `ping` after them is answered only then), then reads every message for SECONDS
seconds and prints one JSON object: how many messages of each type, and the distinct error messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import aiohttp


async def subscribe(url: str, sockets: int, subscriptions: int, seconds: float, query: str) -> dict[str, object]:
    kinds: Counter[str] = Counter()
    errors: set[str] = set()
    async with aiohttp.ClientSession() as session:
        opened = []
        for _ in range(sockets):
            socket = await session.ws_connect(url, protocols=("graphql-transport-ws",), max_msg_size=0)
            await socket.send_json({"type": "connection_init"})
            assert (await socket.receive_json(timeout=60))["type"] == "connection_ack"
            for ident in range(subscriptions):
                await socket.send_json({"id": str(ident), "type": "subscribe", "payload": {"query": query}})
            await socket.send_json({"type": "ping"})
            opened.append(socket)
        for socket in opened:
            while (message := await socket.receive_json(timeout=60))["type"] != "pong":
                raise AssertionError(f"subscribing failed: {message}")
        print("ready", flush=True)
        deadline = time.monotonic() + seconds

        async def read(socket: aiohttp.ClientWebSocketResponse) -> None:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    frame = await socket.receive(timeout=left)
                except TimeoutError:
                    return
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    kinds[frame.type.name] += 1
                    return
                message = json.loads(frame.data)
                kinds[message["type"]] += 1
                if message["type"] == "error":
                    errors.update(str(e["message"]) for e in message["payload"])

        await asyncio.gather(*(read(socket) for socket in opened))
        for socket in opened:
            await socket.close()
    return {"kinds": dict(kinds), "errors": sorted(errors)}


if __name__ == "__main__":
    url, sockets, subscriptions, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    os.setgid(int(sys.argv[5]))
    os.setuid(int(sys.argv[5]))
    print(json.dumps(asyncio.run(subscribe(url, sockets, subscriptions, seconds, sys.stdin.read()))), flush=True)
