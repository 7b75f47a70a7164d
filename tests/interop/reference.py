"""Our side of the differential test against p2panda-rs 0.8.1 (the crate in `reference/`).

`reference_binary()` builds the crate; `describe_*` say what we make of bytes in the crate's JSON form
(see `reference/src/describe.rs`); `document_deviation` names the documented way our document differs
from the reference's, or None when they must be equal; `OurCases` makes random cases with our encoders
for the reference to check.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from p2panda import Hash, KeyPair
from p2panda.document import Document, build_document
from p2panda.entry import decode_entry, is_skiplink_required, lipmaa, sign_entry
from p2panda.ids import DocumentId, DocumentViewId
from p2panda.operation import (
    Operation,
    OperationAction,
    OperationValue,
    PinnedRelation,
    PinnedRelationList,
    Relation,
    RelationList,
    decode_operation,
    encode_operation,
)
from p2panda.schema import SYSTEM_SCHEMAS, FieldType, Schema, SchemaId, validate_operation

CRATE = Path(__file__).resolve().parent / "reference"
BINARY = CRATE / "target" / "release" / "p2panda-reference-diff"

Json = dict[str, Any]


def reference_binary() -> Path:
    """Build the reference crate (incrementally) and return its binary. Without cargo the test skips,
    unless P2PANDA_REQUIRE_REFERENCE is set (CI), where it fails."""
    cargo = shutil.which("cargo")
    if cargo is None:
        if os.environ.get("P2PANDA_REQUIRE_REFERENCE"):
            pytest.fail("cargo is missing: the differential test against p2panda-rs 0.8.1 cannot run")
        pytest.skip("cargo is missing: the differential test against p2panda-rs 0.8.1 needs it")
    build = subprocess.run(
        [cargo, "build", "--release", "--locked", "--manifest-path", str(CRATE / "Cargo.toml")],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if build.returncode != 0:
        pytest.fail(f"building the reference crate failed:\n{build.stderr[-4000:]}")
    return BINARY


def run_reference(binary: Path, args: Sequence[str], cases: Iterable[Json] = ()) -> list[Json]:
    """Run the crate; `cases` go to stdin as JSON lines; one JSON object per output line."""
    stdin = "".join(json.dumps(case) + "\n" for case in cases)
    done = subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise AssertionError(f"reference {' '.join(args)} failed ({done.returncode}): {done.stderr[-4000:]}")
    return [json.loads(line) for line in done.stdout.splitlines()]


# --- our side in the crate's JSON form ------------------------------------------------------------


def float_bits(value: float) -> str:
    return struct.pack(">d", value).hex()


def view_json(view: DocumentViewId) -> list[str]:
    return [op_id.hex() for op_id in view]


def value_json(value: OperationValue) -> Json:
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, int):
        return {"t": "int", "v": value}
    if isinstance(value, float):
        return {"t": "float", "v": float_bits(value)}
    if isinstance(value, str):
        return {"t": "str", "v": value}
    if isinstance(value, bytes):
        return {"t": "bytes", "v": value.hex()}
    if isinstance(value, Relation):
        return {"t": "relation", "v": value.document_id.hex()}
    if isinstance(value, RelationList):
        return {"t": "relation_list", "v": [d.hex() for d in value.document_ids]}
    if isinstance(value, PinnedRelation):
        return {"t": "pinned_relation", "v": view_json(value.view_id)}
    if isinstance(value, PinnedRelationList):
        return {"t": "pinned_relation_list", "v": [view_json(v) for v in value.view_ids]}
    raise TypeError(f"an untyped value {value!r}: validate against the schema first")


def schema_of(spec: Json) -> Schema:
    schema_id = SchemaId.parse(spec["id"])
    if schema_id.is_system:
        return SYSTEM_SCHEMAS[schema_id]
    return Schema(schema_id, "differential test", {name: FieldType.parse(text) for name, text in spec["fields"]})


def describe_entry(raw: bytes) -> Json:
    entry = decode_entry(raw)
    return {
        "ok": True,
        "public_key": entry.public_key.hex(),
        "log_id": entry.log_id,
        "seq_num": entry.seq_num,
        "skiplink": None if entry.skiplink is None else entry.skiplink.hex(),
        "backlink": None if entry.backlink is None else entry.backlink.hex(),
        "payload_size": entry.payload_size,
        "payload_hash": entry.payload_hash.hex(),
        "signature": entry.signature.hex(),
        "hash": entry.hash.hex(),
    }


def validated(raw: bytes, schema: Schema) -> Operation:
    """Decode and validate; the operation comes back with typed field values."""
    operation = decode_operation(raw)
    typed = validate_operation(operation, schema)
    return Operation(operation.action, operation.schema_id, operation.previous, typed)


def describe_operation(raw: bytes, schema: Schema) -> Json:
    operation = validated(raw, schema)
    return {
        "ok": True,
        "action": operation.action.code,
        "schema_id": str(operation.schema_id),
        "previous": None if operation.previous is None else view_json(operation.previous),
        "fields": None
        if operation.fields is None
        else {name: value_json(value) for name, value in operation.fields.items()},
    }


def describe_document(doc: Document) -> Json:
    return {
        "ok": True,
        "id": doc.id.hex(),
        "owner": doc.owner.hex(),
        "view_id": view_json(doc.view_id),
        "deleted": doc.is_deleted,
        "fields": None
        if doc.fields is None
        else {
            name: {"value": value_json(value), "writer": doc.field_writers[name].hex()}
            for name, value in doc.fields.items()
        },
        "order": [op_id.hex() for op_id in doc.operations],
    }


def document_inputs(operations: Sequence[Sequence[str]], schema: Schema) -> list[tuple[Hash, Any, Operation]]:
    inputs = []
    for entry_hex, operation_hex in operations:
        entry = decode_entry(bytes.fromhex(entry_hex))
        inputs.append((entry.hash, entry.public_key, validated(bytes.fromhex(operation_hex), schema)))
    return inputs


def document_deviation(
    reference: Json, ours: Document, actions: dict[Hash, OperationAction], flags: Iterable[str]
) -> str | None:
    """None when the reference built this document and ours must equal it. Otherwise the documented
    difference it is (README, compatibility), checked against the case: anything else is a failure."""
    flags = set(flags)
    order = [op_id.hex() for op_id in ours.operations]
    if reference["ok"]:
        walked = reference["order"]
        if len(walked) == len(set(walked)) == len(order):
            return None
        if len(walked) != len(set(walked)):
            assert "ancestor_in_previous" in flags, "the reference walked an operation twice"
            return "ancestor in previous: the reference visits an operation twice"
        assert "nan" in flags, f"the reference walked {len(walked)} of {len(order)} operations"
        return "NaN: the reference skips a merge after an operation carrying a NaN"
    error = reference["error"]
    if "commit on a deleted document" in error:
        assert ours.is_deleted, "the reference refused a commit after a DELETE, ours is not deleted"
        first = next(i for i, op_id in enumerate(ours.operations) if actions[op_id] is OperationAction.DELETE)
        assert first < len(order) - 1 or flags, "the reference refused a DELETE that ours walks last"
        return "an operation after a DELETE: the reference refuses to build, the document stays deleted"
    if error == "Cycle detected":
        assert "ancestor_in_previous" in flags, "the reference saw a cycle"
        return "ancestor in previous: the reference visits an operation twice (cycle detected)"
    if error == "Badly formed graph":
        assert "nan" in flags, "the reference called the graph badly formed"
        return "NaN: the reference does not count an operation carrying a NaN as visited"
    raise AssertionError(f"the reference refused the document: {error}")


def compare_document(case: Json, schema: Schema, reference: Json) -> list[str]:
    """Check our builds (current and each older view) against the reference's; the deviations seen."""
    inputs = document_inputs(case["operations"], schema)
    actions = {op_id: operation.action for op_id, _, operation in inputs}
    deviations = []
    builds = [(None, reference["current"]), *zip(case["views"], reference["views"], strict=True)]
    for view, expected in builds:
        view_id = None if view is None else DocumentViewId(Hash.from_hex(h) for h in view)
        ours = build_document(inputs, view_id=view_id, schema=schema)
        deviation = document_deviation(expected, ours, actions, case.get("flags", ()))
        if deviation is None:
            assert describe_document(ours) == expected, f"view {view}"
        else:
            deviations.append(deviation)
    return deviations


