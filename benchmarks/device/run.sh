#!/usr/bin/env bash
# One-shot `xfusion bench` on the GPU machine: install the carried wheels and the project
# into a target folder, run the bench, print a summary. See README.md beside this script.
#
# Device call: carry [".whl"], command `bash benchmarks/device/run.sh`.
# Environment (defaults are the device's): PYTHON (python3), OUT (./out), XFUSION_SITE
# (/tmp/site), XFUSION_DEVICE (cuda), XFUSION_BENCH_ARGS (extra bench flags, none),
# XFUSION_BENCH_TIMEOUT (480 s), XFUSION_INSTALL (pip; copy skips the project's pip build).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
PY=${PYTHON:-python3}
SITE=${XFUSION_SITE:-/tmp/site}
DEV=${XFUSION_DEVICE:-cuda}
ARGS=${XFUSION_BENCH_ARGS:-}
LIMIT=${XFUSION_BENCH_TIMEOUT:-480}
OUT=${OUT:-./out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

t0=$SECONDS
# 1. the carried wheels (.whl/wheels.tar.xz from wheels.sh; loose .whl/*.whl too)
mkdir -p "$work/wheels"
if [ -f .whl/wheels.tar.xz ]; then
    "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
        .whl/wheels.tar.xz "$work/wheels"
fi
cp .whl/*.whl "$work/wheels/" 2>/dev/null || true
n=$(find "$work/wheels" -name '*.whl' | wc -l)
[ "$n" -gt 0 ] || { echo "no wheels in .whl/ (run benchmarks/device/wheels.sh, carry .whl)" >&2; exit 2; }

# 2. the wheels, then the project from a copy of its sources (the build writes build/ and
#    *.egg-info there, not in the checkout), offline, with the device's setuptools; should
#    that build fail (or XFUSION_INSTALL=copy), the packages are copied in as the
#    pyproject's package-dir maps them, with a console script of our own
mkdir -p "$work/src"
cp -r pyproject.toml README.md xfusion_stream xfusion_models plans profiles "$work/src/"
echo "installing $n wheels and the project into $SITE ..."
pipi() {
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$@" >>"$OUT/install.log" 2>&1
}
: >"$OUT/install.log"
pipi "$work"/wheels/*.whl || { cat "$OUT/install.log" >&2; exit 3; }
if [ "${XFUSION_INSTALL:-pip}" = copy ] || ! pipi --no-build-isolation "$work/src"; then
    echo "project: pip build failed or skipped; copying its packages into $SITE" | tee -a "$OUT/install.log"
    rm -rf "$SITE"/xfusion_stream "$SITE"/xfusion_models "$SITE"/xfusion_plans "$SITE"/xfusion_profiles
    cp -r "$work/src/xfusion_stream" "$work/src/xfusion_models" "$SITE/"
    cp -r "$work/src/plans" "$SITE/xfusion_plans"
    cp -r "$work/src/profiles" "$SITE/xfusion_profiles"
    mkdir -p "$SITE/bin"
    printf '#!%s\nimport sys\nfrom xfusion_stream.cli import main\nsys.exit(main())\n' \
        "$(command -v "$PY")" >"$SITE/bin/xfusion"
    chmod +x "$SITE/bin/xfusion"
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
echo "installed in $((SECONDS - t0)) s"

# 3. the machine (from $work: python -c would import the checkout's own packages from
#    the current folder, not the installed ones)
(
    cd "$work"
    nvidia-smi -L 2>&1 || echo "no nvidia-smi"
    "$PY" -c 'import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
    "$PY" -c 'import tiled, bluesky, ophyd_async, duckdb, xfusion_stream as x
print("tiled", tiled.__version__, "bluesky", bluesky.__version__, "duckdb", duckdb.__version__,
      "xfusion_stream", x.__version__, "from", x.__file__)'
) 2>&1 | tee "$OUT/env.txt" || true  # a failure here shows again in the bench

# 4. the bench (its JSON on stdout, progress and errors on stderr), run from $work too, so
#    that its own python subprocesses import the installed packages
cd "$work"
echo "xfusion bench --device $DEV --json $ARGS (timeout $LIMIT s; progress in bench_cuda.err)"
t1=$SECONDS
rc=0
# shellcheck disable=SC2086  # ARGS is a list of flags
PYTHONUNBUFFERED=1 timeout "$LIMIT" "$SITE/bin/xfusion" bench --device "$DEV" --json \
    --partial "$OUT/bench_partial.json" $ARGS \
    >"$OUT/bench_cuda.json" 2>"$OUT/bench_cuda.err" || rc=$?
echo "bench rc=$rc in $((SECONDS - t1)) s"

# 5. a compact summary of the JSON
"$PY" - "$OUT/bench_cuda.json" "$OUT/bench_cuda.err" "$OUT/bench_partial.json" <<'PYEOF' 2>&1 | tee "$OUT/summary.txt"
import json, sys

try:
    d = json.loads(open(sys.argv[1]).read())
except ValueError as exc:
    print(f"no JSON from the bench ({exc}); stderr ends:")
    print(open(sys.argv[2]).read()[-3000:])
    try:  # the steps it finished, written after each one
        d = json.loads(open(sys.argv[3]).read())
    except (OSError, ValueError):
        sys.exit(0)
    print("partial figures:", json.dumps(d.get("partial")))
if not d.get("ok", True) or "error" in d:
    print("bench error:", json.dumps(d)[:3000])
print("device", d.get("device"), "model", d.get("model"), "matmul_gflops", d.get("matmul_gflops"))
burst = d.get("full_burst")
if burst:
    print("full_burst", burst["frames"], "frames of", burst["shimadzu_shape"])
    for name, m in burst["models"].items():
        print(f"  {name}: {m['frames_per_s']} frames/s, burst_s {m['burst_s']}, "
              f"steady_s_per_frame {m['steady_s_per_frame']}, cpu_side_share {m['cpu_side_share']}")
for name, e in d.get("efficiency", {}).items():
    print(f"efficiency {name}: {e['efficiency']} ({e['achieved_gflops']} of {e['peak_gflops']} GFLOP/s)")
print("precision", json.dumps(d.get("precision")))
p = d.get("pipeline", {})
print("pipeline_ratio", p.get("pipeline_ratio"), "streaming_speedup",
      d.get("streaming", {}).get("streaming_speedup"))
raw = d.get("persistence", {}).get("cases", {}).get("raw_400x250_uint16", {}).get("shipped", {})
print("persistence raw fps", raw.get("fps"), "read_back", raw.get("read_back"))
print("targets_met", json.dumps(d.get("targets_met")))
PYEOF
echo "done in $((SECONDS - t0)) s; files in $OUT"
exit "$rc"
