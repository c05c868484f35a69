"""README "Cameras": the profile, the Python and the ``xfusion ioc`` line it shows for
pointing a beamline at its camera PVs, run against the soft IOCs (their prefixes and
folder put in place of the README's)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

from xfusion_stream.cli import _ioc

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> dict[str, str]:
    text = README.read_text()
    section = text[text.index("### Cameras") :]
    section = section[: section.index("\n### ", 5)]
    return {kind: body for kind, body in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)}


@pytest.mark.timeout(180)
def test_readme_cameras_snippets(tmp_path, ioc, calibration, tiny_model, monkeypatch):
    blocks = _blocks()
    profile = yaml.safe_load(blocks["yaml"])
    # the `xfusion ioc` line serves the profile's prefixes and folder
    parser = argparse.ArgumentParser()
    _ioc.add_arguments(parser)
    args = parser.parse_args(shlex.split(blocks["sh"])[2:])
    devices = profile["devices"]
    assert (args.prefix_phantom, args.prefix_shimadzu) == (
        devices["phantom"]["prefix"], devices["shimadzu"]["prefix"]
    )  # fmt: skip
    assert {devices[c]["file_dir"] for c in ("phantom", "shimadzu")} == {args.data_dir}
    # the same profile on the session's soft IOCs, then the Python as written
    for cam in ("phantom", "shimadzu"):
        devices[cam].update(prefix=ioc["prefixes"][cam], file_dir=str(ioc["data_dir"]))
    (tmp_path / "epics.yaml").write_text(yaml.safe_dump(profile))
    calibration.save(tmp_path / profile["calibration"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("xfusion_stream.app._configure.load_fusion_model", lambda spec: tiny_model)
    namespace: dict = {}
    exec(compile(blocks["python"], "README-cameras", "exec"), namespace)
    fused = namespace["fused"]
    assert fused.metadata["start"]["raw_uid"] == namespace["uid"]
    assert fused.metadata["stop"]["exit_status"] == "success"
    assert namespace["bl"].RE.loop.is_closed()  # bl.close() let go of everything
