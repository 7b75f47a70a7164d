"""Hypothesis strategies shared by the p2panda tests."""

from __future__ import annotations

from hypothesis import strategies as st

from p2panda import Hash, KeyPair
from p2panda.ids import DocumentViewId
from p2panda.operation import Operation, OperationAction
from p2panda.schema import SchemaId, SystemSchema

hashes = st.binary(min_size=0, max_size=16).map(Hash.of)
key_pairs = st.binary(min_size=32, max_size=32).map(KeyPair.from_private_key)
view_ids = st.lists(hashes, min_size=1, max_size=4).map(DocumentViewId)
field_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True)
schema_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}[A-Za-z0-9]", fullmatch=True)
schema_ids = st.one_of(
    st.sampled_from(list(SystemSchema)).map(SchemaId.system_schema),
    st.builds(SchemaId.application, schema_names, view_ids),
)
field_values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(hashes, max_size=4),
    st.lists(st.lists(hashes, min_size=1, max_size=3).map(lambda hs: sorted(set(hs))), min_size=1, max_size=3),
)
fields = st.dictionaries(field_names, field_values, min_size=1, max_size=6)


@st.composite
def operations(draw: st.DrawFn) -> Operation:
    action = draw(st.sampled_from(list(OperationAction)))
    schema_id = draw(schema_ids)
    if action is OperationAction.CREATE:
        return Operation.create(schema_id, draw(fields))
    if action is OperationAction.UPDATE:
        return Operation.update(schema_id, draw(view_ids), draw(st.dictionaries(field_names, field_values, max_size=6)))
    return Operation.delete(schema_id, draw(view_ids))


def mutate(raw: bytes, data: st.DataObject) -> bytes:
    """One flipped byte or a truncation of `raw`, drawn by hypothesis."""
    if data.draw(st.booleans()):
        index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        flip = data.draw(st.integers(min_value=1, max_value=255))
        return raw[:index] + bytes([raw[index] ^ flip]) + raw[index + 1 :]
    return raw[: data.draw(st.integers(min_value=0, max_value=len(raw) - 1))]
