"""Documents: the exact p2panda 0.8 walk, last-write-wins reduction, views and view hashes.

See `p2panda.document.build` for the checks D1-D7 and `p2panda.document.walk` for the walk.
"""

from p2panda.document.build import ancestors, build_document
from p2panda.document.errors import (
    DanglingPrevious,
    DocumentError,
    DuplicateOperation,
    InvalidCreate,
    NoOperations,
    SchemaMismatch,
    UnknownViewTip,
    UnreachableOperations,
)
from p2panda.document.model import Document, RelationValue
from p2panda.document.walk import walk_order

__all__ = [
    "Document",
    "RelationValue",
    "build_document",
    "ancestors",
    "walk_order",
    "DocumentError",
    "NoOperations",
    "DuplicateOperation",
    "InvalidCreate",
    "SchemaMismatch",
    "DanglingPrevious",
    "UnreachableOperations",
    "UnknownViewTip",
]
