"""What GraphQL introspection answers over a schema, for Q4 in `cost.py`: the objects behind each list and
object field of the introspection types, so that the cost of `__schema` and `__type` is counted over the
schema's real types, fields, arguments, enum values and directives rather than once per field selected
(a query of 60 aliases of `__schema { types { fields { args { type { ... } } } } }` counted 900 that way
yet answered 3.6 MB and held the event loop for 0.9 s).

The objects are those graphql-core's resolvers return (graphql/type/introspection.py), deprecated ones
included whatever `includeDeprecated` says (a bound, not an exact count). Every other field of an
introspection type is a leaf: one value (or a list of enum values, as `locations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLDirective,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    GraphQLWrappingType,
)

__all__ = ["ROOTS", "Objects", "answered"]

# Fields of the query root that introspect, and the introspection type each answers.
ROOTS = {"__schema": "__Schema", "__type": "__Type"}

Objects = tuple[str, Sequence[Any]]  # an introspection type's name and the objects answered as it


def answered(schema: GraphQLSchema, kind: str, item: Any, field: str) -> Objects | None:
    """The objects `field` of `item` (answered as introspection type `kind`) answers, null ones left out;
    None for a leaf field (or one this module does not know: it then costs one, as any leaf)."""
    if kind == "__Schema":
        return _schema(schema, field)
    if kind == "__Type":
        return _type(schema, item, field)
    if kind in ("__Field", "__Directive") and field == "args":
        assert isinstance(item, GraphQLField | GraphQLDirective)
        return "__InputValue", list(item.args.values())
    if kind in ("__Field", "__InputValue") and field == "type":
        assert isinstance(item, GraphQLField | GraphQLArgument | GraphQLInputField)
        return "__Type", [item.type]
    return None


def _schema(schema: GraphQLSchema, field: str) -> Objects | None:
    if field == "types":
        return "__Type", list(schema.type_map.values())
    if field == "directives":
        return "__Directive", list(schema.directives)
    roots = {
        "queryType": schema.query_type,
        "mutationType": schema.mutation_type,
        "subscriptionType": schema.subscription_type,
    }
    if field in roots:
        root = roots[field]
        return "__Type", [] if root is None else [root]
    return None


def _type(schema: GraphQLSchema, item: Any, field: str) -> Objects | None:
    objects: list[Any] = []
    if field == "fields":
        if isinstance(item, GraphQLObjectType | GraphQLInterfaceType):
            objects = list(item.fields.values())
        return "__Field", objects
    if field == "interfaces":
        if isinstance(item, GraphQLObjectType | GraphQLInterfaceType):
            objects = list(item.interfaces)
        return "__Type", objects
    if field == "possibleTypes":
        if isinstance(item, GraphQLInterfaceType | GraphQLUnionType):
            objects = list(schema.get_possible_types(item))
        return "__Type", objects
    if field == "enumValues":
        if isinstance(item, GraphQLEnumType):
            objects = list(item.values.values())
        return "__EnumValue", objects
    if field == "inputFields":
        if isinstance(item, GraphQLInputObjectType):
            objects = list(item.fields.values())
        return "__InputValue", objects
    if field == "ofType":
        if isinstance(item, GraphQLWrappingType):
            objects = [item.of_type]
        return "__Type", objects
    return None
