"""Untrusted archives and downloads: the cases tests/data/test_data_download.py does not already cover.

That file covers ``../`` and ``ok/../../`` escapes, ``/abs``, ``\\\\server``, ``C:/``, a symlink entry, a CRC
error, Range resume, and size/checksum checks. Added here: Windows paths written with backslashes, a symlink that a
later entry writes through, special files, an entry that resolves to the target folder itself, duplicate and
file-versus-folder entries, sizes declared beyond the free disk space or understated (zip-bomb-ish), a corrupt
entry leaving no partial file, and a leftover ``.part`` longer than the file.
"""

import hashlib
import os
import stat
import struct
import zipfile
from collections import namedtuple

import pytest

from vlmr1.data import download as dl
from vlmr1.data.download import DownloadError, UnsafeArchiveError, download, safe_extract


def make_zip(path, entries, compression=zipfile.ZIP_STORED):
    """``entries``: (name, data, unix mode or None); the mode goes where unzip reads it (external_attr >> 16)."""
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            z.writestr(info, data)
    return path


def written(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.filterwarnings("ignore:Duplicate name")  # zipfile warns when writing the duplicate on purpose
@pytest.mark.parametrize("entries, why", [
    ([("C:\\evil.txt", b"x", None)], "absolute"),                                # Windows drive, backslash
    ([("C:evil.txt", b"x", None)], "absolute"),                                  # drive-relative
    ([("..\\..\\evil.txt", b"x", None)], "outside"),                             # backslash traversal
    ([("ok\\..\\..\\evil.txt", b"x", None)], "outside"),
    ([("\\evil.txt", b"x", None)], "absolute"),
    ([("a/..", b"x", None)], "target folder itself"),  # used to write '.out.<pid>.tmp' next to the target folder
    ([("data/link", b"/etc", stat.S_IFLNK | 0o777), ("data/link/passwd", b"pwned", None)], "symlink"),
    ([("data/fifo", b"", stat.S_IFIFO | 0o644)], "special file"),
    ([("data/dev", b"", stat.S_IFCHR | 0o644)], "special file"),
    ([("data/a.txt", b"one", None), ("data/a.txt", b"two", None)], "two entries"),  # first or last wins?
    ([("data/x/./a.txt", b"1", None), ("data/x/a.txt", b"22", None)], "two entries"),  # the same file, spelled twice
    ([("data/a", b"file", None), ("data/a/b.txt", b"in a folder", None)], "both a file and a folder"),
    ([("data/a", b"file", None), ("data/a/", b"", None)], "both a file and a folder"),
])
def test_unsafe_entries_refuse_the_whole_archive(tmp_path, entries, why):
    archive = make_zip(tmp_path / "bad.zip", [("data/first.jpg", b"x", None), *entries])
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(archive, out, progress=False)
    assert written(out) == []  # every entry is checked before anything is written
    assert sorted(os.listdir(tmp_path)) == ["bad.zip", "out"]  # and nothing lands beside the target folder


def test_windows_style_safe_names_still_extract(tmp_path):
    archive = make_zip(tmp_path / "ok.zip", [("val2017\\a.jpg", b"aaa", None), ("val2017/b.jpg", b"b", 0o100644)])
    safe_extract(archive, tmp_path / "out", progress=False)
    assert written(tmp_path / "out") == ["val2017", "val2017/a.jpg", "val2017/b.jpg"]


Usage = namedtuple("Usage", "total used free")


def test_declared_size_beyond_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "big.zip", [("data/a.bin", b"\0" * 1_000_000, None)], zipfile.ZIP_DEFLATED)
    assert archive.stat().st_size < 10_000  # compresses ~1000:1, the zip-bomb shape
    monkeypatch.setattr(dl.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 500_000, 500_000))
    with pytest.raises(UnsafeArchiveError, match="declares 1000000 bytes .* only 500000 free"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert written(tmp_path / "out") == []


def understate_size(path, name: bytes, size: int):
    """Rewrite the uncompressed size of entry ``name`` in its local and central headers (a lying archive)."""
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    while data[local + 30 : local + 30 + len(name)] != name:
        local = data.index(b"PK\x03\x04", local + 1)
    struct.pack_into("<I", data, local + 22, size)
    central = data.index(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 1)
    struct.pack_into("<I", data, central + 24, size)
    path.write_bytes(bytes(data))


def test_understated_size_stops_at_the_declared_size_and_leaves_nothing(tmp_path):
    archive = make_zip(tmp_path / "lie.zip", [("data/a.bin", b"\0" * 1_000_000, None)], zipfile.ZIP_DEFLATED)
    understate_size(archive, b"data/a.bin", 100)
    with zipfile.ZipFile(archive) as z:
        assert z.getinfo("data/a.bin").file_size == 100  # what the free-space check sees
    with pytest.raises(zipfile.BadZipFile):  # zipfile reads 100 bytes, then the CRC disagrees
        safe_extract(archive, tmp_path / "out", progress=False)
    assert [p for p in written(tmp_path / "out") if not p.endswith("data")] == []  # no partial or temp file


def test_part_file_longer_than_the_download_is_not_taken_as_complete(tmp_path):
    import http.server
    import threading

    payload = b"0123456789" * 1000

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # a Range past the end gets 416 with the real size, as RFC 9110 says
            start = int((self.headers.get("Range") or "bytes=0-").removeprefix("bytes=").split("-")[0])
            if start >= len(payload):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(payload)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            self.send_header("Content-Length", str(len(payload) - start))
            self.end_headers()
            self.wfile.write(payload[start:])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.bin"
        dest = tmp_path / "f.bin"
        (tmp_path / "f.bin.part").write_bytes(payload + b"left over from another file")  # no checksum to catch it
        with pytest.raises(DownloadError, match=f"expected {len(payload)}"):
            download(url, dest, retries=0, progress=False)
        assert not dest.exists() and not (tmp_path / "f.bin.part").exists()
        assert download(url, dest, retries=0, progress=False).read_bytes() == payload  # the rerun starts clean
        assert hashlib.md5(dest.read_bytes()).hexdigest() == hashlib.md5(payload).hexdigest()
    finally:
        server.shutdown()
        server.server_close()
