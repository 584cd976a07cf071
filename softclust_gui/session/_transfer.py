"""Verified, never-overwriting file copies: the one routine that writes user files.

Every file that offload or export writes goes through ``copy_verified``: the bytes go to
a hidden temporary name beside the target, are flushed to the device, read back and
compared by size and SHA-256 with what was read from the source, get the source's
timestamps, and only then take the final name, which must still be free. A crash at any
point leaves either no file or a complete, verified one under the final name, plus at
worst a temporary file that the next run removes.

Errors are sorted by side: ``SourceError`` (this one file cannot be read: skip it) and
``DestinationError`` (the target cannot take more: stop the batch).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
TEMP_PREFIX = ".softclust-"
TEMP_SUFFIX = ".part"

# Errors that say the destination as a whole cannot take more files.
_FATAL_DEST = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT}
_NO_HARDLINK = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


class TransferCancelled(Exception):
    """The caller asked to stop; no partial file was left behind."""


class SourceError(Exception):
    """One source file could not be read (gone, unreadable, changed while copied)."""


class DestinationError(Exception):
    """The destination refused a write: full, read-only, vanished or not permitted."""

    def __init__(self, message: str, fatal: bool = True):
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True)
class Fingerprint:
    """Size in bytes and SHA-256 (hex) of a file's content."""

    size: int
    sha256: str


def describe_os_error(exc: OSError) -> str:
    """Plain words for an OS error, e.g. ``"no space left on the device"``."""
    words = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ENOENT: "the file or folder no longer exists",
        errno.EIO: "input/output error (the device may have been removed)",
    }
    return words.get(exc.errno, exc.strerror or str(exc))


def hash_file(path: Path, cancel: Callable[[], bool] | None = None) -> Fingerprint:
    """Size and SHA-256 of ``path``, read in 1 MiB chunks; raises ``SourceError``."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
                if cancel is not None and cancel():
                    raise TransferCancelled
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {describe_os_error(exc)}") from exc
    return Fingerprint(size, digest.hexdigest())


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def remove_stale_temps(folder: Path) -> int:
    """Delete temporary files a killed run left in ``folder``; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError as exc:
                logger.warning("Cannot remove stale temporary file %s: %s", entry.path, exc)
    return removed


def _dest_error(action: str, path: Path, exc: OSError) -> DestinationError:
    fatal = exc.errno in _FATAL_DEST
    return DestinationError(f"cannot {action} {path}: {describe_os_error(exc)}", fatal=fatal)


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` and its parents; raises ``DestinationError``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _dest_error("create folder", folder, exc) from exc


def fsync_folder(folder: Path) -> None:
    # Makes a rename durable on POSIX; Windows cannot open a folder this way.
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _place_without_overwrite(temp: Path, target: Path) -> None:
    """Give ``temp`` the name ``target``, failing if ``target`` exists."""
    try:
        os.link(temp, target)  # atomic and refuses an existing name
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARDLINK:
            raise
        # FAT and exFAT have no hard links. A rename on POSIX would replace an existing
        # file, so check first; nothing else writes into an export folder meanwhile.
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "file exists", str(target)) from exc
        os.rename(temp, target)
        return
    os.unlink(temp)


def _copy_bytes(
    source: Path, out_fd: int, on_bytes: Callable[[int], bool | None] | None
) -> Fingerprint:
    digest = hashlib.sha256()
    size = 0
    try:
        src = open(source, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise SourceError(f"cannot read {source}: {describe_os_error(exc)}") from exc
    with src:
        while True:
            try:
                chunk = src.read(CHUNK_BYTES)
            except OSError as exc:
                raise SourceError(f"cannot read {source}: {describe_os_error(exc)}") from exc
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out_fd, view) :]
            if on_bytes is not None and on_bytes(len(chunk)):
                raise TransferCancelled
    return Fingerprint(size, digest.hexdigest())


def _read_back(fd: int) -> Fingerprint:
    # Drop the cached pages first where the system allows, so the check reads the device.
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.lseek(fd, 0, os.SEEK_SET)
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return Fingerprint(size, digest.hexdigest())


def copy_verified(
    source: Path,
    target: Path,
    on_bytes: Callable[[int], bool | None] | None = None,
    sync_folder: bool = True,
) -> Fingerprint:
    """Copy ``source`` to the new file ``target``, verified, timestamps kept.

    Parameters
    ----------
    source : Path
        File to copy; it is only ever opened for reading.
    target : Path
        Final name; its folder must exist. The copy fails with ``FileExistsError`` if the
        name is taken by then: nothing is ever overwritten.
    on_bytes : callable, optional
        Called with the number of bytes just copied; returning True cancels.
    sync_folder : bool
        Also flush the folder so the new name itself survives a power cut; needed before
        a source is deleted. Without it call ``sync_folder`` once per folder at the end.

    Returns
    -------
    Fingerprint
        Size and SHA-256 of the bytes read from the source, equal to the copy's.

    Raises
    ------
    SourceError, DestinationError, FileExistsError, TransferCancelled
        In every case the temporary file is removed and ``target`` is untouched.
    """
    try:
        before = os.stat(source)
    except OSError as exc:
        raise SourceError(f"cannot read {source}: {describe_os_error(exc)}") from exc
    temp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}{TEMP_SUFFIX}"
    try:
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _dest_error("write in", target.parent, exc) from exc
    placed = False
    try:
        try:
            copied = _copy_bytes(source, fd, on_bytes)
            os.fsync(fd)
            written = _read_back(fd)
        except OSError as exc:
            raise _dest_error("write", target, exc) from exc
        finally:
            os.close(fd)
        _check_copy(source, before, copied, written)
        try:
            os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
            _place_without_overwrite(temp, target)
        except FileExistsError:
            raise
        except OSError as exc:
            raise _dest_error("write", target, exc) from exc
        placed = True
        if sync_folder:
            fsync_folder(target.parent)
        return copied
    finally:
        if not placed:
            with contextlib.suppress(OSError):
                os.unlink(temp)


def _check_copy(
    source: Path, before: os.stat_result, copied: Fingerprint, written: Fingerprint
):
    try:
        after = os.stat(source)
    except OSError as exc:
        raise SourceError(f"{source} vanished while it was copied") from exc
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or (
        copied.size != before.st_size
    ):
        raise SourceError(f"{source} changed while it was copied; not exported")
    if written != copied:
        raise DestinationError(
            f"the copy of {source} does not match it after writing "
            f"({written.size} of {copied.size} bytes, hash differs): the destination "
            "device may be failing",
            fatal=True,
        )
