"""virtual_experiment through a real RunEngine: documents, layout, pairing, fusion."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from xfusion_plans import dual_camera_burst, virtual_experiment

from xfusion_stream.calibration import StreamingPairer, pairing_table
from xfusion_stream.core import ConfigError
from xfusion_stream.devices import (
    PhantomTMX7510,
    ShimadzuHPVX2,
    SimBeam,
    SimPhantomBackend,
    SimShimadzuBackend,
    VirtualSequence,
    virtual_cameras,
)
from xfusion_stream.simulation import SceneConfig


def _run(RE, collector, plan):
    log = collector()
    token = RE.subscribe(log)
    try:
        (uid,) = RE(plan)
    finally:
        RE.unsubscribe(token)
    return uid, log


def _layout(log) -> dict:
    """Per stream: data key -> its description minus the source, configuration keys."""
    out = {}
    for desc in log.of("descriptor"):
        keys = {
            k: {f: v for f, v in d.items() if f != "source"} for k, d in desc["data_keys"].items()
        }
        config = {dev: sorted(c["data_keys"]) for dev, c in desc["configuration"].items()}
        out[desc["name"]] = (keys, config, sorted(desc["object_keys"].items()))
    return out


def test_documents_match_dual_camera_burst(RE, collector, hr_folder, tmp_path):
    uid, log = _run(
        RE, collector, virtual_experiment(*virtual_cameras(hr_folder), md={"sample": "camera"})
    )
    (start,) = log.of("start")
    assert start["uid"] == uid and start["plan_name"] == "virtual_experiment"
    assert start["data_type"] == "virtual" and start["virtual_source"] == str(hr_folder)
    assert start["phantom_every"] == 20 and start["pixel_ratio"] == 4
    assert start["n_frames"] == {"phantom": 3, "shimadzu": 41}
    assert start["frame_shape"] == {"phantom": [64, 96], "shimadzu": [16, 24]}
    assert start["virtual"]["hr_crop"] == {"x": 0, "y": 0, "width": 96, "height": 64}
    assert start["sample"] == "camera"
    assert log.of("stop")[0]["exit_status"] == "success"
    assert len(log.events("phantom")) == 3 and len(log.events("shimadzu")) == 41
    # default data_dir: <source>_raw next to the source folder, one HDF5 file per camera
    files = sorted((hr_folder.parent / "clip_000_raw").glob("*.h5"))
    assert len(files) == 2 and len(log.of("stream_resource")) == 2

    scene = SceneConfig(seed=1, shimadzu_shape=(16, 24), n_shimadzu=41)
    beam = SimBeam(scene)
    raw = tmp_path / "sim_raw"
    phantom = PhantomTMX7510(name="phantom", backend=SimPhantomBackend(beam), data_dir=raw)
    shimadzu = ShimadzuHPVX2(name="shimadzu", backend=SimShimadzuBackend(beam), data_dir=raw)
    _, sim_log = _run(RE, collector, dual_camera_burst(phantom, shimadzu))
    assert _layout(log) == _layout(sim_log)
    sim_start = sim_log.of("start")[0]
    assert set(sim_start) <= set(start)
    assert start["camera_models"] == sim_start["camera_models"]
    assert start["streams"] == sim_start["streams"]


def test_inline_events_carry_the_virtual_frames(RE, collector, hr_stack):
    seq = VirtualSequence(hr_stack)
    _, log = _run(RE, collector, virtual_experiment(*virtual_cameras(seq, inline=True)))
    shimadzu = log.events("shimadzu")
    phantom = log.events("phantom")
    np.testing.assert_array_equal(shimadzu[17]["data"]["shimadzu_image"], seq.shimadzu_frame(17))
    np.testing.assert_array_equal(phantom[2]["data"]["phantom_image"], seq.ground_truth(40))
    assert [e["data"]["phantom_trigger_flag"] for e in phantom] == [True] * 3
    assert log.of("start")[0]["virtual_source"].startswith("<array 41x70x100")
    # interleaved by hardware time: each Phantom frame just before its Shimadzu twin
    names = {d["uid"]: d["name"] for d in log.of("descriptor")}
    order = [names[e["descriptor"]] for e in log.of("event")]
    assert [i for i, n in enumerate(order) if n == "phantom"] == [0, 21, 42]


def test_hdf5_frames_equal_the_sequence(RE, collector, hr_stack, tmp_path):
    seq = VirtualSequence(hr_stack)
    _, log = _run(
        RE, collector, virtual_experiment(*virtual_cameras(seq, data_dir=tmp_path / "raw"))
    )
    stored = {}
    for doc in log.of("stream_resource"):
        with h5py.File(doc["uri"].removeprefix("file://localhost"), "r") as f:
            stored[doc["data_key"]] = f[doc["parameters"]["dataset"]][()]
    assert stored["shimadzu_image"].shape == (41, 16, 24)
    np.testing.assert_array_equal(stored["shimadzu_image"][3], seq.shimadzu_frame(3))
    assert stored["phantom_image"].shape == (3, 64, 96)
    np.testing.assert_array_equal(stored["phantom_image"][1], seq.phantom_frame(1))


@pytest.mark.parametrize("mode", ["continuous", "double"])
def test_streaming_pairer_on_the_events(RE, collector, hr_stack, mode):
    seq = VirtualSequence(hr_stack)
    _, log = _run(RE, collector, virtual_experiment(*virtual_cameras(seq, inline=True)))
    streams = {d["uid"]: d["name"] for d in log.of("descriptor")}
    pairer = StreamingPairer(mode, n_shimadzu=41)
    positions = {"phantom": 0, "shimadzu": 0}
    for e in log.of("event"):
        name = streams[e["descriptor"]]
        data, pos = e["data"], positions[name]
        positions[name] += 1
        if name == "phantom":
            pairer.add_phantom(pos, data["phantom_frame_number"], data["phantom_time_ns"], True)
        else:
            pairer.add_shimadzu(pos, data["shimadzu_time_ns"])
    pairer.finish()
    table = pairing_table(seq.phantom_timing(), seq.shimadzu_timing(), mode)
    assert pairer.windows == table.windows and len(table) >= 1


def test_in_memory_source_needs_a_data_dir(RE, hr_stack):
    with pytest.raises(ValueError, match="needs data_dir"):
        virtual_cameras(hr_stack)


def test_bad_source_fails_before_any_document(RE, collector, tmp_path):
    log = collector()
    RE.subscribe(log)
    with pytest.raises(ConfigError, match="sequence folder not found"):
        virtual_cameras(tmp_path / "missing")
    assert log.docs == []


def test_cameras_take_the_option_fields_as_keywords(RE, collector, hr_stack, tmp_path):
    _, log = _run(
        RE,
        collector,
        virtual_experiment(
            *virtual_cameras(hr_stack, phantom_every=10, photons=[1.0, 2.0], seed=3, inline=True)
        ),
    )
    (start,) = log.of("start")
    assert start["phantom_every"] == 10 and start["virtual"]["photons"] == [1.0, 2.0]
    assert start["virtual"]["seed"] == 3
    with pytest.raises(ConfigError, match="VirtualOptions: downsample"):
        virtual_cameras(hr_stack, downsample="nearest", inline=True)


def test_camera_options_must_agree_with_a_given_sequence(RE, collector, hr_stack):
    from xfusion_stream.devices import VirtualOptions

    seq = VirtualSequence(hr_stack, VirtualOptions(phantom_every=10))
    _, log = _run(
        RE, collector, virtual_experiment(*virtual_cameras(seq, phantom_every=10, inline=True))
    )
    assert log.of("start")[0]["phantom_every"] == 10
    with pytest.raises(ConfigError, match="phantom_every=5 differs"):
        virtual_cameras(seq, phantom_every=5, inline=True)


def test_the_plan_takes_the_cameras_of_one_sequence(RE, collector, hr_stack, tmp_path):
    log = collector()
    RE.subscribe(log)
    beam = SimBeam(SceneConfig(seed=1, shimadzu_shape=(16, 24), n_shimadzu=8))
    sim = PhantomTMX7510(name="phantom", backend=SimPhantomBackend(beam), inline=True)
    with pytest.raises(ValueError, match="cameras of a virtual sequence"):
        RE(virtual_experiment(sim, virtual_cameras(hr_stack, inline=True)[1]))
    phantom, _ = virtual_cameras(hr_stack, inline=True)
    _, shimadzu = virtual_cameras(hr_stack, inline=True)
    with pytest.raises(ValueError, match="different sequences"):
        RE(virtual_experiment(phantom, shimadzu))
    assert log.docs == []
