"""Safe wire format for bluesky documents: msgpack with numpy arrays, never pickle.

Why this encoding: any Bluesky consumer must read our 0MQ stream without importing
xfusion. Arrays therefore travel in msgpack-numpy's map encoding (``msgpack_numpy``
ships with bluesky): ``{b"nd": True, b"type": dtype.str, b"kind": b"", b"shape",
b"data"}``; numpy scalars become plain msgpack numbers. A stock consumer decodes with
``RemoteDispatcher(address, deserializer=msgpack_numpy.unpackb)``.

Our own decoder is strict where msgpack-numpy is not (it unpickles ``kind b"O"``):
only plain numeric/bool dtypes are rebuilt, sizes are checked before any allocation,
extension types are refused, so a message from the network can never make the
receiver execute code. Whatever the bytes, unpacking either returns a map or raises
``WireFormatError``. The previous tagged form ``{"__ndarray__": True, ...}`` (older
spool files, older publishers) is still read.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

__all__ = ["DOCUMENT_NAMES", "pack_document", "unpack_document", "WireFormatError"]

# the event-model documents a stream may carry (no deprecated bulk_* forms)
DOCUMENT_NAMES = frozenset(
    {
        "start",
        "descriptor",
        "event",
        "event_page",
        "stop",
        "resource",
        "datum",
        "datum_page",
        "stream_resource",
        "stream_datum",
    }
)

_ND = b"nd"  # msgpack-numpy's array marker (bytes keys, as msgpack_numpy.encode writes)
_LEGACY_TAG = "__ndarray__"  # the format before issue 14, read only
_ALLOWED_KINDS = set("biufc")  # bool, int, uint, float, complex


class WireFormatError(ValueError):
    """A message is not a document this format can carry."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ALLOWED_KINDS:
            raise WireFormatError(f"cannot send an array of dtype {obj.dtype}")
        # shape from obj: ascontiguousarray turns a 0-d array into shape (1,)
        data = np.ascontiguousarray(obj).tobytes()
        return {
            _ND: True,
            b"type": obj.dtype.str,
            b"kind": b"",
            b"shape": list(obj.shape),
            b"data": data,
        }
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise WireFormatError(f"cannot send an object of type {type(obj).__name__}")


def _array(type_: Any, shape: Any, data: Any) -> np.ndarray:
    """The array these three fields describe, or WireFormatError; never over-allocates."""
    if not isinstance(type_, str):
        raise WireFormatError(f"malformed array: dtype must be a string, got {type_!r}"[:300])
    try:
        dtype = np.dtype(type_)
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds on garbage
        raise WireFormatError(f"malformed array: dtype {type_!r}: {exc!r}"[:300]) from exc
    if dtype.kind not in _ALLOWED_KINDS or dtype.itemsize == 0 or dtype.subdtype is not None:
        raise WireFormatError(f"refusing an array of dtype {dtype}")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise WireFormatError(f"malformed array: shape {shape!r}"[:300])
    if not isinstance(data, bytes):
        raise WireFormatError(f"array data must be bytes, got {type(data).__name__}")
    if math.prod(shape) * dtype.itemsize != len(data):
        raise WireFormatError(f"malformed array: {len(data)} bytes for {shape} x {dtype}"[:300])
    try:  # e.g. a zero-size shape with a dimension numpy cannot index, or 65 dimensions
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds on garbage
        raise WireFormatError(f"malformed array: {exc!r}"[:300]) from exc


def _no_timestamp(values: Any) -> None:
    """msgpack decodes its Timestamp extension (-1) itself, past ``ext_hook``."""
    if any(isinstance(v, msgpack.Timestamp) for v in values):
        raise WireFormatError("msgpack extension type -1 (Timestamp) is not part of this format")


def _list(obj: list) -> list:
    _no_timestamp(obj)
    return obj


def _decode(obj: dict) -> Any:
    _no_timestamp(obj.values())
    if _ND in obj:
        if obj[_ND] is True:
            if obj.get(b"kind", b"") != b"":
                raise WireFormatError(f"refusing an array of kind {obj.get(b'kind')!r}"[:300])
            return _array(obj.get(b"type"), obj.get(b"shape"), obj.get(b"data"))
        if obj[_ND] is False:  # msgpack-numpy's numpy scalar
            return _array(obj.get(b"type"), [1], obj.get(b"data"))[0].item()
        raise WireFormatError("malformed array: b'nd' must be true or false")
    if obj.get(_LEGACY_TAG) is True:
        shape = obj.get("shape")
        if isinstance(shape, list) and all(type(n) is int for n in shape):
            return _array(obj.get("dtype"), shape, obj.get("data"))
        raise WireFormatError(f"malformed array: shape {shape!r}"[:300])
    return obj


def _no_ext(code: int, data: bytes) -> Any:
    raise WireFormatError(f"msgpack extension type {code} is not part of this format")


def pack_document(doc: dict) -> bytes:
    """Serializer for ``bluesky.callbacks.zmq.Publisher(serializer=...)``."""
    try:
        return msgpack.packb(doc, default=_encode, use_bin_type=True)
    except WireFormatError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireFormatError(f"cannot send this document: {exc}") from exc


def unpack_document(payload: bytes) -> dict:
    """Deserializer for ``bluesky.callbacks.zmq.RemoteDispatcher(deserializer=...)``."""
    try:
        doc = msgpack.unpackb(
            payload,
            object_hook=_decode,
            list_hook=_list,
            ext_hook=_no_ext,
            raw=False,
            strict_map_key=False,
        )
    except WireFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - any byte sequence: one kind of refusal
        raise WireFormatError(f"not a msgpack document: {exc}"[:300]) from exc
    if not isinstance(doc, dict):
        raise WireFormatError(f"a document must be a map, got {type(doc).__name__}")
    if not all(isinstance(key, str) for key in doc):
        raise WireFormatError("a document's keys must be strings")
    return doc
