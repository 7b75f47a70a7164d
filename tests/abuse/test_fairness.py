"""Fair shares between clients (F1-F4 in p2panda/node/api/fairness.py), against a real `panda node`: an
abusive local user hammering expensive queries on 16 connections (`hammer.py`, its own process, as user
65534) gets `429`s naming the limit while a polite client (this test, as root) is never refused and its
simple query stays fast. Positive control: with the limits set out of reach, the same abuse makes the
polite query wait longer than the bound and the abuser is never refused."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node_adapter import RemoteNode
from p2panda import KeyPair
from p2panda.node.api.fairness import ClientLimits, Fairness, Refused, socket_owner
from p2panda.schema import FieldType
from tests.abuse.conftest import StartNode
from tests.abuse.test_connections import simple_query
from tests.p2panda.node.netns import hosts
from tests.p2panda.node.process import ROOT, PandaNode

ABUSER = 65534  # nobody
CONNECTIONS = 16
SECONDS = 8.0
BOUND = 4.0  # seconds a polite `{ __typename }` may take during the abuse
# Introspection holds the event loop for about half a second in one step and answers 1.8 MB; its cost (Q4
# in cost.py) is set out of reach below: the per-client limits alone are tested here.
INTROSPECTION = (
    "{ "
    + " ".join(
        f"a{i}: __schema {{ types {{ name fields {{ name args {{ name type {{ name kind ofType {{ name kind }} }} }} "
        "type { name kind ofType { name kind ofType { name } } } } } }"
        for i in range(30)
    )
    + " }"
)
NO_COST = "[graphql_limits]\nmax_cost = 100000000\n"
FAIR = NO_COST + "[client_limits]\nmax_requests = 2\ntime_burst = 1\ntime_rate = 0.25\n"
OFF = NO_COST + "[client_limits]\nmax_requests = 100000\ntime_burst = 100000\n"
TOO_MANY = (
    f"too many requests at once from local user {ABUSER} (limit 2; client_limits.max_requests), "
    "retry when one is answered"
)
SHARE = re.compile(
    rf"local user {ABUSER} used its share of the node's time \(client_limits.time_burst 1 s, refilled at "
    r"client_limits.time_rate 0.25 s per second\), retry in (\d+) s"
)


def _root_only() -> None:
    if os.geteuid() != 0:
        if os.environ.get("P2PANDA_REQUIRE_NETNS"):  # CI runs as root
            raise RuntimeError("the fairness test runs its abuser as another user: it needs root")
        pytest.skip("the fairness test runs its abuser as another user: it needs root")


async def abuse(node: PandaNode) -> tuple[dict[str, Any], list[float]]:
    """`hammer.py` for SECONDS; meanwhile polite queries one after the other, each given at most BOUND
    seconds (math.inf if it took longer). The abuser's report and the polite latencies."""
    hammer = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "abuse" / "hammer.py"),
        node.url,
        str(CONNECTIONS),
        str(SECONDS),
        str(ABUSER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd="/",
    )
    assert hammer.stdin is not None and hammer.stdout is not None
    hammer.stdin.write(INTROSPECTION.encode())
    hammer.stdin.close()
    report = asyncio.create_task(hammer.stdout.read())
    await asyncio.sleep(1.5)  # the abuser's Python starts and its first requests run
    latencies = []
    while not report.done():
        try:
            async with asyncio.timeout(BOUND):
                latencies.append(await simple_query(node.url))
        except TimeoutError:
            latencies.append(math.inf)
        await asyncio.sleep(0.05)
    assert await hammer.wait() == 0
    return json.loads(await report), latencies


async def test_an_abusive_local_user_cannot_starve_a_polite_one(start_node: StartNode) -> None:
    _root_only()
    node = start_node(FAIR)
    hammered, latencies = await abuse(node)
    statuses = hammered["statuses"]
    assert statuses.get("200", 0) >= 2 and statuses.get("429", 0) > 10, statuses
    kinds = set()
    for status, retry_after, message in hammered["refusals"]:
        assert status == 429
        if message == TOO_MANY:  # F2
            assert retry_after == "1"
            kinds.add("F2")
        else:
            match = SHARE.fullmatch(message)  # F3
            assert match is not None, message
            assert retry_after == match.group(1) and int(retry_after) >= 1
            kinds.add("F3")
    assert kinds == {"F2", "F3"}
    # F1: the polite client, another local user, is never refused (simple_query asserts its 200) and waits
    # at most for two of the abuser's steps.
    assert len(latencies) > 5 and max(latencies) < BOUND, latencies


async def test_positive_control_without_fair_shares_the_abuse_starves(start_node: StartNode) -> None:
    _root_only()
    node = start_node(OFF)
    hammered, latencies = await abuse(node)
    assert set(hammered["statuses"]) == {"200"} and hammered["refusals"] == [], hammered
    assert math.inf in latencies, latencies


