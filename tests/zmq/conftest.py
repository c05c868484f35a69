"""0MQ room fixtures: a real ``bluesky-0MQ-proxy`` process, small cameras, a tiny model.

The scene is small (Shimadzu 32x48, 64 frames) so a whole burst fuses in seconds on
two CPU cores; every child process gets one torch thread so the parent keeps its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xfusion_stream.simulation import Scene, SceneConfig
from xfusion_stream.testing import expected_table, sim_cameras

ZMQ_SCENE = SceneConfig(seed=3, shimadzu_shape=(32, 48), n_shimadzu=64)
CHILD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def proxy(tmp_path):
    """``bluesky-0MQ-proxy`` as a child process: yields (in_address, out_address)."""
    exe = shutil.which("bluesky-0MQ-proxy") or str(
        Path(sys.executable).parent / "bluesky-0MQ-proxy"
    )
    p_in, p_out = _free_port(), _free_port()
    log = open(tmp_path / "proxy.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            exe,
            "--in-address",
            f"tcp://127.0.0.1:{p_in}",
            "--out-address",
            f"tcp://127.0.0.1:{p_out}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (_accepts(p_in) and _accepts(p_out)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"proxy did not come up: {(tmp_path / 'proxy.log').read_text()}")
            time.sleep(0.1)
        yield f"tcp://127.0.0.1:{p_in}", f"tcp://127.0.0.1:{p_out}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture(scope="session")
def zmq_scene() -> SceneConfig:
    return ZMQ_SCENE


@pytest.fixture
def one_torch_thread():
    """In-process inference on one thread (restored after): two cores, several processes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def child_env():
    return {**os.environ, **CHILD_ENV}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of the tiny EDVR-STF preset (random weights: counts, not quality)."""
    import torch

    import xfusion_models as xm

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "edvr_stf_tiny.pth"
    xm.save_checkpoint(xm.edvr_stf("tiny"), path)
    return path


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory) -> Path:
    from xfusion_stream.calibration import CalibrationRecord
    from xfusion_stream.simulation import Scene

    scene = Scene(ZMQ_SCENE)
    record = CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )
    return record.save(tmp_path_factory.mktemp("calibration") / "record.json")


@pytest.fixture(scope="session")
def expected_windows() -> int:
    """Length of the continuous pairing table of ZMQ_SCENE, from the file-path pairer."""
    return len(expected_table(Scene(ZMQ_SCENE), "continuous").windows)


@pytest.fixture
def make_cameras(tmp_path):
    """Factory: (phantom, shimadzu, beam) over ZMQ_SCENE; HDF5 files under tmp_path."""

    def make(config: SceneConfig = ZMQ_SCENE, *, inline: bool = False):
        return sim_cameras(config, tmp_path / "raw", inline=inline)

    return make


# ---- issue 13: a small run recorded once, replayed with fresh uids by the wire tests ----
FUZZ_SCENE = SceneConfig(seed=5, shimadzu_shape=(24, 40), n_shimadzu=10)
UID_FIELDS = ("uid", "run_start", "descriptor", "stream_resource", "resource", "datum_id")


def record_run(config: SceneConfig, data_dir: Path | None) -> list[tuple[str, dict]]:
    """Every document of one ``dual_camera_burst`` (inline frames when ``data_dir`` is None)."""
    from xfusion_plans import dual_camera_burst

    from xfusion_stream.app import close_run_engine, new_run_engine

    engine = new_run_engine()
    docs: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: docs.append((name, doc)))
    try:
        phantom, shimadzu, _ = sim_cameras(config, data_dir, inline=data_dir is None)
        engine(dual_camera_burst(phantom, shimadzu))
    finally:
        close_run_engine(engine)
    return docs


def renamed(docs: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The same run under fresh uids (a second start of the same uid is refused)."""
    import uuid

    new = {d["uid"]: str(uuid.uuid4()) for _, d in docs if "uid" in d}
    return [
        (name, {k: new.get(v, v) if k in UID_FIELDS else v for k, v in doc.items()})
        for name, doc in docs
    ]


class CheckedSink:
    """A fused-run sink that validates every document and keeps what failed."""

    def __init__(self) -> None:
        self.docs: list[tuple[str, dict]] = []
        self.invalid: list[str] = []

    def __call__(self, name: str, doc: dict) -> None:
        from event_model import DocumentNames, schema_validators

        try:
            schema_validators[DocumentNames[name]].validate(doc)
        except Exception as exc:  # noqa: BLE001 - kept and asserted on
            self.invalid.append(f"{name}: {exc}")
        self.docs.append((name, doc))


@pytest.fixture(scope="session")
def fuzz_calibration():
    from xfusion_stream.calibration import CalibrationRecord

    scene = Scene(FUZZ_SCENE)
    return CalibrationRecord.from_transform(
        scene.transform, scene.shimadzu_shape, scene.phantom_shape
    )


@pytest.fixture(scope="session")
def fuzz_model():
    import torch

    import xfusion_models as xm
    from xfusion_stream.fusion import FusionModel

    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = xm.edvr_stf("tiny").eval()
    return FusionModel(
        net=net, name="tiny", arch="edvr_stf", sha256="0" * 64, device=torch.device("cpu")
    )


@pytest.fixture(scope="session")
def inline_run() -> list[tuple[str, dict]]:
    return record_run(FUZZ_SCENE, None)


@pytest.fixture(scope="session")
def file_run(tmp_path_factory) -> tuple[list[tuple[str, dict]], Path]:
    """A run whose frames are in HDF5 files under the returned folder."""
    raw = tmp_path_factory.mktemp("fuzz-raw")
    return record_run(FUZZ_SCENE, raw), raw


@pytest.fixture(scope="session")
def fresh_uids():
    """``renamed``: the same documents under fresh uids."""
    return renamed


@pytest.fixture(scope="session")
def make_checked_sink():
    """``CheckedSink``: a sink that validates every document it gets."""
    return CheckedSink
