"""Canonical CBOR as p2panda 0.8 writes it, and a strict single-item decode.

Canonical: definite lengths; shortest integer and length headers; floats in the shortest of f16/f32/f64
that round-trips bit-exactly; map keys sorted by their UTF-8 bytes (not RFC 7049's length-first order
that cbor2's `canonical=True` uses); no tags, no null.

NaNs as p2panda-rs 0.8.1 (ciborium) writes them: their bits are kept, in the shortest width that keeps
them. Narrowing a NaN keeps the sign and the top bits of the payload and sets the quiet bit, widening
sets the quiet bit and pads the payload with zeros, so a quiet NaN whose low 42 payload bits are zero
fits f16 (the common NaN is f97e00, -NaN f9fe00), one whose low 29 bits are zero fits f32, any other
(every signalling NaN among them) stays f64. cbor2 decodes f16/f32 NaNs the same way (quiet bit set,
payload kept), so what we decode re-encodes to the same bytes.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Mapping, Sequence

import cbor2

from p2panda.hash import Hash
from p2panda.operation.errors import MalformedCbor

__all__ = ["encode_canonical", "decode_single", "CborValue"]

CborValue = bool | int | float | str | bytes | Hash | Sequence["CborValue"] | Mapping[str, "CborValue"]

_QUIET = 1 << 51
_LOW_42 = (1 << 42) - 1
_LOW_29 = (1 << 29) - 1


def _header(major: int, value: int) -> bytes:
    base = major << 5
    if value < 24:
        return bytes((base | value,))
    if value < 0x100:
        return bytes((base | 24, value))
    if value < 0x10000:
        return bytes((base | 25,)) + value.to_bytes(2, "big")
    if value < 0x100000000:
        return bytes((base | 26,)) + value.to_bytes(4, "big")
    if value < 0x10000000000000000:
        return bytes((base | 27,)) + value.to_bytes(8, "big")
    raise OverflowError(f"integer {value} does not fit a cbor header")


def _nan(value: float) -> bytes:
    bits = int.from_bytes(struct.pack(">d", value), "big")
    sign, mantissa = bits >> 63, bits & ((1 << 52) - 1)
    if mantissa & _QUIET and not mantissa & _LOW_42:
        return b"\xf9" + ((sign << 15) | 0x7C00 | (mantissa >> 42)).to_bytes(2, "big")
    if mantissa & _QUIET and not mantissa & _LOW_29:
        return b"\xfa" + ((sign << 31) | 0x7F800000 | (mantissa >> 29)).to_bytes(4, "big")
    return b"\xfb" + bits.to_bytes(8, "big")


def _float(value: float) -> bytes:
    if math.isnan(value):
        return _nan(value)
    f64 = struct.pack(">d", value)
    try:
        f16 = struct.pack(">e", value)
        if struct.pack(">d", struct.unpack(">e", f16)[0]) == f64:
            return b"\xf9" + f16
    except OverflowError:
        pass
    try:
        f32 = struct.pack(">f", value)
        if struct.pack(">d", struct.unpack(">f", f32)[0]) == f64:
            return b"\xfa" + f32
    except OverflowError:
        pass
    return b"\xfb" + f64


def _encode(value: object, out: list[bytes]) -> None:
    # bool before int: bool is a subclass of int in Python.
    if value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif isinstance(value, int):
        out.append(_header(0, value) if value >= 0 else _header(1, -1 - value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out.append(_header(3, len(data)))
        out.append(data)
    elif isinstance(value, (bytes, bytearray)):
        out.append(_header(2, len(value)))
        out.append(bytes(value))
    elif isinstance(value, Hash):
        out.append(b"\x58\x22")
        out.append(value.to_bytes())
    elif isinstance(value, Mapping):
        items = sorted((k.encode("utf-8"), v) for k, v in value.items())
        out.append(_header(5, len(items)))
        for key, item in items:
            out.append(_header(3, len(key)))
            out.append(key)
            _encode(item, out)
    elif isinstance(value, (list, tuple)):
        out.append(_header(4, len(value)))
        for item in value:
            _encode(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as p2panda cbor")


def encode_canonical(value: CborValue) -> bytes:
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def decode_single(raw: bytes) -> object:
    """Decode exactly one CBOR item from `raw` with cbor2; refuse trailing bytes.

    cbor2 is lenient (indefinite lengths, non-shortest headers, tags); callers compare the canonical
    re-encoding with `raw` to refuse those.
    """
    if not raw:
        raise MalformedCbor("operation is empty")
    stream = io.BytesIO(raw)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises several types (decode errors, ValueError, RecursionError, ...)
        raise MalformedCbor(f"operation is not valid cbor: {exc}") from exc
    if stream.tell() != len(raw):
        raise MalformedCbor(f"{len(raw) - stream.tell()} trailing bytes after the operation's cbor item")
    return value
