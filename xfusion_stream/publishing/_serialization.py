"""Safe wire format for bluesky documents: msgpack with numpy arrays, never pickle.

Arrays travel as a small tagged map ``{"__ndarray__": True, "dtype", "shape", "data"}``.
Only plain numeric/bool dtypes are rebuilt; anything else is refused, so a message from
the network can never make the receiver execute code. Whatever the bytes, unpacking
either returns a map or raises ``WireFormatError``: never another exception.
"""

from __future__ import annotations

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

_TAG = "__ndarray__"
_ALLOWED_KINDS = set("biufc")  # bool, int, uint, float, complex


class WireFormatError(ValueError):
    """A message is not a document this format can carry."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ALLOWED_KINDS:
            raise WireFormatError(f"cannot send an array of dtype {obj.dtype}")
        # shape from obj: ascontiguousarray turns a 0-d array into shape (1,)
        data = np.ascontiguousarray(obj).tobytes()
        return {_TAG: True, "dtype": obj.dtype.str, "shape": list(obj.shape), "data": data}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise WireFormatError(f"cannot send an object of type {type(obj).__name__}")


def _decode(obj: dict) -> Any:
    if obj.get(_TAG) is not True:
        return obj
    try:
        dtype = np.dtype(obj["dtype"])
        if dtype.kind not in _ALLOWED_KINDS:
            raise WireFormatError(f"refusing an array of dtype {dtype}")
        shape = tuple(int(n) for n in obj["shape"])
        data = obj["data"]
        if not isinstance(data, bytes):
            raise WireFormatError(f"array data must be bytes, got {type(data).__name__}")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    except WireFormatError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy raises many kinds on garbage
        raise WireFormatError(f"malformed array: {exc!r}"[:300]) from exc


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
            payload, object_hook=_decode, ext_hook=_no_ext, raw=False, strict_map_key=False
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
