"""A recorded experiment folder read while the vendor software is still writing it.

The live sibling of ``RecordedCaseBackend``: the same layout (``recorded/_case.py``),
filled file by file by the Phantom and Shimadzu software. A file counts as complete
only when its size and mtime have not changed for ``settle_s`` and, for a TIFF, its
strips end inside the file (a writer that pauses mid-file is not mistaken for done);
the burst is complete when both sidecars (Shimadzu INI, Phantom XML) parse and name
as many frames as there are complete TIFFs. Only then is the folder read, by
``read_case`` (every check of the recorded path applies), and each TIFF is read only
if it is still the file that was judged complete. Sidecars may come first or last.
Polling, not inotify: it works the same on network shares and needs no dependency.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile

from ..core import RecordedFormatError
from ..recorded import RecordedCase, read_case, read_frame, read_phantom_xml, read_shimadzu_ini
from ._camera_backend import BurstLifecycle, CameraFrame, CameraSettings
from ._camera_pairs import camera_pair
from ._phantom import PhantomTMX7510
from ._recorded_backend import RecordedCaseBackend
from ._shimadzu import ShimadzuHPVX2

__all__ = [
    "BurstIncompleteError",
    "FolderWatch",
    "WatchProgress",
    "WatchedFolderBackend",
    "watched_cameras",
]

_PHANTOM_FILE_RE = re.compile(r"^img_(-?\d+)\.tiff?$", re.IGNORECASE)
_TIFF_SUFFIXES = (".tif", ".tiff")
_LISTED = 8  # names per category in an error message


class BurstIncompleteError(TimeoutError):
    """The watched folder did not become a complete burst within the timeout."""


@dataclass
class _FileState:
    size: int
    mtime_ns: int
    changed_at: float  # monotonic time the size or mtime was last seen to change
    verdict: str | None = None  # "ok" or why the stable file is not usable yet


@dataclass
class WatchProgress:
    """One scan of the folder: what is there, what is missing, what is still growing."""

    missing: list[str] = field(default_factory=list)
    growing: list[str] = field(default_factory=list)
    unusable: list[str] = field(default_factory=list)  # stable but truncated / unparsable
    complete_frames: dict[str, int] = field(default_factory=dict)
    expected_frames: dict[str, int | None] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        counts = self.expected_frames
        return (
            not (self.missing or self.growing or self.unusable)
            and all(counts.get(c) is not None for c in ("phantom", "shimadzu"))
            and all(self.complete_frames.get(c) == counts[c] for c in ("phantom", "shimadzu"))
        )


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def _tiff_extent_ok(path: Path, size: int) -> str:
    """ "ok" when the TIFF header reads and every strip ends inside the file."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            ends = [int(o) + int(n) for o, n in zip(page.dataoffsets, page.databytecounts)]  # type: ignore[union-attr]
    except (OSError, ValueError, IndexError, AttributeError, tifffile.TiffFileError) as exc:
        return f"TIFF header not readable yet ({exc})"
    if not ends or max(ends) > size:
        return f"truncated TIFF ({size} bytes, strips end at {max(ends, default=0)})"
    return "ok"


