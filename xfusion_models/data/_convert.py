"""RGB frame folders -> gray frame folders, for pretraining on REDS-like data.

Gray is the ITU-R BT.601 luma (OpenCV's ``COLOR_BGR2GRAY``); the output keeps the
REDS layout and file names, and a meta-info file describes the result.
"""

from __future__ import annotations

from pathlib import Path

from ._clips import ClipEntry, frame_paths

__all__ = ["convert_to_gray"]


def convert_to_gray(
    source: str | Path, target: str | Path, *, progress: bool = True
) -> list[ClipEntry]:
    """Convert every clip folder under ``source``; returns the meta-info entries."""
    import cv2
    from tqdm import tqdm

    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: source folder not found")
    clips = sorted(p for p in source.iterdir() if p.is_dir())
    if not clips:
        raise ValueError(f"{source}: no clip folders (expected <root>/<clip>/<frame>.png)")
    jobs = [(clip, frame) for clip in clips for frame in frame_paths(clip)]
    entries: dict[str, ClipEntry] = {}
    for clip, frame in tqdm(jobs, desc=f"gray {source.name}", disable=not progress):
        image = cv2.imread(str(frame), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{frame}: not a readable image")
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
        elif image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        out_dir = target / clip.name
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / (frame.stem + ".png")
        if not cv2.imwrite(str(out), image):
            raise OSError(f"{out}: could not write frame")
        entry = entries.get(clip.name)
        shape = (image.shape[0], image.shape[1], 1)
        if entry is not None and entry.shape != shape:
            raise ValueError(f"{frame}: frame shape {shape[:2]} differs from the clip's")
        count = 1 if entry is None else entry.nframes + 1
        entries[clip.name] = ClipEntry(clip.name, count, shape)
    return [entries[c.name] for c in clips]
