"""Issue 13 item 2: the service survives any byte sequence on the wire (hypothesis).

Three levels, each fed directly (no sockets): the deserializer (any bytes, corrupted
valid payloads, any msgpack structure); ``SafeRemoteDispatcher.handle`` (any message);
and the whole raw-run path of ``serve`` (dispatcher -> RunGuard -> RunRouter ->
FusionCallback -> fused sinks) over valid runs reordered, truncated, duplicated and
corrupted. Nothing may raise, every fused document must be schema-valid, every
rejected message must be exactly one log record, and a valid run sent afterwards
must still be fused.
"""

from __future__ import annotations

import logging
import uuid

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.publishing import (
    DOCUMENT_NAMES,
    SafeRemoteDispatcher,
    WireFormatError,
    pack_document,
    unpack_document,
)

SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


class Records(logging.Handler):
    """Rejection records of the dispatcher and the RunGuard (WARNING and up)."""

    NAMES = ("xfusion_stream.publishing._wire", "xfusion_stream.documents._sequence")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in self.NAMES:
            self.records.append(record)

    def __enter__(self) -> Records:
        self._logger = logging.getLogger("xfusion_stream")
        self._level = self._logger.level
        self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def message(name: str | bytes, payload: bytes, prefix: bytes = b"raw") -> bytes:
    name = name.encode() if isinstance(name, str) else name
    return b" ".join([prefix, name, payload])


# ---- the deserializer ------------------------------------------------------------------
def _unpacks_or_refuses(payload: bytes) -> None:
    try:
        doc = unpack_document(payload)
    except WireFormatError:
        return
    assert isinstance(doc, dict) and all(isinstance(k, str) for k in doc)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_unpack_to_a_document_or_a_wire_format_error(payload):
    _unpacks_or_refuses(payload)


VALID = pack_document(
    {
        "uid": "e",
        "descriptor": "d",
        "seq_num": 1,
        "data": {"img": np.arange(12, dtype="<u2").reshape(3, 4), "t": 1.5},
        "timestamps": {"img": 0.0},
    }
)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, len(VALID) - 1),
    st.sampled_from(["truncate", "flip", "insert", "delete"]),
    st.binary(min_size=1, max_size=8),
)
def test_corrupted_valid_payloads_are_refused_cleanly(at, how, noise):
    payload = {
        "truncate": VALID[:at],
        "flip": VALID[:at] + bytes([VALID[at] ^ noise[0]]) + VALID[at + 1 :],
        "insert": VALID[:at] + noise + VALID[at:],
        "delete": VALID[:at] + VALID[at + len(noise) :],
    }[how]
    _unpacks_or_refuses(payload)


INTS = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
ARRAY_TAG = st.fixed_dictionaries(
    {
        "__ndarray__": st.just(True),
        "dtype": st.one_of(
            st.sampled_from(["<u2", "<f4", "|O", "V8", "<M8[s]", "U3", "(2,2)f8", "S0", "i99"]),
            st.text(max_size=6),
            INTS,
        ),
        "shape": st.one_of(st.lists(st.integers(-3, 10**12), max_size=4), st.text(max_size=3)),
        "data": st.one_of(st.binary(max_size=64), st.text(max_size=4), st.none()),
    }
)
MPN_TAG = st.fixed_dictionaries(  # msgpack-numpy's form, the one sent since issue 14
    {
        b"nd": st.one_of(st.booleans(), st.none(), INTS),
        b"type": st.one_of(
            st.sampled_from(["<u2", "<f4", "|O", "V8", "<M8[s]", "U3", "(2,2)f8", "S0", "i99"]),
            st.text(max_size=6),
            st.binary(max_size=4),
        ),
        b"kind": st.sampled_from([b"", b"O", b"V", "", None]),
        b"shape": st.one_of(st.lists(st.integers(-3, 2**63 - 1), max_size=4), st.text(max_size=3)),
        b"data": st.one_of(st.binary(max_size=64), st.text(max_size=4), st.none()),
    }
)
LEAVES = st.one_of(
    st.none(), st.booleans(), INTS, st.floats(), st.text(max_size=8), st.binary(max_size=8)
)
TREES = st.recursive(
    st.one_of(LEAVES, ARRAY_TAG, MPN_TAG),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), INTS), inner, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(TREES)
