"""Offload a memory card to a local folder, keeping its layout, verified, never twice.

``offload(card, dest)`` copies every file under ``card`` (system and hidden files aside)
to the same relative place under ``dest``. Each copy is verified before it takes its name
(see ``_transfer``); a file already there with the same bytes is skipped, so offloading
the same card again copies only what is new. A different file under the same name is
never overwritten: the new one gets ``_2``, ``_3``..., and its companion files
(``DJI_0001.DNG`` beside ``DJI_0001.JPG``) get the same suffix so they stay together.
The card is only ever read.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from softclust_gui.session import _transfer
from softclust_gui.session._transfer import DestinationError, SourceError, TransferCancelled
from softclust_gui.session._units import Claims, Unit, make_unit, place_unit
from softclust_gui.session.export import (
    ExportReport,
    FileResult,
    ProgressCallback,
    Status,
    TransferProgress,
    format_bytes,
)
from softclust_gui.session.names import name_key, safe_name, split_ext

logger = logging.getLogger(__name__)

# Folders a camera or an operating system puts on a card that hold no user files.
SYSTEM_FOLDERS = {"system volume information", "$recycle.bin", "lost+found"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".tif", ".tiff", ".png", ".heic", ".heif", ".webp"}


def card_files(card: Path) -> Iterator[Path]:
    """Regular files under ``card`` in sorted order, hidden and system entries left out."""
    for root, dirs, files in os.walk(card):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d.casefold() not in SYSTEM_FOLDERS
        )
        for name in sorted(files):
            path = Path(root, name)
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                yield path


def _group(files: list[Path]) -> list[Unit]:
    """Files of one folder sharing a stem form a unit led by the image among them."""
    by_stem: dict[str, list[Path]] = {}
    for path in files:
        by_stem.setdefault(name_key(split_ext(path.name)[0]), []).append(path)
    units = []
    for _, group in sorted(by_stem.items()):
        group.sort(
            key=lambda p: (split_ext(p.name)[1].casefold() not in IMAGE_EXTENSIONS, p.name)
        )
        units.append(make_unit(group[0], tuple(group[1:])))
    return units


def _units_by_folder(card: Path) -> list[tuple[Path, list[Unit]]]:
    folders: dict[Path, list[Path]] = {}
    for path in card_files(card):
        folders.setdefault(path.parent.relative_to(card), []).append(path)
    return [(rel, _group(files)) for rel, files in sorted(folders.items())]


def offload(
    card: Path | str,
    dest: Path | str,
    *,
    progress: ProgressCallback | None = None,
    require_space: bool = True,
) -> ExportReport:
    """Copy the files of ``card`` under ``dest`` with the same layout.

    Parameters
    ----------
    card : Path or str
        Root of the card (or any folder) to read; nothing there is written.
    dest : Path or str
        Local folder to copy into; created if missing.
    progress : callable, optional
        Called with a ``TransferProgress`` before each file and after each copied MiB;
        returning True cancels after the current file's temporary copy is removed.
    require_space : bool
        Refuse to start when the files not yet there need more than the free space.

    Returns
    -------
    ExportReport
        ``COPIED`` for new files, ``ALREADY`` for identical files already there,
        ``SKIPPED``/``NOT_ATTEMPTED`` with reasons for the rest.
    """
    card, dest = Path(card), Path(dest)
    if not card.is_dir():
        raise FileNotFoundError(f"cannot offload {card}: it is not a folder (was it removed?)")
    inside = os.path.realpath(dest) + os.sep
    if inside.startswith(os.path.realpath(card).rstrip(os.sep) + os.sep):
        raise ValueError(f"cannot offload {card} into {dest}: the target is on the card itself")
    report = ExportReport(dest=dest, dry_run=False, action="Offload")
    plan = _units_by_folder(card)
    members = [m for _, units in plan for u in units for m in u.members]
    state = {"files": 0, "bytes": 0}
    total_bytes = sum(_size(m.source) for m in members)

    def tick(current: Path, nbytes: int = 0) -> bool:
        state["bytes"] += nbytes
        if progress is None:
            return False
        snapshot = TransferProgress(
            state["files"], len(members), state["bytes"], total_bytes, current
        )
        return bool(progress(snapshot))

    def stop(reason: str, status: Status = Status.NOT_ATTEMPTED) -> None:
        seen = {os.fspath(r.source) for r in report.results}
        for member in members:
            if os.fspath(member.source) not in seen:
                report.results.append(FileResult(member.source, None, status, reason))

    claims = Claims()
    try:
        if require_space:
            _check_space(card, dest, members, report)
        _transfer.ensure_folder(dest)
        for rel, units in plan:
            folder = dest.joinpath(*(safe_name(part) for part in rel.parts))
            _transfer.ensure_folder(folder)
            _transfer.remove_stale_temps(folder)
            for unit in units:
                if tick(unit.primary.source):
                    raise TransferCancelled
                if not card.is_dir():  # stop rather than skip every file one by one
                    raise DestinationError(f"the card {card} was removed")
                _offload_unit(unit, folder, claims, report, tick)
                state["files"] += len(unit.members)
    except TransferCancelled:
        report.cancelled = True
        stop("the offload was cancelled")
    except DestinationError as exc:
        logger.error("Offload stopped: %s", exc)
        report.stopped = str(exc)
        stop(str(exc))
    return report


def _offload_unit(unit: Unit, folder: Path, claims: Claims, report: ExportReport, tick) -> None:
    try:
        place_unit(unit, folder, claims)
    except SourceError as exc:
        for member in unit.members:
            report.results.append(FileResult(member.source, None, Status.SKIPPED, str(exc)))
        return
    for member in unit.members:
        try:
            if member.identical:
                fp, status = member.fingerprint, Status.ALREADY
            else:
                source = member.source
                fp = _transfer.copy_verified(
                    source, member.target, lambda n, s=source: tick(s, n)
                )
                status = Status.COPIED
        except SourceError as exc:
            logger.warning("Skipped %s: %s", member.source, exc)
            report.results.append(FileResult(member.source, None, Status.SKIPPED, str(exc)))
            continue
        except FileExistsError:
            reason = f"{member.target} appeared during the offload; not overwritten"
            report.results.append(FileResult(member.source, None, Status.SKIPPED, reason))
            continue
        except DestinationError as exc:
            if exc.fatal:
                raise
            report.results.append(FileResult(member.source, None, Status.SKIPPED, str(exc)))
            continue
        report.results.append(
            FileResult(member.source, member.target, status, "", fp.size, fp.sha256)
        )


def _check_space(card: Path, dest: Path, members, report: ExportReport) -> None:
    """Refuse to start when the files not yet at ``dest`` cannot fit there."""
    needed = 0
    for member in members:
        rel = member.source.relative_to(card)
        size = _size(member.source)
        if _size(dest / rel) != size:
            needed += size
    report.bytes_needed = needed
    probe = next((p for p in (dest, *dest.parents) if p.exists()), None)
    if probe is None:
        return
    try:
        report.bytes_free = shutil.disk_usage(probe).free
    except OSError:
        return
    if needed > report.bytes_free:
        raise DestinationError(
            f"not enough space at {dest}: the offload needs {format_bytes(needed)} and "
            f"{format_bytes(report.bytes_free)} is free; free some space or choose another "
            "folder"
        )


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
