"""Downloads against a local HTTP server (Range resume, size and checksum checks) and safe zip extraction."""

import hashlib
import http.server
import os
import stat
import threading
import zipfile

import pytest

from vlmr1.data.download import DownloadError, UnsafeArchiveError, download, safe_extract

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable


class Server:
    """A threaded http.server serving PAYLOAD (and any ``files``) at /file.bin; behaviour switches per test."""

    def __init__(self):
        self.files = {"/file.bin": PAYLOAD}
        self.requests = []  # Range header of each GET (None when absent)
        self.truncate_next = 0  # the next N responses stop halfway through the body
        self.ignore_range = False
        self.status = 200
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                payload = server.files.get(self.path)
                if server.status != 200 or payload is None:
                    self.send_error(server.status if payload is not None else 404)
                    return
                start = 0
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(payload):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(payload)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
                else:
                    self.send_response(200)
                body = payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.truncate_next:
                    server.truncate_next -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def no_sleep(_):
    pass


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    dest = tmp_path / "file.bin"
    server.truncate_next = 1
    with pytest.raises(DownloadError, match="rerun to resume"):
        download(server.url, dest, retries=0, progress=False)
    part = tmp_path / "file.bin.part"
    assert not dest.exists() and part.stat().st_size == len(PAYLOAD) // 2  # the half that arrived is kept
    download(server.url, dest, retries=0, progress=False)
    assert dest.read_bytes() == PAYLOAD and not part.exists()
    assert server.requests == [None, f"bytes={len(PAYLOAD) // 2}-"]


def test_retries_resume_within_one_call(server, tmp_path):
    server.truncate_next = 2
    dest = download(server.url, tmp_path / "f.bin", retries=3, progress=False, sleep=no_sleep)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[0] is None and all(r.startswith("bytes=") for r in server.requests[1:])
    assert len(server.requests) == 3


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(b"garbage that must not survive")
    server.ignore_range = True
    assert download(server.url, tmp_path / "f.bin", progress=False).read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_without_refetching_the_body(server, tmp_path):
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)  # killed after the last byte, before the rename
    assert download(server.url, tmp_path / "f.bin", progress=False).read_bytes() == PAYLOAD
    assert server.requests == [f"bytes={len(PAYLOAD)}-"]  # answered 416: nothing left


def test_wrong_expected_size_is_refused_and_cleaned_up(server, tmp_path):
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=f"got {len(PAYLOAD)} bytes, expected 123"):
        download(server.url, dest, expected_size=123, progress=False)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_checksum_is_verified(server, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    assert download(server.url, tmp_path / "ok.bin", checksum=f"md5:{md5}", progress=False).exists()
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert download(server.url, tmp_path / "ok2.bin", checksum=sha, progress=False).exists()  # bare hex: by length
    with pytest.raises(DownloadError, match="md5 is"):
        download(server.url, tmp_path / "bad.bin", checksum="md5:" + "0" * 32, progress=False)
    assert not (tmp_path / "bad.bin").exists()


def test_existing_complete_file_needs_no_request(server, tmp_path):
    dest = tmp_path / "f.bin"
    dest.write_bytes(PAYLOAD)
    download(server.url, dest, expected_size=len(PAYLOAD), checksum=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert server.requests == []


def test_http_404_fails_at_once(server, tmp_path):
    server.status = 404
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url, tmp_path / "f.bin", retries=5, progress=False, sleep=no_sleep)
    assert len(server.requests) == 1


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w") as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            z.writestr(info, data)
    return path


def test_safe_extract_writes_files_and_skips_finished_ones(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("val2017/a.jpg", b"aaa", None), ("val2017/sub/b.jpg", b"bb", None),
                                            ("val2017/c/../c.txt", b"inside after all", None)])
    out = tmp_path / "out"
    paths = safe_extract(archive, out, progress=False)
    assert (out / "val2017" / "a.jpg").read_bytes() == b"aaa"
    assert (out / "val2017" / "sub" / "b.jpg").read_bytes() == b"bb"
    assert (out / "val2017" / "c.txt").exists() and len(paths) == 3
    # a rerun keeps complete files and rewrites a truncated one
    a, b = out / "val2017" / "a.jpg", out / "val2017" / "sub" / "b.jpg"
    os.utime(a, (1, 1))
    b.write_bytes(b"b")
    safe_extract(archive, out, progress=False)
    assert a.stat().st_mtime == 1 and b.read_bytes() == b"bb"
    assert not [p for p in out.rglob("*.tmp")]


