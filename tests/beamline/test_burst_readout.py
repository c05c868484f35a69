"""The burst readout sends what bluesky's plan stubs would, without their per-call cost.

Each stub (``bps.abs_set``, ``create``, ``read``, ``save``) is a ``bluesky.utils.Plan``
that formats the caller's whole stack when made; four per frame were most of the
RunEngine thread's own CPU during a live readout (issue 15). The readout yields the
same messages itself.
"""

from __future__ import annotations

import traceback

from xfusion_plans import dual_camera_burst

from xfusion_stream.simulation import Scene
from xfusion_stream.testing import BEAMLINE_SCENE as SMALL


def test_each_frame_is_set_wait_create_read_save_and_no_stack_is_formatted(
    RE, doc_log, make_cameras, monkeypatch
):
    phantom, shimadzu, _ = make_cameras()
    devices = {"phantom": phantom, "shimadzu": shimadzu}
    messages: list = []
    RE.msg_hook = messages.append
    stacks: list[int] = []
    real = traceback.format_stack

    def counted(*args, **kwargs):
        stacks.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(traceback, "format_stack", counted)
    RE(dual_camera_burst(phantom, shimadzu))

    scene = Scene(SMALL)
    n_events = scene.n_phantom + scene.n_shimadzu
    commands = [m.command for m in messages]
    readout = messages[commands.index("open_run") + 1 : commands.index("close_run")]
    assert len(readout) == 5 * n_events
    read: dict[str, list[int]] = {"phantom": [], "shimadzu": []}
    groups = set()
    for k in range(n_events):
        set_, wait, create, reading, save = readout[5 * k : 5 * k + 5]
        stream = create.kwargs["name"]
        dev = devices[stream]
        (index,) = set_.args
        group = set_.kwargs["group"]
        assert (set_.command, set_.obj, set_.kwargs) == ("set", dev.readout_index, {"group": group})
        assert (wait.command, wait.obj, wait.args, wait.kwargs) == (
            "wait",
            None,
            (),
            {"group": group},
        )
        assert (create.command, create.obj, create.args) == ("create", None, ())
        assert (reading.command, reading.obj, reading.args, reading.kwargs) == ("read", dev, (), {})
        assert (save.command, save.obj, save.args, save.kwargs) == ("save", None, (), {})
        read[stream].append(index)
        groups.add(group)
    assert read == {
        "phantom": list(range(scene.n_phantom)),
        "shimadzu": list(range(scene.n_shimadzu)),
    }
    assert len(groups) == 1  # waited on at once, so one group serves the whole readout
    # the stubs around the readout (stage, trigger, rd, run) still format theirs (25
    # here, whatever the burst's length); with the stubs per frame it was 4 more a frame
    assert len(stacks) < n_events
    assert len(doc_log.of("event")) == n_events
