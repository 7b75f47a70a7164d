"""Custom scalars of the aquadoggo 0.8 API. Values stay strings; resolvers parse them with clear errors."""

from __future__ import annotations

from graphql import GraphQLScalarType

__all__ = ["SCALARS"]

_NAMES = [
    "PublicKey",
    "EntryHash",
    "DocumentId",
    "DocumentViewId",
    "EncodedEntry",
    "EncodedOperation",
    "HexBytes",
    "LogId",
    "SeqNum",
    "Cursor",
]

SCALARS: dict[str, GraphQLScalarType] = {
    name: GraphQLScalarType(name, description=f"aquadoggo's {name}, as a string") for name in _NAMES
}
