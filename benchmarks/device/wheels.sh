#!/usr/bin/env bash
# Fetch the cp312 wheels the GPU machine lacks (wheels.txt beside this script) and pack
# them into .whl/wheels.tar.xz at the repository root, ready for the device tool's
# `carry: [".whl"]`. See README.md beside this script.
#
# The wheels are re-zipped without compression and the lot xz-compressed: ~55 MiB of
# wheels become ~37 MiB, which is what lets them travel beside the ~17 MiB of tracked
# files under the device tool's 64 MiB limit. run.sh unpacks the archive (Python's
# tarfile, no xz binary needed) and pip-installs the wheels as they are.
#
# Environment: PYTHON (a Python with pip; default .venv/bin/python, else python3),
# WHEELS_LIMIT_MIB (largest .whl/ allowed, default 60), TREE_LIMIT_MIB (largest
# travelling tree allowed, default 63.5: the tool's 64 less a margin). For a dry run on
# another Python only: WHEELS_TXT (pin list, default wheels.txt here) and
# WHEELS_PYVER (default 3.12).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
WHEELS_LIMIT_MIB=${WHEELS_LIMIT_MIB:-60}
TREE_LIMIT_MIB=${TREE_LIMIT_MIB:-63.5}
PINS=${WHEELS_TXT:-$here/wheels.txt}
PYVER=${WHEELS_PYVER:-3.12}

# .whl/ must be ignored by git, or it would travel as untracked files too
in_git=0
if git rev-parse --git-dir >/dev/null 2>&1; then
    in_git=1
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    touch "$exclude"
    grep -qxF '/.whl/' "$exclude" || echo '/.whl/' >>"$exclude"
else
    echo "not a git checkout: no exclude file written, tree size counts every file"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "downloading $(grep -c '==' "$PINS") wheels (Python $PYVER, manylinux x86_64)..."
"$PY" -m pip download -q --no-deps --only-binary=:all: \
    --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_26_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 \
    -d "$work/raw" -r "$PINS"

mkdir -p .whl
rm -f .whl/*.whl .whl/wheels.tar.xz .whl/wheels.list

# stored (uncompressed) wheels, then one xz archive of them; also checks one file a pin
"$PY" - "$PINS" "$work/raw" .whl <<'PYEOF'
import lzma, re, sys, tarfile, zipfile
from pathlib import Path

pins, raw, dest = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
want = {}
for line in pins.read_text().splitlines():
    line = line.split("#", 1)[0].strip()
    if line:
        name, version = line.split("==")
        want[norm(name)] = version
files = sorted(raw.glob("*.whl"))
got = {norm(f.name.split("-")[0]): f.name.split("-")[1] for f in files}
if len(files) != len(want) or got != want:
    sys.exit(f"downloaded wheels do not match wheels.txt: {sorted(set(got.items()) ^ set(want.items()))}")
stored = raw.parent / "stored"
stored.mkdir()
for f in files:
    with zipfile.ZipFile(f) as zi, zipfile.ZipFile(stored / f.name, "w", zipfile.ZIP_STORED) as zo:
        for info in zi.infolist():
            data = zi.read(info)
            info.compress_type = zipfile.ZIP_STORED
            zo.writestr(info, data)
print(f"packing {len(files)} wheels with xz -9e (a couple of minutes)...")
with tarfile.open(dest / "wheels.tar.xz", "w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
    for f in sorted(stored.iterdir()):
        tar.add(f, arcname=f.name)
(dest / "wheels.list").write_text("".join(f"{f.name} {f.stat().st_size}\n" for f in files))
PYEOF

mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
sum_files() { xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
raw_b=$(find "$work/raw" -name '*.whl' -print0 | sum_files)
whl_b=$(find .whl -type f -print0 | sum_files)
# what travels: tracked files and untracked files git does not ignore, plus .whl/
if [ "$in_git" = 1 ]; then
    tree_b=$(git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -f "$f" ] && printf '%s\0' "$f"; done | sum_files)
else
    tree_b=$(find . -path ./.whl -prune -o -type f -print0 | sum_files)
fi
total_b=$((tree_b + whl_b))
echo "wheels as downloaded: $(mib "$raw_b") MiB"
echo ".whl/ (wheels.tar.xz + wheels.list): $(mib "$whl_b") MiB (limit $WHEELS_LIMIT_MIB)"
echo "working tree without .whl/: $(mib "$tree_b") MiB"
echo "travelling in all: $(mib "$total_b") MiB (limit $TREE_LIMIT_MIB)"
over() { awk -v b="$1" -v l="$2" 'BEGIN { exit !(b / 1048576 > l) }'; }
if over "$whl_b" "$WHEELS_LIMIT_MIB"; then
    echo "FAIL: .whl/ is over $WHEELS_LIMIT_MIB MiB" >&2
    exit 1
fi
if over "$total_b" "$TREE_LIMIT_MIB"; then
    echo "FAIL: the travelling tree is over $TREE_LIMIT_MIB MiB" >&2
    exit 1
fi
echo "ok: carry .whl and run 'bash benchmarks/device/run.sh'"
