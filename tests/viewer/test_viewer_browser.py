"""Issue 14 item 5: ``xfusion view`` in a real headless browser during a live run.

A simulated burst is acquired through a RunEngine and fused live on the tiny model by a
session that stores its frames as HDF5 and publishes the viewer's fields through a real
``bluesky-0MQ-proxy``;
``xfusion view --zmq`` (its own process) subscribes there. Headless Chromium, from the
distribution's packages, driven by Selenium, loads the page once the raw run has
started: the frame counter grows between two reads, the three panels hold decoded
images, and the screenshot's panel regions are not blank.

The fused stream is paced (and held once, after a few frames, until the page has been
read) so the run is still going when the page is checked, on any machine speed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from xfusion_plans import dual_camera_burst

from xfusion_stream.app import FusionSession, viewer_schema
from xfusion_stream.calibration import load_record
from xfusion_stream.fusion import FusionConfig, load_fusion_model
from xfusion_stream.publishing import FUSED_PREFIX, make_publisher

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMEDRIVER).exists(),
    reason="chromedriver is not installed (.ci/run installs chromium and chromium-driver)",
)
CLI = [sys.executable, "-c", "import sys; from xfusion_stream.cli import main; sys.exit(main())"]
PANELS = ("panel-fused", "panel-shimadzu", "panel-phantom")
HOLD_AT = 6  # fused events published before the stream waits for the page's first read


def _start_viewer(
    out_address: str, tmp_path: Path, env: dict, data_root: Path
) -> tuple[subprocess.Popen, str]:
    ready = tmp_path / "view.ready"
    host_port = out_address.removeprefix("tcp://")
    cmd = [*CLI, "view", "--zmq", host_port, "--port", "0", "--ready-file", str(ready), "--json"]
    cmd += ["--data-root", str(data_root)]  # the fused frames' HDF5 files
    log = (tmp_path / "view.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"xfusion view did not start: {(tmp_path / 'view.log').read_text()}")
        time.sleep(0.05)
    time.sleep(0.5)  # slow joiner: let the subscription reach the proxy
    return proc, ready.read_text().strip()


def _browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


class PacedStream:
    """The fused-run sink: publishes to the proxy, an event every ``pause`` s, and holds
    once after ``HOLD_AT`` events until ``release`` (bounded)."""

    def __init__(self, publisher, pause: float = 0.15) -> None:
        self.publisher = publisher
        self.pause = pause
        self.release = threading.Event()
        self.events = 0

    def __call__(self, name: str, doc: dict) -> None:
        if name == "event":
            self.events += 1
            if self.events == HOLD_AT:
                self.release.wait(120)
            time.sleep(self.pause)
        self.publisher(name, doc)


def _count(driver) -> int:
    return int(driver.find_element("id", "frame-count").text or 0)


def _check_page(driver, url: str, stream: PacedStream, run_started, seen: dict, shot: Path):
    """The browser's side, on a thread of its own while the RunEngine acquires."""
    from selenium.webdriver.support.ui import WebDriverWait

    assert run_started.wait(120), "the raw run never started"
    driver.get(url)
    wait = WebDriverWait(driver, 120, poll_frequency=0.2)
    wait.until(lambda d: _count(d) >= HOLD_AT - 1)
    seen["first"] = _count(driver)
    seen["status_first"] = driver.find_element("id", "run-status").text
    stream.release.set()
    wait.until(lambda d: _count(d) > seen["first"] + 2)
    seen["second"] = _count(driver)
    seen["status_second"] = driver.find_element("id", "run-status").text
    wait.until(
        lambda d: all(
            d.execute_script("const i = arguments[0]; return i.complete && i.naturalWidth;", e)
            for e in (d.find_element("id", p) for p in PANELS)
        )
    )
    seen["natural_widths"] = [
        driver.execute_script("return arguments[0].naturalWidth;", driver.find_element("id", p))
        for p in PANELS
    ]
    seen["captions"] = driver.execute_script(  # one snapshot: the page cannot change between
        "return ['shown-frame', 'cap-fused', 'cap-shimadzu', 'cap-phantom']"
        ".map((id) => document.getElementById(id).textContent);"
    )
    seen["plots"] = [e.text for e in driver.find_elements("css selector", ".plot h2")]
    seen["rects"] = [driver.find_element("id", p).rect for p in PANELS]
    seen["ratio"] = driver.execute_script("return window.devicePixelRatio;")
    driver.save_screenshot(str(shot))


