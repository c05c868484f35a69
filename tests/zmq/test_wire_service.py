"""Issue 13 items 1 and 2 on the serve path: real sockets, data roots, CURVE.

- garbage on a real 0MQ proxy, then a valid run: ``FusionSession.serve`` logs each bad
  message, keeps its stdout clean and fuses the run;
- documents from outside the process (``router(confined=True)``, what serve and replay
  use) read files only inside ``data_roots``;
- a CURVE proxy lets in only clients whose keys it authorized.
"""

from __future__ import annotations

import shutil
import threading
import time

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.publishing import (
    RAW_PREFIX,
    ClientCurve,
    DocumentCounter,
    ProxyThread,
    client_curve,
    dispatch_in_thread,
    make_curve_keys,
    make_publisher,
    make_remote_dispatcher,
    pack_document,
    server_curve,
    stop_dispatcher,
)
from xfusion_stream.testing import wait_until

GARBAGE = [
    b"no-spaces-at-all",
    b"raw start \xc1\xc1\xc1",
    b"raw \xff\xfe " + pack_document({"uid": "x"}),
    b"raw bulk_events " + pack_document({"uid": "x"}),
    b"raw stop " + pack_document({"uid": "s", "run_start": "nobody", "time": 0.0}),
    b"raw descriptor " + pack_document({"uid": "d", "run_start": "nobody", "data_keys": {}}),
    b"raw event " + pack_document({"uid": "e", "descriptor": "d", "data": {}})[:-3],
    b"raw start " + b"\x80" * (2 * 1024 * 1024),  # over the 1 MiB limit
]


def test_serve_survives_garbage_then_fuses_a_valid_run(
    file_run, fuzz_model, fuzz_calibration, fresh_uids, make_checked_sink, tmp_path, capfd
):
    docs, raw_dir = file_run
    docs = fresh_uids(docs)
    sink = make_checked_sink()
    session = FusionSession(
        fuzz_model, fuzz_calibration, [sink], FusionConfig(), data_roots=[raw_dir]
    )
    result: dict = {}
    ready = tmp_path / "ready"
    with ProxyThread() as proxy:

        def serve() -> None:
            result.update(
                session.serve(
                    proxy.out_address,
                    max_runs=1,
                    ready_file=ready,
                    max_message_bytes=1024 * 1024,
                    join_timeout=60,
                )
            )

        serving = threading.Thread(target=serve, daemon=True)
        serving.start()
        publisher = make_publisher(proxy.in_address, RAW_PREFIX)
        try:
            wait_until(ready.exists, 30, "serve to subscribe")
            time.sleep(0.5)  # slow joiner: let both connections reach the proxy
            for raw in GARBAGE:  # same socket as the run: they arrive first, in order
                publisher._socket.send(raw)
            for name, doc in docs:
                publisher(name, doc)
            serving.join(60)
            assert not serving.is_alive(), "serve did not end after the run"
        finally:
            publisher.close()
            session.shutdown("test")
    assert result["stopped_by"] == "max-runs" and result["raw_runs"] == 1
    assert result["messages_rejected"] == len(GARBAGE)
    (run,) = result["runs"]
    assert run["raw_uid"] == docs[0][1]["uid"] and run["exit_status"] == "success"
    assert run["frames"] == 10 and not sink.invalid
    out, err = capfd.readouterr()
    assert out == ""  # rejections are log lines, never stdout (`serve --json`)


def _fuse(session: FusionSession, docs, confined: bool):
    router = session.router(confined=confined)
    for name, doc in docs:
        router(name, doc)
    result = session.wait(60)
    assert result is not None
    return result


def test_files_are_read_only_inside_the_data_roots(
    file_run, fuzz_model, fuzz_calibration, fresh_uids, tmp_path
):
    docs, raw_dir = file_run

    def session(roots=None):
        return FusionSession(fuzz_model, fuzz_calibration, [], FusionConfig(), data_roots=roots)

    # documents from this process's RunEngine: trusted to name their own files
    assert _fuse(session(), fresh_uids(docs), confined=False).exit_status == "success"
    # from outside (serve, replay): no roots, no files
    off = _fuse(session(), fresh_uids(docs), confined=True)
    assert off.exit_status == "fail" and "file access is off" in off.reason
    assert _fuse(session([raw_dir]), fresh_uids(docs), confined=True).frames == 10
    elsewhere = _fuse(session([tmp_path]), fresh_uids(docs), confined=True)
    assert elsewhere.exit_status == "fail" and "inside the data roots" in elsewhere.reason

    # a hostile run names, through a symlink inside the root, a copy of its file
    # outside: refused, and the reason never shows where the link led
    outside = tmp_path / "outside"
    outside.mkdir()
    hostile = []
    for name, doc in fresh_uids(docs):
        if name == "stream_resource":
            source = doc["uri"].removeprefix("file://localhost")
            link = raw_dir / f"escape-{doc['uid']}.h5"
            link.symlink_to(shutil.copy(source, outside / link.name))
            doc = {**doc, "uri": f"file://localhost{link}"}
        hostile.append((name, doc))
    refused = _fuse(session([raw_dir]), hostile, confined=True)
    for link in raw_dir.glob("escape-*.h5"):
        link.unlink()
    assert refused.exit_status == "fail" and "inside the data roots" in refused.reason
    assert str(outside) not in refused.reason


def test_curve_lets_only_authorized_clients_in(tmp_path):
    keys = make_curve_keys(tmp_path / "keys")
    stranger = make_curve_keys(tmp_path / "stranger")  # a pair the proxy never authorized
    with ProxyThread(in_curve=server_curve(keys), out_curve=server_curve(keys)) as proxy:
        friend_sub, plain_sub = DocumentCounter(runs=None), DocumentCounter(runs=None)
        subs = [
            make_remote_dispatcher(proxy.out_address, RAW_PREFIX, curve=client_curve(keys)),
            make_remote_dispatcher(proxy.out_address, RAW_PREFIX),
        ]
        threads = [dispatch_in_thread(d, c) for d, c in zip(subs, (friend_sub, plain_sub))]
        wrong_key = ClientCurve(stranger / "client.key_secret", keys / "server.key")
        publishers = [
            make_publisher(proxy.in_address, RAW_PREFIX, curve=client_curve(keys), linger_ms=0),
            make_publisher(proxy.in_address, RAW_PREFIX, linger_ms=0),
            make_publisher(proxy.in_address, RAW_PREFIX, curve=wrong_key, linger_ms=0),
        ]
        try:
            deadline = time.monotonic() + 20
            while not friend_sub.runs and time.monotonic() < deadline:
                for i, publisher in enumerate(publishers):
                    publisher("start", {"uid": f"p{i}-{time.monotonic()}", "time": 0.0})
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            for publisher in publishers:
                publisher.close()
            for dispatcher, thread in zip(subs, threads):
                stop_dispatcher(dispatcher, thread)
    assert friend_sub.runs, "the authorized client's documents never arrived"
    assert {uid.split("-")[0] for uid in friend_sub.runs} == {"p0"}
    assert plain_sub.n_documents == 0