def test_any_msgpack_structure_is_a_document_or_refused(tree):
    _unpacks_or_refuses(msgpack.packb(tree, use_bin_type=True))


# ---- one message through the dispatcher -------------------------------------------------
NAMES = st.one_of(
    st.sampled_from(sorted(DOCUMENT_NAMES)),
    st.sampled_from(["bulk_events", "Start", "", "__class__", "stop\x00"]),
    st.binary(max_size=6).filter(lambda b: b" " not in b),
)
DOCS = st.dictionaries(
    st.sampled_from(["uid", "run_start", "descriptor", "data", "seq_num", "time", "x"]),
    TREES,
    max_size=6,
)
PAYLOADS = st.one_of(st.binary(max_size=256), DOCS.map(pack_document), TREES.map(msgpack.packb))
MESSAGES = st.one_of(
    st.binary(max_size=300),
    st.builds(message, NAMES, PAYLOADS, st.sampled_from([b"raw", b"fused", b"", b"raw\xff"])),
)


class Sink:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, name: str, doc: dict) -> None:
        self.n += 1


@pytest.fixture(scope="module")
def dispatcher():
    """Never started: ``handle`` is the whole per-message path of its poll loop."""
    from xfusion_stream.documents import RunGuard

    d = SafeRemoteDispatcher("tcp://127.0.0.1:9", prefix=b"raw", max_message_bytes=4096)
    d.guard = RunGuard(Sink())
    d.subscribe(d.guard)
    yield d
    d.loop.close()


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW)
@given(st.lists(MESSAGES, max_size=8))
def test_every_message_is_dispatched_ignored_or_one_logged_refusal(dispatcher, messages):
    with Records() as log:
        for raw in messages:
            before = (len(log.records), dispatcher.rejected, dispatcher.guard.rejected)
            assert dispatcher.handle(raw) in (True, False)
            after = (len(log.records), dispatcher.rejected, dispatcher.guard.rejected)
            refusals = (after[1] - before[1]) + (after[2] - before[2])
            assert refusals <= 1 and after[0] - before[0] == refusals
            if refusals:
                assert "0MQ message" in log.records[-1].getMessage() or (
                    log.records[-1].getMessage().startswith("rejected document")
                )


def test_limits_and_prefixes(dispatcher, capsys):
    doc = pack_document({"uid": str(uuid.uuid4()), "time": 0.0})
    with Records() as log:
        assert dispatcher.handle(message("start", doc))
        assert not dispatcher.handle(message("start", doc, prefix=b"fused"))  # not ours
        assert len(log.records) == 0
        assert not dispatcher.handle(message("start", doc + b"\0" * 5000))
        assert not dispatcher.handle(b"raw stop \xc1")
        assert not dispatcher.handle(b"no-spaces-at-all")
        assert not dispatcher.handle(message("bulk_events", doc))
    texts = [r.getMessage() for r in log.records]
    assert "over the 4096-byte limit" in texts[0] and "not a msgpack document" in texts[1]
    assert "three space-separated parts" in texts[2] and "unknown document name" in texts[3]
    assert capsys.readouterr().out == ""  # never stdout: `serve --json` stays one line


# ---- whole runs through the raw path of `serve` ------------------------------------------
GARBAGE = st.one_of(st.none(), st.integers(-2, 10**9), st.text(max_size=4), st.just([]))
OPS = st.lists(
    st.tuples(
        st.sampled_from(["drop", "duplicate", "swap", "truncate", "field", "bytes"]),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        GARBAGE,
    ),
    max_size=5,
)


def _mutated(docs: list[tuple[str, dict]], ops) -> list[bytes]:
    """The run's messages after reordering, truncation, duplication and corruption."""
    msgs: list[tuple[str, dict, bytes | None]] = [(n, d, None) for n, d in docs]
    for op, i, j, junk in ops:
        if not msgs:
            break
        i, j = i % len(msgs), j % len(msgs)
        name, doc, raw = msgs[i]
        if op == "drop":
            del msgs[i]
        elif op == "duplicate":
            msgs.insert(j, msgs[i])
        elif op == "swap":
            msgs[i], msgs[j] = msgs[j], msgs[i]
        elif op == "truncate":
            del msgs[i:]
        elif op == "field" and doc:
            key = sorted(doc)[j % len(doc)]
            msgs[i] = (name, {**doc, key: junk}, None)
        elif op == "bytes":
            packed = message(name, pack_document(doc))
            at = j % len(packed)
            msgs[i] = (name, doc, packed[:at] + bytes([packed[at] ^ 0x5A]) + packed[at + 1 :])
    return [raw if raw is not None else message(n, pack_document(d)) for n, d, raw in msgs]