# --- cases made by our encoders, for the reference to decode and validate ---------------------------


class OurCases:
    """Random entries, operations and documents made with our encoders (seeded)."""

    TYPES = ("bool", "int", "float", "str", "bytes", "relation", "relation_list", "pinned_relation")

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def hash(self) -> Hash:
        return Hash.of(self.rnd.randbytes(16))

    def view(self, most: int = 3) -> DocumentViewId:
        return DocumentViewId(self.hash() for _ in range(self.rnd.randint(1, most)))

    def schema_id(self) -> SchemaId:
        name = self.rnd.choice("abcdefghXYZ") + "".join(self.rnd.choices("abcz019_", k=self.rnd.randint(0, 10))) + "q"
        return SchemaId.application(name, self.view(2))

    def schema(self, types: Sequence[str], most: int) -> Schema:
        names = {self.rnd.choice("abcdefgh") + self.rnd.randbytes(3).hex() for _ in range(self.rnd.randint(1, most))}
        fields = {}
        for name in names:
            kind = self.rnd.choice(types)
            fields[name] = FieldType.parse(f"{kind}({self.schema_id()})" if "relation" in kind else kind)
        return Schema(self.schema_id(), "ours", fields)

    def float(self) -> float:
        rnd = self.rnd
        sign = rnd.getrandbits(1) << 63
        nan = 0x7FF << 52
        choice = rnd.randrange(8)
        if choice == 0:
            bits = sign | nan | (1 << 51) | (rnd.getrandbits(9) << 42)
        elif choice == 1:
            bits = sign | nan | (1 << 51) | (rnd.getrandbits(22) << 29)
        elif choice == 2:
            bits = sign | nan | max(1, rnd.getrandbits(51)) | rnd.getrandbits(1) << 51
        elif choice == 3:
            return rnd.choice([0.0, -0.0, float("inf"), float("-inf"), 5e-324, 1.5, 65504.0, 65520.0, 1e-7])
        elif choice == 4:
            return rnd.uniform(-1e6, 1e6)
        else:
            bits = rnd.getrandbits(64)
        return float(struct.unpack(">d", bits.to_bytes(8, "big"))[0])

    def value(self, field_type: FieldType) -> OperationValue:
        rnd = self.rnd
        kind = field_type.kind.value
        if kind == "bool":
            return rnd.random() < 0.5
        if kind == "int":
            return rnd.choice([-(2**63), 2**63 - 1, 0, -1, 23, 24, -25, 2**32, rnd.randint(-(2**63), 2**63 - 1)])
        if kind == "float":
            return self.float()
        if kind == "str":
            return "".join(rnd.choices(["a", "é", "🐼", "\x00", "\n", "漢", "\U0010ffff"], k=rnd.randint(0, 20)))
        if kind == "bytes":
            return rnd.randbytes(rnd.choice([0, 1, 24, 34, 300, rnd.randint(0, 64)]))
        if kind == "relation":
            return Relation(DocumentId(self.hash().to_bytes()))
        if kind == "relation_list":
            ids = [DocumentId(self.hash().to_bytes()) for _ in range(rnd.randint(0, 4))]
            return RelationList(tuple(ids + ids[:1]))
        if kind == "pinned_relation":
            return PinnedRelation(self.view())
        return PinnedRelationList(tuple(self.view() for _ in range(rnd.randint(0, 3))))

    def fields(self, schema: Schema, every: bool) -> dict[str, OperationValue]:
        return {n: self.value(t) for n, t in schema.fields.items() if every or self.rnd.random() < 0.4}

    def operation(self, schema: Schema) -> Operation:
        choice = self.rnd.randrange(5)
        if choice < 2:
            return Operation.create(schema.id, self.fields(schema, True))
        if choice < 4:
            return Operation.update(schema.id, self.view(), self.fields(schema, False))
        return Operation.delete(schema.id, self.view())

    def schema_json(self, schema: Schema) -> Json:
        return {"id": str(schema.id), "fields": [[n, str(t)] for n, t in schema.fields.items()]}

    def operation_case(self) -> Json:
        schema = self.schema((*self.TYPES, "pinned_relation_list"), 9)
        raw = encode_operation(self.operation(schema))
        return {"kind": "operation", "schema": self.schema_json(schema), "operation": raw.hex()}

    def entry_case(self) -> Json:
        rnd = self.rnd
        key = KeyPair.from_private_key(rnd.randbytes(32))
        seq_num = rnd.choice([1, 2, 4, 13, rnd.randint(1, 100), 2**64 - 1, max(1, rnd.getrandbits(rnd.randint(1, 64)))])
        log_id = rnd.choice([0, 2**64 - 1, rnd.getrandbits(rnd.randint(1, 64))])
        schema = self.schema(self.TYPES, 3)
        payload = encode_operation(self.operation(schema))
        backlink = self.hash() if seq_num > 1 else None
        skiplink = self.hash() if seq_num > 1 and is_skiplink_required(seq_num) else None
        raw = sign_entry(key, log_id=log_id, seq_num=seq_num, payload=payload, backlink=backlink, skiplink=skiplink)
        return {"kind": "entry", "entry": raw.hex()}

    def document_case(self) -> Json:
        """Honest writers with partial knowledge; NaN floats stay out (they are the documented case)."""
        rnd = self.rnd
        schema = self.schema(("str", "int", "float", "bool"), 3)
        writers = [(KeyPair.from_private_key(rnd.randbytes(32)), rnd.randint(0, 5)) for _ in range(rnd.randint(1, 4))]
        logs: dict[int, list[Hash]] = {i: [] for i in range(len(writers))}
        known: dict[int, set[Hash]] = {i: set() for i in range(len(writers))}
        previous: dict[Hash, list[Hash]] = {}
        deletes: set[Hash] = set()
        operations = []
        delete_rate = rnd.choice([0.0, 0.0, 0.15])
        for step in range(rnd.randint(1, 14)):
            w = 0 if step == 0 else rnd.randrange(len(writers))
            if step:
                if rnd.random() < 0.35:
                    known[w] = set(previous)
                elif rnd.random() < 0.3:
                    known[w] |= known[rnd.randrange(len(writers))]
                if not known[w] or known[w] & deletes:
                    continue
            fields = {n: (0.5 if _is_nan(v) else v) for n, v in self.fields(schema, step == 0).items()}
            if step == 0:
                operation = Operation.create(schema.id, fields)
                prev: list[Hash] = []
            else:
                followed = {p for k in known[w] for p in previous[k]}
                prev = [k for k in known[w] if k not in followed]
                view = DocumentViewId(prev)
                if rnd.random() < delete_rate:
                    operation = Operation.delete(schema.id, view)
                else:
                    operation = Operation.update(schema.id, view, fields)
            payload = encode_operation(operation)
            log = logs[w]
            seq = len(log) + 1
            skiplink = log[lipmaa(seq) - 1] if seq > 1 and is_skiplink_required(seq) else None
            key, log_id = writers[w]
            raw = sign_entry(
                key, log_id=log_id, seq_num=seq, payload=payload, backlink=log[-1] if log else None, skiplink=skiplink
            )
            op_id = Hash.of(raw)
            log.append(op_id)
            known[w].add(op_id)
            previous[op_id] = prev
            if operation.action is OperationAction.DELETE:
                deletes.add(op_id)
            operations.append([raw.hex(), payload.hex()])
        ids = sorted(previous, key=lambda h: h.hex())
        views = [
            sorted({rnd.choice(ids).hex() for _ in range(rnd.randint(1, min(3, len(ids))))})
            for _ in range(rnd.randint(0, 2))
        ]
        rnd.shuffle(operations)
        return {
            "kind": "document",
            "schema": self.schema_json(schema),
            "operations": operations,
            "views": views,
            "flags": [],
        }


def _is_nan(value: OperationValue) -> bool:
    return isinstance(value, float) and value != value
