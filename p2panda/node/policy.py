"""Materialisation policies: which stored operations count.

The node stores every valid operation (it is data other nodes replicate and judge for themselves), but
for the schemas a policy governs it materialises only the operations that count. The application gives
the policy (`node_adapter` plugs in the key-group policy); `p2panda.node` never imports one.

- M1: an operation the policy refuses does not count; the policy says why.
- M2: an operation that follows (`previous`) one that does not count does not count either, so the
  counted operations of a document are closed under ancestors and always build a valid document.
- M3: a document whose CREATE does not count has no current view (it is not served); its operations
  stay stored, and count again if the policy's answer changes (e.g. a member is added).
- M4: after storing an operation the node asks the policy which other documents it affects (a
  membership change affects every document its group owns) and re-materialises them in the same
  transaction. If the transaction fails, the node tells the policy to forget what it cached.

Why an operation does not count is a query (`Node.operation_status`), answered from the stored data
each time, so it is the same answer the materialiser acted on.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from p2panda.node.store import Store
from p2panda.operation import Operation
from p2panda.schema import Schema

__all__ = ["OperationStatus", "Policy", "Written", "counted_operations"]


@dataclass(frozen=True, slots=True)
class Written:
    """A stored operation with where it sits in its author's log: what a policy judges."""

    id: str
    document_id: str
    public_key: str
    log_id: int
    seq_num: int
    operation: Operation


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """Whether a stored operation counts; `reason` says why not (None when it counts)."""

    operation_id: str
    document_id: str
    schema_id: str
    reason: str | None

    @property
    def counted(self) -> bool:
        return self.reason is None


class Policy(Protocol):
    def governs(self, schema: Schema) -> bool:
        """Whether documents of this schema are materialised from counted operations only."""

    def refusals(
        self, store: Store, schema: Schema, operations: Sequence[Written], *, writing: bool
    ) -> Mapping[str, str]:
        """M1: among one document's operations, those that do not count, with why. `writing`: the store is
        the writer's transaction (what the policy reads there may be cached; a reader's snapshot may be older
        than what the policy has already seen)."""

    def accepted(self, store: Store, written: Written) -> Iterable[str]:
        """M4: ids of other documents to re-materialise now that `written` is stored (in this transaction)."""

    def reset(self) -> None:
        """Forget cached state: the transaction the policy last saw rolled back."""


def counted_operations(
    policy: Policy, store: Store, schema: Schema, operations: Sequence[Written], *, writing: bool = False
) -> tuple[list[Written], dict[str, str]]:
    """The operations that count (M1, M2) and why each other one does not."""
    refused = dict(policy.refusals(store, schema, operations, writing=writing))
    by_id = {w.id: w for w in operations}
    waiting = {w.id: sum(1 for p in w.operation.previous or () if p.hex() in by_id) for w in operations}
    children: dict[str, list[str]] = {w.id: [] for w in operations}
    for w in operations:
        for p in w.operation.previous or ():
            if p.hex() in by_id:
                children[p.hex()].append(w.id)
    ready = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    while ready:  # ancestors first, so M2 sees every previous decided
        op_id = heapq.heappop(ready)
        if op_id not in refused:
            for p in by_id[op_id].operation.previous or ():
                if p.hex() in refused or p.hex() not in by_id:
                    refused[op_id] = f"M2: follows {p.hex()}, which does not count"
                    break
        for child in children[op_id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return [w for w in operations if w.id not in refused], refused
