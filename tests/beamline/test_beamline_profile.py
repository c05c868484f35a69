"""Profiles: validation errors name file and field; build_beamline makes it all real."""

from __future__ import annotations

import runpy
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.core import ConfigError
from xfusion_stream.fusion import FusionConfig
from xfusion_stream.profile import available_profiles, build_beamline, load_profile
from xfusion_stream.publishing import (
    RAW_PREFIX,
    EmbeddedTiled,
    ProxyThread,
    dispatch_in_thread,
    make_remote_dispatcher,
    stop_dispatcher,
)
from xfusion_stream.simulation import SceneConfig

SMALL_PROFILE = """
name: test-sim
devices:
  phantom: {backend: sim, prefix: "XF:T:PH:"}
  shimadzu: {backend: sim, prefix: "XF:T:HPV:"}
  sim: {seed: 5, shimadzu_shape: [16, 24], n_shimadzu: 24}
data_dir: DATA
tiled: {uri: embedded, batch_size: 8}
"""


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("DATA", str(tmp_path / "data")))
    return path


def test_shipped_profiles_load():
    assert {"sim", "sim-full", "epics_example"} <= set(available_profiles())
    sim = load_profile("sim")
    assert sim.devices.phantom.backend == "sim" and sim.tiled.uri == "embedded"
    assert sim.zmq is not None and sim.zmq.raw_in.startswith("tcp://127.0.0.1:")
    assert sim.fusion.traverse_mode == "continuous"
    assert load_profile("epics_example").devices.shimadzu.prefix == "32ID:HPVX2:"


def test_sim_is_the_small_profile_and_sim_full_the_real_sensor():
    """``sim`` runs the README snippet in about a minute on 2 CPU cores (issue 12);
    ``sim-full`` is the HPV-X2's 400x250 px sensor and says how long it takes."""
    sim, full = load_profile("sim"), load_profile("sim-full")
    rows, cols = sim.devices.sim.shimadzu_shape
    assert rows * cols <= 100 * 160 and sim.devices.sim.n_shimadzu <= 64
    assert full.devices.sim.shimadzu_shape == (250, 400) and full.devices.sim.n_shimadzu == 128
    assert full.name == "sim-full" and full.source is not None
    assert "minutes" in full.source.read_text().split("name:")[0]  # the header's time
    # one proxy carries both: fused documents go to the proxy's IN side by default
    for profile in (sim, full):
        assert profile.zmq is not None and profile.zmq.fused_address == profile.zmq.raw_in
    assert {k: v for k, v in sim if k not in ("name", "description", "devices", "source")} == {
        k: v for k, v in full if k not in ("name", "description", "devices", "source")
    }


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\nfusion: {traverse_mode: sideways}\n", "fusion.traverse_mode"),
        ("name: x\ntraverse: continuous\n", "traverse: Extra inputs"),
        ("name: x\ndevices: {sim: {phantom_jitter_ns: 40}}\n", "devices.sim.phantom_jitter_ns"),
        ("name: x\ndevices: {sim: {grid_frames: 1}}\n", "devices.sim.grid_frames"),
        ("name: x\ndevices: {phantom: {backend: tango}}\n", "devices.phantom.backend"),
        ("name: x\ndevices: {sim: {shimadzu_shape: [2, 24]}}\n", "devices.sim.shimadzu_shape"),
        ("name: x\nzmq: {fused: 'udp://1.2.3.4'}\n", "zmq.fused"),
        ("name: x\ntiled: {uri: 'ftp://x'}\n", "tiled.uri"),
        ("name: x\ntiled: {bach_size: 3}\n", "tiled.bach_size"),
        ("devices: {}\n", "name"),
        ("- just\n- a list\n", "(top level)"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_profiles_name_file_and_field(tmp_path, text, field):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_sim_block_is_the_scene_config_plus_grid_frames(tmp_path):
    text = SMALL_PROFILE.replace(
        "n_shimadzu: 24}", "n_shimadzu: 24, shimadzu_photons: null, grid_frames: 12}"
    )
    sim = load_profile(_write(tmp_path, text)).devices.sim
    scene = sim.scene_config()
    assert type(scene) is SceneConfig and sim.grid_frames == 12
    assert scene == SceneConfig(
        seed=5, shimadzu_shape=(16, 24), n_shimadzu=24, shimadzu_photons=None
    )


def test_fusion_block_is_the_fusion_config(tmp_path):
    text = SMALL_PROFILE + "fusion: {traverse_mode: double, queue_size: 4, when_full: skip}\n"
    fusion = load_profile(_write(tmp_path, text)).fusion
    assert fusion == FusionConfig(traverse_mode="double", queue_size=4, when_full="skip")


def test_zmq_block_publishes_the_raw_documents(tmp_path):
    received: list[tuple[str, dict]] = []
    with ProxyThread() as proxy:
        text = SMALL_PROFILE + f"zmq: {{raw_in: '{proxy.in_address}'}}\n"
        dispatcher = make_remote_dispatcher(proxy.out_address, prefix=RAW_PREFIX)
        thread = dispatch_in_thread(dispatcher, lambda name, doc: received.append((name, doc)))
        try:
            with build_beamline(load_profile(_write(tmp_path, text))) as bl:
                publisher = bl.raw_publisher
                time.sleep(0.5)  # slow joiner: let both ends reach the proxy
                (uid,) = bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
                deadline = time.monotonic() + 30
                while ("stop" not in [n for n, _ in received]) and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert publisher._context.closed  # Beamline.close closed it
        finally:
            stop_dispatcher(dispatcher, thread)
    names = [name for name, _ in received]
    assert names[0] == "start" and names[-1] == "stop" and "descriptor" in names
    assert received[0][1]["uid"] == uid and received[0][1]["beamline_profile"] == "test-sim"


def test_unknown_profile_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="sim"):
        load_profile("no-such-profile")


