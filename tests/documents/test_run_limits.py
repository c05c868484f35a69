"""Issue 13 item 5 at the RunGuard: open runs bounded in count and in time, and raw
documents lost on the way detected (seq_num gaps, a stop announcing more events than
came, documents of a run whose start never came), each reported once with its run."""

from __future__ import annotations

import logging

import pytest

from xfusion_stream.documents import RunGuard


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.seen.append((name, doc))

    def stops(self) -> dict[str, dict]:
        return {d["run_start"]: d for n, d in self.seen if n == "stop"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def start(uid: str) -> tuple[str, dict]:
    return "start", {"uid": uid, "time": 0.0}


def descriptor(uid: str, name: str = "primary") -> tuple[str, dict]:
    return "descriptor", {"uid": f"{uid}-{name}", "run_start": uid, "data_keys": {}, "name": name}


def event(uid: str, seq: int, name: str = "primary") -> tuple[str, dict]:
    doc = {"uid": f"{uid}-{name}-{seq}", "descriptor": f"{uid}-{name}", "seq_num": seq}
    return "event", {**doc, "data": {}, "timestamps": {}}


def stop(uid: str, **num_events: int) -> tuple[str, dict]:
    return "stop", {
        "uid": f"{uid}-stop",
        "run_start": uid,
        "exit_status": "success",
        "num_events": num_events,
    }


def _feed(guard: RunGuard, docs) -> None:
    for name, doc in docs:
        guard(name, doc)


def test_beyond_max_open_runs_the_oldest_is_ended_with_the_reason():
    rec, losses = Recorder(), []
    guard = RunGuard(rec, max_open_runs=2, on_loss=lambda run, why: losses.append(run))
    _feed(guard, [start("a"), start("b"), start("c")])
    assert guard.open_runs == ["b", "c"]
    ended = rec.stops()["a"]
    assert ended["exit_status"] == "abort" and "max_open_runs=2" in ended["reason"]
    assert "make room for run c" in ended["reason"] and losses == ["a"]
    _feed(guard, [descriptor("a")])  # the late tail of the ended run is refused, not kept
    assert guard.rejected == 1 and guard.open_runs == ["b", "c"]


def test_a_run_silent_for_idle_timeout_is_ended():
    rec, clock = Recorder(), Clock()
    guard = RunGuard(rec, idle_timeout=10.0, clock=clock)
    _feed(guard, [start("quiet"), start("busy")])
    clock.now = 8.0
    _feed(guard, [descriptor("busy")])
    assert guard.expire() == []
    clock.now = 12.0
    _feed(guard, [event("busy", 1)])  # any document checks the others' silence
    stop_doc = rec.stops()["quiet"]
    assert stop_doc["exit_status"] == "abort" and "no document for 12 s" in stop_doc["reason"]
    assert guard.open_runs == ["busy"] and guard.ended[0][0] == "quiet"
    clock.now = 30.0
    assert guard.expire() == ["busy"] and guard.open_runs == []


def test_seq_num_gaps_and_short_stops_are_losses_of_their_run(caplog):
    rec, losses = Recorder(), []
    guard = RunGuard(rec, on_loss=lambda run, why: losses.append((run, why)))
    docs = [start("r"), descriptor("r"), descriptor("r", "cam")]
    docs += [event("r", 1), event("r", 2), event("r", 5), event("r", 1, "cam")]
    docs += [stop("r", primary=5, cam=3)]
    with caplog.at_level(logging.WARNING, "xfusion_stream.documents.losses"):
        _feed(guard, docs)
    assert [why for _, why in losses] == [
        "stream 'primary' of run r: events 3-4 lost",
        "stream 'cam' of run r: the stop announces 3 events, 1 came",
    ]
    assert {run for run, _ in losses} == {"r"} and guard.n_lost == 2
    assert len([r for r in caplog.records if r.name.endswith("losses")]) == 2
    assert guard.rejected == 0 and len(rec.seen) == len(docs)


def test_repeated_or_late_events_are_refused():
    rec = Recorder()
    guard = RunGuard(rec)
    _feed(guard, [start("r"), descriptor("r"), event("r", 1), event("r", 2)])
    _feed(guard, [event("r", 2), ("event", {**event("r", 1)[1], "uid": "late"})])
    assert guard.rejected == 2 and guard.n_lost == 0
    page = {
        "descriptor": "r-primary",
        "uid": ["p3", "p4"],
        "seq_num": [4, 5],
        "data": {},
        "timestamps": {},
        "time": [0.0, 0.0],
    }
    _feed(guard, [("event_page", page)])
    assert guard.n_lost == 1 and "events 3 lost" in guard.losses[-1]


def test_documents_of_a_run_whose_start_never_came_are_a_loss_reported_once():
    guard = RunGuard(Recorder())
    _feed(guard, [descriptor("ghost"), event("ghost", 1), stop("ghost"), stop("nobody")])
    assert guard.rejected == 4
    assert list(guard.losses) == [
        "a descriptor of run 'ghost' came without its start",
        "a stop of run 'nobody' came without its start",
    ]


def test_end_all_ends_every_open_run_at_shutdown():
    rec = Recorder()
    guard = RunGuard(rec)
    _feed(guard, [start("a"), start("b")])
    assert guard.end_all("serve stopped") == ["a", "b"]
    assert {u: d["reason"] for u, d in rec.stops().items()} == {
        "a": "serve stopped",
        "b": "serve stopped",
    }
    assert guard.n_lost == 2 and "ended without its stop" in guard.losses[0]


@pytest.mark.parametrize("kw", [{"max_open_runs": 0}, {"idle_timeout": 0}])
def test_limits_must_be_positive(kw):
    with pytest.raises(ValueError):
        RunGuard(Recorder(), **kw)