def test_safe_extract_select_filters_entries(tmp_path):
    archive = make_zip(tmp_path / "ann.zip", [("annotations/instances_val2017.json", b"{}", None),
                                              ("annotations/captions_val2017.json", b"{}", None)])
    safe_extract(archive, tmp_path, select=lambda n: n.startswith("annotations/instances_"), progress=False)
    assert (tmp_path / "annotations" / "instances_val2017.json").exists()
    assert not (tmp_path / "annotations" / "captions_val2017.json").exists()


@pytest.mark.parametrize("name, mode, why", [
    ("../evil.txt", None, "outside"),
    ("ok/../../evil.txt", None, "outside"),
    ("/tmp/evil.txt", None, "absolute"),
    ("\\\\server\\evil.txt", None, "absolute"),
    ("C:/evil.txt", None, "absolute"),
    ("val2017/link", stat.S_IFLNK | 0o777, "symlink"),
])
def test_safe_extract_refuses_unsafe_entries_before_writing_anything(tmp_path, name, mode, why):
    archive = make_zip(tmp_path / "bad.zip", [("val2017/first.jpg", b"x", None), (name, b"/etc/passwd", mode)])
    out = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(archive, out, progress=False)
    assert not (out / "val2017" / "first.jpg").exists()  # all entries are checked first
    assert not (tmp_path / "evil.txt").exists()


def test_corrupt_zip_is_reported(tmp_path):
    archive = make_zip(tmp_path / "a.zip", [("a.txt", b"hello world" * 100, None)])
    data = bytearray(archive.read_bytes())
    data[data.index(b"hello")] ^= 0xFF  # flip a byte of the stored data: CRC mismatch
    archive.write_bytes(bytes(data))
    with pytest.raises(zipfile.BadZipFile):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "a.txt").exists()


def test_ensure_coco_downloads_verifies_and_extracts(server, tmp_path, monkeypatch):
    from vlmr1.data import download as dl

    zips = tmp_path / "zips"
    zips.mkdir()
    images = make_zip(zips / "val2017.zip", [("val2017/000000000001.jpg", b"jpeg bytes", None)])
    annotations = make_zip(zips / "ann.zip", [("annotations/instances_val2017.json", b"{}", None),
                                             ("annotations/captions_val2017.json", b"{}", None)])
    server.files = {"/zips/val2017.zip": images.read_bytes(),
                    "/annotations/annotations_trainval2017.zip": annotations.read_bytes()}
    monkeypatch.setattr(dl, "COCO_MD5", {"val2017.zip": hashlib.md5(images.read_bytes()).hexdigest(),
                                         "annotations_trainval2017.zip": "0" * 32})
    base = server.url.rsplit("/", 1)[0]
    root = tmp_path / "coco"
    with pytest.raises(DownloadError, match="md5"):  # the annotations zip does not match its checksum
        dl.ensure_coco(root, "2017", ["val"], True, base)
    monkeypatch.setitem(dl.COCO_MD5, "annotations_trainval2017.zip", hashlib.md5(annotations.read_bytes()).hexdigest())
    out = dl.ensure_coco(root, "2017", ["val"], True, base, delete_zips=True)
    assert out == {"val": root / "annotations" / "instances_val2017.json"} and out["val"].is_file()
    assert (root / "val2017" / "000000000001.jpg").read_bytes() == b"jpeg bytes"
    assert not (root / "annotations" / "captions_val2017.json").exists()  # only the instances files
    assert not list(root.glob("*.zip"))  # --delete_zips
    n = len(server.requests)
    dl.ensure_coco(root, "2017", ["val"], False, base)  # everything in place: no request, no download needed
    assert len(server.requests) == n
