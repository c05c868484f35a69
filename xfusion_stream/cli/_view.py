"""Live viewer: a web page that shows a fused run while it is acquired.

The newest fused frame beside the registered Shimadzu frame and the nearest Phantom
frame, the per-frame metrics and fidelity figures as plots, and a scrubber over the
frames fused so far. Fed from a 0MQ proxy's fused stream (--zmq) or from a fused run in
Tiled (--tiled-uri with --uid, read as it grows). Serves on 127.0.0.1 unless --host
says otherwise; --port 0 takes a free port. The URL is printed on stderr; Ctrl-C ends it.
"""

from __future__ import annotations

import argparse
import os
import sys

from ._argtypes import positive_float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--zmq",
        metavar="HOST:PORT",
        help="a bluesky 0MQ proxy's out side (e.g. 127.0.0.1:5578); shows fused runs as they come",
    )
    source.add_argument("--tiled-uri", help="Tiled server holding the fused run (with --uid)")
    a("--uid", help="the fused run's uid in Tiled (with --tiled-uri)")
    a("--api-key-env", default="TILED_API_KEY", help="environment variable with the Tiled API key")
    a(
        "--poll",
        type=positive_float,
        default=1.0,
        help="seconds between reads of a growing run in Tiled",
    )
    a("--host", default="127.0.0.1", help="address to serve on (loopback: this machine only)")
    a("--port", type=int, default=8765, help="port to serve on; 0 picks a free one")
    a("--max-frames", type=int, default=256, help="newest frames whose panels are kept in memory")
    a("--timeout", type=positive_float, default=None, help="stop serving after this many seconds")
    a("--ready-file", default=None, help="write the page's URL here once it is served")
    a(
        "--data-root",
        action="append",
        default=None,
        metavar="DIR",
        help="a folder fused runs stored as HDF5 may be read from; repeat for more "
        "(default: the profile's data_dir/fused with --profile, else none: such runs "
        "show their numbers only)",
    )
    a("--profile", default=None, help="beamline profile: its fused-frames folder and proxy")


def run(args: argparse.Namespace) -> dict:
    from ..app import TiledSource, ViewerFeed, ZmqSource, serve_viewer
    from ..core import ConfigError

    profile = None
    if args.profile:
        from ..app import load_profile

        profile = load_profile(args.profile)
    if args.zmq is None and args.tiled_uri is None:
        if profile is None or profile.zmq is None:
            raise ConfigError(
                "view needs --zmq HOST:PORT, --tiled-uri URI --uid UID, or a "
                "--profile with a zmq: block"
            )
        args.zmq = profile.zmq.raw_out  # fused documents reach the proxy's out side too
    roots = list(args.data_root or [])
    if not roots and profile is not None:
        roots = [str(profile.fusion_config().fused_data_dir)]
    if args.max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port {args.port}: out of range")
    if args.zmq is not None:
        if args.uid is not None:
            raise ConfigError("--uid goes with --tiled-uri, not --zmq")
        address = args.zmq

        def make_source(feed: ViewerFeed) -> ZmqSource | TiledSource:
            return ZmqSource(address, feed)

        source = {"zmq": address}
    else:
        if not args.uid:
            raise ConfigError("--tiled-uri needs --uid (the fused run to show)")
        from ._tiled import connect

        client = connect(args.tiled_uri, api_key=os.environ.get(args.api_key_env) or None)
        if args.uid not in client:
            raise ConfigError(f"--uid {args.uid}: no such run in {args.tiled_uri}")

        def make_source(feed: ViewerFeed) -> ZmqSource | TiledSource:
            return TiledSource(client, args.uid, feed, interval=args.poll)

        source = {"tiled_uri": args.tiled_uri, "uid": args.uid}

    def announce(url: str) -> None:
        print(f"xfusion view: serving {url} (Ctrl-C ends it)", file=sys.stderr, flush=True)

    try:
        result = serve_viewer(
            make_source,
            host=args.host,
            port=args.port,
            max_frames=args.max_frames,
            timeout=args.timeout,
            ready_file=args.ready_file,
            announce=announce,
            data_roots=roots,
        )
    except OSError as exc:  # the port is taken, the host is not ours
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {exc}") from None
    return {**source, **result, "data_roots": [str(r) for r in roots]}
