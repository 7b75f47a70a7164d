"""The aquadoggo-compatible GraphQL client API of a node, over HTTP (aiohttp + graphql-core)."""

from p2panda.node.api.graphql import GraphQLApi
from p2panda.node.api.http import HttpServer

__all__ = ["GraphQLApi", "HttpServer"]