def _serve_path(session: FusionSession) -> SafeRemoteDispatcher:
    """What ``ZmqFusionService.run`` subscribes, minus the sockets."""
    dispatcher = SafeRemoteDispatcher("tcp://127.0.0.1:9", prefix=b"raw")
    dispatcher.guard = session.router(confined=True)
    dispatcher.subscribe(dispatcher.guard)
    return dispatcher


def _close_open_runs(session: FusionSession, dispatcher) -> None:
    for cb in list(session._callbacks):
        if cb.raw_uid in dispatcher.guard._runs:  # no stop came: end it as serve does
            cb.stop({"run_start": cb.raw_uid, "exit_status": "abort", "reason": "test"})
        assert cb.join(60), "a fusion worker did not finish"


@settings(max_examples=10, deadline=None, suppress_health_check=SLOW)
@given(OPS)
def test_hostile_run_sequences_never_stop_the_service(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids, make_checked_sink, ops
):
    sink = make_checked_sink()
    session = FusionSession(fuzz_model, fuzz_calibration, [sink], FusionConfig())
    dispatcher = _serve_path(session)
    try:
        with Records() as log:
            for raw in _mutated(fresh_uids(inline_run), ops):
                dispatcher.handle(raw)
            refused = dispatcher.rejected + dispatcher.guard.rejected
            assert len(log.records) == refused
            good = fresh_uids(inline_run)  # the service still fuses a valid run afterwards
            for name, doc in good:
                assert dispatcher.handle(message(name, pack_document(doc)))
            assert len(log.records) == refused
        _close_open_runs(session, dispatcher)
    finally:
        dispatcher.loop.close()
    assert not sink.invalid, sink.invalid
    last = session.results[-1]
    assert last.raw_uid == good[0][1]["uid"] and last.exit_status == "success", last
    assert last.frames == 10


def test_bad_sequences_at_the_fusion_router_are_logged_not_raised(
    inline_run, fuzz_model, fuzz_calibration, fresh_uids, make_checked_sink
):
    docs = fresh_uids(inline_run)
    (start, descriptor) = docs[0][1], docs[1][1]
    first_event = next(d for n, d in docs if n == "event")
    session = FusionSession(fuzz_model, fuzz_calibration, [make_checked_sink()], FusionConfig())
    router = session.router()
    bad = {
        0: ("descriptor", descriptor),  # before its start
        1: ("start", start),  # duplicated start
        3: ("event", {**first_event, "descriptor": "no-such-descriptor"}),
        4: ("datum", {"datum_id": "r/0", "resource": "no-such-resource", "datum_kwargs": {}}),
        len(docs) - 1: ("stop", {"uid": "s", "run_start": "no-such-run", "time": 0.0}),
    }
    with Records() as log:
        for i, (name, doc) in enumerate(docs):
            if i in bad:
                router(*bad[i])
            router(name, doc)
    assert len(log.records) == len(bad) == router.rejected
    texts = " | ".join(r.getMessage() for r in log.records)
    for why in ("unknown run", "duplicate start", "unknown descriptor", "unknown resource"):
        assert why in texts
    good = session.wait(60)
    assert good is not None and good.exit_status == "success" and good.frames == 10

    # a real data error still fails its run (with the reason), and nothing escapes
    broken = fresh_uids(inline_run)
    name, event = next((n, d) for n, d in broken if n == "event")
    key = next(k for k in event["data"] if k.endswith("_image"))
    event["data"] = {**event["data"], key: np.zeros((3, 3), np.uint16)}
    for name, doc in broken:
        router(name, doc)
    failed = session.wait(60)
    assert failed is not None and failed.exit_status == "fail" and "corrupt" in failed.reason
