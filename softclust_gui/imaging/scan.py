"""Find the images in a folder or on a camera card, and the cards plugged in.

A scan only lists and stats files (and, if asked, reads headers); it never writes anything
anywhere. Images are identified by their path: DJI names such as ``DJI_0001.JPG`` restart
on every card, so names repeat across folders.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from softclust_gui.imaging.metadata import ImageMetadata

logger = logging.getLogger(__name__)

# Image kinds by extension, in the order that picks the primary file of a group sharing a
# base name (DJI_0001.JPG beats DJI_0001.DNG, which becomes its companion).
IMAGE_KINDS: dict[str, str] = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".heic": "heic",
    ".heif": "heic",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".png": "png",
    ".webp": "webp",
    ".dng": "dng",
}
_KIND_RANK = {kind: rank for rank, kind in enumerate(dict.fromkeys(IMAGE_KINDS.values()))}

_OTHER_REASONS: dict[str, str] = {
    ".mp4": "video file",
    ".mov": "video file",
    ".avi": "video file",
    ".mkv": "video file",
    ".lrf": "low-resolution video proxy (DJI .LRF)",
    ".srt": "flight telemetry subtitles (.SRT)",
    ".mrk": "RTK timestamp marks (.MRK)",
    ".obs": "RTK observation log",
    ".nav": "RTK navigation log",
    ".bin": "binary log",
    ".xmp": "metadata sidecar (.XMP)",
    ".thm": "video thumbnail (.THM)",
    ".txt": "text file",
    ".json": "data file",
    ".wav": "audio file",
    ".raw": "raw file of an unsupported kind",
}


@dataclass(frozen=True)
class ImageRecord:
    """One image found by a scan.

    Attributes
    ----------
    path : Path
        Absolute path; the image's identity.
    size : int
        File size in bytes.
    mtime_ns : int
        Modification time in nanoseconds since the epoch.
    kind : str
        "jpeg", "png", "tiff", "webp", "dng" or "heic".
    companions : tuple of Path
        Files in the same folder with the same base name (``DJI_0001.DNG``, ``.SRT`` ...),
        to be exported with the image.
    metadata : ImageMetadata or None
        Filled by ``scan_source(..., metadata=True)`` or by the feature pipeline.
    """

    path: Path
    size: int
    mtime_ns: int
    kind: str
    companions: tuple[Path, ...] = ()
    metadata: ImageMetadata | None = None

    def with_metadata(self, metadata: ImageMetadata | None) -> ImageRecord:
        return replace(self, metadata=metadata)


@dataclass(frozen=True)
class SkippedFile:
    """A file or folder a scan or the pipeline did not use, and why, in plain words."""

    path: Path
    reason: str


@dataclass
class ScanResult:
    """What a scan found under ``source``.

    ``layout`` is "camera card" when ``source`` holds a DCIM folder (only DCIM is then
    walked) and "folder" otherwise; ``root`` is the folder actually walked.
    """

    source: Path
    root: Path
    layout: str
    images: list[ImageRecord] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    cancelled: bool = False


@dataclass(frozen=True)
class CardVolume:
    """A mounted volume with a DCIM folder: a camera or drone card."""

    root: Path
    dcim: Path
    label: str


def find_dcim(folder: Path) -> Path | None:
    """The DCIM folder directly inside ``folder`` (any letter case), or None."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.upper() == "DCIM" and entry.is_dir():
                    return Path(entry.path)
    except OSError:
        return None
    return None


def default_mount_roots() -> list[Path]:
    """Folders under which this system mounts removable volumes."""
    if sys.platform == "darwin":
        return [Path("/Volumes")]
    if os.name == "nt":
        return []  # drive letters are listed directly, see find_card_volumes
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or ""
    roots = [Path("/media"), Path("/run/media"), Path("/mnt")]
    if user:
        roots = [Path("/media") / user, Path("/run/media") / user, *roots]
    return roots


def _windows_drives() -> list[Path]:
    import ctypes
    import string

    drive_removable = 2
    drives = []
    bitmask = ctypes.windll.kernel32.GetLogicalDrives()
    for index, letter in enumerate(string.ascii_uppercase):
        if bitmask & (1 << index):
            root = f"{letter}:\\"
            if ctypes.windll.kernel32.GetDriveTypeW(root) == drive_removable:
                drives.append(Path(root))
    return drives


