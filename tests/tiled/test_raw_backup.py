"""Raw runs Tiled refuses are backed up whole by the TiledWriter and written later by
``xfusion spool`` (issue 14 item 3: TiledWriter's backup directory, re-ingest command)."""

from __future__ import annotations

import json

import numpy as np
from xfusion_plans import dual_camera_burst

from xfusion_stream.cli import main
from xfusion_stream.publishing import EmbeddedTiled, make_tiled_writer, reingest_tiled_backups
from xfusion_stream.testing import FUSION_SCENE, sim_cameras


def test_a_refused_raw_run_is_backed_up_and_reingested(tiled_server, RE, tmp_path, capsys):
    spool = tmp_path / "spool"
    gone = EmbeddedTiled(tmp_path / "gone")
    writer = make_tiled_writer(gone.client(), backup_directory=spool)
    gone.close()  # Tiled goes away before the run
    RE.subscribe(writer)
    phantom, shimadzu, _ = sim_cameras(FUSION_SCENE, tmp_path / "raw")
    (uid,) = RE(dual_camera_burst(phantom, shimadzu), sample="backup test")
    (backup,) = spool.glob("*.jsonl")
    text = backup.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["name"] == "start" and lines[0]["doc"]["uid"] == uid
    assert lines[-1]["name"] == "stop"

    assert (
        main(["spool", "--spool-dir", str(spool), "--tiled-uri", tiled_server.uri, "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["backup_runs_reingested"] == [uid] and out["backup_documents"] == len(lines)
    assert not list(spool.glob("*.jsonl")) and list(spool.glob("*.jsonl.ingested"))

    run = tiled_server.client()[uid]
    assert run.metadata["start"]["sample"] == "backup test" and run.metadata["stop"]
    streams = list(run)
    assert {"phantom", "shimadzu"} <= set(streams), streams
    (image_key,) = [k for k in run["shimadzu"] if k.endswith("image")]
    frames = run["shimadzu"][image_key].read()  # from the camera's HDF5 file, via Tiled
    assert frames.shape[0] == FUSION_SCENE.n_shimadzu and np.ptp(frames) > 0

    # a second pass finds nothing to do; a damaged or cut-off backup is named, not written
    (spool / "cut.jsonl").write_text(text.splitlines()[0] + "\n")
    (spool / "bad.jsonl").write_text("{not json\n")
    (spool / "deep.jsonl").write_text("[" * 200_000 + "]" * 200_000 + "\n")  # was a traceback
    report = reingest_tiled_backups(spool, tiled_server.client())
    assert report.runs == [] and set(report.left) == {"cut.jsonl", "bad.jsonl", "deep.jsonl"}
    assert "line 1: nested too deeply" in report.left["deep.jsonl"]
    assert (
        "line 1" in report.left["bad.jsonl"] and "no start or no stop" in report.left["cut.jsonl"]
    )
