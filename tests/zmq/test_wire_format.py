"""The 0MQ wire format carries arrays exactly and refuses anything that could run code."""

from __future__ import annotations

import pickle

import msgpack
import numpy as np
import pytest

from xfusion_stream.publishing import WireFormatError, pack_document, unpack_document


@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<f8", ">i4", "<i8", "|u1", "|b1", "<c8", "<f2"])
def test_arrays_round_trip_bit_exact(dtype):
    rng = np.random.default_rng(7)
    array = (rng.random((3, 5, 7)) * 100).astype(dtype)
    doc = {"uid": "u", "data": {"image": array, "scalar": np.float32(1.5), "n": np.int64(3)}}
    back = unpack_document(pack_document(doc))
    got = back["data"]["image"]
    assert got.dtype == np.dtype(dtype) and got.shape == (3, 5, 7)
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable  # a copy, not a view into the message buffer
    assert back["data"]["scalar"] == 1.5 and back["data"]["n"] == 3


def test_non_contiguous_and_zero_d_arrays_round_trip():
    a = np.arange(24, dtype=np.uint16).reshape(4, 6)[:, ::2]
    z = np.array(2.5, dtype=np.float32)
    back = unpack_document(pack_document({"a": a, "z": z, "t": (1, 2)}))
    np.testing.assert_array_equal(back["a"], a)
    assert back["z"].shape == () and back["z"] == z
    assert back["t"] == [1, 2]


def test_object_arrays_are_refused_on_send():
    with pytest.raises(WireFormatError, match="dtype object"):
        pack_document({"data": {"x": np.array([{"a": 1}, None], dtype=object)}})


def test_unknown_types_are_refused_on_send():
    class Thing:
        pass

    with pytest.raises(WireFormatError, match="Thing"):
        pack_document({"data": {"x": Thing()}})


def test_pickle_payload_is_refused():
    payload = pickle.dumps({"uid": "u", "data": {"x": np.zeros(3)}})
    with pytest.raises(WireFormatError):
        unpack_document(payload)


@pytest.mark.parametrize(
    "tagged, match",
    [
        ({"__ndarray__": True, "dtype": "|O", "shape": [1], "data": b"\0" * 8}, "dtype object"),
        ({"__ndarray__": True, "dtype": "<f4", "shape": [5], "data": b"\0" * 8}, "malformed"),
        ({"__ndarray__": True, "dtype": "not-a-dtype", "shape": [1], "data": b""}, "malformed"),
        ({"__ndarray__": True, "dtype": "<f4", "shape": [1], "data": "text"}, "bytes"),
        ({"__ndarray__": True, "dtype": "<f4"}, "malformed"),
    ],
)
def test_forged_arrays_are_refused_on_receive(tagged, match):
    payload = msgpack.packb({"data": {"x": tagged}}, use_bin_type=True)
    with pytest.raises(WireFormatError, match=match):
        unpack_document(payload)


def test_non_document_payloads_are_refused():
    with pytest.raises(WireFormatError, match="must be a map"):
        unpack_document(msgpack.packb([1, 2, 3]))
    with pytest.raises(WireFormatError, match="not a msgpack document"):
        unpack_document(b"\xc1garbage")


def test_arrays_travel_in_msgpack_numpy_encoding():
    """Issue 14 item 4: a stock consumer decodes with msgpack-numpy, no xfusion import."""
    import msgpack_numpy

    image = np.arange(12, dtype="<f4").reshape(3, 4)
    payload = pack_document({"data": {"image": image, "n": np.int32(4)}})
    back = msgpack_numpy.unpackb(payload)
    np.testing.assert_array_equal(back["data"]["image"], image)
    assert back["data"]["image"].dtype == np.float32 and back["data"]["n"] == 4
    raw = msgpack.unpackb(payload)  # plain msgpack: the map is readable as is
    assert raw["data"]["image"][b"shape"] == [3, 4] and raw["data"]["image"][b"type"] == "<f4"


def test_stock_msgpack_numpy_payloads_and_the_old_tag_are_read():
    import msgpack_numpy

    image = np.arange(6, dtype=">u2").reshape(2, 3)
    stock = msgpack.packb({"x": image, "s": np.float32(2.5)}, default=msgpack_numpy.encode)
    back = unpack_document(stock)
    np.testing.assert_array_equal(back["x"], image)
    assert back["s"] == 2.5
    old = {"__ndarray__": True, "dtype": "<f4", "shape": [2], "data": b"\0" * 8}
    np.testing.assert_array_equal(unpack_document(msgpack.packb({"x": old}))["x"], [0, 0])


@pytest.mark.parametrize(
    "tagged, match",
    [
        ({b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": b"x"}, "kind"),
        ({b"nd": True, b"type": "|O", b"kind": b"", b"shape": [1], b"data": b"\0" * 8}, "object"),
        ({b"nd": True, b"type": "V8", b"kind": b"", b"shape": [1], b"data": b"\0" * 8}, "V8"),
        ({b"nd": True, b"type": "<f4", b"shape": [5], b"data": b"\0" * 8}, "malformed"),
        ({b"nd": True, b"type": "<f4", b"shape": [0, 2**63], b"data": b""}, "malformed"),
        ({b"nd": True, b"type": b"<f4", b"shape": [1], b"data": b"\0" * 4}, "string"),
        ({b"nd": 1, b"type": "<f4"}, "true or false"),
        ({b"nd": False, b"type": "<f8", b"data": b"\0" * 4}, "malformed"),
    ],
)
def test_forged_msgpack_numpy_arrays_are_refused(tagged, match):
    payload = msgpack.packb({"data": {"x": tagged}}, use_bin_type=True)
    with pytest.raises(WireFormatError, match=match):
        unpack_document(payload)


@pytest.mark.parametrize(
    "value",
    [
        msgpack.ExtType(5, b"abc"),
        msgpack.Timestamp(1, 0),  # decoded by msgpack itself, past ext_hook
        [1, msgpack.Timestamp(1, 0)],
        {"when": msgpack.Timestamp(1, 0)},
    ],
)
def test_msgpack_extension_types_are_refused_on_receive(value):
    payload = msgpack.packb({"name": "event", "doc": {"uid": "e", "data": {"x": value}}})
    with pytest.raises(WireFormatError, match="extension type"):
        unpack_document(payload)