def find_card_volumes(mount_roots: Iterable[Path] | None = None) -> list[CardVolume]:
    """Mounted volumes that hold a DCIM folder.

    Parameters
    ----------
    mount_roots : iterable of Path, optional
        Folders whose direct children are mount points (``/media/$USER``, ``/Volumes``).
        A root that itself holds DCIM counts as a card too. Default: this system's usual
        places; on Windows the removable drive letters.
    """
    if mount_roots is None:
        candidates = _windows_drives() if os.name == "nt" else []
        roots = default_mount_roots()
    else:
        candidates, roots = [], [Path(r) for r in mount_roots]
    for root in roots:
        candidates.append(root)
        try:
            with os.scandir(root) as entries:
                candidates += [Path(e.path) for e in entries if _is_dir(e)]
        except OSError:
            continue
    found, seen = [], set()
    for volume in candidates:
        dcim = find_dcim(volume)
        key = os.path.normcase(str(volume))
        if dcim is not None and key not in seen:
            seen.add(key)
            found.append(CardVolume(volume, dcim, volume.name or str(volume)))
    return found


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def scan_source(
    source: str | os.PathLike,
    *,
    metadata: bool = False,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ScanResult:
    """List the images under a folder or card, recursively, and everything skipped.

    Parameters
    ----------
    source : path
        A folder, a card's mount point, or a single image file.
    metadata : bool
        Also read each image's header (EXIF, GPS, XMP); slower (about 0.2 ms an image).
    cancel : threading.Event, optional
        When set, the scan stops at the next folder or file and returns what it has, with
        ``cancelled=True``.
    on_progress : callable, optional
        Called with the number of files looked at so far, every 500 files.

    Returns
    -------
    ScanResult
        Images sorted by path, and skipped files with reasons. Symlink loops, unreadable
        folders and files that vanish mid-scan are listed as skipped, never raised.

    Raises
    ------
    FileNotFoundError
        When ``source`` does not exist.
    """
    source = Path(source).expanduser().absolute()
    if not source.exists():
        raise FileNotFoundError(
            f"Nothing to scan at {source}: the folder or card does not exist (unplugged?)."
        )
    if source.is_file():
        result = ScanResult(source, source.parent, "file")
        stem = source.stem.lower()
        group = [p for p in source.parent.iterdir() if p.stem.lower() == stem and p.is_file()]
        _collect_files(source.parent, group, result)
        result.images = [r for r in result.images if r.path == source]
        result.skipped = [s for s in result.skipped if s.path == source]
    else:
        dcim = find_dcim(source)
        root = dcim if dcim is not None else source
        result = ScanResult(source, root, "camera card" if dcim is not None else "folder")
        _walk(root, result, cancel, on_progress)
    result.images.sort(key=lambda r: str(r.path))
    if metadata:
        result.images = [_with_header(record, result) for record in result.images]
        result.images = [r for r in result.images if r is not None]
    logger.info(
        "scanned %s (%s): %d images, %d skipped",
        source,
        result.layout,
        len(result.images),
        len(result.skipped),
    )
    return result


def _walk(root, result, cancel, on_progress) -> None:
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    looked_at = 0
    while stack:
        if cancel is not None and cancel.is_set():
            result.cancelled = True
            return
        folder = stack.pop()
        try:
            info = folder.stat()
        except OSError as exc:
            result.skipped.append(SkippedFile(folder, f"folder vanished or unreadable: {exc}"))
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            result.skipped.append(
                SkippedFile(folder, "symlink loop: this folder was already scanned")
            )
            continue
        seen_dirs.add(key)
        files = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        what = "folder" if _is_dir(entry) else "file"
                        result.skipped.append(SkippedFile(Path(entry.path), f"hidden {what}"))
                    elif _is_dir(entry):
                        stack.append(Path(entry.path))
                    else:
                        files.append(Path(entry.path))
        except OSError as exc:
            result.skipped.append(
                SkippedFile(folder, f"folder could not be read ({exc.strerror or exc})")
            )
            continue
        _collect_files(folder, files, result)
        looked_at += len(files)
        if on_progress is not None and looked_at // 500 != (looked_at - len(files)) // 500:
            on_progress(looked_at)


def _collect_files(folder: Path, files: list[Path], result: ScanResult) -> None:
    """Group one folder's files by base name; the best image kind leads each group."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(path.stem.lower(), []).append(path)
    for members in groups.values():
        images = [p for p in members if p.suffix.lower() in IMAGE_KINDS]
        if not images:
            for path in members:
                result.skipped.append(SkippedFile(path, _reason_for(path)))
            continue
        images.sort(key=lambda p: (_KIND_RANK[IMAGE_KINDS[p.suffix.lower()]], p.name))
        primary = images[0]
        companions = tuple(sorted(p for p in members if p != primary))
        try:
            info = primary.stat()
        except OSError as exc:
            result.skipped.append(SkippedFile(primary, f"file vanished during the scan: {exc}"))
            continue
        if info.st_size == 0:
            result.skipped.append(SkippedFile(primary, "empty file (0 bytes)"))
            continue
        kind = IMAGE_KINDS[primary.suffix.lower()]
        result.images.append(
            ImageRecord(primary, info.st_size, info.st_mtime_ns, kind, companions)
        )


def _reason_for(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _OTHER_REASONS:
        return _OTHER_REASONS[suffix]
    return f"not an image kind the app reads ({suffix or 'no extension'})"


def _with_header(record: ImageRecord, result: ScanResult) -> ImageRecord | None:
    from softclust_gui.imaging.decode import open_header

    try:
        meta = open_header(record.path, record.kind)
    except FileNotFoundError:
        result.skipped.append(SkippedFile(record.path, "file vanished during the scan"))
        return None
    except Exception as exc:
        logger.debug("no header for %s: %s", record.path, exc)
        return record
    return record.with_metadata(meta)
