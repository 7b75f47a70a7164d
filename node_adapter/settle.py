"""Read-your-writes on a node that materialises after it answers `publish` (a stock aquadoggo 0.8).

Our node materialises an operation before it answers `publish`, so a read right after sees the write.
aquadoggo queues it for its materialiser and answers at once; its GraphQL schema follows new schema
definitions a moment later still. Applications built on the adapter expect the former, so `RemoteNode`
waits, after publishing to such a node, until the operation shows:

- CREATE: the document is served by id; a schema definition's schema has its GraphQL type.
- UPDATE: the view the operation ends (its id alone) is served, or the document's current view has the
  operation among its tips (a concurrent write was materialised with it).
- DELETE: the view it deleted is no longer served (aquadoggo serves no view of a deleted document).

An operation of a schema the node serves no queries for is not waited on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from p2panda.hash import Hash
from p2panda.operation import Operation, OperationAction
from p2panda.schema import SchemaId, SystemSchema

__all__ = ["wait_materialised"]

GraphQL = Callable[[str, Mapping[str, Any]], Awaitable[Any]]

_POLL = 0.02
_SCHEMA_DEFINITION = str(SchemaId.system_schema(SystemSchema.SCHEMA_DEFINITION_V1))


async def _type_exists(graphql: GraphQL, name: str) -> bool:
    data = await graphql("query T($n: String!) { __type(name: $n) { name } }", {"n": name})
    return data.get("__type") is not None


async def _served(graphql: GraphQL, schema: str, argument: str, value: str) -> Any:
    scalar = "DocumentId" if argument == "id" else "DocumentViewId"
    data = await graphql(
        f"query S($x: {scalar}!) {{ {schema}({argument}: $x) {{ meta {{ documentId viewId }} }} }}", {"x": value}
    )
    return data.get(schema)


async def _shows(graphql: GraphQL, operation_id: Hash, operation: Operation) -> bool:
    schema = str(operation.schema_id)
    if operation.action is OperationAction.CREATE:
        if await _served(graphql, schema, "id", operation_id.hex()) is None:
            return False
        if schema == _SCHEMA_DEFINITION:
            name = (operation.fields or {}).get("name")
            return isinstance(name, str) and await _type_exists(graphql, f"{name}_{operation_id.hex()}")
        return True
    assert operation.previous is not None
    if operation.action is OperationAction.DELETE:
        return await _served(graphql, schema, "viewId", str(operation.previous)) is None
    if await _served(graphql, schema, "viewId", operation_id.hex()) is not None:
        return True
    previous = await _served(graphql, schema, "viewId", str(operation.previous))
    if previous is None:
        return False
    current = await _served(graphql, schema, "id", previous["meta"]["documentId"])
    return current is not None and operation_id.hex() in str(current["meta"]["viewId"]).split("_")


async def wait_materialised(graphql: GraphQL, operation_id: Hash, operation: Operation, timeout: float) -> bool:
    """True once the node shows the operation (or serves no queries for its schema); False when it has not
    after `timeout` seconds."""
    if not await _type_exists(graphql, str(operation.schema_id)):
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _shows(graphql, operation_id, operation):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(_POLL)
    return True
