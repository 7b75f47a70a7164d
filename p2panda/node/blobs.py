"""Blobs: a `blob_v1` document names its `blob_piece_v1` pieces by pinned view; its bytes are the
pieces' data in list order. A blob is served only when complete: every piece stored and the total
length equal to the document's `length` (spec/node-api.md, "Blobs").
"""

from __future__ import annotations

from dataclasses import dataclass

from p2panda.ids import DocumentId, DocumentViewId
from p2panda.node.node import Node
from p2panda.operation.value import PinnedRelationList
from p2panda.schema import SchemaId, SystemSchema

__all__ = ["Blob", "read_blob"]

BLOB = SchemaId.system_schema(SystemSchema.BLOB_V1)


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    mime_type: str
    view_id: DocumentViewId


async def read_blob(node: Node, document_id: DocumentId, view_id: DocumentViewId | None = None) -> Blob | None:
    """The blob at its current view (or `view_id`); None when unknown, not a blob, deleted or incomplete."""
    doc = await (node.document(document_id) if view_id is None else node.document_at(view_id))
    if doc is None or doc.id != document_id or doc.schema_id != BLOB or doc.fields is None:
        return None
    pieces = doc.fields.get("pieces")
    length = doc.fields.get("length")
    mime_type = doc.fields.get("mime_type")
    if not isinstance(pieces, PinnedRelationList) or not isinstance(length, int) or not isinstance(mime_type, str):
        return None
    parts = []
    for piece_view in pieces.view_ids:
        piece = await node.document_at(piece_view)
        data = None if piece is None or piece.fields is None else piece.fields.get("data")
        if not isinstance(data, bytes):
            return None
        parts.append(data)
    blob = b"".join(parts)
    if len(blob) != length:
        return None
    return Blob(blob, mime_type, doc.view_id)