async def test_a_loopback_client_is_its_local_user() -> None:
    # F1 on a real connection: the owner of the client's socket, as /proc/net/tcp says.
    _root_only()
    server = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loopback = ipaddress.ip_address("127.0.0.1")
    try:
        other = _socket_of(ABUSER)
        with other, socket.create_connection(("127.0.0.1", port)) as own:
            other.connect(("127.0.0.1", port))
            assert socket_owner(loopback, other.getsockname()[1], loopback, port) == ABUSER
            assert socket_owner(loopback, own.getsockname()[1], loopback, port) == 0
            assert socket_owner(loopback, other.getsockname()[1], loopback, port + 1) is None  # no such connection
            assert socket_owner(loopback, own.getsockname()[1], loopback, port, proc=Path("/nonexistent")) is None
    finally:
        server.close()


def test_time_budget_and_requests_at_once() -> None:
    now = [0.0]
    fairness = Fairness(ClientLimits(max_requests=2, time_burst=1.0, time_rate=0.5), clock=lambda: now[0])
    first, second = fairness.admit("a"), fairness.admit("a")
    with pytest.raises(Refused) as refused:
        fairness.admit("a")  # F2
    assert str(refused.value) == (
        "too many requests at once from a (limit 2; client_limits.max_requests), retry when one is answered"
    )
    assert refused.value.retry_after == 1
    fairness.admit("b")  # another client's share is its own
    first.charge(2.0)
    second.charge(0.6)
    fairness.release(first)
    with pytest.raises(Refused) as refused:
        fairness.admit("a")  # F3: 1.6 s in debt, paid back at 0.5 s per second
    assert str(refused.value) == (
        "a used its share of the node's time (client_limits.time_burst 1 s, refilled at client_limits.time_rate "
        "0.5 s per second), retry in 4 s"
    )
    assert refused.value.retry_after == 4
    now[0] = 3.1
    with pytest.raises(Refused):
        fairness.admit("a")
    now[0] = 3.4
    assert fairness.budget("a") == pytest.approx(0.1)
    fairness.admit("a")
    now[0] = 100.0
    assert fairness.budget("a") == 1.0  # never more than the burst


