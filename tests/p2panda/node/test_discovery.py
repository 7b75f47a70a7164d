"""mDNS discovery: two `panda node` processes in separate network namespaces (veth + bridge, made by the
test) find each other with no configured address and replicate; a node of another network is ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node_adapter import QueryRefused, RemoteNode
from p2panda import PublicKey
from p2panda.ids import DocumentId
from p2panda.node.discovery import local_addresses, network_tag
from tests.p2panda.node.netns import hosts
from tests.p2panda.node.process import PandaNode
from tests.p2panda.node.test_replication import SCHEMA, eventually, schema_missing


def test_network_tag_hides_the_key_and_tells_networks_apart() -> None:
    public, private = network_tag(bytes(32)), network_tag(bytes([1]) * 32)
    assert len(public) == 16 and public != private and bytes(32).hex()[:16] != public
    assert network_tag(bytes(32)) == public


def test_local_addresses() -> None:
    assert local_addresses("10.1.2.3") == ["10.1.2.3"]
    assert all(a.count(".") == 3 for a in local_addresses("0.0.0.0"))


def config(tmp_path: Path, name: str, address: str) -> Path:
    path = tmp_path / f"{name}.toml"
    # mDNS announces the replication address, so it must be the namespace's, not the loopback default.
    path.write_text(f'http_host = "{address}"\nreplication_host = "{address}"\n')
    return path


async def test_nodes_in_two_namespaces_find_each_other(tmp_path: Path, vectors: dict[str, Any]) -> None:
    other_network = "ab" * 32
    with hosts(3) as (a_host, b_host, c_host):
        started = []
        try:
            for name, host, extra in (
                ("a", a_host, []),
                ("b", b_host, []),
                ("c", c_host, ["--network-key", other_network]),
            ):
                process = PandaNode(
                    tmp_path / name,
                    extra=["--config", str(config(tmp_path, name, host.address)), *extra],
                    prefix=host.prefix,
                    mdns=True,
                    replication_port=2022,
                )
                process.start()
                started.append(process)
            a, b, c = started
            steps = vectors["node_flow"]["steps"]
            document = DocumentId.from_hex(steps[2]["entry_hash"])
            async with RemoteNode(a.url) as on_a, RemoteNode(b.url) as on_b, RemoteNode(c.url) as on_c:
                for step in steps:
                    await on_a.publish(bytes.fromhex(step["entry"]), bytes.fromhex(step["operation"]))

                async def on_b_updated() -> bool:
                    try:
                        doc = await on_b.document(SCHEMA, document)
                    except QueryRefused as exc:
                        if schema_missing(exc):
                            return False  # the schema has not reached B yet
                        raise
                    return doc is not None and doc.fields == {"message": "Hello again"}

                await eventually(on_b_updated, timeout=30)
                assert any(f"found {a.node_key}" in line or f"found {b.node_key}" in line for line in a.log + b.log)
                # C, on another network, sees the others' announcements and ignores them (D1).
                author = PublicKey.from_hex(
                    vectors["node_flow"]["graphql_after_step_3"]["response"]["data"]["doc"]["meta"]["owner"]
                )
                assert await on_c.log_heights(author) == {}
                assert not any("found" in line for line in c.log)
        finally:
            for process in started:
                if process.proc is not None:
                    process.kill()