def test_recorded_backend_needs_a_case(tmp_path):
    path = _write(tmp_path, "name: r\ndevices: {phantom: {backend: recorded}}\ndata_dir: DATA\n")
    with pytest.raises(ConfigError, match="devices.recorded_case"):
        build_beamline(load_profile(path))


def test_epics_profile_checks_its_cameras_at_load(tmp_path):
    profile = load_profile("epics_example")  # shipped, runnable against `xfusion ioc`
    assert profile.devices.epics and profile.devices.phantom.prefix == "32ID:PHANTOM1:"
    assert profile.fusion_config().cameras == profile.devices.camera_recognition()
    bad = {
        "phantom: {backend: epics, prefix: 'A:'}": "both cameras or neither",
        "phantom: {keys: {image: frames}}": "only for backend epics",
        "phantom: {backend: epics, keys: {imag: x}}, shimadzu: {backend: epics}": (
            "devices.phantom.keys.imag"
        ),
        "phantom: {backend: epics, name: cam}, shimadzu: {backend: epics, name: cam}": (
            "both named"
        ),
        "phantom: {backend: epics, keys: {models: [Shimadzu HPV-X2]}}, "
        "shimadzu: {backend: epics}": "claimed by both",
    }
    for devices, message in bad.items():
        path = _write(tmp_path, f"name: e\ndevices: {{{devices}}}\ndata_dir: DATA\n")
        with pytest.raises(ConfigError, match=message):
            load_profile(path)
    # a prefix is checked before any Channel Access traffic
    path = _write(tmp_path, "name: e\ndevices: {phantom: {backend: epics}, "
                  "shimadzu: {backend: epics, prefix: 'B:'}}\ndata_dir: DATA\n")  # fmt: skip
    with pytest.raises(ConfigError, match="devices.phantom.prefix"):
        build_beamline(load_profile(path), data_dir=tmp_path)


def test_build_beamline_runs_a_burst_into_its_own_tiled(tmp_path):
    threads_before = set(threading.enumerate())
    with build_beamline(load_profile(_write(tmp_path, SMALL_PROFILE))) as bl:
        assert bl.phantom.prefix == "XF:T:PH:" and bl.raw_dir == tmp_path / "data" / "raw"
        assert bl.raw_publisher is None  # no zmq: block, no 0MQ
        (uid,) = bl.RE(dual_camera_burst(bl.phantom, bl.shimadzu))
        run = bl.tiled_client[uid]
        assert run.metadata["start"]["beamline_profile"] == "test-sim"
        sh = run["shimadzu"]["shimadzu_image"][:]
        assert sh.shape == (24, 16, 24)
        np.testing.assert_array_equal(sh[0], bl.sim_beam.scene.shimadzu_frame(0))
        server = bl.tiled_server
        assert server.uri.startswith("http://127.0.0.1:")
        assert (tmp_path / "data" / "tiled" / "catalog.db").is_file()
    # closing the beamline stopped the RunEngine loop and the embedded server
    assert bl.RE.loop.is_closed()
    started = [t for t in threading.enumerate() if t not in threads_before]
    assert not [t for t in started if t.name == "bluesky-run-engine"]  # its loop thread ended
    bl.close()  # idempotent
    server.close()
    new = [t for t in threading.enumerate() if t not in threads_before and not t.daemon]
    assert not [t for t in new if not t.name.startswith(("AnyIO", "ThreadPoolExecutor"))]
    with pytest.raises(RuntimeError, match="closed"):
        server.client()


def test_embedded_tiled_rejects_a_key_tiled_would_refuse(tmp_path):
    with pytest.raises(ConfigError, match="api_key"):
        EmbeddedTiled(tmp_path / "t", api_key="not-alnum!")


def test_embedded_tiled_refuses_a_second_key_in_one_process(tmp_path, tiled_server):
    # Tiled keeps one API key per process: a different key would lock out the open server
    with pytest.raises(ConfigError, match="another embedded Tiled"):
        EmbeddedTiled(tmp_path / "t", api_key="abc123")
    assert "phantom" not in tiled_server.client()  # the open server still answers


def test_startup_file_builds_the_session_against_a_remote_tiled(
    tmp_path, monkeypatch, tiled_server
):
    import torch

    import xfusion_models as xm

    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny"), checkpoint)
    text = (
        SMALL_PROFILE.replace(
            "uri: embedded", f"uri: {tiled_server.base_uri}/api/v1, api_key_env: XF_TEST_KEY"
        )
        + f"model: {checkpoint}\ncalibration: truth\n"
    )
    monkeypatch.setenv("XF_TEST_KEY", tiled_server.api_key)
    monkeypatch.setenv("XFUSION_PROFILE", str(_write(tmp_path, text)))
    import xfusion_profiles

    startup = Path(xfusion_profiles.__file__).with_name("startup_sim.py")
    namespace = runpy.run_path(str(startup))
    try:
        bl = namespace["beamline"]
        assert bl.tiled_server is None and namespace["RE"] is bl.RE
        (uid,) = namespace["RE"](namespace["dual_camera_burst"](bl.phantom, bl.shimadzu))
        assert set(namespace["tiled"][uid]) == {"phantom", "shimadzu"}
        fused_uid = namespace["fusion"].wait(120)  # live fusion attached from the profile
        fused = namespace["tiled"][fused_uid]
        assert fused.metadata["start"]["raw_uid"] == uid
        assert fused.metadata["stop"]["exit_status"] == "success"
        assert fused["fused"]["fused_image"].shape[0] > 0
    finally:
        namespace["beamline"].close()
