"""Resumable downloads with size/checksum checks, and zip extraction that refuses unsafe entries.

* :func:`download` streams ``url`` into ``dest + ".part"`` and resumes an interrupted transfer with an HTTP
  ``Range`` request (a server that ignores it restarts from zero). The finished file is checked against the size
  the server announced (and ``expected_size``/``checksum`` when given) before it is renamed to ``dest``, so ``dest``
  only ever exists complete.
* :func:`safe_extract` refuses a whole archive when any entry is absolute, climbs out of the target folder
  (zip-slip), is a symlink or other special file, is listed twice, is both a file and a folder, or when the sizes
  it declares exceed the free disk space, before writing anything. Each file is written to a temp name and renamed, so an
  interrupted extraction leaves whole files only; a rerun skips files already present with the right size.
* :func:`ensure_coco` puts a COCO year in place for ``vlmr1 data coco``: folders already there are used as they
  are, zips already there are extracted, anything else is downloaded from ``images.cocodataset.org`` (MD5-checked
  against :data:`COCO_MD5`).

Stdlib only (urllib, zipfile, hashlib); progress bars by tqdm.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import stat
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from vlmr1.errors import UserError
from vlmr1.fileio import atomic_open, atomic_write, fsync_dir

__all__ = ["BASE_URL", "COCO_MD5", "DownloadError", "UnsafeArchiveError", "download",
           "ensure_coco", "file_digest", "safe_extract"]

# Official COCO archives: MD5 published by many independent mirrors/loaders (train2014.zip is left out because
# the public sources disagree on it; its size is still checked against the server's).
COCO_MD5 = {
    "train2017.zip": "cced6f7f71b7629ddf16f17bbcfab6b2",
    "val2017.zip": "442b8da7639aecaf257c1dceb8ba8c80",
    "annotations_trainval2017.zip": "f4bbac642086de4f52a3fdda2de5fa2c",
    "val2014.zip": "a3d79f5ed8d289b7a7554ce06a5782b3",
    "annotations_trainval2014.zip": "0a379cfc70b0e71301e0f377548639bd",
}

CHUNK = 1 << 20
BASE_URL = "http://images.cocodataset.org"


class DownloadError(UserError, RuntimeError):
    """A download failed or produced a file of the wrong size or checksum."""

    def __init__(self, problem: str):
        super().__init__(problem, kind="download_failed")


class UnsafeArchiveError(UserError):
    """A zip holds an entry that would be written outside the target folder, a link or special file, duplicate or
    conflicting entries, or declares more data than the disk can take."""

    def __init__(self, problem: str):
        super().__init__(problem, kind="unsafe_archive")


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _parse_checksum(checksum: str | None) -> tuple[str, str] | None:
    """``"md5:abc..."`` / ``"sha256:..."`` -> (algorithm, hex); a bare 32-hex string is MD5."""
    if not checksum:
        return None
    algo, sep, value = checksum.partition(":")
    if not sep:
        algo, value = {32: "md5", 40: "sha1", 64: "sha256"}.get(len(checksum), ""), checksum
    if algo not in hashlib.algorithms_available:
        raise ValueError(f"checksum {checksum!r}: write it as md5:<hex> or sha256:<hex>")
    return algo, value.lower()


def _total_from_headers(response, offset: int) -> int | None:
    """Full file size from ``Content-Range: bytes a-b/TOTAL`` (206) or ``Content-Length`` (200)."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> int | None:
    """One HTTP request that appends to ``part`` from its current size. Returns the announced total size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "vlmr1", **({"Range": f"bytes={offset}-"}
                                                                             if offset else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) URL from our caller
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing left to fetch: the part is already whole (checked by the caller)
            # "bytes */TOTAL" lets the caller catch a part longer than the file (left by another download)
            content_range = (e.headers.get("Content-Range") if e.headers else None) or ""
            total = content_range.rsplit("/", 1)[-1].strip()
            return int(total) if content_range.startswith("bytes */") and total.isdigit() else None
        raise
    with response:
        if offset and response.status != 206:  # the server ignored Range: start over
            offset = 0
        total = _total_from_headers(response, offset)
        with open(part, "r+b" if offset else "wb") as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name[: -len(".part")], disable=not progress, leave=False,
        ) as bar:
            f.seek(offset)
            f.truncate()
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                bar.update(len(block))
            f.flush()
            os.fsync(f.fileno())
    return total


def download(url: str, dest: str | os.PathLike, *, expected_size: int | None = None, checksum: str | None = None,
             retries: int = 5, timeout: float = 60.0, progress: bool = True,
             sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download (``dest.part``).

    Args:
        url: http(s) URL.
        dest: final path; written only once the file is complete and verified.
        expected_size: size in bytes the file must have (else the server's announced size is used).
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"`` (a bare 32-hex string is MD5), checked at the end.
        retries: extra attempts after a dropped connection; each resumes where the last one stopped.
        timeout: socket timeout in seconds.
        progress: show a tqdm bar.
        sleep: back-off function between attempts (tests pass a no-op).

    Returns:
        ``dest`` as a Path. An existing ``dest`` of the right size (and checksum) is kept without a request.

    Raises:
        DownloadError: the transfer failed after all retries, or the size/checksum is wrong (a wrong-size or
            wrong-checksum file is deleted, so the next call starts clean).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    want = _parse_checksum(checksum)
    if dest.exists() and (expected_size is None or dest.stat().st_size == expected_size):
        if want is None or file_digest(dest, want[0]) == want[1]:
            return dest
        raise DownloadError(f"{dest}: exists but its {want[0]} does not match {want[1]}; delete it and rerun")
    part = dest.with_name(dest.name + ".part")
    total, last_error = None, None
    for attempt in range(retries + 1):
        try:
            announced = _fetch_once(url, part, timeout, progress)
            total = announced if announced is not None else total
            size = part.stat().st_size
            if total is None or size >= total:
                break
            last_error = f"connection closed at {size} of {total} bytes"
        except urllib.error.HTTPError as e:
            if e.code < 500 and e.code not in (408, 429):  # 404 & co: retrying will not help
                raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the URL") from None
            last_error = f"HTTP {e.code} {e.reason}"
        except (OSError, http.client.HTTPException) as e:  # dropped connection, IncompleteRead, timeout
            last_error = f"{type(e).__name__}: {e}"
        if attempt < retries:
            sleep(min(2.0**attempt, 30.0))
    else:
        raise DownloadError(f"{url}: download failed after {retries + 1} attempt(s) ({last_error}); "
                            f"{part} keeps what arrived, rerun to resume")
    size = part.stat().st_size
    need = expected_size if expected_size is not None else total
    if need is not None and size != need:
        part.unlink()
        raise DownloadError(f"{url}: got {size} bytes, expected {need}; the partial file was deleted, rerun")
    if want is not None:
        got = file_digest(part, want[0])
        if got != want[1]:
            part.unlink()
            raise DownloadError(f"{url}: {want[0]} is {got}, expected {want[1]}; the file was deleted, rerun "
                                "(a mirror or proxy may be serving a different file)")
    os.replace(part, dest)
    fsync_dir(dest.parent)
    return dest


def _check_member(info: zipfile.ZipInfo, root: Path) -> Path:
    """Target path of one zip entry, or UnsafeArchiveError for absolute, escaping, link or special-file entries."""
    name = info.filename
    kind = (info.external_attr >> 16) & 0o170000
    if kind == stat.S_IFLNK:
        raise UnsafeArchiveError(f"entry {name!r} is a symlink; refusing the archive")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):  # device, FIFO, socket: never in a data archive
        raise UnsafeArchiveError(f"entry {name!r} is a special file (mode {kind:o}); refusing the archive")
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"entry {name!r} has an absolute path; refusing the archive")
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchiveError(f"entry {name!r} would be written outside {root}; refusing the archive")
    if target == root and not info.is_dir():  # "a/..": its temp file would land next to root, outside it
        raise UnsafeArchiveError(f"entry {name!r} is a file named like the target folder itself; refusing the archive")
    return target


def _check_layout(zip_path, infos: list[zipfile.ZipInfo], targets: list[Path], root: Path) -> None:
    """Refuse duplicate entries, a file where another entry needs a folder, and more data than the free space."""
    files: set[Path] = set()
    need = 0
    for info, target in zip(infos, targets):
        if info.is_dir():
            continue
        if target in files:  # which copy would win depended on the sizes: refuse rather than guess
            raise UnsafeArchiveError(f"two entries extract to {target}; refusing the archive")
        files.add(target)
        if not (target.is_file() and target.stat().st_size == info.file_size):
            need += info.file_size
    folders = {parent for target in targets for parent in target.parents}
    folders.update(target for info, target in zip(infos, targets) if info.is_dir())
    clash = files & folders
    if clash:
        raise UnsafeArchiveError(f"{min(clash)} is both a file and a folder in the archive; refusing it")
    # zipfile never returns more than an entry's declared size (a lie fails the CRC), so this bounds what is written
    free = shutil.disk_usage(root).free
    if need > free:
        raise UnsafeArchiveError(f"{zip_path} declares {need} bytes to extract but {root} has only {free} free; "
                                 "free some space (or extract elsewhere) and rerun")


def safe_extract(zip_path: str | os.PathLike, target_dir: str | os.PathLike, *,
                 select: Callable[[str], bool] | None = None, progress: bool = True) -> list[Path]:
    """Extract a zip into ``target_dir`` after checking every entry; resumable.

    Args:
        zip_path: the archive.
        target_dir: where entries go (created if needed).
        select: keep only entries whose name passes (e.g. only ``annotations/instances_*.json``).
        progress: show a tqdm bar (files).

    Returns:
        The paths of the selected files (extracted now or already present).

    Raises:
        UnsafeArchiveError: an entry is absolute, escapes ``target_dir``, is a link or special file, is listed twice
            or is both a file and a folder, or the declared sizes exceed the free space (nothing is written).
        zipfile.BadZipFile: the archive is truncated or corrupt (a CRC mismatch included).
    """
    root = Path(target_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        infos = [i for i in archive.infolist() if select is None or select(i.filename)]
        targets = [_check_member(i, root) for i in infos]  # all checked before anything is written
        _check_layout(zip_path, infos, targets, root)
        done = []
        for info, target in tqdm(list(zip(infos, targets)), desc=f"extract {Path(zip_path).name}", unit="file",
                                 disable=not progress, leave=False):
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            done.append(target)
            if target.is_file() and target.stat().st_size == info.file_size:
                continue  # written by an earlier (interrupted) run: renamed into place only when complete
            target.parent.mkdir(parents=True, exist_ok=True)
            # a corrupt entry (CRC, size) raises inside and leaves no partial file behind
            with archive.open(info) as src, atomic_open(target, durable=False) as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    return done


def ensure_coco(root: Path, year: str, splits: list[str], allow_download: bool, base_url: str = BASE_URL,
                  delete_zips: bool = False) -> dict[str, Path]:
    """Make ``root/{split}{year}/`` and ``root/annotations/instances_{split}{year}.json`` exist.

    Uses folders already there, else zips already there, else downloads (unless ``allow_download`` is False).

    Returns:
        split -> instances json path.
    """

    def fetch(name: str, url: str) -> Path:
        zip_path = root / name
        if zip_path.is_file():
            return zip_path
        if not allow_download:
            raise UserError("not found (and --no-download)", where=str(zip_path), kind="missing_file",
                            fix=f"put the zip or its extracted folder there, or drop --no-download to fetch {url}")
        print(f"downloading {url}")
        return download(url, zip_path, checksum=COCO_MD5.get(name))

    def extract(zip_path: Path, select=None) -> None:
        marker = root / f".{zip_path.name}.extracted"
        if not marker.is_file():
            print(f"extracting {zip_path}")
            safe_extract(zip_path, root, select=select)
            atomic_write(marker, b"")
        if delete_zips:
            zip_path.unlink(missing_ok=True)

    out = {}
    for split in splits:
        ann = root / "annotations" / f"instances_{split}{year}.json"
        if not ann.is_file():
            name = f"annotations_trainval{year}.zip"
            zip_path = fetch(name, f"{base_url}/annotations/{name}")
            safe_extract(zip_path, root, select=lambda n: n.startswith("annotations/instances_"))
        images = root / f"{split}{year}"
        zip_path = root / f"{split}{year}.zip"
        if zip_path.is_file() or not images.is_dir():
            extract(fetch(zip_path.name, f"{base_url}/zips/{zip_path.name}"))
        out[split] = ann
    if delete_zips:
        (root / f"annotations_trainval{year}.zip").unlink(missing_ok=True)
    return out
