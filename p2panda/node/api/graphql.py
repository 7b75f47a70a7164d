"""GraphQL schema of a node, regenerated whenever new schemas arrive, and query execution.

Static: `nextArgs(publicKey, viewId)`, `publish(entry, operation)`. Per known schema S: `S(id | viewId)`
and `all_S(filter, meta, orderBy, orderDirection, first, after)` with aquadoggo's filter operators.
Filtering and ordering run over the materialised documents of S. Ours besides: `operationStatus(id)`,
`logHeights(publicKey)` and the `documentChanged(schemaIds)` subscription.

Every request is bounded (Q1-Q7 in `cost.py`): size, depth, aliases, estimated cost, documents loaded,
time; a refused request is answered `{"data": null, "errors": [one message naming the limit]}`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from inspect import isawaitable
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    GraphQLString,
    OperationType,
    execute,
    get_named_type,
    get_operation_ast,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from graphql.validation import VariablesInAllowedPositionRule

from p2panda.document import Document
from p2panda.entry import PayloadMismatch
from p2panda.errors import P2PandaError
from p2panda.hash import Hash
from p2panda.identity import PublicKey
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.api.cost import AST_BYTES_PER_CHAR, BATCH, CostError, GraphQLLimits, Meter, check_cost, check_size
from p2panda.node.api.scalars import SCALARS
from p2panda.node.changes import DocumentChanged, Subscription
from p2panda.node.node import Node
from p2panda.node.publish import NextArgs
from p2panda.node.query import Page, QueryError, page_of
from p2panda.operation.value import PinnedRelation, PinnedRelationList, Relation, RelationList
from p2panda.schema import FieldKind, FieldType, Schema

__all__ = ["GraphQLApi"]

Info = GraphQLResolveInfo[Any]
_Key = TypeVar("_Key", DocumentId, DocumentViewId)

# Clients in the wild declare publish variables as String!; allow variables of other scalar types.
_RULES = [rule for rule in specified_rules if rule is not VariablesInAllowedPositionRule]


def _list(of: Any) -> GraphQLList[Any]:
    return GraphQLList(GraphQLNonNull(of))


def _filter_type(name: str, scalar: Any, operators: list[str]) -> GraphQLInputObjectType:
    fields: dict[str, GraphQLInputField] = {}
    for op in operators:
        fields[op] = GraphQLInputField(_list(scalar) if op in ("in", "notIn") else scalar)
    return GraphQLInputObjectType(name, fields)


ORDERED = ["in", "notIn", "eq", "notEq", "gt", "gte", "lt", "lte"]
FILTERS = {
    FieldKind.STR: _filter_type("StringFilter", GraphQLString, [*ORDERED, "contains", "notContains"]),
    FieldKind.INT: _filter_type("IntegerFilter", GraphQLInt, ORDERED),
    FieldKind.FLOAT: _filter_type("FloatFilter", GraphQLFloat, ORDERED),
    FieldKind.BOOL: _filter_type("BooleanFilter", GraphQLBoolean, ["eq", "notEq"]),
    FieldKind.BYTES: _filter_type("HexBytesFilter", SCALARS["HexBytes"], ["eq", "notEq"]),
    FieldKind.RELATION: _filter_type("RelationFilter", SCALARS["DocumentId"], ["eq", "notEq", "in", "notIn"]),
    FieldKind.PINNED_RELATION: _filter_type(
        "PinnedRelationFilter", SCALARS["DocumentViewId"], ["eq", "notEq", "in", "notIn"]
    ),
    FieldKind.RELATION_LIST: _filter_type("RelationListFilter", SCALARS["DocumentId"], ["in", "notIn"]),
    FieldKind.PINNED_RELATION_LIST: _filter_type(
        "PinnedRelationListFilter", SCALARS["DocumentViewId"], ["in", "notIn"]
    ),
}
META_FILTER = GraphQLInputObjectType(
    "MetaFilterInputObject",
    {
        "documentId": GraphQLInputField(
            _filter_type("DocumentIdFilter", SCALARS["DocumentId"], ["in", "notIn", "eq", "notEq"])
        ),
        "viewId": GraphQLInputField(
            _filter_type("DocumentViewIdFilter", SCALARS["DocumentViewId"], ["in", "notIn", "eq", "notEq"])
        ),
        "owner": GraphQLInputField(_filter_type("OwnerFilter", SCALARS["PublicKey"], ["in", "notIn", "eq", "notEq"])),
        "edited": GraphQLInputField(_filter_type("EditedFilter", GraphQLBoolean, ["eq", "notEq"])),
        "deleted": GraphQLInputField(_filter_type("DeletedFilter", GraphQLBoolean, ["eq", "notEq"])),
    },
)
ORDER_DIRECTION = GraphQLEnumType("OrderDirection", {"ASC": "ASC", "DESC": "DESC"})
DOCUMENT_META = GraphQLObjectType(
    "DocumentMeta",
    {
        "documentId": GraphQLField(GraphQLNonNull(SCALARS["DocumentId"]), resolve=lambda d, _: d.id.hex()),
        "viewId": GraphQLField(GraphQLNonNull(SCALARS["DocumentViewId"]), resolve=lambda d, _: str(d.view_id)),
        "owner": GraphQLField(GraphQLNonNull(SCALARS["PublicKey"]), resolve=lambda d, _: d.owner.hex()),
        "edited": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=lambda d, _: d.is_edited),
        "deleted": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=lambda d, _: d.is_deleted),
    },
)
NEXT_ARGUMENTS = GraphQLObjectType(
    "NextArguments",
    {
        "logId": GraphQLField(GraphQLNonNull(SCALARS["LogId"])),
        "seqNum": GraphQLField(GraphQLNonNull(SCALARS["SeqNum"])),
        "backlink": GraphQLField(SCALARS["EntryHash"]),
        "skiplink": GraphQLField(SCALARS["EntryHash"]),
    },
)

# Extensions of ours (aquadoggo has neither): why an operation does not count under the node's policy, and
# how far this node holds each log of an author.
OPERATION_STATUS = GraphQLObjectType(
    "OperationStatus",
    {
        "operationId": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda s, _: s.operation_id),
        "documentId": GraphQLField(GraphQLNonNull(SCALARS["DocumentId"]), resolve=lambda s, _: s.document_id),
        "schemaId": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda s, _: s.schema_id),
        "counted": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=lambda s, _: s.counted),
        "reason": GraphQLField(GraphQLString, resolve=lambda s, _: s.reason),
    },
)
LOG_HEIGHT = GraphQLObjectType(
    "LogHeight",
    {
        "logId": GraphQLField(GraphQLNonNull(SCALARS["LogId"]), resolve=lambda h, _: str(h[0])),
        "seqNum": GraphQLField(GraphQLNonNull(SCALARS["SeqNum"]), resolve=lambda h, _: str(h[1])),
    },
)

DOCUMENT_CHANGE = GraphQLObjectType(
    "DocumentChange",
    {
        "documentId": GraphQLField(GraphQLNonNull(SCALARS["DocumentId"]), resolve=lambda c, _: c.document_id.hex()),
        "viewId": GraphQLField(GraphQLNonNull(SCALARS["DocumentViewId"]), resolve=lambda c, _: str(c.view_id)),
        "schemaId": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda c, _: c.schema_id),
        "operationId": GraphQLField(GraphQLNonNull(GraphQLString), resolve=lambda c, _: c.operation_id.hex()),
        "publicKey": GraphQLField(GraphQLNonNull(SCALARS["PublicKey"]), resolve=lambda c, _: c.public_key.hex()),
        "deleted": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=lambda c, _: c.is_deleted),
    },
)


def _next_args_json(args: NextArgs) -> dict[str, str | None]:
    return {
        "logId": str(args.log_id),
        "seqNum": str(args.seq_num),
        "backlink": args.backlink.hex() if args.backlink else None,
        "skiplink": args.skiplink.hex() if args.skiplink else None,
    }


def _parse(argument: str, scalar: str, value: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(value)
    except (P2PandaError, ValueError, TypeError) as exc:
        # aquadoggo's text for a malformed argument (clients match on it), then what is wrong with it.
        raise GraphQLError(f'Invalid value for argument "{argument}", expected type "{scalar}": {exc}') from exc


def _page_of(docs: list[Document], schema: Schema, arguments: Mapping[str, Any]) -> Page:
    try:
        return page_of(docs, schema, arguments)
    except QueryError as exc:
        raise GraphQLError(str(exc)) from exc


def formatted(result: ExecutionResult) -> dict[str, Any]:
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [e.formatted for e in result.errors]
    return out


class GraphQLApi:
    """Executes GraphQL requests against a node; the schema follows the node's schema registry."""

    def __init__(self, node: Node, limits: GraphQLLimits | None = None) -> None:
        self.node = node
        self.limits = limits or GraphQLLimits()
        self._schema: GraphQLSchema | None = None
        self._built_for: frozenset[str] = frozenset()
        # Clients send the same few query texts over and over; parsing and validating one costs more
        # than running a publish, so valid documents are kept per schema version, up to a memory bound (Q7).
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()
        self._cached_bytes = 0

    def schema(self) -> GraphQLSchema:
        known = frozenset(str(s.id) for s in self.node.registry.all())
        if self._schema is None or known != self._built_for:
            self._schema = self._build(sorted(self.node.registry.all(), key=lambda s: str(s.id)))
            self._built_for = known
            self._documents.clear()
            self._cached_bytes = 0
        return self._schema

    def _document(
        self, schema: GraphQLSchema, query: str, variables: Mapping[str, Any], operation_name: str | None
    ) -> DocumentNode | list[GraphQLError]:
        """The parsed, validated query if it is within the limits (Q1-Q4), else the errors to answer."""
        try:
            check_size(query, self.limits)
            document = self._documents.get(query)
            if document is not None:
                self._documents.move_to_end(query)
                check_cost(schema, document.definitions, variables, operation_name, self.limits)
                return document
            try:
                document = parse(query)
            except GraphQLError as exc:
                return [exc]
            # Before validation: validating thousands of aliased fields is itself quadratic.
            check_cost(schema, document.definitions, variables, operation_name, self.limits)
        except CostError as exc:
            return [GraphQLError(str(exc))]
        errors = validate(schema, document, _RULES)
        if errors:
            return errors
        self._cache(query, document)
        return document

    def _cache(self, query: str, document: DocumentNode) -> None:
        size = len(query) * AST_BYTES_PER_CHAR
        if size > self.limits.parse_cache_bytes:
            return
        self._documents[query] = document
        self._cached_bytes += size
        while self._cached_bytes > self.limits.parse_cache_bytes:
            evicted, _ = self._documents.popitem(last=False)
            self._cached_bytes -= len(evicted) * AST_BYTES_PER_CHAR

    async def subscribe(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[ExecutionResult] | dict[str, Any]:
        """A stream of results for a subscription (registered when this returns), or one result with
        the errors that prevent it. Close the stream with `aclose()`. `pace` is awaited once each event has
        arrived, before its result is built (F6 in `fairness.py`)."""
        schema = self.schema()
        variables = dict(variables or {})
        document = self._document(schema, query, variables, operation_name)
        if isinstance(document, list):
            return {"data": None, "errors": [e.formatted for e in document]}
        started = subscribe(
            schema,
            document,
            context_value=Meter(self.limits, pace=pace),
            variable_values=variables,
            operation_name=operation_name,
        )
        outcome = await started if isawaitable(started) else started
        if isinstance(outcome, ExecutionResult):
            return {"data": outcome.data, "errors": [e.formatted for e in outcome.errors or []]}
        return outcome

    async def execute(
        self, query: str, variables: Mapping[str, Any] | None = None, operation_name: str | None = None
    ) -> dict[str, Any]:
        schema = self.schema()
        variables = dict(variables or {})
        document = self._document(schema, query, variables, operation_name)
        if isinstance(document, list):
            return {"data": None, "errors": [e.formatted for e in document]}
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        meter = Meter(self.limits, schema, fragments, variables)
        operation = get_operation_ast(document, operation_name)
        # Q6: a publish is not cut short (its outcome would be unknown to the client); it is bounded by size.
        budget = None if operation is not None and operation.operation is OperationType.MUTATION else meter
        try:
            async with asyncio.timeout(budget.limits.time_budget if budget is not None else None):
                outcome = execute(
                    schema, document, context_value=meter, variable_values=variables, operation_name=operation_name
                )
                result = await outcome if isawaitable(outcome) else outcome
        except TimeoutError:
            return {"data": None, "errors": [{"message": meter.timeout_message()}]}
        over = [e for e in result.errors or [] if isinstance(e.original_error, CostError)]
        if over:
            # A query over a limit is refused as a whole, not answered in part.
            return {"data": None, "errors": [{"message": over[0].message}]}
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return out

    # --- schema building --------------------------------------------------------------------------

    def _build(self, schemas: list[Schema]) -> GraphQLSchema:
        types: dict[str, GraphQLObjectType] = {}
        collections: dict[str, GraphQLObjectType] = {}
        args: dict[str, dict[str, GraphQLArgument]] = {}

        for schema in schemas:
            name = str(schema.id)
            order_by = GraphQLEnumType(
                f"{name}OrderBy", {v: v for v in ["DOCUMENT_ID", "DOCUMENT_VIEW_ID", *schema.fields]}
            )
            filter_type = GraphQLInputObjectType(
                f"{name}Filter", {f: GraphQLInputField(FILTERS[t.kind]) for f, t in schema.fields.items()}
            )
            args[name] = {
                "filter": GraphQLArgument(filter_type),
                "meta": GraphQLArgument(META_FILTER),
                "orderBy": GraphQLArgument(order_by, default_value="DOCUMENT_ID"),
                "orderDirection": GraphQLArgument(ORDER_DIRECTION, default_value="ASC"),
                "first": GraphQLArgument(GraphQLInt, default_value=25),
                "after": GraphQLArgument(SCALARS["Cursor"]),
            }

        def fields_type(schema: Schema) -> GraphQLObjectType:
            name = str(schema.id)
            return GraphQLObjectType(
                f"{name}Fields",
                lambda: {f: self._field(f, t, types, collections, args) for f, t in schema.fields.items()},
            )

        for schema in schemas:
            name = str(schema.id)
            f_type = fields_type(schema)
            types[name] = GraphQLObjectType(
                name,
                {
                    "meta": GraphQLField(GraphQLNonNull(DOCUMENT_META), resolve=lambda d, _: d),
                    "fields": GraphQLField(f_type, resolve=lambda d, _: d),
                },
            )
            # Items are (cursor, document) pairs: a relation list's cursors are positions, not ids.
            item = GraphQLObjectType(
                f"{name}Item",
                {
                    "meta": GraphQLField(GraphQLNonNull(DOCUMENT_META), resolve=lambda c, _: c[1]),
                    "fields": GraphQLField(f_type, resolve=lambda c, _: c[1]),
                    "cursor": GraphQLField(GraphQLString, resolve=lambda c, _: c[0]),
                },
            )
            collections[name] = GraphQLObjectType(
                f"{name}Collection",
                {
                    "totalCount": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=lambda p, _: p.total),
                    # Null on an empty page, as aquadoggo answers (its schema says String! all the same).
                    "endCursor": GraphQLField(GraphQLString, resolve=lambda p, _: p.cursors[-1] if p.cursors else None),
                    "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=lambda p, _: p.has_next),
                    "documents": GraphQLField(
                        GraphQLNonNull(_list(item)), resolve=lambda p, _: list(zip(p.cursors, p.items, strict=True))
                    ),
                },
            )

        query_fields: dict[str, GraphQLField] = {
            "nextArgs": GraphQLField(
                NEXT_ARGUMENTS,
                args={
                    "publicKey": GraphQLArgument(GraphQLNonNull(SCALARS["PublicKey"])),
                    "viewId": GraphQLArgument(SCALARS["DocumentViewId"]),
                },
                resolve=self._next_args,
            ),
            "operationStatus": GraphQLField(
                OPERATION_STATUS,
                args={"id": GraphQLArgument(GraphQLNonNull(SCALARS["EntryHash"]))},
                resolve=self._operation_status,
            ),
            "logHeights": GraphQLField(
                GraphQLNonNull(_list(LOG_HEIGHT)),
                args={"publicKey": GraphQLArgument(GraphQLNonNull(SCALARS["PublicKey"]))},
                resolve=self._log_heights,
            ),
        }
        for schema in schemas:
            name = str(schema.id)
            query_fields[name] = GraphQLField(
                types[name],
                args={
                    "id": GraphQLArgument(SCALARS["DocumentId"]),
                    "viewId": GraphQLArgument(SCALARS["DocumentViewId"]),
                },
                resolve=self._document_resolver(),
            )
            query_fields[f"all_{name}"] = GraphQLField(
                GraphQLNonNull(collections[name]), args=args[name], resolve=self._collection_resolver(schema)
            )
        mutation = GraphQLObjectType(
            "MutationRoot",
            {
                "publish": GraphQLField(
                    GraphQLNonNull(NEXT_ARGUMENTS),
                    args={
                        "entry": GraphQLArgument(GraphQLNonNull(SCALARS["EncodedEntry"])),
                        "operation": GraphQLArgument(GraphQLNonNull(SCALARS["EncodedOperation"])),
                    },
                    resolve=self._publish,
                )
            },
        )
        subscription = GraphQLObjectType(
            "SubscriptionRoot",
            {
                "documentChanged": GraphQLField(
                    GraphQLNonNull(DOCUMENT_CHANGE),
                    args={"schemaIds": GraphQLArgument(_list(GraphQLString))},
                    subscribe=self._subscribe_changes,
                    resolve=lambda change, _info, **_: change,
                )
            },
        )
        return GraphQLSchema(
            query=GraphQLObjectType("Query", query_fields), mutation=mutation, subscription=subscription
        )

    def _field(
        self,
        name: str,
        field_type: FieldType,
        types: dict[str, GraphQLObjectType],
        collections: dict[str, GraphQLObjectType],
        args: dict[str, dict[str, GraphQLArgument]],
    ) -> GraphQLField:
        kind = field_type.kind
        scalar: dict[FieldKind, GraphQLOutputType] = {
            FieldKind.BOOL: GraphQLBoolean,
            FieldKind.INT: GraphQLInt,
            FieldKind.FLOAT: GraphQLFloat,
            FieldKind.STR: GraphQLString,
            FieldKind.BYTES: SCALARS["HexBytes"],
        }
        if kind in scalar:
            if kind is FieldKind.BYTES:
                return GraphQLField(scalar[kind], resolve=lambda d, _: ((d.fields or {}).get(name) or b"").hex())
            return GraphQLField(scalar[kind], resolve=lambda d, _: (d.fields or {}).get(name))
        target = str(field_type.target)
        if target not in types:
            # The related schema is unknown here: expose the raw ids.
            return GraphQLField(GraphQLString, resolve=lambda d, _: str((d.fields or {}).get(name)))
        if kind in (FieldKind.RELATION, FieldKind.PINNED_RELATION):
            return GraphQLField(types[target], resolve=self._relation_resolver(name))
        schema = self.node.registry.get(target)
        assert schema is not None
        return GraphQLField(
            GraphQLNonNull(collections[target]), args=args[target], resolve=self._relation_list_resolver(name, schema)
        )

    # --- resolvers --------------------------------------------------------------------------------

    async def _next_args(self, _root: Any, _info: Info, publicKey: str, viewId: str | None = None) -> Any:
        key = _parse("publicKey", "PublicKey", publicKey, PublicKey.from_hex)
        view = _parse("viewId", "DocumentViewId", viewId, DocumentViewId.from_str) if viewId else None
        try:
            return _next_args_json(await self.node.next_args(key, view))
        except P2PandaError as exc:
            raise GraphQLError(str(exc)) from exc

    async def _operation_status(self, _root: Any, _info: Info, id: str) -> Any:
        return await self.node.operation_status(_parse("id", "EntryHash", id, Hash.from_hex))

    async def _log_heights(self, _root: Any, _info: Info, publicKey: str) -> Any:
        heights = await self.node.log_heights(_parse("publicKey", "PublicKey", publicKey, PublicKey.from_hex))
        return sorted(heights.items())

    async def _subscribe_changes(
        self, _root: Any, info: Info, schemaIds: list[str] | None = None
    ) -> Subscription | _Paced:
        # Registered now, not on first iteration: a client that saw its subscription accepted sees
        # every change after that.
        subscription = self.node.subscribe(frozenset(schemaIds) if schemaIds else None)
        pace = _meter(info).pace
        return subscription if pace is None else _Paced(subscription, pace)

    async def _publish(self, _root: Any, _info: Info, entry: str, operation: str) -> Any:
        try:
            entry_bytes = bytes.fromhex(entry)
        except (ValueError, TypeError):
            raise GraphQLError('Invalid value for argument "entry", expected type "EncodedEntry"') from None
        try:
            operation_bytes = bytes.fromhex(operation)
        except (ValueError, TypeError):
            raise GraphQLError('Invalid value for argument "operation", expected type "EncodedOperation"') from None
        try:
            published = await self.node.publish(entry_bytes, operation_bytes)
        except PayloadMismatch as exc:
            raise GraphQLError(f"operation needs to match payload hash of encoded entry: {exc}") from exc
        except P2PandaError as exc:
            raise GraphQLError(str(exc)) from exc
        return _next_args_json(published.next_args)

    def _document_resolver(self) -> Callable[..., Any]:
        async def resolve(_root: Any, info: Info, id: str | None = None, viewId: str | None = None) -> Any:
            _meter(info).charge(1)
            if id is not None and viewId is not None:
                raise GraphQLError("Must only provide `id` or `viewId` argument")
            if id is None and viewId is None:
                raise GraphQLError("Must provide either `id` or `viewId` argument")
            if id is not None:
                doc = await self.node.document(_parse("id", "DocumentId", id, DocumentId.from_hex))
            else:
                assert viewId is not None
                doc = await self.node.document_at(_parse("viewId", "DocumentViewId", viewId, DocumentViewId.from_str))
            if doc is None or doc.is_deleted:
                return None
            return doc

        return resolve

    def _collection_resolver(self, schema: Schema) -> Callable[..., Any]:
        async def resolve(_root: Any, info: Info, **arguments: Any) -> Page:
            _meter(info).check_time()
            docs = await self.node.documents(str(schema.id), include_deleted=True)
            return _charged(info, _page_of(docs, schema, arguments))

        return resolve

    def _relation_resolver(self, name: str) -> Callable[..., Any]:
        async def resolve(doc: Document, info: Info) -> Any:
            value = (doc.fields or {}).get(name)
            if isinstance(value, Relation | PinnedRelation):
                _meter(info).charge(1)
            if isinstance(value, Relation):
                return await self.node.document(value.document_id)
            if isinstance(value, PinnedRelation):
                return await self.node.document_at(value.view_id)
            return None

        return resolve

    def _relation_list_resolver(self, name: str, target: Schema) -> Callable[..., Any]:
        async def resolve(doc: Document, info: Info, **arguments: Any) -> Page:
            # Without an explicit `orderBy` a list keeps its own order, as aquadoggo serves it (the schema's
            # default DOCUMENT_ID applies to root collections only).
            if not any(a.name.value == "orderBy" for a in info.field_nodes[0].arguments or ()):
                arguments["orderBy"] = None
            value = (doc.fields or {}).get(name)
            related: list[Document] = []
            if isinstance(value, RelationList):
                found = await self._load(_meter(info), value.document_ids, self.node.documents_by_id)
                related = [found[d] for d in value.document_ids if found[d] is not None]  # type: ignore[misc]
            elif isinstance(value, PinnedRelationList):
                found_at = await self._load(_meter(info), value.view_ids, self.node.documents_by_view)
                related = [found_at[v] for v in value.view_ids if found_at[v] is not None]  # type: ignore[misc]
            return _charged(info, _page_of(related, target, arguments))

        return resolve

    async def _load(
        self,
        meter: Meter,
        keys: Sequence[_Key],
        load: Callable[[Sequence[_Key]], Any],
    ) -> dict[_Key, Document | None]:
        """Q5: a relation list's documents, each once, `BATCH` per database read, within the budget."""
        unique = list(dict.fromkeys(keys))
        found: dict[_Key, Document | None] = {}
        for start in range(0, len(unique), BATCH):
            batch = unique[start : start + BATCH]
            meter.charge(len(batch))
            found.update(zip(batch, await load(batch), strict=True))
        return found


class _Paced:
    """F6: a subscription's changes, each returned once `pace` returns (graphql-core builds the answer to a
    change in the step that receives it)."""

    def __init__(self, changes: Subscription, pace: Callable[[], Awaitable[None]]) -> None:
        self._changes = changes
        self._pace = pace

    def __aiter__(self) -> _Paced:
        return self

    async def __anext__(self) -> DocumentChanged:
        change = await self._changes.__anext__()
        await self._pace()
        return change

    async def aclose(self) -> None:
        await self._changes.aclose()


def _charged(info: Info, page: Page) -> Page:
    """Q5: a page is charged before graphql-core answers its items."""
    _meter(info).charge_page(len(page.items), info.field_nodes, get_named_type(info.return_type))
    return page


def _meter(info: Info) -> Meter:
    meter = info.context
    assert isinstance(meter, Meter)
    return meter
