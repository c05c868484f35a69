"""Issue 14 item 4: a stock bluesky consumer reads our 0MQ stream with no xfusion import.

The consumer is a separate Python process running the script below: bluesky's own
``RemoteDispatcher`` with ``deserializer=msgpack_numpy.unpackb`` (msgpack-numpy ships
with bluesky), optionally CURVE via bluesky's ``curve_config``. It prints one JSON line
per document and, at the end, whether any ``xfusion`` module was imported.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from event_model import compose_run

from xfusion_stream.publishing import (
    FUSED_PREFIX,
    ProxyThread,
    client_curve,
    make_curve_keys,
    make_publisher,
    server_curve,
)

CONSUMER = r"""
import json, sys
import msgpack_numpy
import numpy as np
from bluesky.callbacks.zmq import ClientCurve, RemoteDispatcher

address = sys.argv[1]
curve = ClientCurve(sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else None
dispatcher = RemoteDispatcher(
    address, prefix=b"fused", deserializer=msgpack_numpy.unpackb, curve_config=curve
)


def show(name, doc):
    line = {"name": name, "uid": doc.get("uid"), "arrays": {}}
    for key, value in (doc.get("data") or {}).items():
        if isinstance(value, np.ndarray):
            line["arrays"][key] = [str(value.dtype), list(value.shape), value.tolist()]
    print(json.dumps(line), flush=True)
    if name == "stop" and doc.get("run_start") != "probe":
        imported = sorted(m for m in sys.modules if m.startswith("xfusion"))
        print(json.dumps({"name": "done", "xfusion_modules": imported}), flush=True)
        dispatcher.stop()


dispatcher.subscribe(show)
dispatcher.loop.call_soon(lambda: print(json.dumps({"name": "ready"}), flush=True))
dispatcher.start()
"""


def _fused_like_run(image: np.ndarray) -> list[tuple[str, dict]]:
    run = compose_run(metadata={"raw_uid": "raw-1", "analysis_stage": "fused"})
    desc = run.compose_descriptor(
        name="primary",
        data_keys={
            "fused_image": {"source": "x", "dtype": "array", "shape": list(image.shape)},
            "counts": {"source": "x", "dtype": "array", "shape": [3]},
            "psnr": {"source": "x", "dtype": "number", "shape": []},
        },
    )
    counts = np.array([1, 2, 65535], dtype=np.uint16)
    event = desc.compose_event(
        data={"fused_image": image, "counts": counts, "psnr": np.float32(31.5)},
        timestamps={"fused_image": 0.0, "counts": 0.0, "psnr": 0.0},
    )
    stop = run.compose_stop()
    return [
        ("start", run.start_doc),
        ("descriptor", desc.descriptor_doc),
        ("event", event),
        ("stop", stop),
    ]


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(json.loads(line))


def _consume(proxy: ProxyThread, publisher, args: list[str]) -> tuple[list[dict], np.ndarray]:
    """Start the consumer; probe until it hears us (slow joiner), then send one run."""
    image = (np.arange(20, dtype=np.float32).reshape(4, 5) / 7).astype(np.float32)
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, proxy.out_address, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[dict] = []
    try:
        deadline = time.monotonic() + 60
        while not any(s.get("uid") == "probe" for s in seen):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"consumer: {proc.stderr.read() if proc.poll() is not None else 'timeout'}"
                )
            if any(s["name"] == "ready" for s in seen):
                publisher("start", {"uid": "probe", "time": time.time()})
            try:
                seen.append(lines.get(timeout=0.2))
            except queue.Empty:
                pass
        for name, doc in _fused_like_run(image):
            publisher(name, doc)
        while seen[-1]["name"] != "done":
            seen.append(lines.get(timeout=30))
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    return [s for s in seen if s["name"] not in ("ready",) and s.get("uid") != "probe"], image


def _check(seen: list[dict], image: np.ndarray) -> None:
    names = [s["name"] for s in seen]
    assert names == ["start", "descriptor", "event", "stop", "done"]
    assert seen[-1]["xfusion_modules"] == []  # the consumer imported nothing of ours
    dtype, shape, values = seen[2]["arrays"]["fused_image"]
    assert (dtype, shape) == ("float32", [4, 5])
    np.testing.assert_array_equal(np.array(values, dtype=np.float32), image)
    assert seen[2]["arrays"]["counts"] == ["uint16", [3], [1, 2, 65535]]
    assert all(isinstance(s["uid"], str) and s["uid"] for s in seen[:4])


@pytest.mark.timeout(120)
def test_stock_remote_dispatcher_reads_our_wire_without_xfusion():
    with ProxyThread() as proxy:
        publisher = make_publisher(proxy.in_address, FUSED_PREFIX, linger_ms=0)
        try:
            seen, image = _consume(proxy, publisher, [])
        finally:
            publisher.close()
    _check(seen, image)


@pytest.mark.timeout(120)
def test_stock_remote_dispatcher_over_curve(tmp_path):
    keys = make_curve_keys(tmp_path / "keys")
    server = server_curve(keys)
    with ProxyThread(in_curve=server, out_curve=server) as proxy:
        curve = client_curve(keys)
        publisher = make_publisher(proxy.in_address, FUSED_PREFIX, linger_ms=0, curve=curve)
        try:
            args = [str(curve.secret_path), str(curve.server_public_key)]
            seen, image = _consume(proxy, publisher, args)
        finally:
            publisher.close()
    _check(seen, image)
