"""Confine the files asset documents name to the data roots this process trusts.

Why: a StreamResource or Resource that arrives over 0MQ, or from a shared Tiled, names
any URI and any HDF5 dataset it likes. Opening them unchecked lets a sender read any
file the service can (and publish it as fused frames), probe whether files exist, or
block the service in ``open()`` on a FIFO. Here a URI becomes a local path only when it
is a ``file`` URI without a remote host, its real path (symlinks followed) lies inside
one data root, and it is a regular file; the file is opened non-blocking and checked
again on its descriptor, so nothing can be swapped in between. Refusals never say
whether a file outside the roots exists.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from typing import IO, Any
from urllib.parse import urlparse

import h5py
import numpy as np

from ..core import DocumentError

__all__ = [
    "DataRoots",
    "checked_dataset",
    "data_roots",
    "dataset_path",
    "open_confined",
    "path_of_resource",
    "path_of_uri",
]

# None: the caller trusts the documents (they come from its own RunEngine); any local
# path passes the other rules. A tuple: only files under these real directories;
# empty: no file access at all.
DataRoots = tuple[str, ...] | None

_DATASET = re.compile(r"^/?[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
_MAX_LINK_DEPTH = 8


def data_roots(roots: Iterable[str | os.PathLike[str]] | None) -> DataRoots:
    """``roots`` as real absolute directory paths (None stays None: trusted documents)."""
    if roots is None:
        return None
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    return tuple(os.path.realpath(os.path.expanduser(os.fspath(r))) for r in roots)


def _outside(doc_name: str, uid: str | None, what: str, roots: DataRoots) -> DocumentError:
    if roots == ():
        why = "file access is off (no data roots configured)"
    elif roots is None:
        why = "it does not name a readable regular file"
    else:
        why = "it does not name a readable file inside the data roots"
    return DocumentError(doc_name, uid, f"refusing {what}: {why}")


def _confined(text: str, roots: DataRoots, doc_name: str, uid: str | None, what: str) -> str:
    """The real path of absolute ``text`` when it lies inside one root."""
    if roots == ():
        raise _outside(doc_name, uid, what, roots)
    if not text.startswith("/"):
        raise DocumentError(doc_name, uid, f"refusing {what}: not an absolute path")
    try:
        real = os.path.realpath(text)
    except (ValueError, OSError):  # NUL byte, symlink loop
        raise _outside(doc_name, uid, what, roots) from None
    if roots is not None and not any(
        real == root or real.startswith(root.rstrip("/") + "/") for root in roots
    ):
        raise _outside(doc_name, uid, what, roots)
    return real


def path_of_uri(uri: Any, roots: DataRoots, doc_name: str, uid: str | None) -> str:
    """The confined real path a StreamResource ``uri`` names, or DocumentError."""
    if not isinstance(uri, str) or not uri:
        raise DocumentError(doc_name, uid, f"uri {uri!r} is not a string")
    what = f"uri {uri[:200]!r}"
    try:
        parsed = urlparse(uri)
    except ValueError as exc:
        raise DocumentError(doc_name, uid, f"refusing {what}: {exc}") from None
    if parsed.scheme not in ("file", ""):
        raise DocumentError(doc_name, uid, f"refusing {what}: not a file URI")
    if parsed.netloc.lower() not in ("", "localhost"):
        raise DocumentError(doc_name, uid, f"refusing {what}: names a remote host")
    if parsed.params or parsed.query or parsed.fragment:
        raise DocumentError(doc_name, uid, f"refusing {what}: has parameters, query or fragment")
    return _confined(parsed.path, roots, doc_name, uid, what)


def path_of_resource(doc: dict[str, Any], roots: DataRoots) -> str:
    """The confined real path of a legacy Resource (``root`` + ``resource_path``)."""
    uid = doc.get("uid")
    root, rel = doc.get("root", ""), doc.get("resource_path")
    if not isinstance(root, str) or not isinstance(rel, str) or not rel:
        raise DocumentError("resource", uid, "root and resource_path must be strings")
    text = os.path.join(root, rel) if root else rel
    return _confined(text, roots, "resource", uid, f"resource_path {text[:200]!r}")


def dataset_path(value: Any, doc_name: str, uid: str | None) -> str:
    """A plain HDF5 path (``/entry/data/data``): letters, digits, ``_.-``, no ``.``/``..``."""
    if value is None:
        return "/entry/data/data"
    if (
        not isinstance(value, str)
        or len(value) > 256
        or not _DATASET.match(value)
        or any(part in (".", "..") for part in value.split("/"))
    ):
        raise DocumentError(doc_name, uid, f"dataset {str(value)[:100]!r} is not a plain HDF5 path")
    return value if value.startswith("/") else "/" + value


def open_confined(
    real: str,
    roots: DataRoots,
    doc_name: str,
    uid: str | None,
    what: str,
    *,
    swmr: bool = False,
) -> tuple[h5py.File, IO[bytes]]:
    """Open ``real`` read-only without ever blocking, as HDF5; refuse anything irregular.

    O_NONBLOCK keeps a FIFO from blocking ``open``; fstat on the descriptor checks the
    very file h5py then reads (through the file object, never the path again). With
    ``swmr`` (a file another writer is still appending to, in HDF5's single-writer /
    multiple-reader mode) HDF5 must read through its own POSIX driver: it opens the
    same checked descriptor again by its ``/proc/self/fd`` link, falling back to the
    file object where that fails.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(real, flags)
    except OSError:
        raise _outside(doc_name, uid, what, roots) from None
    fh = os.fdopen(fd, "rb")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DocumentError(doc_name, uid, f"refusing {what}: not a regular file")
        if swmr and os.path.exists(f"/proc/self/fd/{fd}"):
            try:
                return h5py.File(f"/proc/self/fd/{fd}", "r", swmr=True), fh
            except Exception:  # noqa: BLE001 - not a SWMR file after all: read it plainly
                pass
        return h5py.File(fh, "r"), fh
    except DocumentError:
        fh.close()
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError, ValueError, ...
        fh.close()
        raise DocumentError(doc_name, uid, f"refusing {what}: not an HDF5 file ({exc})") from None


