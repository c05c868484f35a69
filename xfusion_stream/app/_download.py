"""Fetch test data archives (e.g. from Tomobank) with resume and integrity checks.

A half-finished download stays as ``<name>.part`` and is resumed with an HTTP Range
request; only a file whose size and sha256 match is renamed into place and unpacked.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from xfusion_models import file_sha256

from ..core import DownloadError

__all__ = ["DownloadResult", "download", "extract_zip"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class DownloadResult:
    archive: Path
    size: int
    sha256: str
    resumed_from: int
    extracted_to: Path | None
    members: int


def _archive_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name or "download.zip"


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> int:
    """Append the missing bytes of ``url`` to ``part``; return the offset resumed from."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "xfusion-stream"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # already complete
            return offset
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DownloadError(f"{url}: cannot connect: {exc}") from exc
    with response:
        if offset and response.status != 206:
            offset = 0  # server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        with (
            open(part, mode) as fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=part.name,
                disable=not progress,
            ) as bar,
        ):
            for block in iter(lambda: response.read(_CHUNK), b""):
                fh.write(block)
                bar.update(len(block))
    return offset


def extract_zip(archive: Path, out_dir: Path) -> int:
    """Unpack ``archive`` into ``out_dir``, refusing members that would land outside it."""
    out_dir = out_dir.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"{archive}: member {bad!r} fails its CRC check")
            names = zf.namelist()
            for name in names:
                target = (out_dir / name).resolve()
                if target != out_dir and out_dir not in target.parents:
                    raise DownloadError(
                        f"{archive}: member {name!r} would extract outside {out_dir}"
                    )
            zf.extractall(out_dir)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive}: not a valid zip archive: {exc}") from exc
    return len(names)


def download(
    url: str,
    out_dir: str | Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    extract: bool = True,
    timeout: float = 60.0,
    progress: bool = True,
) -> DownloadResult:
    """Download ``url`` into ``out_dir`` (resuming a ``.part``), verify, and unpack zips."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http(s) URLs are supported, got scheme {scheme!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    archive = out / _archive_name(url)
    part = archive.with_name(archive.name + ".part")
    resumed_from = _fetch(url, part, timeout, progress)
    got_size = part.stat().st_size
    if size is not None and got_size != size:
        if got_size > size:
            part.unlink()
        raise DownloadError(
            f"{url}: size {got_size} bytes, expected {size}"
            + ("; the partial file is kept and the next run resumes" if got_size < size else "")
        )
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise DownloadError(
            f"{url}: sha256 {digest} does not match expected {sha256.lower()}; "
            "the corrupted file was removed"
        )
    shutil.move(part, archive)
    extracted_to, members = None, 0
    if extract and zipfile.is_zipfile(archive):
        members = extract_zip(archive, out)
        extracted_to = out
    return DownloadResult(archive, got_size, digest, resumed_from, extracted_to, members)
