"""Issue 13 item 2: documents out of order or naming unknown runs never escape a router.

RunGuard sits in front of the RunRouter (``fusion_router``) and of replay: each refusal
is one logged DocumentError and a count, and the documents of good runs still pass.
"""

from __future__ import annotations

import logging

import pytest

from xfusion_stream.documents import RunGuard

LOGGER = "xfusion_stream.documents._sequence"


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def __call__(self, name: str, doc: dict) -> None:
        if name == self.fail_on:
            raise KeyError("boom")
        self.seen.append((name, doc.get("uid") or doc.get("datum_id") or ""))


def _run(uid: str = "r1") -> list[tuple[str, dict]]:
    d = f"{uid}-d"
    return [
        ("start", {"uid": uid, "time": 0.0}),
        ("descriptor", {"uid": d, "run_start": uid, "data_keys": {}, "name": "primary"}),
        (
            "event",
            {"uid": f"{uid}-e1", "descriptor": d, "seq_num": 1, "data": {}, "timestamps": {}},
        ),
        ("stream_resource", {"uid": f"{uid}-sr", "run_start": uid, "data_key": "x", "uri": "f"}),
        ("stream_datum", {"uid": f"{uid}-sd", "stream_resource": f"{uid}-sr", "descriptor": d}),
        ("resource", {"uid": f"{uid}-res", "run_start": uid}),
        ("datum", {"datum_id": f"{uid}-res/0", "resource": f"{uid}-res"}),
        ("stop", {"uid": f"{uid}-stop", "run_start": uid, "exit_status": "success"}),
    ]


def _feed(guard: RunGuard, docs) -> None:
    for name, doc in docs:
        guard(name, doc)


def test_a_good_run_passes_untouched():
    rec = Recorder()
    guard = RunGuard(rec)
    _feed(guard, _run())
    assert [n for n, _ in rec.seen] == [n for n, _ in _run()] and guard.rejected == 0


BAD = {
    "descriptor before start": [_run()[1]],
    "event for an unknown descriptor": [_run()[0], ("event", {**_run()[2][1], "descriptor": "x"})],
    "stop for an unknown run": [("stop", {"uid": "s", "run_start": "nope"})],
    "duplicated start": [_run()[0], _run()[0]],
    "start of a finished run": [*_run(), _run()[0]],
    "datum for an unknown resource": [_run()[0], ("datum", {"datum_id": "q/0", "resource": "q"})],
    "stream_datum for an unknown resource": [_run()[0], _run()[1], ("stream_datum", {
        "uid": "sd", "stream_resource": "q", "descriptor": "r1-d"})],
    "event after the stop": [*_run(), _run()[2]],
    "a list, not a map": [("start", ["uid", "r1"])],
    "an unknown name": [("bulk_events", {"uid": "x"})],
    "uid not a string": [("start", {"uid": 7})],
    "unhashable run_start": [_run()[0], ("stop", {"uid": "s", "run_start": ["r1"]})],
    "event with a bad seq_num": [*_run()[:2], ("event", {**_run()[2][1], "seq_num": "1"})],
    "duplicate descriptor": [*_run()[:2], _run()[1]],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_sequence_is_one_logged_refusal(case, caplog):
    docs = BAD[case]
    rec = Recorder()
    guard = RunGuard(rec)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _feed(guard, docs)
    refused = [r for r in caplog.records if r.name == LOGGER]
    assert guard.rejected == 1 and len(refused) == 1, (case, [r.message for r in refused])
    assert refused[0].getMessage().startswith("rejected document ")
    assert len(rec.seen) == len(docs) - 1  # only the bad one was held back


def test_a_failing_callback_is_logged_not_raised(caplog):
    guard = RunGuard(Recorder(fail_on="descriptor"))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _feed(guard, _run())
    assert guard.rejected == 1 and "KeyError" in caplog.records[-1].getMessage()
    guard("start", {"uid": "r2"})  # the stop closed r1 even so; a new run is fine
    assert guard.rejected == 1


def test_state_is_dropped_at_stop():
    guard = RunGuard(Recorder(), recent=2)
    for i in range(50):
        _feed(guard, _run(f"r{i}"))
    assert not guard._runs and not guard._descriptors and not guard._resources
    assert len(guard._finished._items) == 2


def test_a_document_the_callback_fails_on_is_a_loss_of_its_run():
    """An event without ``time`` passed the checks here and failed in event-model's
    router: its frame never reached fusion, and the fused run said ``ok``."""
    lost: list[tuple[str, str]] = []
    guard = RunGuard(Recorder(fail_on="event"), on_loss=lambda run, why: lost.append((run, why)))
    _feed(guard, _run())
    assert guard.rejected == 1 and [run for run, _ in lost] == ["r1"]
    assert "r1-e1" in lost[0][1] and "KeyError" in lost[0][1]


@pytest.mark.parametrize("status", [None, "weird", 7, ["success"], {"a": 1}])
def test_a_stop_of_no_known_exit_status_ends_its_run_with_abort(status, caplog):
    """The fusion worker raised a schema traceback on it and the fused run never got
    its stop; the run is ended now, with the reason."""
    seen: list[tuple[str, dict]] = []
    guard = RunGuard(lambda name, doc: seen.append((name, doc)))
    *docs, (_, stop) = _run()
    _feed(guard, [*docs, ("stop", {**stop, "exit_status": status})])
    assert guard.rejected == 1 and guard.open_runs == []
    (ended,) = [doc for name, doc in seen if name == "stop"]
    assert ended["exit_status"] == "abort" and "is not success, abort or fail" in ended["reason"]


def test_an_event_page_of_more_rows_than_any_burst_is_refused():
    """Each row of a page becomes an event of its own downstream: a 14 MiB page of
    near-empty rows took 490 MiB (35 times its size)."""
    rec = Recorder()
    guard = RunGuard(rec)
    start, descriptor = _run()[:2]
    _feed(guard, [start, descriptor])
    rows = 100_001
    page = {"uid": ["u"] * rows, "descriptor": "r1-d", "seq_num": list(range(1, rows + 1))}
    guard("event_page", {**page, "data": {}, "timestamps": {}, "time": [0.0] * rows})
    assert guard.rejected == 1 and [n for n, _ in rec.seen] == ["start", "descriptor"]
