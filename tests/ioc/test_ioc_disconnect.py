"""Issue 11: a camera that drops off its IOC in the middle of a burst (``xfusion ioc``'s
``cam1:SimDisconnectAfter``) fails the fly scan at once with an error naming the camera
and PV; the raw run ends ``fail`` with that reason yet records every frame written
(HDF5 file + StreamResource/StreamDatum); the fused run ends with the reason too."""

from __future__ import annotations

import asyncio

import h5py
import pytest
from bluesky.utils import FailedStatus
from ophyd_async.epics.core import epics_signal_rw
from xfusion_plans import fly_dual_camera_burst

from xfusion_stream.app import FusionSession
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.testing import DocumentLog

DROP_AFTER = 10  # Shimadzu frames written before the camera drops off


def _on_loop(RE, call):
    """``await call()`` on RE's loop (ophyd-async statuses are made on the loop)."""

    async def run():
        return await call()

    return asyncio.run_coroutine_threadsafe(run(), RE.loop).result(30)


@pytest.mark.timeout(120)
def test_camera_disconnect_mid_burst(RE, epics_cameras, ioc, tiny_model, calibration):
    phantom, shimadzu = epics_cameras
    fault = epics_signal_rw(int, ioc["prefixes"]["shimadzu"] + "cam1:SimDisconnectAfter")
    _on_loop(RE, lambda: fault.connect(timeout=10))
    _on_loop(RE, lambda: fault.set(DROP_AFTER))
    raw, fused = DocumentLog(), DocumentLog()
    session = FusionSession(tiny_model, calibration, [fused], FusionConfig())
    RE.subscribe(raw)
    token = RE.subscribe(session.router())
    with pytest.raises(FailedStatus) as failed:
        RE(fly_dual_camera_burst(phantom, shimadzu))
    result = session.wait(60)
    RE.unsubscribe(token)

    # a clear error: which camera, which PV, the camera's own words
    error = str(failed.value.__cause__ or failed.value)
    assert "shimadzu" in error and "cam1:DetectorState_RBV" in error, error
    assert f"disconnected after {DROP_AFTER} of" in error, error
    (stop,) = raw.of("stop")
    assert stop["exit_status"] == "fail" and "disconnected" in stop["reason"]
    # a complete raw record of what was acquired: documents name the frames written
    datums = {
        r["data_key"]: sum(d["indices"]["stop"] - d["indices"]["start"]
                           for d in raw.of("stream_datum") if d["stream_resource"] == r["uid"])
        for r in raw.of("stream_resource")
    }  # fmt: skip
    assert datums["shimadzu_image"] == DROP_AFTER == datums["shimadzu_time_ns"]
    assert datums["phantom_image"] > 0  # the other camera's burst is kept too
    (uri,) = {r["uri"] for r in raw.of("stream_resource") if r["data_key"] == "shimadzu_image"}
    with h5py.File(uri.removeprefix("file://localhost"), "r") as h5:
        assert h5["/entry/data/data"].shape[0] == DROP_AFTER
        assert len(h5["/entry/instrument/NDAttributes/shimadzu_time_ns"]) == DROP_AFTER
    # the fused run ends, and says why
    assert result is not None and result.exit_status in ("fail", "abort")
    (fused_stop,) = fused.of("stop")
    assert fused_stop["exit_status"] == result.exit_status
    assert "disconnected" in fused_stop["reason"], fused_stop["reason"]
    # the camera is back for the next burst
    (uid,) = RE(fly_dual_camera_burst(phantom, shimadzu))
    assert raw.of("stop")[-1]["exit_status"] == "success"