def _walk(h5: h5py.File, path: str, doc_name: str, uid: str | None, depth: int = 0) -> Any:
    """The object at ``path``, following soft links inside the file only."""
    if depth > _MAX_LINK_DEPTH:
        raise DocumentError(doc_name, uid, f"dataset {path!r}: soft links nest too deep")
    node: Any = h5["/"]
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, h5py.Group):
            raise DocumentError(doc_name, uid, f"dataset {path!r} is not in the file")
        link = node.get(part, getlink=True)
        if link is None:
            raise DocumentError(doc_name, uid, f"dataset {path!r} is not in the file")
        if isinstance(link, h5py.ExternalLink):
            raise DocumentError(doc_name, uid, f"dataset {path!r} leads to another file")
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else f"{node.name}/{link.path}"
            node = _walk(h5, os.path.normpath(target), doc_name, uid, depth + 1)
        else:
            node = node[part]
    return node


def _expected(data_key: dict[str, Any] | None) -> tuple[tuple[int, int] | None, np.dtype | None]:
    if not isinstance(data_key, dict):
        return None, None
    shape = data_key.get("shape")
    dims = [v for v in shape if isinstance(v, int)] if isinstance(shape, list) else []
    frame = (dims[-2], dims[-1]) if len(dims) >= 2 else None
    try:
        dtype = np.dtype(data_key["dtype_numpy"]) if data_key.get("dtype_numpy") else None
    except (TypeError, ValueError):
        dtype = None
    return frame, dtype


def checked_dataset(
    h5: h5py.File, path: str, data_key: dict[str, Any] | None, doc_name: str, uid: str | None
) -> h5py.Dataset:
    """The frames dataset ``path``: in this file only, (n, rows, cols), numeric, and of
    the shape and dtype the descriptor's ``data_key`` declares (where it declares them)."""
    ds = _walk(h5, path, doc_name, uid)
    if not isinstance(ds, h5py.Dataset):
        raise DocumentError(doc_name, uid, f"{path!r} is not a dataset")
    if ds.is_virtual or ds.external:
        raise DocumentError(doc_name, uid, f"dataset {path!r} stores its data in other files")
    if ds.ndim != 3 or ds.dtype.kind not in "biuf":
        raise DocumentError(
            doc_name, uid, f"dataset {path!r} is {ds.dtype} {ds.shape}, not (frames, rows, cols)"
        )
    frame, dtype = _expected(data_key)
    if frame is not None and tuple(ds.shape[1:]) != frame:
        raise DocumentError(
            doc_name, uid, f"dataset {path!r} frames are {ds.shape[1:]}, descriptor says {frame}"
        )
    if dtype is not None and (dtype.kind, dtype.itemsize) != (ds.dtype.kind, ds.dtype.itemsize):
        raise DocumentError(
            doc_name, uid, f"dataset {path!r} is {ds.dtype}, descriptor says {dtype}"
        )
    return ds
