"""Longest RunEngine event-loop stall during fly-scanned bursts over Channel Access.

Why: ophyd-async detectors and the RunEngine share one asyncio loop; anything that
blocks it (a camera call, a document callback such as the raw TiledWriter) delays every
CA monitor and status. A probe coroutine on that loop sleeps ``--period-ms`` over and
over and records how late it wakes; the worst lateness during the bursts is the stall.
Starts the soft camera IOCs (``xfusion ioc``) on loopback, builds the beamline from a
``backend: epics`` profile on their prefixes (raw runs into an embedded Tiled, as a
beamline runs) and acquires ``--bursts`` bursts of ``fly_dual_camera_burst``; then
detaches the raw TiledWriter and acquires them again, so the writer's share shows
(``without_raw_writer``: bluesky calls document callbacks on the loop's thread).

One command, JSON on stdout (``max_stall_ms`` beside ``target_ms``, not asserted),
progress on stderr: ``python benchmarks/bench_event_loop.py`` or
``xfusion bench event_loop``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 50.0


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=3, help="bursts to acquire")
    parser.add_argument("--frames", type=int, default=128, help="Shimadzu frames per burst")
    parser.add_argument(
        "--shimadzu-shape", type=int, nargs=2, default=(250, 400), metavar=("ROWS", "COLS")
    )
    parser.add_argument("--period-ms", type=float, default=5.0, help="probe sleep")
    parser.add_argument(
        "--tiled",
        choices=("process", "embedded"),
        default="process",
        help="process: a stock `tiled serve config` of its own, as at a facility; "
        "embedded: the server in this process (the demo's), whose request handling "
        "shares the interpreter lock with the RunEngine's loop",
    )
    return parser.parse_args(argv)


class LoopProbe:
    """Sleeps ``period`` on a loop again and again; records how late each wake-up is."""

    def __init__(self, period_s: float) -> None:
        self.period = period_s
        self.late: list[float] = []
        self.woke: list[float] = []  # loop time of each wake-up
        self._running = True

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._running:
            start = loop.time()
            await asyncio.sleep(self.period)
            self.late.append(max(0.0, loop.time() - start - self.period))
            self.woke.append(loop.time())

    def stop(self) -> None:
        self._running = False


def _profile(folder: Path, iocs, tiled_uri: str) -> Path:
    cams = "".join(
        f"  {cam}: {{backend: epics, prefix: '{iocs.prefixes[cam]}', "
        f"file_dir: '{iocs.data_dir}'}}\n"
        for cam in ("phantom", "shimadzu")
    )
    path = folder / "bench-epics.yaml"
    path.write_text(
        f"name: bench-event-loop\ndevices:\n{cams}data_dir: {folder / 'data'}\n"
        f"tiled: {{uri: '{tiled_uri}'}}\n"
    )
    return path


def _bursts(bl, n: int, period_s: float, what: str) -> dict:
    from xfusion_plans import fly_dual_camera_burst

    probe = LoopProbe(period_s)
    phases = RunPhases(bl.RE.loop)
    token = bl.RE.subscribe(phases)
    task = asyncio.run_coroutine_threadsafe(probe.run(), bl.RE.loop)
    seconds = []
    try:
        for i in range(n):
            start = time.perf_counter()
            bl.RE(fly_dual_camera_burst(bl.phantom, bl.shimadzu))
            seconds.append(round(time.perf_counter() - start, 3))
            print(
                f"bench_event_loop: burst {i + 1}/{n} ({what}) in {seconds[-1]:.2f} s",
                file=sys.stderr,
            )
    finally:
        probe.stop()
        task.result(10)
        bl.RE.unsubscribe(token)
    late_ms = sorted(x * 1e3 for x in probe.late)
    return {
        "burst_s": seconds,
        "probes": len(late_ms),
        "max_stall_ms": round(late_ms[-1], 2) if late_ms else None,
        "p99_stall_ms": round(late_ms[int(0.99 * (len(late_ms) - 1))], 2) if late_ms else None,
        # acquiring: from the start document to the first StreamResource (the cameras are
        # armed, triggered and read out); recording: from there to the end of the stop
        "max_stall_acquiring_ms": phases.worst(probe, "acquiring"),
        "max_stall_recording_ms": phases.worst(probe, "recording"),
    }


class RunPhases:
    """Loop times of each run's start, first StreamResource and stop (subscribed to the
    RunEngine, so called on its loop), to tell a stall while acquiring from one while
    the documents are written at the end."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.runs: list[dict[str, float]] = []

    def __call__(self, name: str, doc: dict) -> None:
        now = self.loop.time()
        if name == "start":
            self.runs.append({"start": now})
        elif self.runs and name == "stream_resource":
            self.runs[-1].setdefault("recorded", now)
        elif self.runs and name == "stop":
            self.runs[-1]["stop"] = now

    def worst(self, probe: LoopProbe, phase: str) -> float | None:
        spans = []
        for run in self.runs:
            recorded = run.get("recorded", run.get("stop"))
            if phase == "acquiring" and recorded is not None:
                # a wake-up only bounds when its stall began to within one period: a
                # stall that began at the first StreamResource is the recording's
                spans.append((run["start"], recorded - 2 * probe.period))
            elif phase == "recording" and recorded is not None:
                # the stop is seen after the writers it follows: a stall ends just after it
                spans.append((recorded, run.get("stop", recorded) + 0.5))
        # a wake-up at w with lateness x covers the stall [w - x - period, w]
        hits = [
            late * 1e3
            for late, woke in zip(probe.late, probe.woke)
            if any(a <= woke and woke - late - probe.period <= b for a, b in spans)
        ]
        return round(max(hits), 2) if hits else None


