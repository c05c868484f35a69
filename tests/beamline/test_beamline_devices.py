"""Burst camera devices on their own: lifecycle, readings, backends, errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from xfusion_stream.devices import (
    FRAME_DATASET,
    CameraBackend,
    PhantomTMX7510,
    SimPhantomBackend,
)
from xfusion_stream.simulation import Scene
from xfusion_stream.testing import BEAMLINE_SCENE as SMALL


def test_sim_backends_satisfy_the_protocol(make_cameras):
    phantom, shimadzu, _ = make_cameras()
    assert isinstance(phantom.backend, CameraBackend)
    assert isinstance(shimadzu.backend, CameraBackend)


def test_burst_lifecycle_and_readings(make_cameras):
    phantom, _, _ = make_cameras()
    scene = Scene(SMALL)
    with pytest.raises(RuntimeError, match="trigger before arm"):
        phantom.trigger().wait(1)
    phantom.stage()
    try:
        phantom.trigger().wait(1)
        assert phantom.memory_times_ns.get() == scene.phantom_times_ns().tolist()
        first_e = int(np.argmax(scene.phantom_e_flags()))
        phantom.readout_index.set(first_e).wait(1)
        reading = phantom.read()
        assert reading["phantom_time_ns"]["value"] == 0
        assert reading["phantom_frame_number"]["value"] == 0
        assert reading["phantom_trigger_flag"]["value"] is True
        assert "phantom_image" not in reading  # external: referenced, not inlined
        docs = list(phantom.collect_asset_docs())
        assert [n for n, _ in docs] == ["stream_resource", "stream_datum"]
        assert docs[1][1]["indices"] == {"start": first_e, "stop": first_e + 1}
        assert list(phantom.collect_asset_docs()) == []  # one datum per read
        with h5py.File(phantom.burst_path, "r") as h5:
            np.testing.assert_array_equal(h5[FRAME_DATASET][first_e], scene.phantom_frame(first_e))
            np.testing.assert_array_equal(
                h5["/entry/instrument/time_ns"][:], scene.phantom_times_ns()
            )
    finally:
        phantom.unstage()


def test_readout_index_outside_memory_is_an_error(make_cameras):
    _, shimadzu, _ = make_cameras(inline=True)
    shimadzu.stage()
    shimadzu.trigger().wait(1)
    shimadzu.readout_index.set(10_000).wait(1)
    with pytest.raises(IndexError, match="readout_index 10000"):
        shimadzu.read()
    shimadzu.unstage()


def test_configuration_names_the_camera(make_cameras):
    phantom, shimadzu, _ = make_cameras()
    conf = phantom.read_configuration()
    assert conf["phantom_camera_model"]["value"] == "Phantom TMX7510"
    assert conf["phantom_frame_shape"]["value"] == [128, 192]
    assert phantom.describe_configuration()["phantom_frame_shape"]["dtype_numpy"] == "<i8"
    assert shimadzu.read_configuration()["shimadzu_pixel_size_um"]["value"] == pytest.approx(12.8)
    assert "shimadzu_frame_rate_hz" not in shimadzu.read_configuration()


def test_data_dir_required_unless_inline():
    from xfusion_stream.devices import SimBeam

    with pytest.raises(ValueError, match="data_dir is required"):
        PhantomTMX7510(name="phantom", backend=SimPhantomBackend(SimBeam(SMALL)))
