"""Materialisation throughput: a 10 000-operation document (linear, and with 100 concurrent branches)
and 10 000 single-operation documents. Prints operations per second (aim: 50 000/s for linear).

Run: .venv/bin/python benchmarks/bench_documents.py [--operations N]
"""

from __future__ import annotations

import argparse

from _timing import best_rate

from p2panda import Hash, KeyPair
from p2panda.document import build_document
from p2panda.ids import DocumentViewId
from p2panda.operation import Operation
from p2panda.schema import SchemaId

SCHEMA = SchemaId.parse("message_0020d4f2294b7e953e70dd476b5de39d1679ff06a4936bca3ef6fb227e83a126a767")
AUTHOR = KeyPair.from_private_key(bytes(32)).public_key
Op = tuple[Hash, object, Operation]


def linear(n: int) -> list[Op]:
    ids = [Hash.of(f"linear {i}".encode()) for i in range(n)]
    ops: list[Op] = [(ids[0], AUTHOR, Operation.create(SCHEMA, {"message": "0", "n": 0}))]
    for i in range(1, n):
        ops.append((ids[i], AUTHOR, Operation.update(SCHEMA, DocumentViewId([ids[i - 1]]), {"message": str(i)})))
    return ops


def branched(n: int, branches: int) -> list[Op]:
    root = Hash.of(b"root")
    ops: list[Op] = [(root, AUTHOR, Operation.create(SCHEMA, {"message": "0", "n": 0}))]
    per_branch = (n - 1) // branches
    for b in range(branches):
        previous = root
        for i in range(per_branch):
            op_id = Hash.of(f"branch {b} {i}".encode())
            ops.append((op_id, AUTHOR, Operation.update(SCHEMA, DocumentViewId([previous]), {"message": f"{b}.{i}"})))
            previous = op_id
    return ops


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--operations", type=int, default=10_000)
    n = parser.parse_args().operations
    line = linear(n)
    tree = branched(n, 100)
    singles = [
        [(Hash.of(f"single {i}".encode()), AUTHOR, Operation.create(SCHEMA, {"message": str(i)}))] for i in range(n)
    ]
    assert build_document(line).fields == {"message": str(n - 1), "n": 0}
    assert len(build_document(tree).view_id) == 100

    print(
        f"linear document, {len(line)} operations        {best_rate(len(line), lambda: build_document(line)):>10,.0f} ops/s  (aim 50,000)"
    )
    print(
        f"100 concurrent branches, {len(tree)} operations  {best_rate(len(tree), lambda: build_document(tree)):>10,.0f} ops/s"
    )
    print(
        f"{len(singles)} single-operation documents        "
        f"{best_rate(len(singles), lambda: [build_document(ops) for ops in singles], 3):>10,.0f} ops/s"
    )


if __name__ == "__main__":
    main()