def main(argv: list[str] | None = None) -> dict:
    from xfusion_stream.app import ca_loopback_env, soft_iocs
    from xfusion_stream.profile import build_beamline, load_profile
    from xfusion_stream.simulation import SceneConfig
    from xfusion_stream.testing import stock_tiled

    args = _args(argv)
    scene = SceneConfig(seed=0, n_shimadzu=args.frames, shimadzu_shape=tuple(args.shimadzu_shape))
    env = ca_loopback_env()
    os.environ.update(env)  # the CA client reads it once, at its first connection
    with tempfile.TemporaryDirectory(prefix="bench-event-loop-") as tmp:
        folder = Path(tmp)
        print("bench_event_loop: starting the soft IOCs", file=sys.stderr)
        with contextlib.ExitStack() as stack:
            iocs = stack.enter_context(
                soft_iocs(folder / "ioc-data", scene, env=env, exit_after=900)
            )
            uri = "embedded"
            if args.tiled == "process":
                print("bench_event_loop: starting tiled serve config", file=sys.stderr)
                server = stack.enter_context(stock_tiled(folder, cameras=iocs.data_dir))
                os.environ["TILED_API_KEY"] = server.api_key  # the profile's api_key_env
                uri = server.raw_uri
            profile = load_profile(_profile(folder, iocs, uri))
            with build_beamline(profile, progress=False) as bl:
                measured = _bursts(bl, args.bursts, args.period_ms / 1e3, "raw writer")
                bl.xfusion.close()  # the raw TiledWriter's subscription
                bare = _bursts(bl, args.bursts, args.period_ms / 1e3, "no raw writer")
    return {
        "benchmark": "event_loop",
        "what": "longest lateness of a coroutine sleeping on the RunEngine's event loop "
        "during fly-scanned bursts over Channel Access (raw TiledWriter subscribed)",
        "bursts": args.bursts,
        "shimadzu_frames": args.frames,
        "shimadzu_shape": list(args.shimadzu_shape),
        "phantom_shape": [4 * v for v in args.shimadzu_shape],
        "probe_period_ms": args.period_ms,
        "tiled": args.tiled,
        **measured,
        "without_raw_writer": bare,
        "target_ms": TARGET_MS,
        "within_target": measured["max_stall_ms"] is not None
        and measured["max_stall_ms"] < TARGET_MS,
        "within_target_acquiring": measured["max_stall_acquiring_ms"] is not None
        and measured["max_stall_acquiring_ms"] < TARGET_MS,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