async def test_the_time_of_a_request_is_measured_step_by_step() -> None:
    fairness = Fairness(ClientLimits(), clock=lambda: 0.0)  # no refill
    ticket = fairness.admit("a")

    async def work() -> str:
        deadline = time.perf_counter() + 0.2
        while time.perf_counter() < deadline:  # holds the loop: counted
            pass
        await asyncio.sleep(0.3)  # waits: not counted
        return "done"

    assert await ticket.timed(work()) == "done"
    assert 0.2 <= ticket.spent < 0.28
    assert fairness.budget("a") == pytest.approx(2.0 - ticket.spent, abs=0.01)
    # A cancellation reaches the awaitable, as with `await`.
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.ensure_future(ticket.timed(waits()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _socket_of(uid: int) -> socket.socket:
    """A TCP socket owned by user `uid` (the kernel records the user that creates a socket)."""
    os.seteuid(uid)
    try:
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        os.seteuid(0)


@pytest.mark.parametrize("per_client", [4, None])
async def test_one_local_user_cannot_take_every_connection(start_node: StartNode, per_client: int | None) -> None:
    _root_only()
    # per_client None: the positive control, a per-client cap out of reach.
    cap = per_client or 1000
    node = start_node(f"[http_limits]\nmax_connections = 8\n[client_limits]\nmax_connections = {cap}\n")
    port = int(node.url.rsplit(":", 1)[1].split("/")[0])
    held = []
    try:
        for _ in range(per_client or 8):
            sock = _socket_of(ABUSER)
            sock.connect(("127.0.0.1", port))
            held.append(sock)
        await asyncio.sleep(0.2)
        sock = _socket_of(ABUSER)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        answer = await raw_http_on(sock, b"POST /graphql HTTP/1.1\r\nHost: localhost\r\n\r\n")
        if per_client is None:
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable")  # H1: the node is full
            with pytest.raises(aiohttp.ClientResponseError) as full:
                async with aiohttp.ClientSession(raise_for_status=True) as session:
                    await session.post(node.url, json={"query": "{ __typename }"})
            assert full.value.status == 503  # and the polite client is starved
            return
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429 Too Many Requests") and b"\r\nRetry-After: 1\r\n" in head  # F5
        assert json.loads(body) == {
            "data": None,
            "errors": [
                {
                    "message": f"too many connections from local user {ABUSER} (limit 4; "
                    "client_limits.max_connections), retry when one is closed"
                }
            ],
        }
        assert await simple_query(node.url) < 1  # another local user still gets in
    finally:
        for sock in held:
            sock.close()


async def raw_http_on(sock: socket.socket, request: bytes) -> bytes:
    """Send `request` on a connected socket; everything answered until the node closes it."""
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(request)
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_a_remote_client_is_its_address(start_node: StartNode) -> None:
    # F1 for a client on another host: a network namespace the test makes, on a bridge in the test's own
    # namespace. The node listens on the bridge's address; this test reaches it from its own namespace.
    with hosts(1) as [host]:
        bridge = host.address.rsplit(".", 1)[0] + ".254"
        node = start_node(f'http_host = "{bridge}"\n[client_limits]\nmax_requests = 1\n')
        assert node.url.startswith(f"http://{bridge}:")
        hammer = await asyncio.create_subprocess_exec(
            *host.prefix,
            sys.executable,
            str(ROOT / "tests" / "abuse" / "hammer.py"),
            node.url,
            "4",
            "3",
            "0",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd="/",
        )
        stdout, _ = await hammer.communicate(b"{ __schema { types { name fields { name } } } }")
        assert hammer.returncode == 0
        hammered = json.loads(stdout)
        assert hammered["statuses"].get("200", 0) > 0, hammered
        assert hammered["refusals"] == [
            [
                429,
                "1",
                f"too many requests at once from address {host.address} (limit 1; client_limits.max_requests), "
                "retry when one is answered",
            ]
        ]
        # This test's own connections come from this machine (the bridge's address): a local user, another client.
        assert await simple_query(node.url) < 1
        node.kill()


SOCKETS, SUBSCRIPTIONS = 48, 32
_CHANGE = ["documentId", "viewId", "schemaId", "operationId", "publicKey", "deleted"]
# Answering an event costs 60 fields: within Q3/Q4, 1 536 of them per event hold the loop for about a second.
SUBSCRIPTION = "subscription { documentChanged { " + " ".join(f"a{i}: {_CHANGE[i % 6]}" for i in range(60)) + " } }"
NOTE = KeyPair.from_private_key(bytes([3]) * 32)


async def subscribed(start_node: StartNode, config: str) -> tuple[dict[str, Any], list[float], int]:
    """Node A (`config`) replicates from node B, to which this test publishes about 12 documents a second
    (events that cost A's clients nothing), while `subscriber.py` holds SOCKETS x SUBSCRIPTIONS subscriptions
    on A for SECONDS and this test sends polite queries to A one after the other, each given at most BOUND
    seconds (math.inf if it took longer). The subscriber's report, the polite latencies, the documents
    published."""
    b = start_node(name="b")
    a = start_node(config, "--peer", b.address, name="a")
    async with RemoteNode(b.url) as remote:
        schema = await remote.define_schema(NOTE, "note", "a note", {"title": FieldType.parse("str")})
        subscriber = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "tests" / "abuse" / "subscriber.py"),
            a.url,
            str(SOCKETS),
            str(SUBSCRIPTIONS),
            str(SECONDS),
            str(ABUSER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd="/",
        )
        assert subscriber.stdin is not None and subscriber.stdout is not None
        subscriber.stdin.write(SUBSCRIPTION.encode())
        subscriber.stdin.close()
        async with asyncio.timeout(120):
            assert await subscriber.stdout.readline() == b"ready\n"
        report = asyncio.create_task(subscriber.stdout.read())
        published = 0

        async def publish() -> None:
            nonlocal published
            while not report.done():
                await remote.create(NOTE, schema, {"title": f"note {published}"})
                published += 1
                await asyncio.sleep(0.05)  # about 100 events in all: none of the subscriptions falls 1024 behind

        publishing = asyncio.create_task(publish())
        latencies = []
        while not report.done():
            try:
                async with asyncio.timeout(BOUND):
                    latencies.append(await simple_query(a.url))
            except TimeoutError:
                latencies.append(math.inf)
            await asyncio.sleep(0.05)
        await publishing
        assert await subscriber.wait() == 0
        return json.loads(await report), latencies, published


async def test_many_subscriptions_of_one_local_user_cannot_starve_a_polite_one(start_node: StartNode) -> None:
    # F6: the time spent answering the abuser's subscriptions is its own.
    _root_only()
    report, latencies, published = await subscribed(start_node, FAIR)
    assert published >= 10
    assert report["errors"] == [] and report["kinds"].get("next", 0) > 0, report  # served, at its pace
    assert len(latencies) > 5 and max(latencies) < BOUND, latencies


async def test_positive_control_without_fair_shares_subscriptions_starve(start_node: StartNode) -> None:
    _root_only()
    report, latencies, _ = await subscribed(start_node, OFF)
    assert report["errors"] == [], report
    assert math.inf in latencies, latencies


async def test_a_client_in_debt_is_paced_until_paid_back() -> None:
    # F6: what a WebSocket's subscriptions wait for before answering an event.
    fairness = Fairness(ClientLimits(time_burst=0.1, time_rate=2.0))
    started = time.monotonic()
    await fairness.pace("a")  # budget left: at once
    assert time.monotonic() - started < 0.01
    fairness.ticket("a").charge(0.5)  # 0.4 s in debt, paid back at 2 s per second
    await fairness.pace("a")
    assert 0.2 <= time.monotonic() - started < 0.5
    assert fairness.budget("a") > 0