def test_viewer_page_follows_a_live_run_in_headless_chromium(
    RE, proxy, make_cameras, tiny_checkpoint, calibration_file, expected_windows, child_env,
    one_torch_thread, tmp_path,
):  # fmt: skip
    in_address, out_address = proxy
    record = load_record(calibration_file)
    fused_dir = tmp_path / "fused"
    viewer, url = _start_viewer(out_address, tmp_path, child_env, fused_dir)
    publisher = make_publisher(in_address, FUSED_PREFIX)
    stream = PacedStream(publisher)
    # frames stored as HDF5 (the facility way): the viewer reads them from the files
    config = FusionConfig(fused_data_dir=str(fused_dir), viewer_inputs=True)
    session = FusionSession(load_fusion_model(tiny_checkpoint), record, [stream], config)
    assert session.schema.names == viewer_schema(record.ratio).names
    run_started = threading.Event()
    RE.subscribe(lambda name, doc: run_started.set(), "start")
    seen: dict = {}
    errors: list[BaseException] = []
    shot = tmp_path / "viewer.png"
    driver = _browser(tmp_path)

    def browse() -> None:
        try:
            _check_page(driver, url, stream, run_started, seen, shot)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            errors.append(exc)
        finally:
            stream.release.set()

    browser = threading.Thread(target=browse, name="viewer-test-browser", daemon=True)
    t0 = time.monotonic()
    try:
        browser.start()
        session.subscribe(RE)
        phantom, shimadzu, _ = make_cameras()
        RE(dual_camera_burst(phantom, shimadzu))
        result = session.wait(180)
        browser.join(180)
        assert not errors, errors[0]
        final = _wait_final_count(driver, expected_windows)
    finally:
        session.unsubscribe()
        session.close()
        driver.quit()
        publisher.close()
        viewer.terminate()
        viewer.wait(30)
    seconds = time.monotonic() - t0

    assert result is not None and result.frames == expected_windows
    # the page was read while the run went on, and its counter grew
    assert seen["status_first"] == "running" and seen["first"] < expected_windows
    assert seen["second"] > seen["first"]
    assert final == expected_windows
    # the three panels hold decoded images, with what each shows in its caption
    assert all(w > 0 for w in seen["natural_widths"]), seen["natural_widths"]
    shown, fused, shimadzu, phantom = seen["captions"]
    assert fused.endswith(f"(window {int(shown) - 1})")  # frame N is window N-1: no gaps
    assert shimadzu.startswith("registered Shimadzu") and phantom.startswith("nearest Phantom")
    assert any(title.startswith("fidelity") for title in seen["plots"]), seen["plots"]
    _assert_panels_drawn(shot, seen["rects"], seen["ratio"])
    shutil.copyfile(shot, "/tmp/viewer_screenshot.png")
    assert viewer.returncode == 0, (tmp_path / "view.log").read_text()[-2000:]
    print(f"viewer test: {seconds:.1f} s, counter {seen['first']} -> {seen['second']} -> {final}")


def _wait_final_count(driver, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while _count(driver) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return _count(driver)


def _assert_panels_drawn(shot: Path, rects: list[dict], ratio: float) -> None:
    """Each panel's region of the screenshot has an image in it, not a flat fill."""
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    for name, r in zip(PANELS, rects, strict=True):
        x0, y0 = int(r["x"] * ratio), int(r["y"] * ratio)
        x1, y1 = int((r["x"] + r["width"]) * ratio), int((r["y"] + r["height"]) * ratio)
        region = pixels[y0:y1, x0:x1]
        assert region.size > 1000, f"{name}: off screen ({r})"
        assert float(region.std()) > 2.0, f"{name}: blank region in the screenshot"


def test_viewer_page_during_a_demo_run(tmp_path, child_env, tiny_checkpoint):
    """``xfusion demo --view 0``: the page is up before the burst is acquired, its
    counter grows to every fused frame, and its panels show images."""
    from selenium.webdriver.support.ui import WebDriverWait

    frames = 24
    cmd = [*CLI, "demo", "--out", str(tmp_path / "demo"), "--frames", str(frames)]
    cmd += ["--model_file", str(tiny_checkpoint)]  # the page, not the model, is under test
    cmd += ["--view", "0", "--view-linger", "120", "--no-listener", "--quiet", "--json"]
    err = (tmp_path / "demo.err").open("wb")
    demo = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=child_env)
    driver = _browser(tmp_path)
    try:
        url = _demo_url(tmp_path / "demo.err", demo)
        driver.get(url)
        counts = [_count(driver)]
        wait = WebDriverWait(driver, 300, poll_frequency=0.2)
        wait.until(lambda d: counts.append(_count(d)) or counts[-1] >= frames - 2)
        assert counts[0] < counts[-1], counts  # read during the run: it grew
        assert counts == sorted(counts), counts
        wait.until(
            lambda d: all(
                d.execute_script("const i = arguments[0]; return i.complete && i.naturalWidth;", e)
                for e in (d.find_element("id", p) for p in PANELS)
            )
        )
        rects = [driver.find_element("id", p).rect for p in PANELS]
        shot = tmp_path / "demo-viewer.png"
        driver.save_screenshot(str(shot))
        _assert_panels_drawn(shot, rects, driver.execute_script("return window.devicePixelRatio;"))
        shutil.copyfile(shot, "/tmp/viewer_demo_screenshot.png")
    finally:
        driver.quit()
        demo.send_signal(2)  # SIGINT ends the linger
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()
        err.close()


def _demo_url(stderr_file: Path, demo: subprocess.Popen, timeout: float = 180.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stderr_file.read_text(errors="replace").splitlines():
            if "live viewer at " in line:
                return line.split("live viewer at ", 1)[1].strip()
        if demo.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"the demo printed no viewer URL: {stderr_file.read_text()[-2000:]}")
