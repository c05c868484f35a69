import hashlib
import http.server
import io
import json
import threading
import zipfile

import pytest

from xfusion_stream.app import download
from xfusion_stream.cli import main
from xfusion_stream.core import DownloadError


def _make_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("rad_00001/img_000000.txt", "frame zero" * 1000)
        zf.writestr("rad_00001/readme.txt", "sample data")
    return buf.getvalue()


class _Server:
    """A loopback HTTP server with Range support; ``cut`` truncates the first reply."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.cut: int | None = None
        self.ranges: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                chunk = body[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if outer.cut is not None:
                    chunk, outer.cut = chunk[: outer.cut], None
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server({"/data.zip": _make_zip(), "/bad.zip": b"not a zip at all"})
    yield s
    s.close()


def test_download_verifies_and_extracts(server, tmp_path, capsys):
    body = server.files["/data.zip"]
    digest = hashlib.sha256(body).hexdigest()
    rc = main(
        [
            "download",
            "--dir-inf",
            server.base + "/data.zip",
            "--out-dir-inf",
            str(tmp_path),
            "--sha256",
            digest,
            "--size",
            str(len(body)),
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["sha256"] == digest and out["members"] == 2
    assert (tmp_path / "rad_00001" / "readme.txt").read_text() == "sample data"


def test_interrupted_download_resumes(server, tmp_path):
    body = server.files["/data.zip"]
    server.cut = 1000
    with pytest.raises(DownloadError, match="partial file is kept"):
        download(server.base + "/data.zip", tmp_path, size=len(body), progress=False)
    assert (tmp_path / "data.zip.part").stat().st_size == 1000
    result = download(server.base + "/data.zip", tmp_path, size=len(body), progress=False)
    assert result.resumed_from == 1000
    assert server.ranges[-1] == "bytes=1000-"
    assert result.sha256 == hashlib.sha256(body).hexdigest()


def test_corrupted_download_is_rejected_and_removed(server, tmp_path, capsys):
    rc = main(
        [
            "download",
            "--dir-inf",
            server.base + "/data.zip",
            "--out-dir-inf",
            str(tmp_path),
            "--sha256",
            "0" * 64,
            "--json",
        ]
    )
    assert rc == 2
    assert "does not match" in json.loads(capsys.readouterr().out.strip())["error"]
    assert not (tmp_path / "data.zip").exists() and not (tmp_path / "data.zip.part").exists()


def test_not_a_zip_and_missing_file(server, tmp_path):
    result = download(server.base + "/bad.zip", tmp_path, progress=False)
    assert result.extracted_to is None  # kept as a plain file, not unpacked
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.base + "/missing.zip", tmp_path, progress=False)
    with pytest.raises(DownloadError, match="only http"):
        download("file:///etc/passwd", tmp_path, progress=False)


def test_zip_slip_is_refused(tmp_path):
    from xfusion_stream.app import extract_zip

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside.txt", "x")
    with pytest.raises(DownloadError, match="outside"):
        extract_zip(evil, tmp_path / "out")