class FolderWatch:
    """Polls one case folder until it holds a complete burst; shared by both cameras.

    ``timeout_s`` counts from the first poll; progress does not extend it.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        timeout_s: float = 60.0,
        poll_s: float = 0.2,
        settle_s: float = 1.0,
    ) -> None:
        if timeout_s <= 0 or poll_s <= 0 or settle_s < 0:
            raise ValueError("timeout_s and poll_s must be > 0, settle_s >= 0")
        self.folder = Path(folder).absolute()
        self.timeout_s = float(timeout_s)
        self.poll_s = float(poll_s)
        self.settle_s = float(settle_s)
        self.case: RecordedCase | None = None
        self._files: dict[Path, _FileState] = {}
        self._started: float | None = None

    # ---- one scan -------------------------------------------------------------------
    def _entries(self, directory: Path) -> list[tuple[Path, os.stat_result]]:
        """Visible entries of ``directory``; a symlink or special file is an error."""
        found = []
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue  # hidden: temporary files of the writer, never read
            st = entry.stat(follow_symlinks=False)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise RecordedFormatError(
                    entry.path, "watched folder", "not a regular file or folder (symlink?)"
                )
            found.append((Path(entry.path), st))
        return found

    def _track(self, path: Path, st: os.stat_result, now: float) -> _FileState:
        old = self._files.get(path)
        if old is None or (old.size, old.mtime_ns) != (st.st_size, st.st_mtime_ns):
            old = _FileState(st.st_size, st.st_mtime_ns, now)
            self._files[path] = old
        return old

    def _stable(self, state: _FileState, now: float) -> bool:
        return state.size > 0 and now - state.changed_at >= self.settle_s

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.folder))

    def _frames(
        self,
        files: list[tuple[Path, os.stat_result]],
        camera: str,
        now: float,
        progress: WatchProgress,
    ) -> int:
        complete = 0
        for path, st in files:
            state = self._track(path, st, now)
            if not self._stable(state, now):
                progress.growing.append(self._rel(path))
                continue
            if state.verdict is None:
                state.verdict = _tiff_extent_ok(path, state.size)
            if state.verdict == "ok":
                complete += 1
            else:
                progress.unusable.append(f"{self._rel(path)} ({state.verdict})")
        progress.complete_frames[camera] = complete
        return complete

    def _sidecar(
        self, path: Path, st: os.stat_result, now: float, progress: WatchProgress
    ) -> int | None:
        """Frame count the sidecar names, once it is stable and parses."""
        state = self._track(path, st, now)
        if not self._stable(state, now):
            progress.growing.append(self._rel(path))
            return None
        reader = read_shimadzu_ini if path.suffix.lower() == ".ini" else read_phantom_xml
        try:
            return int(reader(path).n_frames)
        except (RecordedFormatError, ValueError, OSError) as exc:
            progress.unusable.append(f"{self._rel(path)} (does not parse: {exc})")
            return None

    def _scan_shimadzu(
        self, top: list[tuple[Path, os.stat_result]], now: float, progress: WatchProgress
    ) -> None:
        inis = [(p, s) for p, s in top if stat.S_ISREG(s.st_mode) and p.suffix.lower() == ".ini"]
        n = self._sidecar(*inis[0], now, progress) if len(inis) == 1 else None
        if not inis:
            progress.missing.append("*.ini (Shimadzu INI)")
        elif len(inis) > 1:
            progress.unusable.append(f"{_listed([p.name for p, _ in inis])} (more than one INI)")
        progress.expected_frames["shimadzu"] = n
        roots = [p for p, s in top if stat.S_ISDIR(s.st_mode) and p.name.upper() == "TIFF16"]
        subs = [p for p, s in self._entries(roots[0]) if stat.S_ISDIR(s.st_mode)] if roots else []
        if len(subs) != 1:
            progress.missing.append("TIFF16/<one subfolder> (Shimadzu frames)")
            progress.complete_frames["shimadzu"] = 0
            return
        files = [(p, s) for p, s in self._entries(subs[0]) if p.suffix.lower() in _TIFF_SUFFIXES]
        self._frames(files, "shimadzu", now, progress)
        if n is not None and len(files) < n:
            progress.missing.append(f"{self._rel(subs[0])}: {n - len(files)} of {n} TIFFs")

    def _scan_phantom(
        self, top: list[tuple[Path, os.stat_result]], now: float, progress: WatchProgress
    ) -> None:
        dirs = [p for p, s in top if stat.S_ISDIR(s.st_mode) and p.name.upper() != "TIFF16"]
        progress.expected_frames["phantom"] = None
        if len(dirs) != 1:
            progress.missing.append("<phantom folder> (Phantom XML and frames)")
            progress.complete_frames["phantom"] = 0
            return
        entries = [(p, s) for p, s in self._entries(dirs[0]) if stat.S_ISREG(s.st_mode)]
        xmls = [(p, s) for p, s in entries if p.suffix.lower() == ".xml"]
        n = self._sidecar(*xmls[0], now, progress) if len(xmls) == 1 else None
        if not xmls:
            progress.missing.append(f"{dirs[0].name}/*.xml (Phantom XML)")
        progress.expected_frames["phantom"] = n
        files = [(p, s) for p, s in entries if _PHANTOM_FILE_RE.match(p.name)]
        self._frames(files, "phantom", now, progress)
        if n is not None:
            seen = {int(m[1]) for p, _ in files if (m := _PHANTOM_FILE_RE.match(p.name))}
            absent = [f"{dirs[0].name}/img_{i:06d}.tif" for i in range(n) if i not in seen]
            if absent:
                progress.missing.append(_listed(absent))

    def scan(self) -> WatchProgress:
        """One look at the folder (stat calls, TIFF headers of stable files only)."""
        now = time.monotonic()
        if self._started is None:
            self._started = now
        progress = WatchProgress()
        if not self.folder.is_dir():
            progress.missing.append(f"{self.folder} (the folder itself)")
            return progress
        top = self._entries(self.folder)
        self._scan_shimadzu(top, now, progress)
        self._scan_phantom(top, now, progress)
        return progress

    def poll(self) -> bool:
        """Scan once; True (and ``case`` set, read and checked) when the burst is complete."""
        if self.case is not None:
            return True
        progress = self.scan()
        if progress.done:
            self.case = read_case(self.folder)
            return True
        waited = time.monotonic() - (self._started or 0.0)
        if waited >= self.timeout_s:
            raise self._incomplete(progress, waited)
        return False

    def _incomplete(self, progress: WatchProgress, waited: float) -> BurstIncompleteError:
        parts = [
            f"{label}: {_listed(names)}"
            for label, names in (
                ("missing", progress.missing),
                ("still growing", progress.growing),
                ("not usable", progress.unusable),
            )
            if names
        ]
        counts = ", ".join(
            f"{c} {progress.complete_frames.get(c, 0)}/{progress.expected_frames.get(c) or '?'}"
            for c in ("phantom", "shimadzu")
        )
        return BurstIncompleteError(
            f"{self.folder}: burst still incomplete after waiting {waited:.1f} s "
            f"(timeout {self.timeout_s:g} s); complete frames {counts}; " + "; ".join(parts)
        )

    # ---- waiting --------------------------------------------------------------------
    def wait(self) -> RecordedCase:
        """Block (sleeping ``poll_s``) until complete; raises ``BurstIncompleteError``."""
        while not self.poll():
            time.sleep(self.poll_s)
        assert self.case is not None
        return self.case

    async def wait_async(self) -> RecordedCase:
        """The same on an event loop: each poll is short, the sleeps yield the loop."""
        while not self.poll():
            await asyncio.sleep(self.poll_s)
        assert self.case is not None
        return self.case

    def read_complete_frame(self, path: Path) -> np.ndarray:
        """Read a frame judged complete, refusing one that changed since."""
        state = self._files.get(path)
        st = os.stat(path, follow_symlinks=False)
        if state is None or (state.size, state.mtime_ns) != (st.st_size, st.st_mtime_ns):
            raise RecordedFormatError(path, "image", "changed after the burst was complete")
        return read_frame(path)


class WatchedFolderBackend(BurstLifecycle):
    """One camera of a watched folder; readout waits for the burst, then reads it.

    Before the burst is complete ``settings`` reports an empty camera (shape 0x0, no
    frames); the device takes the real settings after ``trigger``.
    """

    source = "watched folder"

    def __init__(
        self,
        watch: FolderWatch,
        camera: Literal["phantom", "shimadzu"],
        *,
        pixel_size_um: float = 0.0,
    ) -> None:
        if camera not in ("phantom", "shimadzu"):
            raise ValueError(f"camera must be 'phantom' or 'shimadzu', got {camera!r}")
        self.watch = watch
        self.camera = camera
        self._camera: Literal["phantom", "shimadzu"] = camera
        self.pixel_size_um = float(pixel_size_um)

    def settings(self) -> CameraSettings:
        if self.watch.case is None:
            return CameraSettings((0, 0), 0, 0.0, 0.0, self.pixel_size_um)
        recorded = RecordedCaseBackend(
            self.watch.case, self._camera, pixel_size_um=self.pixel_size_um
        )
        return recorded.settings()

    def readout(self, limit: int | None = None) -> Iterator[CameraFrame]:
        self._require_recorded()
        case = self.watch.wait()
        if self.camera == "phantom":
            paths = case.phantom_frames
            timing = case.phantom
            numbers, times, flags = timing.frame_numbers, timing.times_ns, timing.e_flags
        else:
            paths = case.shimadzu_frames
            times = case.shimadzu.times_ns
            numbers = np.arange(1, len(paths) + 1)
            flags = np.zeros(len(paths), dtype=bool)
        n = len(paths) if limit is None else min(limit, len(paths))
        for i in range(n):
            image = self.watch.read_complete_frame(paths[i])
            yield CameraFrame(image, int(numbers[i]), int(times[i]), bool(flags[i]))


def watched_cameras(
    folder: str | Path,
    *,
    timeout_s: float = 60.0,
    poll_s: float = 0.2,
    settle_s: float = 1.0,
    data_dir: str | Path | None = None,
    inline: bool = False,
    phantom_pixel_um: float = 0.0,
    shimadzu_pixel_um: float = 0.0,
) -> tuple[PhantomTMX7510, ShimadzuHPVX2]:
    """The two cameras of a case folder the vendor software is still filling.

    Both share one :class:`FolderWatch`. ``data_dir`` gets the burst HDF5 files;
    default ``<folder>_raw`` beside the folder (never inside it).
    """
    watch = FolderWatch(folder, timeout_s=timeout_s, poll_s=poll_s, settle_s=settle_s)
    if data_dir is None and not inline:
        data_dir = watch.folder.parent / f"{watch.folder.name}_raw"
    return camera_pair(
        WatchedFolderBackend(watch, "phantom", pixel_size_um=phantom_pixel_um),
        WatchedFolderBackend(watch, "shimadzu", pixel_size_um=shimadzu_pixel_um),
        data_dir=data_dir,
        inline=inline,
    )
