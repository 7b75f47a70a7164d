"""Log heights of a key from `nextArgs` alone, for nodes without our `logHeights` (a stock aquadoggo).

Removing a key from a key group records how far the node holds each of its logs (KG6 cuts). Those cuts
only matter for logs of documents the group governs, i.e. documents of permissioned schemas. `nextArgs`
with a document's view id answers the key's log for that document with `seqNum` = height + 1, or a new
log (seq num 1) when the key never wrote to it. So: list every live document of every permissioned
schema the node serves and ask `nextArgs` for each (batched, many aliases per request).

Not covered, by construction of the aquadoggo API: logs of deleted documents (they stay deleted, so no
write to them can count again) and logs of documents in schemas the node does not serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from p2panda.identity import PublicKey

__all__ = ["heights_from_next_args"]

GraphQL = Callable[[str, Mapping[str, Any]], Awaitable[Any]]

_PAGE = 100
_BATCH = 50


async def _view_ids(graphql: GraphQL, schema_id: str) -> list[str]:
    views: list[str] = []
    after: str | None = None
    while True:
        cursor = ", after: $a" if after is not None else ""
        declared = ", $a: Cursor" if after is not None else ""
        data = await graphql(
            f"query V($n: Int{declared}) {{ all_{schema_id}(first: $n{cursor}) "
            "{ hasNextPage endCursor documents { meta { viewId } } } }",
            {"n": _PAGE, **({"a": after} if after is not None else {})},
        )
        page = data[f"all_{schema_id}"]
        views += [str(d["meta"]["viewId"]) for d in page["documents"]]
        if not page["hasNextPage"] or not page["documents"]:
            return views
        after = page["endCursor"]


async def heights_from_next_args(graphql: GraphQL, public_key: PublicKey, schema_ids: list[str]) -> dict[int, int]:
    """Log id -> highest seq num the node holds, for the key's logs of live documents of `schema_ids`."""
    views: list[str] = []
    for schema_id in schema_ids:
        views += await _view_ids(graphql, schema_id)
    heights: dict[int, int] = {}
    for start in range(0, len(views), _BATCH):
        batch = views[start : start + _BATCH]
        declared = " ".join(f"$v{i}: DocumentViewId!" for i in range(len(batch)))
        fields = " ".join(
            f"n{i}: nextArgs(publicKey: $pk, viewId: $v{i}) {{ logId seqNum }}" for i in range(len(batch))
        )
        data = await graphql(
            f"query H($pk: PublicKey! {declared}) {{ {fields} }}",
            {"pk": public_key.hex(), **{f"v{i}": v for i, v in enumerate(batch)}},
        )
        for i in range(len(batch)):
            args = data[f"n{i}"]
            seq_num = int(args["seqNum"])
            if seq_num > 1:  # seq num 1 is a log the key has not started for this document
                heights[int(args["logId"])] = seq_num - 1
    return heights
