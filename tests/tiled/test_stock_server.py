"""Issue 14 item 3: replay against a stock facility Tiled server (``tiled serve config``).

The server is the shipped ``profiles/tiled/config.yml`` started as a subprocess, with
its folders and API key given through the environment variables the file names. Of
ours it imports only the catalog wrapper the file names (``xfusion_profiles.tiled_server``,
Tiled + SQLAlchemy); the json-seq exporter comes from its ``media_types``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from xfusion_plans import dual_camera_burst

from xfusion_stream.calibration import CalibrationRecord
from xfusion_stream.cli import main
from xfusion_stream.fusion import FusionModel
from xfusion_stream.publishing import make_tiled_writer
from xfusion_stream.simulation import Scene
from xfusion_stream.testing import FUSION_SCENE, sim_cameras, write_runs_at_once
from xfusion_stream.testing import stock_tiled as start_stock_tiled

XFUSION = str(Path(sys.executable).parent / "xfusion")


@pytest.fixture(scope="module")  # one server for the module: starting one takes ~10 s
def stock_tiled(tmp_path_factory):
    """``tiled serve config`` on loopback; yields (base URL, API key, camera folder,
    fused-frames folder)."""
    with start_stock_tiled(tmp_path_factory.mktemp("stock-tiled")) as server:
        yield server.base, server.api_key, server.cameras, server.fused


@pytest.fixture
def tiny_model(monkeypatch) -> FusionModel:
    import xfusion_models as xm
    import xfusion_stream.fusion as fusion

    torch.manual_seed(0)
    tiny = FusionModel(
        net=xm.edvr_stf("tiny").eval(),
        name="tiny",
        arch="edvr_stf",
        sha256="0" * 64,
        device=torch.device("cpu"),
    )
    monkeypatch.setattr(fusion, "load_fusion_model", lambda *a, **kw: tiny)
    return tiny


@pytest.mark.timeout(300)
def test_replay_against_a_stock_tiled_serve_config(stock_tiled, tiny_model, RE, tmp_path, capsys):
    from tiled.client import from_uri

    base, key, cameras, fused_dir = stock_tiled
    with pytest.raises(Exception, match="requires API key"):  # even to read
        from_uri(base, api_key=None, remember_me=False)
    raw_uri = f"{base}/api/v1/metadata/raw?api_key={key}"
    derived_uri = f"{base}/api/v1/metadata/derived?api_key={key}"
    raw_node, derived = from_uri(raw_uri), from_uri(derived_uri)
    try:
        RE.subscribe(make_tiled_writer(raw_node))
        phantom, shimadzu, _ = sim_cameras(FUSION_SCENE, cameras)  # HDF5 in readable storage
        (uid,) = RE(dual_camera_burst(phantom, shimadzu), data_session="pass-42")
        scene = Scene(FUSION_SCENE)
        record = CalibrationRecord.from_transform(
            scene.transform, scene.shimadzu_shape, scene.phantom_shape
        ).save(tmp_path / "cal.json")
        args = ["replay", "--tiled-uri", raw_uri, "--derived-uri", derived_uri, "--uid", uid]
        args += ["--calibration", str(record), "--timeout", "120", "--json"]
        args += ["--fused-data-dir", str(fused_dir)]
        assert main(args) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["ok"] is True and out["frames_fused"] > 0 and out["raw_uid"] == uid
        assert out["fused_uid"] not in raw_node  # the raw catalog holds raw runs only
        fused = derived[out["fused_uid"]]
        start = fused.metadata["start"]
        assert start["raw_uid"] == uid and start["analysis_stage"] == "fused"
        assert start["data_session"] == "pass-42"  # copied from the raw start
        hints = fused["fused"].metadata["hints"]  # what BestEffortCallback and viewers show
        assert hints == {"xfusion": {"fields": ["fused_image", "shimadzu_residual_rms"]}}
        # the frames are stored as the cameras store theirs: HDF5 the server reads
        images = fused["fused"]["fused_image"].read()
        assert images.shape[0] == out["frames_fused"] and images.dtype == "float32"
        assert np.isfinite(images).all() and images.std() > 0
        (h5,) = fused_dir.glob("fused_*.h5")
        assert h5.name == f"fused_{out['fused_uid']}.h5"
    finally:
        raw_node.context.close()
        derived.context.close()


@pytest.mark.timeout(300)
def test_clients_from_a_tiled_profile(stock_tiled, tmp_path):
    """A facility hands out Tiled client profiles; ``profile:NAME`` works wherever a
    Tiled URI does (here the replay command, in a process of its own, as users run it)."""
    base, key, _, _ = stock_tiled
    profiles = tmp_path / "tiled-profiles"
    profiles.mkdir()
    (profiles / "facility.yml").write_text(
        f"facility-raw:\n  uri: {base}/api/v1/metadata/raw\n"
    )  # the key stays out of the file: Tiled's client takes $TILED_API_KEY
    env = dict(os.environ, TILED_PROFILES=str(profiles), TILED_API_KEY=key)
    ok = subprocess.run(
        [XFUSION, "replay", "--tiled-uri",
         "profile:facility-raw", "--uid", "no-such-run", "--calibration", "x.json"],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    # it connected through the profile and got as far as the missing calibration file
    assert ok.returncode == 2, ok.stderr
    assert "x.json" in ok.stderr and "profile" not in ok.stderr.lower()
    missing = subprocess.run(
        [XFUSION, "replay", "--tiled-uri",
         "profile:nobody", "--uid", "u", "--calibration", "x.json"],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert missing.returncode == 2 and "profile:nobody" in missing.stderr


@pytest.mark.timeout(300)
def test_runs_written_at_once_into_the_facility_server_keep_each_row_once(stock_tiled):
    """The shipped config serves its DuckDB table stores one request thread at a time
    (``xfusion_profiles.tiled_server:catalog``); as stock Tiled makes them, request
    threads share one connection and runs written at once lost or doubled rows
    (``tests/tiled/test_concurrent_writes.py``)."""
    from tiled.client import from_uri

    base, key, _, _ = stock_tiled
    derived = f"{base}/api/v1/metadata/derived?api_key={key}"
    out = write_runs_at_once(derived, writers=4, runs=3, rows=8, batch_size=2)
    assert out.errors == []
    assert len(out.uids) == 12
    client = from_uri(derived)
    try:
        assert out.wrong_runs(client) == {}
    finally:
        client.context.close()
